package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/deepimageshub/imagehub/queries"
)

// Queue is the River queue of deliveries, apart so that slow receivers
// never hold up the hub's own work.
const Queue = "webhooks"

// jobAttempts is the cap River is told; Settings.MaxAttempts, which the
// inserting code does not know, ends a delivery's job sooner.
const jobAttempts = 100

// Delivery states (webhook_deliveries.state).
const (
	StatePending   = "pending"
	StateDelivered = "delivered"
	StateFailed    = "failed"
)

// DeliverArgs sends one delivery.
type DeliverArgs struct {
	DeliveryID uuid.UUID `json:"delivery_id"`
}

// Kind is the job kind.
func (DeliverArgs) Kind() string { return "webhook_deliver" }

// InsertOpts puts deliveries on their queue.
func (DeliverArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: Queue, MaxAttempts: jobAttempts}
}

// Settings tune deliveries (config WEBHOOK_*).
type Settings struct {
	// BaseURL makes the objects' URLs absolute.
	BaseURL string
	// Timeout bounds one try, from dialling to the end of the answer.
	Timeout time.Duration
	// MaxAttempts tries of a delivery before it fails.
	MaxAttempts int
	// Backoff is the wait before the second try; it doubles with each
	// further one, up to MaxBackoff.
	Backoff, MaxBackoff time.Duration
	// An endpoint is disabled once DisableAfterFailures tries in a row
	// have failed and the first of them is at least DisableAfter old.
	DisableAfterFailures int
	DisableAfter         time.Duration
	// AllowPrivate lets endpoints be on loopback and private networks
	// (tests, a hub and its receivers on one private network).
	AllowPrivate bool
}

// Worker runs DeliverArgs.
type Worker struct {
	river.WorkerDefaults[DeliverArgs]
	pool   *pgxpool.Pool
	q      *queries.Queries
	logger *slog.Logger
	set    Settings
	http   *http.Client
}

// NewWorker makes the delivery worker.
func NewWorker(pool *pgxpool.Pool, logger *slog.Logger, set Settings) *Worker {
	return &Worker{pool: pool, q: queries.New(), logger: logger, set: set, http: newHTTPClient(set.Timeout, set.AllowPrivate)}
}

// Timeout is the try's own (Settings.Timeout) and room to read the
// delivery before it; the try is recorded after it whatever the job's
// deadline (record). River rescues the job of a hub that died mid-try
// once both this and JOB_RESCUE_AFTER have passed, so it is kept short.
func (w *Worker) Timeout(*river.Job[DeliverArgs]) time.Duration {
	return w.set.Timeout + 5*time.Second
}

// NextRetry is Settings' backoff: Backoff, doubling, capped at MaxBackoff.
func (w *Worker) NextRetry(job *river.Job[DeliverArgs]) time.Time {
	return time.Now().Add(backoff(w.set.Backoff, w.set.MaxBackoff, job.Attempt))
}

func backoff(base, maxWait time.Duration, attempt int) time.Duration {
	d := base
	for i := 1; i < attempt && d < maxWait; i++ {
		d *= 2
	}
	return min(d, maxWait)
}

// Work tries the delivery once and records the try. A delivery already
// delivered is not sent again (a job run twice, say after a crash between
// the answer and the record, is the one case where a receiver may see a
// delivery twice: it dedupes on the id).
func (w *Worker) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	row, err := w.q.WebhookDeliveryGet(ctx, w.pool, job.Args.DeliveryID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // its endpoint was deleted
	}
	if err != nil {
		return fmt.Errorf("error reading webhook delivery: %w", err)
	}
	d := row.WebhookDelivery
	if d.State != StatePending {
		return nil
	}
	if !row.Enabled {
		msg := "the endpoint was disabled before this delivery was sent"
		return w.q.WebhookDeliveryRecord(ctx, w.pool, queries.WebhookDeliveryRecordParams{
			ID: d.ID, Attempts: d.Attempts, State: StateFailed, LastStatus: d.LastStatus, LastError: &msg,
			LastAttemptAt: d.LastAttemptAt, LastDurationMs: d.LastDurationMs,
		})
	}
	body, err := Body(d, w.set.BaseURL)
	if err != nil {
		return err
	}
	started := time.Now()
	status, sendErr := w.send(ctx, row.Url, row.Secret, d, body)
	took := time.Since(started)
	if sendErr == nil && (status < 200 || status > 299) {
		sendErr = fmt.Errorf("the endpoint answered %d", status)
	}
	final := sendErr != nil && job.Attempt >= w.set.MaxAttempts
	if err := w.record(ctx, d, started, took, status, sendErr, final); err != nil {
		return err
	}
	switch {
	case sendErr == nil:
		return nil
	case final:
		return river.JobCancel(sendErr)
	default:
		return sendErr
	}
}

