package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deepimageshub/imagehub/app"
	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/config"
	"github.com/deepimageshub/imagehub/jobs"
	"github.com/deepimageshub/imagehub/migrations"
)

// env is what every command starts from: configuration, a logger and a pool.
type env struct {
	cfg    config.Config
	logger *slog.Logger
	pool   *pgxpool.Pool
}

func setup(ctx context.Context, getenv func(string) string, logOut io.Writer) (*env, error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return nil, err
	}
	logger, err := newLogger(cfg, logOut)
	if err != nil {
		return nil, err
	}
	if cfg.DatabaseURL == "" {
		return nil, errors.New("DATABASE_URL is not set; `make run` starts a local PostgreSQL and sets it for you")
	}
	pool, err := pgxpool.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("error opening database pool: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("error connecting to the database: %w", err)
	}
	return &env{cfg: cfg, logger: logger, pool: pool}, nil
}

func newLogger(cfg config.Config, out io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return nil, fmt.Errorf("LOG_LEVEL %q: %w", cfg.LogLevel, err)
	}
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(out, opts)), nil
	}
	return slog.New(slog.NewTextHandler(out, opts)), nil
}

func migrate(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	e, err := setup(ctx, getenv, stdout)
	if err != nil {
		return err
	}
	defer e.pool.Close()
	return migrations.Up(ctx, e.pool, e.logger)
}

// serve runs the web app and the River workers until ctx is cancelled (Ctrl-C
// or SIGTERM), then shuts down gracefully: HTTP drains its requests and River
// stops fetching and lets running jobs finish; jobs still running when the
// shutdown timeout ends are cancelled and River retries them later.
func serve(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	e, err := setup(ctx, getenv, stdout)
	if err != nil {
		return err
	}
	defer e.pool.Close()
	cfg, logger := e.cfg, e.logger

	if cfg.MigrateOnStart {
		if err := migrations.Up(ctx, e.pool, logger); err != nil {
			return err
		}
	}
	blobURL, err := cfg.BlobStoreURL()
	if err != nil {
		return err
	}
	blobs, err := blob.Open(ctx, blobURL)
	if err != nil {
		return fmt.Errorf("error opening blob store %s: %w", blobURL, err)
	}
	riverClient, err := jobs.NewClient(jobs.Deps{Pool: e.pool, Logger: logger, Blobs: blobs, Config: cfg}, jobs.Options{Work: true})
	if err != nil {
		return err
	}
	server, err := app.New(app.Deps{Config: cfg, Pool: e.pool, River: riverClient, Blobs: blobs, Logger: logger})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(cfg.Port)))
	if err != nil {
		return fmt.Errorf("error listening on port %d: %w", cfg.Port, err)
	}
	// Jobs run under a context that Ctrl-C does not cancel: the shutdown below
	// decides when they stop.
	if err := riverClient.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("error starting river: %w", err)
	}
	served := make(chan error, 1)
	go func() { served <- server.Serve(ln) }()
	logger.Info("imagehub is serving", "addr", ln.Addr().String(), "url", cfg.BaseURL, "blobs", blobURL)

	select {
	case <-ctx.Done():
	case err := <-served:
		return err
	}
	logger.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	httpErr := server.Shutdown(shutdownCtx)
	if err := riverClient.Stop(shutdownCtx); err != nil {
		logger.Warn("jobs did not finish in time; cancelling them", "error", err)
		cancelCtx, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel2()
		_ = riverClient.StopAndCancel(cancelCtx)
	}
	logger.Info("stopped")
	return httpErr
}
