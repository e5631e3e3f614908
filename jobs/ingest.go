package jobs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"

	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/imaging"
	"github.com/deepimageshub/imagehub/lifecycle"
	"github.com/deepimageshub/imagehub/queries"
	"github.com/deepimageshub/imagehub/webhook"
)

// QueueIngest is the queue of ingest jobs: CPU-bound, sized to the cores.
const QueueIngest = "ingest"

// IngestArgs checks, cleans and indexes one uploaded image.
type IngestArgs struct {
	ImageID uuid.UUID `json:"image_id"`
}

// Kind is the job kind.
func (IngestArgs) Kind() string { return "ingest" }

// InsertOpts puts ingest on its own queue and keeps one job per image.
func (IngestArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueIngest, MaxAttempts: 8, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// IngestWorker runs IngestArgs. Every step is idempotent: blobs are content
// addressed, and the image row changes only while it is still being ingested,
// so a job that is retried after a crash at any point finishes the work once.
type IngestWorker struct {
	river.WorkerDefaults[IngestArgs]
	pool       *pgxpool.Pool
	q          *queries.Queries
	blobs      blob.Store
	logger     *slog.Logger
	thresholds imaging.Thresholds
	limits     imaging.Limits // the pixel cap, checked again before decoding
	budget     *memoryBudget
	nearDist   int
	// inferAttempts is the MaxAttempts of the inference jobs ingest queues.
	inferAttempts int
	ingested      *prometheus.CounterVec
}

// verdict is ingest's decision on an image.
type verdict struct {
	status    queries.ImageStatus
	reason    *string
	nearDupOf *uuid.UUID
	canonical *imaging.Result
	derived   *imaging.Derived
	sha       []byte
}

// Work ingests one image.
func (w *IngestWorker) Work(ctx context.Context, job *river.Job[IngestArgs]) error {
	img, err := w.q.ImageGet(ctx, w.pool, job.Args.ImageID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // deleted meanwhile
	}
	if err != nil {
		return fmt.Errorf("error reading image: %w", err)
	}
	if img.Status != queries.ImageStatusUploaded && img.Status != queries.ImageStatusProcessing {
		// Already ingested by an attempt that died before its last step.
		return w.dropUpload(ctx, img)
	}
	if _, err := w.q.ImageSetProcessing(ctx, w.pool, img.ID); err != nil {
		return fmt.Errorf("error marking image processing: %w", err)
	}
	v, err := w.examine(ctx, img)
	if err != nil {
		var snooze *river.JobSnoozeError
		if errors.As(err, &snooze) {
			return err // waiting for memory is no failure of the photo
		}
		if job.Attempt >= job.MaxAttempts {
			reason := lifecycle.ReasonIngestFailed
			w.logger.ErrorContext(ctx, "ingest failed for good", "image_id", img.ID, "error", err)
			return w.finish(ctx, img, verdict{status: queries.ImageStatusFailed, reason: &reason})
		}
		return err
	}
	if err := w.finish(ctx, img, v); err != nil {
		return err
	}
	return w.dropUpload(ctx, img)
}

// dropUpload deletes the upload's own bytes, which may carry GPS data, once
// the verdict is recorded. Should this fail, the sweeper deletes them later.
func (w *IngestWorker) dropUpload(ctx context.Context, img queries.Image) error {
	if err := w.blobs.Delete(ctx, blob.UploadKey(img.UploadSha256)); err != nil {
		w.logger.WarnContext(ctx, "error deleting upload blob; the sweeper will", "image_id", img.ID, "error", err)
	}
	return nil
}

// examine decodes, cleans and measures the image and writes its blobs. It
// returns an error only for failures worth retrying (the blob store).
func (w *IngestWorker) examine(ctx context.Context, img queries.Image) (verdict, error) {
	rc, info, err := w.blobs.Get(ctx, blob.UploadKey(img.UploadSha256))
	if errors.Is(err, blob.ErrNotFound) {
		reason := lifecycle.ReasonUploadLost
		return verdict{status: queries.ImageStatusFailed, reason: &reason}, nil
	}
	if err != nil {
		return verdict{}, fmt.Errorf("error reading upload: %w", err)
	}
	data := make([]byte, 0, max(info.Size, 0)+bytes.MinRead)
	buf := bytes.NewBuffer(data)
	_, err = buf.ReadFrom(rc)
	rc.Close()
	if err != nil {
		return verdict{}, fmt.Errorf("error reading upload: %w", err)
	}
	data = buf.Bytes()
	// The largest derivative is the review image: a JPEG needs decoding
	// no larger than that (libjpeg-turbo reduces it in the DCT domain).
	prep, err := imaging.Options{Limits: w.limits, ReduceTo: imaging.ReviewSize}.Prepare(data)
	var ref *imaging.Refusal
	if errors.As(err, &ref) {
		reason := "We could not read this photo: " + ref.Message
		return verdict{status: queries.ImageStatusRejected, reason: &reason}, nil
	}
	if err != nil {
		return verdict{}, err
	}
	res, d, err := w.decode(ctx, prep)
	if errors.As(err, &ref) {
		reason := "We could not read this photo: " + ref.Message
		return verdict{status: queries.ImageStatusRejected, reason: &reason}, nil
	}
	if err != nil {
		return verdict{}, err
	}
	sum := sha256.Sum256(res.Bytes)
	v := verdict{canonical: res, derived: d, sha: sum[:], status: queries.ImageStatusAwaitingInference}

	switch kind, reason := w.thresholds.Check(d.Quality); kind {
	case imaging.Rejected:
		v.status, v.reason = queries.ImageStatusRejected, &reason
		return v, nil // nothing to store for a refused photo
	case imaging.Flagged:
		v.status, v.reason = queries.ImageStatusFlagged, &reason
	}

	// The same picture arrived before under other bytes (say, with and
	// without EXIF): keep one.
	twin, err := w.q.ImageGetBySHA(ctx, w.pool, v.sha)
	if err == nil && twin.ID != img.ID {
		reason := lifecycle.ReasonIdentical
		return verdict{status: queries.ImageStatusRejected, reason: &reason, nearDupOf: &twin.ID}, nil
	} else if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return verdict{}, fmt.Errorf("error looking for identical image: %w", err)
	}

	near, err := w.nearDuplicate(ctx, img.ID, d.PHash, d.Windows)
	if err != nil {
		return verdict{}, err
	}
	if near != nil {
		v.nearDupOf = near
		if v.status == queries.ImageStatusAwaitingInference {
			reason := lifecycle.ReasonNearDuplicate
			v.status, v.reason = queries.ImageStatusFlagged, &reason
		}
	}

	review := d.Review
	if review == nil {
		review = res.Bytes
	}
	for _, b := range []struct {
		key, ct string
		data    []byte
	}{
		{blob.ImageKey(v.sha), res.ContentType, res.Bytes},
		{blob.ThumbKey(blob.ThumbGrid, v.sha), "image/jpeg", d.Grid},
		{blob.ThumbKey(blob.ThumbReview, v.sha), "image/jpeg", review},
	} {
		if err := w.blobs.Put(ctx, b.key, bytes.NewReader(b.data), int64(len(b.data)), b.ct); err != nil {
			return verdict{}, fmt.Errorf("error storing %s: %w", b.key, err)
		}
	}
	return v, nil
}

