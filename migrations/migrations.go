// Package migrations holds the database schema as numbered SQL files and
// applies them, together with River's own tables.
//
// Files are named NNNNN_what.sql with goose's "-- +goose Up" and
// "-- +goose Down" sections; sqlc reads the same files as its schema.
package migrations

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

//go:embed *.sql
var files embed.FS

// FS returns the embedded migration files.
func FS() fs.FS { return files }

// lockKey serialises migrations between replicas that start at the same time.
const lockKey = 0x696d616765687562 // "imagehub"

// Up applies River's migrations and then ours, holding a PostgreSQL advisory
// lock so that several processes starting together migrate once.
func Up(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("error acquiring connection for migrations: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(lockKey)); err != nil {
		return fmt.Errorf("error taking migration lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(lockKey)) //nolint:errcheck // released with the session anyway

	riverMigrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Logger: logger})
	if err != nil {
		return fmt.Errorf("error creating river migrator: %w", err)
	}
	res, err := riverMigrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return fmt.Errorf("error migrating river tables: %w", err)
	}
	for _, v := range res.Versions {
		logger.InfoContext(ctx, "applied river migration", "version", v.Version)
	}

	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	provider, err := goose.NewProvider(goose.DialectPostgres, db, files)
	if err != nil {
		return fmt.Errorf("error loading migrations: %w", err)
	}
	results, err := provider.Up(ctx)
	if err != nil {
		return fmt.Errorf("error applying migrations: %w", err)
	}
	for _, r := range results {
		logger.InfoContext(ctx, "applied migration", "file", r.Source.Path, "duration", r.Duration)
	}
	return nil
}

// Fingerprint is a hash of every migration, River's included. Test harnesses
// name their template database after it, so a changed schema gets a new one.
func Fingerprint() (string, error) {
	h := sha256.New()
	riverMigrator, err := rivermigrate.New(riverpgxv5.New(nil), nil)
	if err != nil {
		return "", fmt.Errorf("error creating river migrator: %w", err)
	}
	for _, m := range riverMigrator.AllVersions() {
		fmt.Fprintf(h, "river %d\n%s\n", m.Version, m.SQLUp)
	}
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return "", fmt.Errorf("error listing migrations: %w", err)
	}
	for _, e := range entries {
		b, err := files.ReadFile(e.Name())
		if err != nil {
			return "", fmt.Errorf("error reading migration %s: %w", e.Name(), err)
		}
		fmt.Fprintf(h, "%s\n%s\n", e.Name(), b)
	}
	return hex.EncodeToString(h.Sum(nil))[:12], nil
}
