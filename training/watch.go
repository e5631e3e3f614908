package training

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/deepimageshub/imagehub/jobs"
	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/queries"
)

// WatchArgs follows one training from queued to its end: it ends lapsed
// leases (so a run whose trainer died moves on even when no trainer asks
// for work) and, once the evaluations are done, marks the run succeeded.
type WatchArgs struct {
	TrainingID uuid.UUID `json:"training_id"`
}

// Kind is the job kind.
func (WatchArgs) Kind() string { return "training_watch" }

// InsertOpts keeps one watch per training.
func (WatchArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 25, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// WatchWorker runs WatchArgs; it snoozes between looks, so a hub restart
// picks the watch up from River where it was.
type WatchWorker struct {
	river.WorkerDefaults[WatchArgs]
	svc  *Service
	poll time.Duration
}

// AddWorkers registers the watch worker (jobs.Options.More). Its service
// has no River client yet (workers are registered before the client is
// made): each job runs with the client working it (Work).
func AddWorkers(w *river.Workers, d jobs.Deps) error {
	c := d.Config
	svc := NewService(d.Pool, d.Blobs, nil, Options{Lease: c.TrainingLease, MaxAttempts: c.TrainingMaxAttempts,
		QueueTimeout: c.TrainingQueueTimeout})
	poll := min(max(c.TrainingLease/4, 50*time.Millisecond), 5*time.Second)
	return river.AddWorkerSafely(w, &WatchWorker{svc: svc, poll: poll})
}

// Work moves the training on.
func (w *WatchWorker) Work(ctx context.Context, job *river.Job[WatchArgs]) error {
	// The training.finished deliveries of the runs this job ends are
	// queued with the client that works it.
	svc := *w.svc
	svc.river = river.ClientFromContext[pgx.Tx](ctx)
	t, err := get(ctx, svc.pool, job.Args.TrainingID)
	var pe *problem.Error
	if errors.As(err, &pe) {
		return nil
	}
	if err != nil {
		return err
	}
	switch t.State {
	case Succeeded, Failed, Cancelled:
		return nil
	case Queued, Running:
		if err := svc.Sweep(ctx); err != nil {
			return err
		}
		return river.JobSnooze(w.poll)
	}
	// Evaluating: done when its evaluations are.
	done, msg, err := w.evaluationsDone(ctx, t)
	if err != nil {
		return err
	}
	if !done {
		return river.JobSnooze(w.poll)
	}
	state := Succeeded
	if msg != "" {
		state = Failed
	}
	if _, err := svc.finishing(ctx, `UPDATE trainings SET state = $2::training_state, error = nullif($3, ''), finished_at = now()
		WHERE id = $1 AND state = 'evaluating' RETURNING id, state::text`, t.ID, state, msg); err != nil {
		return fmt.Errorf("error finishing the training: %w", err)
	}
	return nil
}

// evaluationsDone reports whether the training's evaluations ended, and
// why it failed when its own did (a failed baseline only loses the
// comparison).
func (w *WatchWorker) evaluationsDone(ctx context.Context, t Training) (bool, string, error) {
	if t.EvaluationID == nil {
		return true, "its evaluation was deleted", nil
	}
	var state string
	var msg *string
	err := w.svc.pool.QueryRow(ctx, `SELECT state::text, error FROM evaluations WHERE id = $1`, *t.EvaluationID).Scan(&state, &msg)
	if errors.Is(err, pgx.ErrNoRows) {
		return true, "its evaluation was deleted", nil
	}
	if err != nil {
		return false, "", fmt.Errorf("error reading the evaluation: %w", err)
	}
	switch state {
	case "failed":
		m := "the evaluation failed"
		if msg != nil {
			m += ": " + *msg
		}
		return true, m, nil
	case "done":
	default:
		return false, "", nil
	}
	if t.BaselineID != nil {
		err := w.svc.pool.QueryRow(ctx, `SELECT state::text FROM evaluations WHERE id = $1`, *t.BaselineID).Scan(&state)
		if err == nil && state != "done" && state != "failed" {
			return false, "", nil
		}
	}
	return true, "", nil
}

// AfterPublish is the hook for jobs.Deps.AfterPublish: it queues the
// retrains of a version just published (Service.Retrain).
// opts are the server's (for its recipes).
func AfterPublish(d jobs.Deps, opts Options) func(context.Context, pgx.Tx, *river.Client[pgx.Tx], queries.DatasetVersion) error {
	c := d.Config
	opts.MaxAttempts, opts.MaxConcurrent = c.TrainingMaxAttempts, c.TrainingMaxConcurrent
	opts.QueueTimeout = c.TrainingQueueTimeout
	return func(ctx context.Context, tx pgx.Tx, client *river.Client[pgx.Tx], v queries.DatasetVersion) error {
		svc := NewService(d.Pool, d.Blobs, client, opts)
		_, err := svc.Retrain(ctx, tx, v)
		return err
	}
}
