package jobs

import (
	"context"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/deepimageshub/imagehub/dispatch"
	"github.com/deepimageshub/imagehub/queries"
)

// QueueModelArgs queues inference by a newly registered or re-enabled model
// for every image that waits for inference and has no run for it yet.
type QueueModelArgs struct {
	ModelID uuid.UUID `json:"model_id"`
}

// Kind is the job kind.
func (QueueModelArgs) Kind() string { return "queue_model" }

// InsertOpts keeps one such job per model waiting or running; a later save
// of the model queues another.
func (QueueModelArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByState: []rivertype.JobState{
		rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRetryable,
		rivertype.JobStateRunning, rivertype.JobStateScheduled,
	}}}
}

// QueueModelWorker runs QueueModelArgs in batches, each in its own
// transaction, so a million waiting images never make one huge one.
type QueueModelWorker struct {
	river.WorkerDefaults[QueueModelArgs]
	pool        *pgxpool.Pool
	q           *queries.Queries
	maxAttempts int
}

const queueModelBatch = 1000

// Work queues the runs.
func (w *QueueModelWorker) Work(ctx context.Context, job *river.Job[QueueModelArgs]) error {
	client := river.ClientFromContext[pgx.Tx](ctx)
	for {
		m, err := w.q.ModelGet(ctx, w.pool, job.Args.ModelID)
		if err != nil {
			return fmt.Errorf("error reading model: %w", err)
		}
		if !m.Enabled || m.Task != dispatch.TaskSegmentation {
			return nil
		}
		n := 0
		err = pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
			ids, err := w.q.RunsMissingForModel(ctx, tx, queries.RunsMissingForModelParams{ModelID: m.ID, Batch: queueModelBatch})
			if err != nil {
				return fmt.Errorf("error finding images to queue: %w", err)
			}
			n = len(ids)
			return QueueInference(ctx, tx, client, ids, []uuid.UUID{m.ID}, w.maxAttempts)
		})
		if err != nil {
			return err
		}
		if n < queueModelBatch {
			return nil
		}
	}
}

// SaveModel creates or updates a model version (dispatch.Save) and, when it
// is enabled, queues inference of the images waiting for it, in tx. client
// may be nil for a process that runs no jobs.
func SaveModel(ctx context.Context, tx pgx.Tx, client *river.Client[pgx.Tx], spec dispatch.Spec, check dispatch.Check) (queries.Model, bool, error) {
	m, created, err := dispatch.Save(ctx, tx, spec, check)
	// Only segmentation models propose for waiting images; interactive and
	// embed models answer prompts (docs/interactive.md).
	if err != nil || !m.Enabled || client == nil || m.Task != dispatch.TaskSegmentation {
		return m, created, err
	}
	if _, err := client.InsertTx(ctx, tx, QueueModelArgs{ModelID: m.ID}, nil); err != nil {
		return queries.Model{}, false, fmt.Errorf("error queueing inference for model %s %s: %w", m.Name, m.Version, err)
	}
	return m, created, nil
}
