package webhook

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/dbtest"
	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/queries"
)

// receiver is a webhook receiver on a real HTTP server: it answers each
// request with the next of its answers (the last one from then on) and
// keeps what it received.
type receiver struct {
	srv    *httptest.Server
	secret string

	mu       sync.Mutex
	answers  []func(w http.ResponseWriter, r *http.Request)
	received []received
}

type received struct {
	body     []byte
	header   http.Header
	verified bool
}

func newReceiver(t *testing.T, secret string, answers ...func(w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{secret: secret, answers: answers}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ok := Verify(rc.secret, r.Header.Get(HeaderSignature), r.Header.Get(HeaderTimestamp), body, time.Now(), 5*time.Minute)
		rc.mu.Lock()
		rc.received = append(rc.received, received{body: body, header: r.Header.Clone(), verified: ok})
		answer := rc.answers[min(len(rc.received), len(rc.answers))-1]
		rc.mu.Unlock()
		answer(w, r)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) got() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.received...)
}

func status(code int) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(code) }
}

// hang answers nothing until the hub gives up on the request.
func hang(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

type testBundle struct {
	pool *pgxpool.Pool
	// river queues the deliveries of emitted events (insert only; start
	// runs a client that works them).
	river *river.Client[pgx.Tx]
	svc   *Service
	set   Settings
	q     *queries.Queries
	user  uuid.UUID
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	pool := dbtest.NewPool(t)
	var user uuid.UUID
	require.NoError(t, pool.QueryRow(context.Background(),
		`INSERT INTO users (email, name, role, password_hash) VALUES ('admin@example.com', 'Admin', 'admin', 'x') RETURNING id`).Scan(&user))
	inserter, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	require.NoError(t, err)
	return &testBundle{
		pool: pool, river: inserter, svc: NewService(pool, inserter, true), q: queries.New(), user: user,
		set: Settings{
			BaseURL: "https://hub.example.com/", Timeout: 300 * time.Millisecond, MaxAttempts: 5,
			Backoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
			DisableAfterFailures: 20, DisableAfter: 0, AllowPrivate: true,
		},
	}
}

// start runs a River client that works deliveries, stopped at cleanup.
func (b *testBundle) start(t *testing.T) *river.Client[pgx.Tx] {
	t.Helper()
	workers := river.NewWorkers()
	require.NoError(t, river.AddWorkerSafely(workers, NewWorker(b.pool, slog.New(slog.NewTextHandler(io.Discard, nil)), b.set)))
	rc, err := river.NewClient(riverpgxv5.New(b.pool), &river.Config{
		Queues:            map[string]river.QueueConfig{Queue: {MaxWorkers: 5}},
		Workers:           workers,
		FetchPollInterval: 20 * time.Millisecond,
		FetchCooldown:     5 * time.Millisecond,
		Logger:            slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	require.NoError(t, rc.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = rc.Stop(ctx)
	})
	return rc
}

func (b *testBundle) endpoint(t *testing.T, rc *receiver, events ...string) queries.WebhookEndpoint {
	t.Helper()
	if len(events) == 0 {
		events = []string{string(ImageAccepted)}
	}
	e, secret, err := b.svc.Create(context.Background(), b.user, NewEndpoint{URL: rc.srv.URL + "/hook", Events: events, Secret: &rc.secret})
	require.NoError(t, err)
	require.Equal(t, rc.secret, secret)
	return e
}

// emit commits one event (or rolls it back) and returns its object.
func (b *testBundle) emit(t *testing.T, ev Event, commit bool) Object {
	t.Helper()
	obj := Image(uuid.New())
	ctx := context.Background()
	tx, err := b.pool.Begin(ctx)
	require.NoError(t, err)
	require.NoError(t, Emit(ctx, tx, b.river, ev, obj))
	if commit {
		require.NoError(t, tx.Commit(ctx))
	} else {
		require.NoError(t, tx.Rollback(ctx))
	}
	return obj
}

// settled waits until every delivery of the endpoint has ended and
// returns them with their tries.
func (b *testBundle) settled(t *testing.T, endpoint uuid.UUID, n int) []Delivery {
	t.Helper()
	var ds []Delivery
	require.Eventually(t, func() bool {
		var err error
		ds, err = b.svc.Deliveries(context.Background(), endpoint)
		require.NoError(t, err)
		if len(ds) != n {
			return false
		}
		for _, d := range ds {
			if d.State == StatePending {
				return false
			}
		}
		return true
	}, 10*time.Second, 20*time.Millisecond)
	return ds
}

func TestDeliverySignedRetriedUntilAccepted(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, "a-secret-of-the-receiver", status(500), status(500), status(204))
	e := b.endpoint(t, rc)
	b.start(t)
	obj := b.emit(t, ImageAccepted, true)

	ds := b.settled(t, e.ID, 1)
	d := ds[0]
	require.Equal(t, StateDelivered, d.State)
	require.EqualValues(t, 3, d.Attempts)
	require.Len(t, d.Tries, 3)
	for i, want := range []int32{500, 500, 204} {
		require.EqualValues(t, i+1, d.Tries[i].Attempt)
		require.NotNil(t, d.Tries[i].StatusCode)
		require.Equal(t, want, *d.Tries[i].StatusCode)
	}
	require.Contains(t, *d.Tries[0].Error, "500")
	require.Nil(t, d.Tries[2].Error)

	got := rc.got()
	require.Len(t, got, 3, "delivered once: no request after the 2xx")
	var p Payload
	for _, r := range got {
		require.True(t, r.verified, "signature and timestamp check out")
		require.Equal(t, string(ImageAccepted), r.header.Get(HeaderEvent))
		require.Equal(t, d.ID.String(), r.header.Get(HeaderDelivery))
		require.Equal(t, "application/json", r.header.Get("Content-Type"))
		require.NoError(t, json.Unmarshal(r.body, &p))
		require.Equal(t, d.ID.String(), p.ID, "the same delivery id on every try")
	}
	require.Equal(t, string(ImageAccepted), p.Event)
	require.Equal(t, PayloadObject{Type: "image", ID: obj.ID, URL: "https://hub.example.com/api/v1/images/" + obj.ID}, p.Object)
	require.WithinDuration(t, time.Now(), p.Time, time.Minute)

	// A wrong secret does not verify.
	r := got[0]
	require.False(t, Verify("another-secret-entirely", r.header.Get(HeaderSignature), r.header.Get(HeaderTimestamp), r.body, time.Now(), time.Minute))
	// Nor does an old timestamp (a replay).
	require.False(t, Verify(rc.secret, r.header.Get(HeaderSignature), r.header.Get(HeaderTimestamp), r.body, time.Now().Add(time.Hour), time.Minute))
}

func TestDeliveryTimesOutAndRetries(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.set.Timeout = 150 * time.Millisecond
	rc := newReceiver(t, "a-secret-of-the-receiver", hang, status(200))
	e := b.endpoint(t, rc)
	b.start(t)
	b.emit(t, ImageAccepted, true)

	d := b.settled(t, e.ID, 1)[0]
	require.Equal(t, StateDelivered, d.State)
	require.Len(t, d.Tries, 2)
	require.Nil(t, d.Tries[0].StatusCode, "no answer came")
	require.Contains(t, *d.Tries[0].Error, "no answer within 150ms")
	require.GreaterOrEqual(t, d.Tries[0].DurationMs, int32(140))
	require.Less(t, d.Tries[0].DurationMs, int32(2000))
	require.EqualValues(t, 200, *d.Tries[1].StatusCode)
}

func TestRolledBackEventIsNeverSent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, "a-secret-of-the-receiver", status(200))
	e := b.endpoint(t, rc)
	b.start(t)
	b.emit(t, ImageAccepted, false)
	// One committed after it: once it has arrived, the rolled-back one
	// would have too.
	after := b.emit(t, ImageAccepted, true)

	ds := b.settled(t, e.ID, 1)
	require.Equal(t, StateDelivered, ds[0].State)
	got := rc.got()
	require.Len(t, got, 1)
	var p Payload
	require.NoError(t, json.Unmarshal(got[0].body, &p))
	require.Equal(t, after.ID, p.Object.ID)
	var jobs int
	require.NoError(t, b.pool.QueryRow(context.Background(), `SELECT count(*) FROM river_job WHERE kind = 'webhook_deliver'`).Scan(&jobs))
	require.Equal(t, 1, jobs)
}

