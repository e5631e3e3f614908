// Package jobs holds the background work of imagehub as River jobs: each job is
// an args struct with a Kind and a worker that embeds river.WorkerDefaults.
// Jobs that create data are inserted with InsertTx in the same transaction as
// that data.
package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/config"
	"github.com/deepimageshub/imagehub/dispatch"
	"github.com/deepimageshub/imagehub/imaging"
	"github.com/deepimageshub/imagehub/inference"
	"github.com/deepimageshub/imagehub/interactive"
	"github.com/deepimageshub/imagehub/queries"
	"github.com/deepimageshub/imagehub/signedurl"
	"github.com/deepimageshub/imagehub/webhook"
)

// Deps are what the workers need.
type Deps struct {
	Pool   *pgxpool.Pool
	Logger *slog.Logger
	Blobs  blob.Store
	Config config.Config
	// Metrics is where the inference metrics are registered; nil leaves
	// them unregistered.
	Metrics prometheus.Registerer
	// AfterPublish runs, each in its own transaction, when a dataset
	// version is published (training.Service.Retrain queues retrains).
	AfterPublish []func(ctx context.Context, tx pgx.Tx, client *river.Client[pgx.Tx], v queries.DatasetVersion) error
}

// Options tune the River client.
type Options struct {
	// Work makes the client fetch and run jobs; without it the client only
	// inserts (a process that serves pages but runs no jobs, or a CLI command).
	Work bool
	// More adds workers that live in packages jobs cannot import, because
	// they import jobs themselves (importer → intake → jobs): each is
	// called with the workers and the deps before the client is built.
	More []AddWorkers
}

// AddWorkers registers workers of another package with River
// (river.AddWorkerSafely).
type AddWorkers func(w *river.Workers, d Deps) error

