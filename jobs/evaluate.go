package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/deepimageshub/imagehub/evaluation"
	"github.com/deepimageshub/imagehub/queries"
	"github.com/deepimageshub/imagehub/webhook"
)

// EvaluateArgs runs one evaluation (package evaluation).
type EvaluateArgs struct {
	EvaluationID uuid.UUID `json:"evaluation_id"`
}

// Kind is the job kind.
func (EvaluateArgs) Kind() string { return "evaluate" }

// InsertOpts keeps one job per evaluation.
func (EvaluateArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 5, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// StartEvaluation records an evaluation (evaluation.New) and its job in tx.
func StartEvaluation(ctx context.Context, tx pgx.Tx, client *river.Client[pgx.Tx], req evaluation.Request, by uuid.UUID) (queries.Evaluation, error) {
	e, err := evaluation.New(ctx, tx, req, by)
	if err != nil {
		return queries.Evaluation{}, err
	}
	res, err := client.InsertTx(ctx, tx, EvaluateArgs{EvaluationID: e.ID}, nil)
	if err != nil {
		return queries.Evaluation{}, fmt.Errorf("error queueing the evaluation: %w", err)
	}
	e.JobID = &res.Job.ID
	if err := queries.New().EvaluationSetJob(ctx, tx, queries.EvaluationSetJobParams{ID: e.ID, JobID: e.JobID}); err != nil {
		return queries.Evaluation{}, fmt.Errorf("error recording the evaluation's job: %w", err)
	}
	return e, nil
}

// CancelEvaluation ends, in tx, an evaluation not yet done as failed with
// reason, with its evaluation.finished event, and cancels the jobs working
// for it (its evaluate job and the infer jobs it queued, whose runs end
// failed) so that nothing keeps running for a result no one wants. An
// evaluation already done or failed is left as it is.
func CancelEvaluation(ctx context.Context, tx pgx.Tx, client *river.Client[pgx.Tx], id uuid.UUID, reason string) error {
	n, err := queries.New().EvaluationFail(ctx, tx, queries.EvaluationFailParams{ID: id, Error: &reason})
	if err != nil {
		return fmt.Errorf("error ending the evaluation: %w", err)
	}
	if n == 0 {
		return nil
	}
	if client != nil {
		rows, err := tx.Query(ctx, `SELECT id FROM river_job
			WHERE kind IN ('evaluate', 'infer') AND finalized_at IS NULL
			  AND args @> jsonb_build_object('evaluation_id', $1::text)`, id.String())
		if err != nil {
			return fmt.Errorf("error finding the evaluation's jobs: %w", err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return fmt.Errorf("error finding the evaluation's jobs: %w", err)
		}
		for _, j := range ids {
			if _, err := client.JobCancelTx(ctx, tx, j); err != nil {
				return fmt.Errorf("error cancelling job %d of the evaluation: %w", j, err)
			}
		}
	}
	// Only the runs no proposal waits for: an image still awaiting
	// inference shares its run with the model's proposal for it.
	if _, err := tx.Exec(ctx, `UPDATE inference_runs r SET state = 'failed', error_kind = 'canceled',
			last_error = $2, updated_at = now()
		FROM evaluations e, dataset_version_images m, images i
		WHERE e.id = $1 AND r.model_id = e.model_id AND m.version_id = e.version_id AND m.split = e.split
		  AND r.image_id = m.image_id AND i.id = m.image_id AND i.status <> 'awaiting_inference'
		  AND r.state IN ('queued', 'running')`, id, reason); err != nil {
		return fmt.Errorf("error ending the evaluation's inference runs: %w", err)
	}
	return webhook.Emit(ctx, tx, client, webhook.EvaluationFinished, webhook.Evaluation(id, string(queries.EvaluationStateFailed)))
}

// EvaluateNewVersion starts, in tx, the evaluations a newly published
// version gets (evaluation.ForNewVersion): one per enabled model on its
// test split.
func EvaluateNewVersion(ctx context.Context, tx pgx.Tx, client *river.Client[pgx.Tx], v queries.DatasetVersion) (int, error) {
	evals, err := evaluation.ForNewVersion(ctx, tx, v)
	if err != nil {
		return 0, err
	}
	for _, e := range evals {
		res, err := client.InsertTx(ctx, tx, EvaluateArgs{EvaluationID: e.ID}, nil)
		if err != nil {
			return 0, fmt.Errorf("error queueing the evaluation: %w", err)
		}
		if err := queries.New().EvaluationSetJob(ctx, tx, queries.EvaluationSetJobParams{ID: e.ID, JobID: &res.Job.ID}); err != nil {
			return 0, fmt.Errorf("error recording the evaluation's job: %w", err)
		}
	}
	return len(evals), nil
}

// EvaluateWorker runs EvaluateArgs as a River job that comes back until its
// inference is done: it queues the inference the split needs as ordinary
// infer jobs (so slots, capacity, retries and cool-offs hold as for any
// image), then snoozes while any of them is unfinished, then scores. Every
// step goes on from where the last attempt stopped.
type EvaluateWorker struct {
	river.WorkerDefaults[EvaluateArgs]
	pool        *pgxpool.Pool
	q           *queries.Queries
	logger      *slog.Logger
	maxAttempts int // of the inference jobs
	poll        time.Duration
	timeout     time.Duration
}

const evaluateBatch = 1000

// Timeout lets scoring a large split take as long as a dataset job.
func (w *EvaluateWorker) Timeout(*river.Job[EvaluateArgs]) time.Duration { return w.timeout }

// Work moves the evaluation on.
func (w *EvaluateWorker) Work(ctx context.Context, job *river.Job[EvaluateArgs]) error {
	err := w.work(ctx, job)
	var snooze *river.JobSnoozeError
	if err != nil && !errors.As(err, &snooze) && job.Attempt >= job.MaxAttempts {
		msg := clipText(err.Error())
		ferr := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
			n, err := w.q.EvaluationFail(ctx, tx, queries.EvaluationFailParams{ID: job.Args.EvaluationID, Error: &msg})
			if err != nil || n == 0 {
				return err
			}
			return webhook.Emit(ctx, tx, river.ClientFromContext[pgx.Tx](ctx), webhook.EvaluationFinished, webhook.Evaluation(job.Args.EvaluationID, string(queries.EvaluationStateFailed)))
		})
		if ferr != nil {
			w.logger.WarnContext(ctx, "error recording a failed evaluation", "error", ferr)
		}
	}
	return err
}