// decode decodes a prepared upload and derives its thumbnails, hash and
// quality once the memory budget has room for it, and gives the room back
// with the decoded pixels dropped: what it returns is small (the canonical
// file and the thumbnails).
//
// It waits for room at most half of the time the job has left, so that the
// decoding itself still has time; when that runs out (or the process shuts
// down) the job is snoozed, which spends none of its attempts.
func (w *IngestWorker) decode(ctx context.Context, prep *imaging.Prepared) (*imaging.Result, *imaging.Derived, error) {
	wait, cancel := ctx, context.CancelFunc(func() {})
	if dl, ok := ctx.Deadline(); ok {
		wait, cancel = context.WithTimeout(ctx, time.Until(dl)/2)
	}
	release, err := w.budget.acquire(wait, prep.Memory())
	cancel()
	if err != nil {
		w.logger.InfoContext(ctx, "no room in the ingest memory budget yet; snoozing", "error", err)
		return nil, nil, river.JobSnooze(time.Second + rand.N(2*time.Second))
	}
	defer release()
	res, err := prep.Decode()
	if err != nil {
		return nil, nil, err
	}
	d, err := imaging.Derive(res)
	if err != nil {
		return nil, nil, err
	}
	res.Image = nil
	return res, d, nil
}

// nearDuplicate finds the closest earlier image that h (the image's whole
// hash) and windows (its window hashes) say is a near-duplicate, through
// the banded indexes (imaging.Probes): first one whose whole hash is within
// the configured distance of h (a re-encoded, resized or retouched copy);
// else, within imaging.WindowDistance, one with a window near h (the image
// is a crop of it) or one whose whole hash is near one of windows (it is a
// crop of the image). Windows are never compared with windows: that would
// take a crop of a crop, and multiply the chances of a false alarm.
func (w *IngestWorker) nearDuplicate(ctx context.Context, id uuid.UUID, h uint64, windows []uint64) (*uuid.UUID, error) {
	// One query for the three lookups: at a million images each is a
	// millisecond or so of index work, and three round trips cost as much.
	p := queries.ImageNearDuplicateFindParams{
		Phash: int64(h), ID: id, MaxDistance: int32(w.nearDist), WindowDistance: imaging.WindowDistance,
		Hashes: make([]int64, len(windows)),
	}
	probes := imaging.Probes(h, w.nearDist)
	p.P0, p.P1, p.P2, p.P3 = bandInts(probes[0]), bandInts(probes[1]), bandInts(probes[2]), bandInts(probes[3])
	probes = imaging.Probes(h, imaging.WindowProbeDistance)
	p.W0, p.W1, p.W2, p.W3 = bandInts(probes[0]), bandInts(probes[1]), bandInts(probes[2]), bandInts(probes[3])
	union := [4]*[]int32{&p.U0, &p.U1, &p.U2, &p.U3}
	for i, wh := range windows {
		p.Hashes[i] = int64(wh)
		for b, pr := range imaging.Probes(wh, imaging.WindowProbeDistance) {
			*union[b] = append(*union[b], bandInts(pr)...)
		}
	}
	for _, u := range union {
		if *u == nil {
			*u = []int32{} // an empty array, not NULL
		}
	}
	var rows []queries.ImageNearDuplicateFindRow
	err := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		// The twelve index-only scans take a millisecond or so in all, and
		// the planner would run them in parallel workers, whose start
		// costs more than the scans (tens of milliseconds on a busy
		// machine).
		if _, err := tx.Exec(ctx, "SET LOCAL max_parallel_workers_per_gather = 0"); err != nil {
			return err
		}
		var err error
		rows, err = w.q.ImageNearDuplicateFind(ctx, tx, p)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("error looking for near-duplicates: %w", err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	return &rows[0].ID, nil
}

func windowInts(hs []uint64) []int64 {
	out := make([]int64, len(hs))
	for i, h := range hs {
		out[i] = int64(h)
	}
	return out
}

func bandInts(v []uint16) []int32 {
	out := make([]int32, len(v))
	for i, x := range v {
		out[i] = int32(x)
	}
	return out
}

// finish records the verdict, only if the image is still being ingested.
func (w *IngestWorker) finish(ctx context.Context, img queries.Image, v verdict) error {
	p := queries.ImageFinishIngestParams{
		ID: img.ID, Status: v.status, Reason: v.reason, NearDuplicateOf: v.nearDupOf,
		Width: img.Width, Height: img.Height, ByteSize: img.ByteSize, ContentType: img.ContentType,
	}
	if v.canonical != nil && v.status != queries.ImageStatusRejected {
		p.Sha256 = v.sha
		p.Width, p.Height = int32(v.canonical.Width), int32(v.canonical.Height)
		p.ByteSize, p.ContentType = int64(len(v.canonical.Bytes)), v.canonical.ContentType
	}
	if v.derived != nil {
		h := int64(v.derived.PHash)
		bands := imaging.Bands(v.derived.PHash)
		b0, b1, b2, b3 := int32(bands[0]), int32(bands[1]), int32(bands[2]), int32(bands[3])
		p.Phash, p.PhashB0, p.PhashB1, p.PhashB2, p.PhashB3 = &h, &b0, &b1, &b2, &b3
		q, err := json.Marshal(v.derived.Quality)
		if err != nil {
			return fmt.Errorf("error encoding quality: %w", err)
		}
		p.Quality = q
	}
	var finished bool
	err := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		n, err := w.q.ImageFinishIngest(ctx, tx, p)
		finished = n > 0
		if err != nil {
			return fmt.Errorf("error recording ingest: %w", err)
		}
		if n > 0 && v.derived != nil && len(v.derived.Windows) > 0 {
			if err := w.q.ImageWindowHashesInsert(ctx, tx, queries.ImageWindowHashesInsertParams{
				ImageID: img.ID, Hashes: windowInts(v.derived.Windows),
			}); err != nil {
				return fmt.Errorf("error recording window hashes: %w", err)
			}
		}
		if n == 0 || (v.status != queries.ImageStatusFlagged && v.status != queries.ImageStatusAwaitingInference) {
			return nil
		}
		// The jobs the verdict queues (webhook deliveries, inference) go
		// in with the River client working this job.
		client, err := river.ClientFromContextSafely[pgx.Tx](ctx)
		if err != nil {
			return fmt.Errorf("error queueing the jobs of an ingest verdict: %w", err)
		}
		if v.status == queries.ImageStatusFlagged {
			return webhook.Emit(ctx, tx, client, webhook.ImageFlagged, webhook.Image(img.ID))
		}
		// An accepted image gets one inference job per enabled model, in
		// the transaction that accepts it: never accepted and forgotten.
		return lifecycle.Accept(ctx, tx, client, img.ID, Fanout(client, w.inferAttempts))
	})
	// Counted once committed, so a retried attempt is not counted twice.
	if err == nil && finished && w.ingested != nil {
		w.ingested.WithLabelValues(string(v.status)).Inc()
	}
	return err
}
