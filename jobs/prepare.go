package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/deepimageshub/imagehub/interactive"
	"github.com/deepimageshub/imagehub/lifecycle"
)

// PrepareArgs prepares an image that waits for review for the interactive
// model's prompts (docs/interactive.md): a two-stage model's embedding is
// computed and kept in the blob store, a single-stage model gets a warm-up.
type PrepareArgs struct {
	ImageID uuid.UUID `json:"image_id"`
}

// Kind is the job kind.
func (PrepareArgs) Kind() string { return "prepare_prompts" }

// InsertOpts keeps one job per image ever; leasing the item prepares it
// again, and a missing embedding is computed on the first prompt.
func (PrepareArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueInfer, MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// PreparePrompts inserts an image's preparation job in tx, the one that
// sends it to review (lifecycle.Reviewable).
func PreparePrompts(client *river.Client[pgx.Tx], tx pgx.Tx) lifecycle.PreparePrompts {
	return func(ctx context.Context, image uuid.UUID) error {
		if _, err := client.InsertTx(ctx, tx, PrepareArgs{ImageID: image}, nil); err != nil {
			return fmt.Errorf("error queueing the preparation for prompts: %w", err)
		}
		return nil
	}
}

// PrepareWorker runs PrepareArgs.
type PrepareWorker struct {
	river.WorkerDefaults[PrepareArgs]
	prompts *interactive.Service
	logger  *slog.Logger
}

// Work prepares the image.
func (w *PrepareWorker) Work(ctx context.Context, job *river.Job[PrepareArgs]) error {
	start := time.Now()
	if err := w.prompts.Prepare(ctx, job.Args.ImageID); err != nil {
		return fmt.Errorf("error preparing image %s for prompts: %w", job.Args.ImageID, err)
	}
	w.logger.DebugContext(ctx, "image prepared for prompts", "image_id", job.Args.ImageID, "took", time.Since(start))
	return nil
}