// send POSTs body to url, signed; status is 0 when no answer came.
func (w *Worker) send(ctx context.Context, url, secret string, d queries.WebhookDelivery, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, w.set.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("error making the request: %w", err)
	}
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "imagehub-webhooks/1")
	req.Header.Set(HeaderEvent, d.Event)
	req.Header.Set(HeaderDelivery, d.ID.String())
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, Sign(secret, ts, body))
	res, err := w.http.Do(req)
	if err != nil {
		// The try's deadline, the client's and the transport's wait for
		// the headers are all Timeout: whichever fires first, on a busy
		// machine even before ctx's own timer has run, it is no answer.
		var ne net.Error
		if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
			return 0, fmt.Errorf("no answer within %s", w.set.Timeout)
		}
		return 0, err
	}
	defer res.Body.Close()
	// The answer is read (a little of it) so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	return res.StatusCode, nil
}

// record writes a try, the delivery's state and the endpoint's run of
// failures in one transaction, disabling the endpoint when the run is long
// enough.
func (w *Worker) record(ctx context.Context, d queries.WebhookDelivery, started time.Time, took time.Duration, status int, sendErr error, final bool) error {
	ctx = context.WithoutCancel(ctx) // a try that used up the job's time is still recorded
	attempt := d.Attempts + 1
	ms := int32(min(took.Milliseconds(), 1<<30))
	var code *int32
	if status != 0 {
		c := int32(status)
		code = &c
	}
	var msg *string
	state := StateDelivered
	if sendErr != nil {
		m := clip(sendErr.Error())
		msg = &m
		state = StatePending
		if final {
			state = StateFailed
		}
	}
	return pgx.BeginFunc(ctx, w.pool, func(tx pgx.Tx) error {
		if err := w.q.WebhookAttemptInsert(ctx, tx, queries.WebhookAttemptInsertParams{
			DeliveryID: d.ID, Attempt: attempt, StartedAt: started, DurationMs: ms, StatusCode: code, Error: msg,
		}); err != nil {
			return fmt.Errorf("error recording a webhook try: %w", err)
		}
		if err := w.q.WebhookDeliveryRecord(ctx, tx, queries.WebhookDeliveryRecordParams{
			ID: d.ID, Attempts: attempt, State: state, LastStatus: code, LastError: msg,
			LastAttemptAt: &started, LastDurationMs: &ms,
		}); err != nil {
			return fmt.Errorf("error recording a webhook delivery: %w", err)
		}
		if sendErr == nil {
			if err := w.q.WebhookEndpointSucceeded(ctx, tx, d.EndpointID); err != nil {
				return fmt.Errorf("error recording a webhook success: %w", err)
			}
			return nil
		}
		reason := fmt.Sprintf("Disabled after %d failed deliveries in a row; the last: %s", w.set.DisableAfterFailures, clip(sendErr.Error()))
		r, err := w.q.WebhookEndpointFailed(ctx, tx, queries.WebhookEndpointFailedParams{
			ID: d.EndpointID, MaxFailures: int32(w.set.DisableAfterFailures),
			MinSeconds: w.set.DisableAfter.Seconds(), Reason: reason,
		})
		if err != nil {
			return fmt.Errorf("error recording a webhook failure: %w", err)
		}
		if !r.Enabled {
			w.logger.WarnContext(ctx, "webhook endpoint disabled", "endpoint_id", d.EndpointID, "failures", r.ConsecutiveFailures)
		}
		return nil
	})
}

// clip keeps an error message short enough to show in a table.
func clip(s string) string {
	const maxLen = 500
	if len(s) <= maxLen {
		return s
	}
	s = s[:maxLen]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}
