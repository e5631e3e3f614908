// Package jobs holds the background work of imagehub as River jobs: each job is
// an args struct with a Kind and a worker that embeds river.WorkerDefaults.
// Jobs that create data are inserted with InsertTx in the same transaction as
// that data.
package jobs

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/deepimageshub/imagehub/queries"
)

// Deps are what the workers need.
type Deps struct {
	Pool   *pgxpool.Pool
	Logger *slog.Logger
}

// Options tune the River client.
type Options struct {
	// Work makes the client fetch and run jobs; without it the client only
	// inserts (a process that serves pages but runs no jobs, or a CLI command).
	Work       bool
	MaxWorkers int
}

// NewClient builds the River client with every worker and periodic job.
func NewClient(d Deps, opts Options) (*river.Client[pgx.Tx], error) {
	workers := river.NewWorkers()
	q := queries.New()
	if err := river.AddWorkerSafely(workers, &CleanupWorker{pool: d.Pool, q: q, logger: d.Logger}); err != nil {
		return nil, fmt.Errorf("error adding cleanup worker: %w", err)
	}
	cfg := &river.Config{
		Logger:  d.Logger,
		Workers: workers,
	}
	if opts.Work {
		if opts.MaxWorkers <= 0 {
			opts.MaxWorkers = 20
		}
		cfg.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: opts.MaxWorkers}}
		cfg.PeriodicJobs = []*river.PeriodicJob{
			river.NewPeriodicJob(river.PeriodicInterval(time.Hour), func() (river.JobArgs, *river.InsertOpts) {
				return CleanupArgs{}, nil
			}, &river.PeriodicJobOpts{RunOnStart: true}),
		}
	}
	client, err := river.NewClient(riverpgxv5.New(d.Pool), cfg)
	if err != nil {
		return nil, fmt.Errorf("error creating river client: %w", err)
	}
	return client, nil
}
