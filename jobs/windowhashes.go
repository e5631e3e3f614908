package jobs

import (
	"context"
	"errors"
	"fmt"
	"image/jpeg"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/imaging"
	"github.com/deepimageshub/imagehub/queries"
)

// BackfillWindowHashesArgs computes the window hashes (imaging.WindowHashes)
// of images ingested before ingest stored them (migration 00019), which a
// migration cannot do: it takes decoding a picture. Until an image has
// them, a crop of it is not found as its near-duplicate; everything else
// about the near-duplicate check works as before.
type BackfillWindowHashesArgs struct{}

// Kind is the job kind.
func (BackfillWindowHashesArgs) Kind() string { return "backfill_window_hashes" }

// InsertOpts keeps one waiting copy, however many replicas schedule it.
func (BackfillWindowHashesArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// BackfillWindowHashesWorker runs BackfillWindowHashesArgs.
type BackfillWindowHashesWorker struct {
	river.WorkerDefaults[BackfillWindowHashesArgs]
	pool   *pgxpool.Pool
	q      *queries.Queries
	blobs  blob.Store
	logger *slog.Logger
}

// Timeout gives a run half an hour, whatever JOB_TIMEOUT says: a million
// thumbnails take longer than one ingest. A run that times out is retried
// and goes on where it stopped, since it only looks at images still
// without window hashes.
func (w *BackfillWindowHashesWorker) Timeout(*river.Job[BackfillWindowHashesArgs]) time.Duration {
	return 30 * time.Minute
}

// backfillBatch is how many images one query hands the backfill.
const backfillBatch = 200

// Work walks the images without window hashes once, in id order, and
// hashes each from its grid thumbnail: the very picture ingest hashes,
// here decoded from its JPEG, which moves a hash by a bit or two at most
// (re-encoding at q45 moves it less than WindowDistance). An image whose
// thumbnail is gone is skipped and logged. A run cut short by the job's
// timeout leaves the rest to the retry or the next run; each
// image's hashes are one statement, so nothing is half done.
func (w *BackfillWindowHashesWorker) Work(ctx context.Context, job *river.Job[BackfillWindowHashesArgs]) error {
	after, done, skipped := uuid.Nil, 0, 0
	for {
		rows, err := w.q.ImageListMissingWindowHashes(ctx, w.pool, queries.ImageListMissingWindowHashesParams{
			AfterID: after, MaxRows: backfillBatch,
		})
		if err != nil {
			return fmt.Errorf("error listing images without window hashes: %w", err)
		}
		for _, r := range rows {
			after = r.ID
			hashes, err := w.hashThumbnail(ctx, r.Sha256)
			if errors.Is(err, blob.ErrNotFound) {
				skipped++
				w.logger.WarnContext(ctx, "no grid thumbnail to compute window hashes from", "image_id", r.ID)
				continue
			}
			if err != nil {
				return fmt.Errorf("error hashing image %s: %w", r.ID, err)
			}
			if err := w.q.ImageWindowHashesInsert(ctx, w.pool, queries.ImageWindowHashesInsertParams{
				ImageID: r.ID, Hashes: windowInts(hashes),
			}); err != nil {
				return fmt.Errorf("error recording window hashes of %s: %w", r.ID, err)
			}
			done++
		}
		if len(rows) < backfillBatch {
			break
		}
	}
	if done > 0 || skipped > 0 {
		w.logger.InfoContext(ctx, "window hashes backfilled", "images", done, "skipped", skipped)
	}
	return nil
}

func (w *BackfillWindowHashesWorker) hashThumbnail(ctx context.Context, sha []byte) ([]uint64, error) {
	rc, _, err := w.blobs.Get(ctx, blob.ThumbKey(blob.ThumbGrid, sha))
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	img, err := jpeg.Decode(rc)
	if err != nil {
		return nil, fmt.Errorf("error decoding grid thumbnail: %w", err)
	}
	return imaging.WindowHashes(img), nil
}