// NewClient builds the River client with every worker and periodic job.
func NewClient(d Deps, opts Options) (*river.Client[pgx.Tx], error) {
	workers := river.NewWorkers()
	q := queries.New()
	cfg := d.Config
	im, err := newInferMetrics(d.Metrics)
	if err != nil {
		return nil, err
	}
	for _, add := range []func() error{
		func() error {
			return river.AddWorkerSafely(workers, &CleanupWorker{pool: d.Pool, q: q, logger: d.Logger})
		},
		func() error {
			return river.AddWorkerSafely(workers, &IngestWorker{
				pool: d.Pool, q: q, blobs: d.Blobs, logger: d.Logger,
				limits: imaging.Limits{MaxPixels: cfg.UploadMaxPixels}, budget: newMemoryBudget(cfg.IngestMemoryBudget),
				thresholds: imaging.DefaultThresholds, nearDist: cfg.NearDuplicateDistance,
				inferAttempts: cfg.InferMaxAttempts, ingested: im.ingested,
			})
		},
		func() error {
			client := newInferenceClient(cfg)
			slots := dispatch.NewSlots(d.Pool, dispatch.Health{FailureThreshold: cfg.EndpointFailures, CoolOff: cfg.EndpointCoolOff})
			slotWait := min(5*time.Second, cfg.JobTimeout/4)
			return river.AddWorkerSafely(workers, &InferWorker{
				pool: d.Pool, q: q, blobs: d.Blobs, logger: d.Logger,
				client: client, slots: slots,
				labels: newLabelIndex(d.Pool, d.Logger), metrics: im,
				maxBackoff: cfg.InferMaxBackoff, jobTimeout: cfg.JobTimeout,
				slotWait: slotWait,
				batch:    newBatcher(slots, client, d.Logger, im, slotWait),
				signer:   signedurl.New(d.Pool, cfg.BaseURL),
			})
		},
		func() error {
			return river.AddWorkerSafely(workers, &PrepareWorker{
				logger: d.Logger,
				prompts: interactive.NewService(d.Pool,
					dispatch.NewSlots(d.Pool, dispatch.Health{FailureThreshold: cfg.EndpointFailures, CoolOff: cfg.EndpointCoolOff}),
					newInferenceClient(cfg), d.Blobs, interactive.Settings{
						Timeout: max(cfg.PromptTimeout, time.Minute), SlotWait: min(5*time.Second, cfg.JobTimeout/4),
					}),
			})
		},
		func() error {
			return river.AddWorkerSafely(workers, &QueueModelWorker{pool: d.Pool, q: q, maxAttempts: cfg.InferMaxAttempts})
		},
		func() error {
			return river.AddWorkerSafely(workers, &PublishWorker{pool: d.Pool, logger: d.Logger, timeout: datasetJobTimeout(cfg), after: d.AfterPublish})
		},
		func() error {
			return river.AddWorkerSafely(workers, &ExportWorker{pool: d.Pool, blobs: d.Blobs, logger: d.Logger, timeout: datasetJobTimeout(cfg)})
		},
		func() error {
			return river.AddWorkerSafely(workers, &EvaluateWorker{
				pool: d.Pool, q: q, logger: d.Logger, maxAttempts: cfg.InferMaxAttempts,
				poll: cfg.EvaluationPoll, timeout: datasetJobTimeout(cfg),
			})
		},
		func() error {
			return river.AddWorkerSafely(workers, &CompactSummariesWorker{pool: d.Pool, q: q, logger: d.Logger})
		},
		func() error {
			return river.AddWorkerSafely(workers, &BackfillWindowHashesWorker{pool: d.Pool, q: q, blobs: d.Blobs, logger: d.Logger})
		},
		func() error {
			return river.AddWorkerSafely(workers, webhook.NewWorker(d.Pool, d.Logger, cfg.WebhookSettings()))
		},
		func() error {
			return river.AddWorkerSafely(workers, &SweepWorker{
				q: q, pool: d.Pool, blobs: d.Blobs, logger: d.Logger, grace: d.Config.BlobGracePeriod,
			})
		},
	} {
		if err := add(); err != nil {
			return nil, fmt.Errorf("error adding worker: %w", err)
		}
	}
	for _, more := range opts.More {
		if err := more(workers, d); err != nil {
			return nil, fmt.Errorf("error adding worker: %w", err)
		}
	}
	rc := &river.Config{
		Logger:     d.Logger,
		Workers:    workers,
		JobTimeout: cfg.JobTimeout,
		// River fetches at most once per cooldown per queue; the default
		// (100 ms) caps a queue of 2 workers at 20 jobs a second, well
		// below what ingest can do.
		FetchCooldown:        10 * time.Millisecond,
		RescueStuckJobsAfter: cfg.JobRescueAfter,
	}
	if opts.Work {
		rc.Queues = map[string]river.QueueConfig{
			river.QueueDefault: {MaxWorkers: 10},
			// Ingest is mostly CPU with some blob-store I/O: two jobs per
			// core keep the cores busy while a job waits on a write.
			QueueIngest: {MaxWorkers: 2 * runtime.GOMAXPROCS(0)},
			// Inference jobs mostly wait on remote workers.
			QueueInfer: {MaxWorkers: cfg.InferWorkers},
			// Publishing is one heavy transaction and an export streams
			// gigabytes: two at a time leave room for everything else.
			QueueDatasets: {MaxWorkers: 2},
			// Deliveries mostly wait on receivers.
			webhook.Queue: {MaxWorkers: 20},
		}
		rc.PeriodicJobs = []*river.PeriodicJob{
			river.NewPeriodicJob(river.PeriodicInterval(time.Hour), func() (river.JobArgs, *river.InsertOpts) {
				return CleanupArgs{}, nil
			}, &river.PeriodicJobOpts{RunOnStart: true}),
			river.NewPeriodicJob(river.PeriodicInterval(time.Hour), func() (river.JobArgs, *river.InsertOpts) {
				return SweepArgs{}, nil
			}, nil),
			// At start and hourly: after migration 00019 the first runs do
			// the work; later ones find nothing to do in one scan.
			river.NewPeriodicJob(river.PeriodicInterval(time.Hour), func() (river.JobArgs, *river.InsertOpts) {
				return BackfillWindowHashesArgs{}, nil
			}, &river.PeriodicJobOpts{RunOnStart: true}),
			river.NewPeriodicJob(river.PeriodicInterval(compactSummariesEvery), func() (river.JobArgs, *river.InsertOpts) {
				return CompactSummariesArgs{}, nil
			}, nil),
		}
	}
	client, err := river.NewClient(riverpgxv5.New(d.Pool), rc)
	if err != nil {
		return nil, fmt.Errorf("error creating river client: %w", err)
	}
	return client, nil
}

// newInferenceClient keeps enough idle connections per endpoint for every
// inference in flight, so that a busy endpoint never pays for new ones.
func newInferenceClient(cfg config.Config) *inference.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 4 * cfg.InferWorkers
	t.MaxIdleConnsPerHost = cfg.InferWorkers
	c := inference.New(&http.Client{Transport: t})
	c.MaxInstances = cfg.InferMaxInstances
	return c
}
