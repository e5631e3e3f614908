package migrations_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/dbtest"
	"github.com/deepimageshub/imagehub/migrations"
)

// emptyDB creates a database with nothing in it (not from the template).
func emptyDB(t *testing.T) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	admin := dbtest.AdminURL(t)
	conn, err := pgx.Connect(ctx, admin)
	require.NoError(t, err)
	defer conn.Close(ctx)
	name := "imagehub_migrate_" + t.Name()[len("Test"):]
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	require.NoError(t, err)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	require.NoError(t, err)
	cfg, err := pgxpool.ParseConfig(admin)
	require.NoError(t, err)
	cfg.ConnConfig.Database = name
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		pool.Close()
		c, err := pgx.Connect(context.Background(), admin)
		require.NoError(t, err)
		defer c.Close(context.Background())
		_, _ = c.Exec(context.Background(), "DROP DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	})
	return pool
}

func TestUpFromScratch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := emptyDB(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	require.NoError(t, migrations.Up(ctx, pool, log))
	require.NoError(t, migrations.Up(ctx, pool, log), "a second run changes nothing")

	for _, table := range []string{"users", "sessions", "api_tokens", "river_job", "goose_db_version"} {
		var ok bool
		require.NoError(t, pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&ok))
		require.True(t, ok, "table %s", table)
	}
}

func TestConcurrentUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := emptyDB(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	errs := make(chan error, 3)
	for range 3 {
		go func() { errs <- migrations.Up(ctx, pool, log) }()
	}
	for range 3 {
		require.NoError(t, <-errs, "replicas starting together all succeed")
	}
}

// TestDownAndUpAgain checks every down migration undoes its up migration.
func TestDownAndUpAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := emptyDB(t)
	require.NoError(t, migrations.Up(ctx, pool, slog.New(slog.NewTextHandler(io.Discard, nil))))

	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS())
	require.NoError(t, err)
	_, err = p.DownTo(ctx, 0)
	require.NoError(t, err)
	var ok bool
	require.NoError(t, pool.QueryRow(ctx, "SELECT to_regclass('users') IS NULL").Scan(&ok))
	require.True(t, ok)
	_, err = p.Up(ctx)
	require.NoError(t, err)
}

// TestFilesAreNumbered guards against a gap or a duplicate number, which goose
// would otherwise report only at deploy time.
func TestFilesAreNumbered(t *testing.T) {
	t.Parallel()
	sources, err := goose.CollectMigrations(".", 0, goose.MaxVersion)
	require.NoError(t, err)
	require.NotEmpty(t, sources)
	for i, m := range sources {
		require.EqualValues(t, i+1, m.Version, "migration %s is out of sequence", m.Source)
	}
}