func (w *EvaluateWorker) work(ctx context.Context, job *river.Job[EvaluateArgs]) error {
	row, err := w.q.EvaluationGet(ctx, w.pool, job.Args.EvaluationID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // its model was deleted
	}
	if err != nil {
		return fmt.Errorf("error reading evaluation: %w", err)
	}
	e := row.Evaluation
	switch e.State {
	case queries.EvaluationStateDone, queries.EvaluationStateFailed:
		return nil
	case queries.EvaluationStateQueued:
		if err := w.queue(ctx, e); err != nil {
			return err
		}
		fallthrough
	case queries.EvaluationStateInferring:
		n, err := evaluation.Pending(ctx, w.pool, e.ID)
		if err != nil {
			return err
		}
		if n > 0 {
			return river.JobSnooze(w.poll)
		}
		if err := w.q.EvaluationSetState(ctx, w.pool, queries.EvaluationSetStateParams{ID: e.ID, State: queries.EvaluationStateScoring}); err != nil {
			return fmt.Errorf("error moving evaluation on: %w", err)
		}
		e.State = queries.EvaluationStateScoring
	}
	return evaluation.Score(ctx, w.pool, river.ClientFromContext[pgx.Tx](ctx), e)
}

// queue inserts an infer job for every image of the split without an
// answer from the model, a batch per transaction, then moves the
// evaluation to inferring.
func (w *EvaluateWorker) queue(ctx context.Context, e queries.Evaluation) error {
	client := river.ClientFromContext[pgx.Tx](ctx)
	after := e.QueuedThrough
	for {
		n := 0
		err := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
			rows, err := w.q.EvaluationImagesToInfer(ctx, tx, queries.EvaluationImagesToInferParams{
				VersionID: e.VersionID, Split: e.Split, After: after, ModelID: e.ModelID, Batch: evaluateBatch,
			})
			if err != nil {
				return fmt.Errorf("error finding images to infer: %w", err)
			}
			n = len(rows)
			if n == 0 {
				return nil
			}
			ids := make([]uuid.UUID, n)
			params := make([]river.InsertManyParams, n)
			for i, r := range rows {
				ids[i] = r.ImageID
				params[i] = river.InsertManyParams{
					Args:       InferArgs{ImageID: r.ImageID, ModelID: e.ModelID, EvaluationID: e.ID},
					InsertOpts: &river.InsertOpts{MaxAttempts: w.maxAttempts},
				}
			}
			if err := w.q.EvaluationRunsQueue(ctx, tx, queries.EvaluationRunsQueueParams{ModelID: e.ModelID, ImageIds: ids}); err != nil {
				return fmt.Errorf("error queueing inference runs: %w", err)
			}
			if _, err := client.InsertManyTx(ctx, tx, params); err != nil {
				return fmt.Errorf("error inserting inference jobs: %w", err)
			}
			after = rows[n-1].Ordinal
			return w.q.EvaluationQueued(ctx, tx, queries.EvaluationQueuedParams{ID: e.ID, Added: int32(n), Through: after})
		})
		if err != nil {
			return err
		}
		if n < evaluateBatch {
			break
		}
	}
	if err := w.q.EvaluationSetState(ctx, w.pool, queries.EvaluationSetStateParams{ID: e.ID, State: queries.EvaluationStateInferring}); err != nil {
		return fmt.Errorf("error moving evaluation on: %w", err)
	}
	return nil
}
