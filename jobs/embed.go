package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/dispatch"
	"github.com/deepimageshub/imagehub/interactive"
	"github.com/deepimageshub/imagehub/lifecycle"
	"github.com/deepimageshub/imagehub/queries"
)

// EmbedArgs computes and keeps the embedding of one image by one embed
// model, for a two-stage interactive model's prompts (docs/interactive.md).
type EmbedArgs struct {
	ImageID uuid.UUID `json:"image_id"`
	ModelID uuid.UUID `json:"model_id"`
}

// Kind is the job kind.
func (EmbedArgs) Kind() string { return "embed" }

// InsertOpts keeps one job per (image, embed model) ever; a missing
// embedding is also computed on the first prompt.
func (EmbedArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueInfer, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// EmbedFanout inserts the embed jobs of an image (lifecycle.Reviewable).
func EmbedFanout(client *river.Client[pgx.Tx]) lifecycle.EmbedFanout {
	return func(ctx context.Context, image uuid.UUID, models []uuid.UUID) error {
		params := make([]river.InsertManyParams, len(models))
		for i, m := range models {
			params[i] = river.InsertManyParams{Args: EmbedArgs{ImageID: image, ModelID: m}}
		}
		if _, err := client.InsertMany(ctx, params); err != nil {
			return fmt.Errorf("error queueing embeddings: %w", err)
		}
		return nil
	}
}

// EmbedWorker runs EmbedArgs.
type EmbedWorker struct {
	river.WorkerDefaults[EmbedArgs]
	pool     *pgxpool.Pool
	q        *queries.Queries
	blobs    blob.Store
	logger   *slog.Logger
	embedder *interactive.Embedder
}

// Work computes the embedding unless it is kept already.
func (w *EmbedWorker) Work(ctx context.Context, job *river.Job[EmbedArgs]) error {
	m, err := w.q.ModelGet(ctx, w.pool, job.Args.ModelID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("error reading model: %w", err)
	}
	if !m.Enabled || m.Task != dispatch.TaskEmbed {
		return nil
	}
	img, err := w.q.ImageGet(ctx, w.pool, job.Args.ImageID)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && img.Sha256 == nil) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("error reading image: %w", err)
	}
	read := func(ctx context.Context) ([]byte, error) {
		rc, _, err := w.blobs.Get(ctx, blob.ImageKey(img.Sha256))
		if err != nil {
			return nil, fmt.Errorf("error reading image %s: %w", img.ID, err)
		}
		defer rc.Close()
		return io.ReadAll(rc)
	}
	start := time.Now()
	_, shape, err := w.embedder.Ensure(ctx, m, img.Sha256, read)
	var none *dispatch.ErrNoSlot
	if errors.As(err, &none) {
		// Busy endpoints: come back later without spending an attempt.
		return river.JobSnooze(time.Second + rand.N(time.Second))
	}
	if err != nil {
		return err
	}
	w.logger.DebugContext(ctx, "embedding ready", "image_id", img.ID, "model", m.Name, "shape", shape, "took", time.Since(start))
	return nil
}
