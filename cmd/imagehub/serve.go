package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/deepimageshub/imagehub/account"
	"github.com/deepimageshub/imagehub/app"
	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/config"
	"github.com/deepimageshub/imagehub/dispatch"
	"github.com/deepimageshub/imagehub/importer"
	"github.com/deepimageshub/imagehub/inference"
	"github.com/deepimageshub/imagehub/jobs"
	"github.com/deepimageshub/imagehub/migrations"
	"github.com/deepimageshub/imagehub/queries"
	"github.com/deepimageshub/imagehub/training"
	"github.com/deepimageshub/imagehub/worker"
	"github.com/deepimageshub/imagehub/worker/onnxworker"
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
	poolCfg, err := pgxpool.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("error parsing DATABASE_URL: %w", err)
	}
	poolCfg.MaxConns = cfg.DBMaxConns
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
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
func serve(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) error {
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
	reg := prometheus.NewRegistry()
	// Trained models are served by the built-in worker: its address is
	// known once it listens, before the first artifact can arrive.
	var trainedEndpoint atomic.Value
	trainedEndpoint.Store("")
	onnxLib := onnxworker.Library(getenv)
	topts := training.Options{
		Recipes:       hubRecipes(),
		CheckArtifact: artifactCheckers(onnxLib),
		Endpoint:      func() string { return trainedEndpoint.Load().(string) },
		// The built-in worker serves trained ONNX files when this process
		// can load ONNX Runtime; it is loaded on the first such upload.
		ServeONNX: func() error { return onnxworker.LoadRuntime(onnxLib) },
	}
	deps := jobs.Deps{Pool: e.pool, Logger: logger, Blobs: blobs, Config: cfg, Metrics: reg}
	deps.AfterPublish = append(deps.AfterPublish, training.AfterPublish(deps, topts))
	riverClient, err := jobs.NewClient(deps, jobs.Options{Work: true, More: []jobs.AddWorkers{importer.AddWorkers, training.AddWorkers}})
	if err != nil {
		return err
	}
	server, err := app.New(app.Deps{Config: cfg, Pool: e.pool, River: riverClient, Blobs: blobs, Logger: logger, Registry: reg, Training: topts})
	if err != nil {
		return err
	}
	if cfg.BuiltinWorker {
		stop, endpoint, err := startBuiltinWorker(ctx, e, riverClient, training.NewStore(e.pool, blobs), onnxLib)
		if err != nil {
			return err
		}
		trainedEndpoint.Store(endpoint)
		// Stopped after River (defers run last first), so jobs in flight
		// get their answers.
		defer stop()
	}
	bgCtx, stopBackground := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBackground()
	if err := server.Start(bgCtx); err != nil {
		return err
	}
	// The code comes before "imagehub is serving", so that whoever (or
	// whatever script) waits for that line already has it. A stop that comes
	// while the code is being issued is a stop, not a failure.
	if err := printSetupCode(ctx, e, stderr); err != nil {
		if ctx.Err() != nil {
			return nil
		}
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
	served := make(chan error, 2)
	var metricsSrv *http.Server
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("error listening on METRICS_ADDR %s: %w", cfg.MetricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", server.MetricsHandler())
		metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := metricsSrv.Serve(mln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				served <- fmt.Errorf("error serving metrics: %w", err)
			}
		}()
		logger.Info("metrics are served on their own listener", "addr", mln.Addr().String())
	}
	go func() { served <- server.Serve(ln) }()
	logger.Info("imagehub is serving", "addr", ln.Addr().String(), "url", cfg.BaseURL, "blobs", blobURL)
	stopTrainer := func() {}
	if cfg.BuiltinTrainer {
		// The trainer speaks to this process over loopback, as a remote one
		// would over the network.
		port := ln.Addr().(*net.TCPAddr).Port
		stopTrainer = startBuiltinTrainer(bgCtx, e, "http://"+net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), "")
	}
	defer stopTrainer() // on an early return; a second call does nothing

	select {
	case <-ctx.Done():
	case err := <-served:
		return err
	}
	logger.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	// The trainer goes first, while the server it talks to still answers:
	// a run it was training is abandoned and queued again when its lease
	// lapses.
	stopTrainer()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	httpErr := server.Shutdown(shutdownCtx)
	if metricsSrv != nil {
		// Scrapes are short: the metrics listener closes with the main one.
		if err := metricsSrv.Shutdown(shutdownCtx); err != nil {
			logger.Warn("metrics listener did not close in time", "error", err)
		}
	}
	if err := riverClient.Stop(shutdownCtx); err != nil {
		logger.Warn("jobs did not finish in time; cancelling them", "error", err, "running", runningJobs(e.pool, riverClient.ID()))
		cancelCtx, cancel2 := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel2()
		_ = riverClient.StopAndCancel(cancelCtx)
	}
	logger.Info("stopped")
	return httpErr
}

// runningJobs names the jobs this River client still works, for the log of
// a shutdown that waited them out: "kind:id", oldest first.
func runningJobs(pool *pgxpool.Pool, clientID string) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rows, err := pool.Query(ctx, `SELECT kind || ':' || id FROM river_job
		WHERE state = 'running' AND attempted_by[cardinality(attempted_by)] = $1 ORDER BY attempted_at`, clientID)
	if err != nil {
		return []string{"(cannot list them: " + err.Error() + ")"}
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return []string{"(cannot list them: " + err.Error() + ")"}
	}
	return names
}

