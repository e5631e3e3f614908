package jobs

import (
	"context"
	"encoding/json"
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
	"github.com/deepimageshub/imagehub/inference"
	"github.com/deepimageshub/imagehub/layout"
	"github.com/deepimageshub/imagehub/lifecycle"
	"github.com/deepimageshub/imagehub/queries"
	"github.com/deepimageshub/imagehub/review"
	"github.com/deepimageshub/imagehub/signedurl"
)

// QueueInfer is the queue of inference jobs: mostly waiting on remote
// workers, so it runs many at once.
const QueueInfer = "infer"

// InferArgs sends one image to one model version. EvaluationID is set on
// the jobs an evaluation queues (package evaluation): they run whatever the
// image's state and whether or not the model is enabled, and, being other
// args, are not mistaken for the image's first inference by the model.
type InferArgs struct {
	ImageID      uuid.UUID `json:"image_id"`
	ModelID      uuid.UUID `json:"model_id"`
	EvaluationID uuid.UUID `json:"evaluation_id,omitzero"`
}

// Kind is the job kind.
func (InferArgs) Kind() string { return "infer" }

// InsertOpts keeps one job per (image, model version), ever: a second insert
// of the same pair is skipped, whatever the first one's state.
func (InferArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueInfer, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// QueueInference records a queued run and inserts an inference job for every
// pair of image and model, inside tx. Pairs that already have a run are left
// alone.
func QueueInference(ctx context.Context, tx pgx.Tx, client *river.Client[pgx.Tx], images, models []uuid.UUID, maxAttempts int) error {
	if len(images) == 0 || len(models) == 0 {
		return nil
	}
	if err := queries.New().RunsQueue(ctx, tx, queries.RunsQueueParams{ImageIds: images, ModelIds: models}); err != nil {
		return fmt.Errorf("error queueing inference runs: %w", err)
	}
	params := make([]river.InsertManyParams, 0, len(images)*len(models))
	for _, img := range images {
		for _, m := range models {
			params = append(params, river.InsertManyParams{
				Args:       InferArgs{ImageID: img, ModelID: m},
				InsertOpts: &river.InsertOpts{MaxAttempts: maxAttempts},
			})
		}
	}
	if _, err := client.InsertManyTx(ctx, tx, params); err != nil {
		return fmt.Errorf("error inserting inference jobs: %w", err)
	}
	return nil
}

// Fanout is the lifecycle.Fanout of an accepted image: QueueInference with
// client and the inference jobs' MaxAttempts.
func Fanout(client *river.Client[pgx.Tx], maxAttempts int) lifecycle.Fanout {
	return func(ctx context.Context, tx pgx.Tx, images, models []uuid.UUID) error {
		return QueueInference(ctx, tx, client, images, models, maxAttempts)
	}
}

// InferWorker runs InferArgs: take a slot on an endpoint, send the image,
// store what comes back. For a model with max_batch > 1 the image goes
// through the process's batcher (batch.go), which sends it with others of
// the same model in one request; when that request fails the image is
// sent again alone, and the job goes on as for a lone image. Waiting for a slot is not an attempt (the job
// snoozes); a retryable failure is, with capped exponential backoff; a
// contract error ends the run at once.
type InferWorker struct {
	river.WorkerDefaults[InferArgs]
	pool       *pgxpool.Pool
	q          *queries.Queries
	blobs      blob.Store
	logger     *slog.Logger
	client     *inference.Client
	slots      *dispatch.Slots
	labels     *labelIndex
	metrics    *inferMetrics
	maxBackoff time.Duration
	jobTimeout time.Duration
	// slotWait is how long a job waits in process for a free slot before
	// it snoozes and gives its River worker to another job.
	slotWait time.Duration
	// batch gathers the images of models with max_batch > 1.
	batch *batcher
	// signer makes the URLs a model that fetches the image itself (a
	// Label Studio ML backend) reads it from.
	signer *signedurl.Signer
}

// NextRetry doubles the wait from one second up to maxBackoff, with jitter
// so that jobs that failed together do not return together.
func (w *InferWorker) NextRetry(job *river.Job[InferArgs]) time.Time {
	d := time.Second << min(job.Attempt, 20)
	d = min(d, w.maxBackoff)
	d = d/2 + rand.N(d/2+1)
	return time.Now().Add(d)
}

// Work runs one inference.
func (w *InferWorker) Work(ctx context.Context, job *river.Job[InferArgs]) error {
	a := job.Args
	evaluating := a.EvaluationID != uuid.Nil
	run, err := w.q.RunBegin(ctx, w.pool, queries.RunBeginParams{
		ImageID: a.ImageID, ModelID: a.ModelID, Attempt: int32(job.Attempt), Evaluation: evaluating,
	})
	if errors.Is(err, pgx.ErrNoRows) {
		// The run already ended, or the image moved on (an admin's
		// decision), or the image or model was deleted.
		return nil
	}
	if err != nil {
		return fmt.Errorf("error starting run: %w", err)
	}
	if !run.Enabled && !evaluating {
		return w.fail(ctx, job, "disabled", "The model was disabled before it ran.", nil)
	}
	data, err := w.readImage(ctx, a.ImageID, run.Sha256)
	if err != nil {
		return err
	}

	timeout := w.callTimeout(ctx, run)
	if timeout <= 0 {
		return fmt.Errorf("JOB_TIMEOUT (%s) leaves no time for an inference", w.jobTimeout)
	}
	want := inference.Expect{Height: int(run.Height), Width: int(run.Width), KnownLabel: w.labels.known(ctx)}
	ep := runEndpoint(run, "")
	item := inference.Item{Image: data, Hints: run.Hints, Want: want}
	if ep.Layout.Kind == layout.LabelStudio {
		// Valid for the call and a minute more: the backend fetches the
		// image while it answers.
		if item.URL, err = w.signer.ImageURL(ctx, a.ImageID, time.Now().Add(timeout+time.Minute)); err != nil {
			return err
		}
	}
	var res batchResult
	if run.MaxBatch > 1 {
		res = w.batch.segment(ctx, batchKey{model: a.ModelID, hints: hintsKey(run.Hints, !ep.SkipHints)}, &batchEntry{
			item: item, ep: ep, maxBatch: int(run.MaxBatch), window: time.Duration(run.BatchWindowMs) * time.Millisecond, timeout: timeout,
		})
		var busy *inference.Busy
		if res.images > 1 && res.err != nil && ctx.Err() == nil && !errors.As(res.err, &busy) {
			// The batch failed as a whole: this image tries alone, so that
			// one image the model cannot take, or a server whose batched
			// path fails, costs the others nothing.
			w.logger.InfoContext(ctx, "batch failed; sending its images one by one", "model", run.Name, "images", res.images, "error", res.err)
			if timeout = w.callTimeout(ctx, run); timeout <= 0 {
				w.requeue(ctx, a, inference.Kind(res.err), res.err)
				return fmt.Errorf("no time left to send the image alone after its batch failed: %w", res.err)
			}
			res = w.segmentAlone(ctx, a.ModelID, ep, item, timeout)
		}
	} else {
		res = w.segmentAlone(ctx, a.ModelID, ep, item, timeout)
	}
	var none *dispatch.ErrNoSlot
	if errors.As(res.err, &none) {
		return w.snooze(ctx, a, none)
	}
	if res.images == 0 {
		if res.err == nil {
			res.err = errors.New("no inference was sent")
		}
		return res.err
	}
	slot, instances, elapsed, err := res.slot, res.instances, res.elapsed, res.err
	kind := inference.Kind(err)
	w.metrics.observe(run.Name, run.Version, kind, elapsed)
	if ctx.Err() != nil {
		// Shut down or timed out by River: not the endpoint's fault.
		return ctx.Err()
	}

	var busy *inference.Busy
	switch {
	case err == nil:
		if v := reportedVersion(instances); v != "" {
			if err := w.q.RunSetReportedVersion(ctx, w.pool, queries.RunSetReportedVersionParams{
				ImageID: a.ImageID, ModelID: a.ModelID, ReportedVersion: &v,
			}); err != nil {
				return fmt.Errorf("error recording the model's reported version: %w", err)
			}
		}
		return w.store(ctx, job, run, slot, instances, elapsed)
	case errors.As(err, &busy):
		// The endpoint is full although its slots were free (someone else
		// uses it): try again shortly, without spending an attempt.
		d := busy.RetryAfter
		if d <= 0 || d > 10*time.Second {
			d = time.Second
		}
		w.requeue(ctx, a, kind, err)
		return river.JobSnooze(d + rand.N(d/2+1))
	case kind == inference.KindContract:
		w.logger.WarnContext(ctx, "inference answer breaks the contract", "image_id", a.ImageID, "model", run.Name, "endpoint", slot.BaseURL, "error", err)
		if ferr := w.fail(ctx, job, kind, "The model's answer could not be used: "+err.Error(), &slot.BaseURL); ferr != nil {
			return ferr
		}
		return river.JobCancel(err)
	case kind == inference.KindRetryable:
		cooling, herr := w.slots.Failed(ctx, slot.EndpointID, err)
		if herr != nil {
			w.logger.WarnContext(ctx, "error recording endpoint health", "error", herr)
		}
		if cooling {
			w.logger.WarnContext(ctx, "endpoint cooling off after failures", "endpoint", slot.BaseURL, "error", err)
		}
		if job.Attempt >= job.MaxAttempts {
			if ferr := w.fail(ctx, job, kind, fmt.Sprintf("The model did not answer after %d attempts: %v", job.Attempt, err), &slot.BaseURL); ferr != nil {
				return ferr
			}
			return err
		}
		w.requeue(ctx, a, kind, err)
		return err
	default:
		return err
	}
}

// callTimeout is the model's timeout within what is left of the job's, or
// nothing (≤ 0) when too little is left.
func (w *InferWorker) callTimeout(ctx context.Context, run queries.RunBeginRow) time.Duration {
	timeout := time.Duration(run.TimeoutMs) * time.Millisecond
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl) - w.slotWait
		timeout = min(timeout, left-min(2*time.Second, left/10))
	}
	return timeout
}

