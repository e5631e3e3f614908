package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/deepimageshub/imagehub/augment"
	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/config"
	"github.com/deepimageshub/imagehub/dataset"
	"github.com/deepimageshub/imagehub/queries"
)

// QueueDatasets is the queue of publish and export jobs: few and long, so
// they never hold up ingest or inference.
const QueueDatasets = "datasets"

// datasetJobTimeout is how long a publish or export may run: far longer
// than an ordinary job (an export writes gigabytes), but less than
// JOB_RESCUE_AFTER, past which River would take the job for lost and run a
// second copy beside it.
func datasetJobTimeout(cfg config.Config) time.Duration {
	return max(cfg.JobTimeout, cfg.JobRescueAfter-cfg.JobRescueAfter/10)
}

// PublishArgs publishes a dataset version (dataset.Publish).
type PublishArgs struct {
	VersionID uuid.UUID `json:"version_id"`
}

// Kind is the job kind.
func (PublishArgs) Kind() string { return "dataset_publish" }

// InsertOpts keeps one job per version.
func (PublishArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueDatasets, MaxAttempts: 3, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// PublishWorker runs PublishArgs. Publishing is one transaction, so a
// failed attempt leaves nothing behind and the next starts afresh; the last
// failed attempt marks the version failed with the reason.
type PublishWorker struct {
	river.WorkerDefaults[PublishArgs]
	pool    *pgxpool.Pool
	logger  *slog.Logger
	timeout time.Duration
	after   []func(context.Context, pgx.Tx, *river.Client[pgx.Tx], queries.DatasetVersion) error
}

// Timeout is the dataset jobs' (datasetJobTimeout).
func (w *PublishWorker) Timeout(*river.Job[PublishArgs]) time.Duration { return w.timeout }

// Work publishes.
func (w *PublishWorker) Work(ctx context.Context, job *river.Job[PublishArgs]) error {
	start := time.Now()
	client := river.ClientFromContext[pgx.Tx](ctx)
	v, err := dataset.Publish(ctx, w.pool, client, job.Args.VersionID)
	if err != nil {
		// The reason is recorded from a context the job's timeout has not
		// ended.
		bg := context.WithoutCancel(ctx)
		if job.Attempt >= job.MaxAttempts {
			if ferr := dataset.Fail(bg, w.pool, job.Args.VersionID, "Publishing failed: "+err.Error()); ferr != nil {
				w.logger.ErrorContext(ctx, "error recording a failed publish", "error", ferr)
			}
		} else {
			_ = queries.New().VersionProgress(bg, w.pool, queries.VersionProgressParams{
				ID: job.Args.VersionID, Step: fmt.Sprintf("attempt %d failed; trying again", job.Attempt),
			})
		}
		return err
	}
	w.logger.InfoContext(ctx, "dataset version published", "version_id", v.ID, "number", v.Number,
		"images", v.Images, "instances", v.Instances, "duration", time.Since(start))
	// Each enabled model is measured on the new test split. The version is
	// published whatever happens here: an admin can start them by hand.
	if v.State == queries.DatasetVersionStatePublished {
		err := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
			n, err := EvaluateNewVersion(ctx, tx, client, v)
			if n > 0 {
				w.logger.InfoContext(ctx, "evaluations started for the new version", "version_id", v.ID, "models", n)
			}
			return err
		})
		if err != nil {
			w.logger.WarnContext(ctx, "error starting the new version's evaluations", "version_id", v.ID, "error", err)
		}
		for _, fn := range w.after {
			if err := pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error { return fn(ctx, tx, client, v) }); err != nil {
				w.logger.WarnContext(ctx, "error acting on the new version", "version_id", v.ID, "error", err)
			}
		}
	}
	return nil
}

// ExportArgs builds a prepared export into the blob store.
type ExportArgs struct {
	ExportID uuid.UUID `json:"export_id"`
}

// Kind is the job kind.
func (ExportArgs) Kind() string { return "dataset_export" }

// InsertOpts puts exports with the other dataset jobs. A retried export is
// a new job of the same args, so they are not unique.
func (ExportArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueDatasets, MaxAttempts: 3}
}

