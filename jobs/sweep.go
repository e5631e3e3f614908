package jobs

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/queries"
)

// SweepArgs deletes blobs that no image needs any more: uploads whose image
// was never recorded (a failed transaction) or has been ingested, and
// canonical files, thumbnails and embeddings of images that are gone; and
// trained artifacts no training records (the hub stored the upload, then
// died or failed before its transaction committed).
type SweepArgs struct{}

// Kind is the job kind.
func (SweepArgs) Kind() string { return "blob_sweep" }

// InsertOpts keeps one sweep waiting at a time.
func (SweepArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// SweepWorker runs SweepArgs. Only blobs older than the grace period are
// considered, so an upload between its blob write and its commit is safe.
type SweepWorker struct {
	river.WorkerDefaults[SweepArgs]
	pool   *pgxpool.Pool
	q      *queries.Queries
	blobs  blob.Store
	logger *slog.Logger
	grace  time.Duration
}

// A sweep that outlasts JOB_TIMEOUT is cut off and retried; what it deleted
// stays deleted, so each attempt gets further.

// Work sweeps.
func (w *SweepWorker) Work(ctx context.Context, job *river.Job[SweepArgs]) error {
	cutoff := time.Now().Add(-w.grace)
	deleted := 0
	for _, prefix := range []string{"uploads/", "images/", "thumbs/", "embeddings/", "trainings/"} {
		err := w.blobs.List(ctx, prefix, func(info blob.Info) error {
			if info.ModTime.After(cutoff) {
				return nil
			}
			sum, err := hex.DecodeString(strings.TrimSuffix(path.Base(info.Key), ".jpg"))
			if err != nil || len(sum) != 32 {
				return nil // not ours to judge
			}
			var needed bool
			switch prefix {
			case "uploads/":
				needed, err = w.q.ImageUploadStillNeeded(ctx, w.pool, sum)
			case "trainings/":
				// trainings/<run>/<sha256>, as training.Service.Upload
				// stores it: kept while a training names that key.
				needed, err = w.q.TrainingArtifactReferenced(ctx, w.pool, info.Key)
			default:
				needed, err = w.q.ImageReferencesHash(ctx, w.pool, sum)
			}
			if err != nil {
				return fmt.Errorf("error checking %s: %w", info.Key, err)
			}
			if needed {
				return nil
			}
			if err := w.blobs.Delete(ctx, info.Key); err != nil {
				return err
			}
			deleted++
			return nil
		})
		if err != nil {
			return fmt.Errorf("error sweeping %s: %w", prefix, err)
		}
	}
	w.logger.InfoContext(ctx, "blob sweep done", "deleted", deleted)
	return nil
}