// segmentAlone takes a slot and sends one image in its own request.
func (w *InferWorker) segmentAlone(ctx context.Context, model uuid.UUID, ep inference.Endpoint, item inference.Item, timeout time.Duration) batchResult {
	// The hold outlives the call by a margin: a process killed mid-call
	// frees the slot when the call would have ended anyway.
	slot, err := w.slots.Acquire(ctx, model, timeout+2*time.Second, w.slotWait)
	if err != nil {
		return batchResult{err: err}
	}
	ep.Base = slot.BaseURL
	w.metrics.inFlight.WithLabelValues(slot.BaseURL).Inc()
	start := time.Now()
	callCtx, cancel := context.WithTimeout(ctx, timeout)
	var instances []inference.Instance
	out, err := w.client.SegmentBatch(callCtx, ep, []inference.Item{item})
	if err == nil {
		instances = out[0]
	}
	cancel()
	elapsed := time.Since(start)
	w.metrics.inFlight.WithLabelValues(slot.BaseURL).Dec()
	if rerr := w.slots.Release(ctx, slot, err == nil); rerr != nil {
		w.logger.WarnContext(ctx, "slot not given back; it frees itself when its hold ends", "error", rerr)
	}
	return batchResult{instances: instances, slot: slot, elapsed: elapsed, images: 1, err: err}
}

