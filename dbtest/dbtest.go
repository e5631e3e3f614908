// Package dbtest gives tests a real PostgreSQL database of their own. The
// first use in a run migrates a template database named after the migrations'
// fingerprint; each test then gets a fresh copy of it (CREATE DATABASE …
// TEMPLATE, a file copy that takes milliseconds), dropped at cleanup. Tests in
// many packages and processes can therefore run in parallel.
//
// The server comes from TEST_DATABASE_URL (an account allowed to create
// databases); `make test` starts a local cluster and sets it.
package dbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deepimageshub/imagehub/migrations"
)

// AdminURL is the server tests create their databases on.
func AdminURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("TEST_DATABASE_URL")
	if u == "" {
		tb.Fatal("TEST_DATABASE_URL is not set: run the tests with `make test`, which starts a local PostgreSQL, or point it at a server where this account may create databases")
	}
	return u
}

var (
	templateOnce sync.Once
	templateName string
	templateErr  error
)

// templateLockKey serialises template creation between test processes.
const templateLockKey = 0x74656d706c // "templ"

func ensureTemplate(ctx context.Context, adminURL string) (string, error) {
	templateOnce.Do(func() {
		fp, err := migrations.Fingerprint()
		if err != nil {
			templateErr = err
			return
		}
		templateName = "imagehub_tmpl_" + fp
		templateErr = createTemplate(ctx, adminURL, templateName)
	})
	return templateName, templateErr
}

func createTemplate(ctx context.Context, adminURL, name string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("error connecting to %s: %w", redact(adminURL), err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(templateLockKey)); err != nil {
		return fmt.Errorf("error taking template lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(templateLockKey)) //nolint:errcheck // released with the connection anyway

	var ready bool
	err = conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)", name).Scan(&ready)
	if err != nil {
		return fmt.Errorf("error looking for template: %w", err)
	}
	if ready {
		return nil
	}
	// A half-made template from an interrupted run is dropped and made again.
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("error dropping stale template: %w", err)
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("error creating template: %w", err)
	}
	pool, err := pgxpool.New(ctx, withDB(adminURL, name))
	if err != nil {
		return fmt.Errorf("error opening template: %w", err)
	}
	err = migrations.Up(ctx, pool, slog.New(slog.NewTextHandler(io.Discard, nil)))
	pool.Close()
	if err != nil {
		return fmt.Errorf("error migrating template: %w", err)
	}
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH IS_TEMPLATE true"); err != nil {
		return fmt.Errorf("error marking template: %w", err)
	}
	return nil
}

// NewURL creates a fresh, migrated database for this test and returns its URL.
// The database is dropped when the test ends.
func NewURL(tb testing.TB) string {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := AdminURL(tb)
	tmpl, err := ensureTemplate(ctx, admin)
	if err != nil {
		tb.Fatalf("dbtest: %v", err)
	}
	name := "imagehub_test_" + randomHex(6)
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		tb.Fatalf("dbtest: error connecting to %s: %v", redact(admin), err)
	}
	defer conn.Close(ctx)
	for attempt := 0; ; attempt++ {
		_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" TEMPLATE "+pgx.Identifier{tmpl}.Sanitize())
		// Two clones starting at the same instant can see each other as a
		// user of the template; that passes in a moment.
		if err == nil || attempt == 20 || !strings.Contains(err.Error(), "is being accessed by other users") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		tb.Fatalf("dbtest: error creating test database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			tb.Errorf("dbtest: error connecting to drop %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			tb.Errorf("dbtest: error dropping %s: %v", name, err)
		}
	})
	return withDB(admin, name)
}

// NewPool creates a fresh database (NewURL) and a pool on it, closed at cleanup.
func NewPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	cfg, err := pgxpool.ParseConfig(NewURL(tb))
	if err != nil {
		tb.Fatalf("dbtest: error parsing database URL: %v", err)
	}
	// The default (4 on a 2-core machine) starves a server whose River
	// client holds connections of its own.
	cfg.MaxConns = 20
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("dbtest: error opening pool: %v", err)
	}
	tb.Cleanup(pool.Close) // runs before the database is dropped (cleanups run last-in first-out)
	return pool
}

// Tx begins a transaction that is rolled back when the test ends: the
// cheapest isolation for tests that need no committed data.
func Tx(tb testing.TB, pool *pgxpool.Pool) pgx.Tx {
	tb.Helper()
	tx, err := pool.Begin(context.Background())
	if err != nil {
		tb.Fatalf("dbtest: error beginning transaction: %v", err)
	}
	tb.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	return tx
}

func withDB(rawURL, db string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		panic(fmt.Sprintf("dbtest: bad database url: %v", err))
	}
	u.Path = "/" + db
	return u.String()
}

func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "the database"
	}
	return u.Redacted()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