// printSetupCode prints a one-time setup code while the site has no admin:
// whoever can read this process's output can make themselves admin on the
// sign-up page, and nobody else can.
func printSetupCode(ctx context.Context, e *env, stderr io.Writer) error {
	code, err := account.NewService(e.pool, account.Limits{}).IssueSetupCode(ctx)
	if err != nil || code == "" {
		return err
	}
	signup := strings.TrimRight(e.cfg.BaseURL, "/") + "/signup"
	e.logger.Warn("this hub has no admin yet: sign up with the setup code to become its admin, or run imagehub users create --role admin",
		"signup", signup, "setup_code", code)
	fmt.Fprintf(stderr, "\nThis hub has no admin yet. To become its admin, sign up at %s\nwith the one-time setup code  %s\n"+
		"(or run: imagehub users create --email YOU --role admin).\n\n", signup, code)
	return nil
}

// startBuiltinWorker serves the project's CPU inference worker on a loopback
// port and registers it as a model whose only endpoint is this process's
// worker, so that `make run` proposes masks without a GPU server. The model
// keeps the enabled flag an admin gave it. endpoint is its address.
//
// trained holds the models trainings made, so that a trained model version
// registered on this endpoint is served here: region models by the worker
// itself, ONNX files by ONNX Runtime (with the library at onnxLib) in front
// of it (trainedONNX).
func startBuiltinWorker(ctx context.Context, e *env, riverClient *river.Client[pgx.Tx], trained *training.Store, onnxLib string) (stop func(), endpoint string, err error) {
	capacity := e.cfg.BuiltinWorkerCapacity
	if capacity == 0 {
		capacity = runtime.GOMAXPROCS(0)
	}
	logger := e.logger.With("component", "worker")
	ws := worker.New(worker.Config{Capacity: capacity, Logger: logger, Loader: trainedLoader(trained)})
	onnxFront := newTrainedONNX(ws, trained, onnxLib, capacity, []string{ws.Model(), ws.InteractiveModel()}, logger)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", fmt.Errorf("error listening for the built-in worker: %w", err)
	}
	srv := &http.Server{Handler: onnxFront, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.logger.Error("built-in worker stopped", "error", err)
		}
	}()
	stop = func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		onnxFront.Close()
	}

	// Two models on the one endpoint: the segmenter proposes masks, the
	// interactive model answers reviewers' clicks (docs/interactive.md).
	enabled := true
	specs := []dispatch.Spec{
		{Name: ws.Model(), Version: "1", Task: dispatch.TaskSegmentation, Endpoints: []string{"http://" + ln.Addr().String()},
			Capacity: capacity, TimeoutMS: 60_000, Enabled: &enabled},
		{Name: ws.InteractiveModel(), Version: "1", Task: dispatch.TaskInteractive, Endpoints: []string{"http://" + ln.Addr().String()},
			Capacity: capacity, TimeoutMS: 10_000, Enabled: &enabled},
	}
	q := queries.New()
	for _, spec := range specs {
		if err := spec.Normalize(); err != nil {
			stop()
			return nil, "", err
		}
		check := dispatch.Inspect(ctx, inference.New(nil), spec, 10*time.Second)
		if len(check.Unfit) > 0 || len(check.Unreachable) > 0 {
			stop()
			return nil, "", fmt.Errorf("the built-in worker does not answer as it should: %v", check.Problems())
		}
		err = pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
			if old, err := q.ModelGetByNameVersion(ctx, tx, queries.ModelGetByNameVersionParams{Name: spec.Name, Version: spec.Version}); err == nil {
				spec.Enabled = &old.Enabled
				if spec.Task == dispatch.TaskSegmentation {
					if err := moveTrained(ctx, tx, e, old.ID, spec.Endpoints[0]); err != nil {
						return err
					}
				}
			}
			_, _, err := jobs.SaveModel(ctx, tx, riverClient, spec, check)
			return err
		})
		if err != nil {
			stop()
			return nil, "", fmt.Errorf("error registering the built-in worker: %w", err)
		}
		e.logger.Info("built-in inference worker registered", "model", spec.Name, "task", spec.Task, "endpoint", spec.Endpoints[0], "capacity", capacity, "enabled", *spec.Enabled)
	}
	return stop, "http://" + ln.Addr().String(), nil
}

// moveTrained moves the trained models the built-in worker served at its
// last address (the segmenter's endpoints, model builtin, before this start
// registers it again) to its address now, in tx: the worker listens on a new
// loopback port at each start, and a trained model left on the old one
// would answer nothing after a restart (its evaluation, its proposals).
func moveTrained(ctx context.Context, tx pgx.Tx, e *env, builtin uuid.UUID, to string) error {
	q := queries.New()
	eps, err := q.EndpointList(ctx, tx, builtin)
	if err != nil {
		return fmt.Errorf("error reading the built-in worker's last address: %w", err)
	}
	from := make([]string, 0, len(eps))
	for _, ep := range eps {
		from = append(from, ep.BaseUrl)
	}
	n, err := q.EndpointMoveTrained(ctx, tx, queries.EndpointMoveTrainedParams{FromUrls: from, ToUrl: to})
	if err != nil {
		return fmt.Errorf("error moving trained models to the built-in worker: %w", err)
	}
	if n > 0 {
		e.logger.Info("trained models moved to the built-in worker's new address", "models", n, "from", from, "endpoint", to)
	}
	return nil
}