// runEndpoint is the model of run on the endpoint at base, with its layout
// and request headers. Headers that do not decode (the column is always a
// JSON object) are left out, and the server will say what it misses.
func runEndpoint(run queries.RunBeginRow, base string) inference.Endpoint {
	var h inference.Headers
	_ = json.Unmarshal(run.Headers, &h)
	return inference.Endpoint{
		Base: base, Model: run.Name, Version: run.Version, Binary: run.BinaryData, SkipHints: !run.LabelHints,
		Headers: h,
		Layout: layout.Params{
			Kind: layout.Kind(run.Layout), Labels: run.Labels, ScoreThreshold: run.ScoreThreshold,
			IoUThreshold: run.IouThreshold, MaskThreshold: run.MaskThreshold, MaxInstances: int(run.MaxInstances),
			InputSize: int(run.InputSize), Input: run.InputName, LabelTag: run.LabelTag,
		},
	}
}

// reportedVersion is the version the model said made the instances (the
// first that names one), "" when none does.
func reportedVersion(found []inference.Instance) string {
	for _, in := range found {
		if in.ModelVersion != "" {
			return in.ModelVersion
		}
	}
	return ""
}

// readImage reads the canonical image: what was uploaded, cleaned of
// personal metadata and turned upright.
func (w *InferWorker) readImage(ctx context.Context, id uuid.UUID, sha []byte) ([]byte, error) {
	rc, _, err := w.blobs.Get(ctx, blob.ImageKey(sha))
	if err != nil {
		return nil, fmt.Errorf("error reading image %s: %w", id, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		return nil, fmt.Errorf("error reading image %s: %w", id, err)
	}
	return data, nil
}

// snooze puts the job back without spending an attempt: until the first
// endpoint comes back from cool-off, or briefly when all are merely full.
func (w *InferWorker) snooze(ctx context.Context, a InferArgs, none *dispatch.ErrNoSlot) error {
	d := time.Second + rand.N(time.Second)
	if !none.CoolingUntil.IsZero() {
		d = max(d, time.Until(none.CoolingUntil)+rand.N(time.Second))
	}
	w.requeue(ctx, a, "waiting", none)
	return river.JobSnooze(d)
}

// requeue shows the run as waiting again, with why.
func (w *InferWorker) requeue(ctx context.Context, a InferArgs, kind string, cause error) {
	msg := clipText(cause.Error())
	if err := w.q.RunRequeue(ctx, w.pool, queries.RunRequeueParams{ImageID: a.ImageID, ModelID: a.ModelID, ErrorKind: &kind, LastError: &msg}); err != nil {
		w.logger.WarnContext(ctx, "error recording run state", "error", err)
	}
}

// store writes the proposals, marks the run done and settles the image in
// one transaction: a job that dies before the commit leaves nothing, and a
// second copy of a job stores nothing.
func (w *InferWorker) store(ctx context.Context, job *river.Job[InferArgs], run queries.RunBeginRow, slot dispatch.Slot, found []inference.Instance, elapsed time.Duration) error {
	ids := w.labels.ids(ctx)
	n := len(found)
	p := queries.RunCompleteParams{
		ImageID: job.Args.ImageID, ModelID: job.Args.ModelID, Height: run.Height, Width: run.Width, Endpoint: &slot.BaseURL,
		Ids: make([]uuid.UUID, n), LabelIds: make([]uuid.UUID, n), Scores: make([]float32, n),
		Xs: make([]int32, n), Ys: make([]int32, n), Ws: make([]int32, n), Hs: make([]int32, n),
		Areas: make([]int32, n), Counts: make([]string, n),
	}
	for i, in := range found {
		label, ok := ids[in.Label]
		if !ok {
			return fmt.Errorf("label %q vanished from the taxonomy", in.Label)
		}
		id, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("error making proposal id: %w", err)
		}
		p.Ids[i], p.LabelIds[i], p.Scores[i] = id, label, in.Score
		p.Xs[i], p.Ys[i], p.Ws[i], p.Hs[i] = int32(in.BBox[0]), int32(in.BBox[1]), int32(in.BBox[2]), int32(in.BBox[3])
		p.Areas[i], p.Counts[i] = int32(in.Area), in.Mask.Counts
	}
	count, ms := int32(n), int32(elapsed.Milliseconds())
	p.Instances, p.LatencyMs = &count, &ms
	// Completing the run is what makes the work done: River's own
	// completion of the job follows, and should this process die before
	// it, the job runs again, finds its run ended and stores nothing.
	switch {
	case job.Args.EvaluationID != uuid.Nil:
		// An evaluation's image has settled long ago: no committee to
		// measure, and one round trip suffices.
		_, err := w.q.RunCompleteAndSettle(ctx, w.pool, p, lifecycle.ReasonNoProposals)
		return err
	case run.Runs < 2 && !run.Prompts:
		// One model, no committee, no interactive model to prepare the
		// image for: one round trip, which also says whether a model
		// enabled since this run began added a run that ended meanwhile;
		// then the committee is measured right after.
		done, committee, err := w.q.RunCompleteAndSettleCommittee(ctx, w.pool, p, lifecycle.ReasonNoProposals)
		if err != nil || done == 0 || committee < 2 {
			return err
		}
		return pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
			return review.RecordModelAgreement(ctx, tx, w.q, job.Args.ImageID)
		})
	case run.Runs < 2:
		// The same in a transaction that also queues the preparation
		// for prompts of the image it sends to review.
		return pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
			done, committee, err := w.q.RunCompleteAndSettleCommittee(ctx, tx, p, lifecycle.ReasonNoProposals)
			if err != nil || done == 0 {
				return err
			}
			if committee >= 2 {
				if err := review.RecordModelAgreement(ctx, tx, w.q, job.Args.ImageID); err != nil {
					return err
				}
			}
			return w.reviewable(ctx, tx, job.Args)
		})
	default:
		// The committee's agreement is stored in the transaction that
		// sends the image to review, so the queue never serves it without.
		return pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
			done, err := w.q.RunCompleteAndSettle(ctx, tx, p, lifecycle.ReasonNoProposals)
			if err != nil || done == 0 {
				return err
			}
			if err := review.RecordModelAgreement(ctx, tx, w.q, job.Args.ImageID); err != nil {
				return err
			}
			return w.reviewable(ctx, tx, job.Args)
		})
	}
}