func TestEventOutlivesTheHubThatCommittedIt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rc := newReceiver(t, "a-secret-of-the-receiver", status(200))
	e := b.endpoint(t, rc)
	// The hub that commits the event stops before it works the job.
	first := b.start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, first.Stop(ctx))
	b.emit(t, ReviewSubmitted, false) // an event nobody asked for is not recorded
	b.emit(t, ImageAccepted, true)
	time.Sleep(100 * time.Millisecond)
	require.Empty(t, rc.got())

	// A new one finds the job in the database.
	b.start(t)
	d := b.settled(t, e.ID, 1)[0]
	require.Equal(t, StateDelivered, d.State)
	// Give a second delivery the time to happen, if there were one.
	time.Sleep(200 * time.Millisecond)
	require.Len(t, rc.got(), 1, "delivered exactly once")
}

func TestEndpointDisabledAfterARunOfFailures(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.set.MaxAttempts, b.set.DisableAfterFailures = 2, 3
	rc := newReceiver(t, "a-secret-of-the-receiver", status(503))
	e := b.endpoint(t, rc)
	b.start(t)
	// The first delivery fails twice and gives up, the endpoint still on.
	b.emit(t, ImageAccepted, true)
	b.settled(t, e.ID, 1)
	got, err := b.svc.Get(context.Background(), e.ID)
	require.NoError(t, err)
	require.True(t, got.Enabled)
	b.emit(t, ImageAccepted, true)

	ds := b.settled(t, e.ID, 2)
	tries := 0
	for _, d := range ds {
		require.Equal(t, StateFailed, d.State)
		tries += len(d.Tries)
	}
	// The second's first failure is the third in a row: it disables the
	// endpoint, and the delivery then ends without another try.
	require.Equal(t, 3, tries)
	got, err = b.svc.Get(context.Background(), e.ID)
	require.NoError(t, err)
	require.False(t, got.Enabled)
	require.Contains(t, *got.DisabledReason, "after 3 failed deliveries")
	off, err := b.svc.Disabled(context.Background())
	require.NoError(t, err)
	require.Len(t, off, 1)
	require.Equal(t, e.ID, off[0].ID)

	// Send again is refused while it is disabled; enabled, it delivers.
	_, err = b.svc.Redeliver(context.Background(), e.ID, ds[0].ID)
	pe, ok := problem.As(err)
	require.True(t, ok)
	require.Equal(t, http.StatusConflict, pe.Status)
	on := true
	got, err = b.svc.Update(context.Background(), e.ID, Change{Enabled: &on})
	require.NoError(t, err)
	require.True(t, got.Enabled)
	require.Zero(t, got.ConsecutiveFailures)
	rc.mu.Lock()
	rc.answers = []func(http.ResponseWriter, *http.Request){status(200)}
	rc.received = nil
	rc.mu.Unlock()
	_, err = b.svc.Redeliver(context.Background(), e.ID, ds[0].ID)
	require.NoError(t, err)
	ds = b.settled(t, e.ID, 2)
	for _, d := range ds {
		if d.ID == ds[0].ID {
			require.Equal(t, StateDelivered, d.State)
		}
	}
	require.Len(t, rc.got(), 1)
	off, err = b.svc.Disabled(context.Background())
	require.NoError(t, err)
	require.Empty(t, off)
}

func TestPrivateAddressesRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	strict := NewService(b.pool, b.river, false)
	for _, u := range []string{"http://127.0.0.1:9/x", "http://localhost/x", "http://10.1.2.3/", "http://169.254.169.254/latest", "http://[::1]/", "http://100.64.0.1/"} {
		_, _, err := strict.Create(context.Background(), b.user, NewEndpoint{URL: u, Events: []string{string(ImageAccepted)}})
		pe, ok := problem.As(err)
		require.True(t, ok, u)
		require.Equal(t, "url", pe.Field, u)
	}
	_, _, err := strict.Create(context.Background(), b.user, NewEndpoint{URL: "https://hooks.example.com/x", Events: []string{string(ImageAccepted)}})
	require.NoError(t, err)

	// A name that resolves to a private address is refused when dialled.
	rc := newReceiver(t, "a-secret-of-the-receiver", status(200))
	e := b.endpoint(t, rc)
	_, err = b.pool.Exec(context.Background(), `UPDATE webhook_endpoints SET url = replace(url, '127.0.0.1', 'localhost') WHERE id = $1`, e.ID)
	require.NoError(t, err)
	b.set.AllowPrivate, b.set.MaxAttempts = false, 1
	b.start(t)
	b.emit(t, ImageAccepted, true)
	d := b.settled(t, e.ID, 1)[0]
	require.Equal(t, StateFailed, d.State)
	require.Contains(t, *d.Tries[0].Error, "private")
	require.Empty(t, rc.got())
}

func TestBadEndpointsRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	short := "short"
	for _, tc := range []struct {
		in    NewEndpoint
		field string
	}{
		{NewEndpoint{URL: "", Events: []string{"image.accepted"}}, "url"},
		{NewEndpoint{URL: "ftp://example.com/x", Events: []string{"image.accepted"}}, "url"},
		{NewEndpoint{URL: "not a url", Events: []string{"image.accepted"}}, "url"},
		{NewEndpoint{URL: "https://example.com/x"}, "events"},
		{NewEndpoint{URL: "https://example.com/x", Events: []string{"image.accepted", "image.exploded"}}, "events[1]"},
		{NewEndpoint{URL: "https://example.com/x", Events: []string{"image.accepted"}, Secret: &short}, "secret"},
	} {
		_, _, err := b.svc.Create(context.Background(), b.user, tc.in)
		pe, ok := problem.As(err)
		require.True(t, ok, tc.field)
		require.Equal(t, http.StatusBadRequest, pe.Status)
		require.Equal(t, tc.field, pe.Field)
	}
	list, err := b.svc.List(context.Background())
	require.NoError(t, err)
	require.Empty(t, list)

	// A secret is made when none is given, and events are deduplicated.
	e, secret, err := b.svc.Create(context.Background(), b.user, NewEndpoint{URL: "https://example.com/x", Events: []string{"image.accepted", "image.accepted"}})
	require.NoError(t, err)
	require.Len(t, secret, len("whsec_")+48)
	require.Equal(t, []string{"image.accepted"}, e.Events)
}

func TestBackoffDoublesUpToItsCap(t *testing.T) {
	t.Parallel()
	var got []time.Duration
	for a := 1; a <= 6; a++ {
		got = append(got, backoff(time.Second, 10*time.Second, a))
	}
	require.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}, got)
}