// ExportKey is where a prepared export's zip lives in the blob store. The
// sweep never lists exports/.
func ExportKey(versionID, exportID uuid.UUID) string {
	return "exports/" + versionID.String() + "/" + exportID.String() + ".zip"
}

// ExportWorker runs ExportArgs: it streams the zip of the export's subset
// into the blob store (a folder or S3, in parts) without holding it, and
// reports progress by image bytes written.
type ExportWorker struct {
	river.WorkerDefaults[ExportArgs]
	pool    *pgxpool.Pool
	blobs   blob.Store
	logger  *slog.Logger
	timeout time.Duration
}

// Timeout is the dataset jobs' (datasetJobTimeout).
func (w *ExportWorker) Timeout(*river.Job[ExportArgs]) time.Duration { return w.timeout }

// Work builds the export.
func (w *ExportWorker) Work(ctx context.Context, job *river.Job[ExportArgs]) error {
	q := queries.New()
	e, err := q.ExportBegin(ctx, w.pool, job.Args.ExportID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // built already, or failed for good
	}
	if err != nil {
		return fmt.Errorf("error starting export: %w", err)
	}
	size, err := w.build(ctx, e)
	if err != nil {
		if job.Attempt >= job.MaxAttempts {
			reason := "The export failed: " + err.Error()
			if ferr := q.ExportFail(context.WithoutCancel(ctx), w.pool, queries.ExportFailParams{ID: e.ID, Error: &reason}); ferr != nil {
				w.logger.ErrorContext(ctx, "error recording a failed export", "error", ferr)
			}
		}
		return err
	}
	w.logger.InfoContext(ctx, "dataset export ready", "export_id", e.ID, "bytes", size)
	return nil
}

func (w *ExportWorker) build(ctx context.Context, e queries.DatasetExport) (int64, error) {
	q := queries.New()
	row, err := q.VersionGetByID(ctx, w.pool, e.VersionID)
	if err != nil {
		return 0, fmt.Errorf("error reading version: %w", err)
	}
	v, err := dataset.LoadVersion(ctx, w.pool, row)
	if err != nil {
		return 0, err
	}
	sub := dataset.Subset{Format: dataset.Format(e.Format), MaskFormat: dataset.MaskFormat(e.MaskFormat), Labels: e.LabelIds}
	for _, s := range e.Splits {
		sub.Splits = append(sub.Splits, dataset.Split(s))
	}
	if sub.Augment, err = augment.FromString(e.Augment); err != nil {
		return 0, err
	}
	total, err := q.VersionSubsetSize(ctx, w.pool, queries.VersionSubsetSizeParams{VersionID: v.ID, Splits: e.Splits, LabelIds: e.LabelIds})
	if err != nil {
		return 0, fmt.Errorf("error sizing the export: %w", err)
	}
	var last time.Time
	ex := &dataset.Exporter{DB: w.pool, Blobs: w.blobs, Progress: func(written int64) {
		// A few updates a second are plenty for a progress bar.
		if time.Since(last) < 500*time.Millisecond || total.Bytes == 0 {
			return
		}
		last = time.Now()
		_ = q.ExportProgress(ctx, w.pool, queries.ExportProgressParams{ID: e.ID, Progress: min(0.99, float32(written)/float32(total.Bytes))})
	}}
	key := ExportKey(v.ID, e.ID)
	pr, pw := io.Pipe()
	counter := &countingWriter{w: pw}
	var (
		wg       sync.WaitGroup
		writeErr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, writeErr = ex.Write(ctx, counter, v, sub)
		pw.CloseWithError(writeErr) // nil: the reader sees EOF
	}()
	putErr := w.blobs.Put(ctx, key, pr, -1, "application/zip")
	// A Put that stopped reading early must not leave the writer blocked.
	pr.CloseWithError(errors.New("the blob store stopped reading"))
	wg.Wait()
	// A failed write reaches Put through the pipe, so Put's error names the
	// first cause either way.
	if putErr != nil {
		return 0, putErr
	}
	if writeErr != nil {
		return 0, writeErr
	}
	if err := q.ExportFinish(ctx, w.pool, queries.ExportFinishParams{ID: e.ID, BlobKey: &key, ByteSize: &counter.n}); err != nil {
		return 0, fmt.Errorf("error recording the export: %w", err)
	}
	return counter.n, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