// reviewable queues, in tx, the preparation for prompts of an image that
// the run sends to review (lifecycle.Reviewable): the image enters the
// queue with its job or not at all.
func (w *InferWorker) reviewable(ctx context.Context, tx pgx.Tx, a InferArgs) error {
	if a.EvaluationID != uuid.Nil {
		return nil
	}
	rc, err := river.ClientFromContextSafely[pgx.Tx](ctx)
	if err != nil {
		// Not run by River (a test calling Work): the lease prepares it.
		w.logger.WarnContext(ctx, "preparation for prompts of an image sent to review not queued; its lease does it", "image_id", a.ImageID, "error", err)
		return nil
	}
	return lifecycle.Reviewable(ctx, tx, a.ImageID, PreparePrompts(rc, tx))
}

// fail ends the run for good, with a reason people can read, and settles
// the image.
func (w *InferWorker) fail(ctx context.Context, job *river.Job[InferArgs], kind, msg string, endpoint *string) error {
	msg = clipText(msg)
	a := job.Args
	return pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		if _, err := w.q.ImageGetForUpdate(ctx, tx, a.ImageID); err != nil {
			return fmt.Errorf("error locking image: %w", err)
		}
		if err := w.q.RunFail(ctx, tx, queries.RunFailParams{
			ImageID: a.ImageID, ModelID: a.ModelID, ErrorKind: &kind, LastError: &msg, Endpoint: endpoint,
		}); err != nil {
			return fmt.Errorf("error recording run: %w", err)
		}
		if err := w.q.ImageSettle(ctx, tx, queries.ImageSettleParams{ImageID: a.ImageID, FailedReason: lifecycle.ReasonNoProposals}); err != nil {
			return fmt.Errorf("error moving image on: %w", err)
		}
		if a.EvaluationID != uuid.Nil {
			return nil
		}
		if err := review.RecordModelAgreement(ctx, tx, w.q, a.ImageID); err != nil {
			return err
		}
		return w.reviewable(ctx, tx, a)
	})
}

func clipText(s string) string {
	if len(s) > 1000 {
		return s[:1000] + "…"
	}
	return s
}
