package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/imaging/imagingtest"
	"github.com/deepimageshub/imagehub/webhook"
)

// hookReceiver is a webhook receiver as docs/webhooks.md asks for: it
// verifies each request and acknowledges it (204), handling a delivery id
// once however often it comes. Its first request hangs instead, until the
// hub that sent it is gone.
type hookReceiver struct {
	srv    *httptest.Server
	secret string
	first  chan time.Time // when the first request came

	mu       sync.Mutex
	requests []webhook.Payload // every request, the hanging one included
	handled  map[string]int    // acknowledged requests by delivery id
	bad      []string
}

func newHookReceiver(t *testing.T, secret string) *hookReceiver {
	rc := &hookReceiver{secret: secret, first: make(chan time.Time, 1), handled: map[string]int{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var p webhook.Payload
		rc.mu.Lock()
		switch {
		case !webhook.Verify(rc.secret, r.Header.Get(webhook.HeaderSignature), r.Header.Get(webhook.HeaderTimestamp), body, time.Now(), 5*time.Minute):
			rc.bad = append(rc.bad, "a request whose signature does not verify")
		case json.Unmarshal(body, &p) != nil || p.ID == "" || p.ID != r.Header.Get(webhook.HeaderDelivery):
			rc.bad = append(rc.bad, "a body without the delivery id of its header: "+string(body))
		}
		rc.requests = append(rc.requests, p)
		n := len(rc.requests)
		rc.mu.Unlock()
		if n == 1 {
			rc.first <- time.Now()
			<-r.Context().Done() // the connection drops with the hub
			return
		}
		rc.mu.Lock()
		rc.handled[p.ID]++
		rc.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *hookReceiver) state() ([]webhook.Payload, map[string]int, []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	handled := map[string]int{}
	for k, v := range rc.handled {
		handled[k] = v
	}
	return append([]webhook.Payload(nil), rc.requests...), handled, append([]string(nil), rc.bad...)
}

// TestWebhookSurvivesAKilledServe: `imagehub serve` is killed with SIGKILL
// while it sends a committed event (the receiver has the request and has
// not answered), and started again on the same database. As
// docs/webhooks.md promises, the event is not lost: River rescues the
// dead process's job and the restarted hub delivers it, under the same
// delivery id, so a receiver that handles each id once handles it once.
// The try that died with the process left no record.
func TestWebhookSurvivesAKilledServe(t *testing.T) {
	t.Parallel()
	const tryTimeout = time.Second
	h := newHub(t, map[string]string{
		"WEBHOOK_ALLOW_PRIVATE": "true", "WEBHOOK_TIMEOUT": tryTimeout.String(),
		"WEBHOOK_BACKOFF": "50ms", "WEBHOOK_MAX_BACKOFF": "1s",
		"JOB_TIMEOUT": "4s", "JOB_RESCUE_AFTER": "4s",
	})
	rc := newHookReceiver(t, "a-secret-of-the-receiver")
	srv := startServer(t, h.env())
	status, body, _ := call(t, "POST", srv.base+"/api/v1/webhooks", h.token, map[string]any{
		"url": rc.srv.URL + "/hook", "events": []string{"image.accepted"}, "secret": rc.secret})
	require.Equal(t, http.StatusCreated, status, "%v", body)
	endpoint := body["webhook"].(map[string]any)["id"].(string)

	image := uploadPhoto(t, srv.base, h.token, "p.jpg", imagingtest.JPEG(imagingtest.Photo(320, 240, 31)))
	var sentAt time.Time
	select {
	case sentAt = <-rc.first:
	case <-time.After(30 * time.Second):
		t.Fatalf("no delivery of image.accepted\n%s", srv.logs)
	}
	require.NoError(t, srv.cmd.Process.Kill())
	<-srv.done
	require.Less(t, time.Since(sentAt), tryTimeout, "the hub died during its try, not after it gave up")

	// A SIGKILLed River leader keeps its leadership until its lease lapses
	// (15 s); the row is removed as that lapse would remove it, so that the
	// restarted hub leads at once. The leader rescues running jobs when it
	// starts and every 30 s after, those older than JOB_RESCUE_AFTER and the
	// job's own timeout: the hub is restarted once both have passed.
	_, err := h.pool.Exec(context.Background(), "DELETE FROM river_leader")
	require.NoError(t, err)
	stuck := webhook.NewWorker(nil, nil, webhook.Settings{Timeout: tryTimeout}).Timeout(nil)
	time.Sleep(time.Until(sentAt.Add(max(stuck, 4*time.Second) + 200*time.Millisecond)))
	srv = startServer(t, h.env())

	deadline := time.Now().Add(15 * time.Second)
	for {
		_, handled, _ := rc.state()
		if len(handled) > 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "the event was lost with the killed hub\n%s", srv.logs)
		time.Sleep(50 * time.Millisecond)
	}
	// Room for a second delivery to arrive, were there one.
	time.Sleep(300 * time.Millisecond)
	requests, handled, bad := rc.state()
	require.Empty(t, bad)
	require.Len(t, handled, 1, "one delivery id acknowledged: %v", handled)
	for _, p := range requests {
		require.Equal(t, requests[0].ID, p.ID, "every try carries the delivery's id")
		require.Equal(t, "image.accepted", p.Event)
		require.Equal(t, image, p.Object.ID)
	}
	require.Contains(t, handled, requests[0].ID)

	status, body, _ = call(t, "GET", srv.base+"/api/v1/webhooks/"+endpoint+"/deliveries", h.token, nil)
	require.Equal(t, http.StatusOK, status, "%v", body)
	items := body["items"].([]any)
	require.Len(t, items, 1)
	d := items[0].(map[string]any)
	require.Equal(t, requests[0].ID, d["id"])
	require.Equal(t, "delivered", d["state"])
	require.EqualValues(t, 1, d["attempts"], "the try that died with the hub was never recorded: %v", d)
}
