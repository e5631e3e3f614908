package app

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/config"
	"github.com/deepimageshub/imagehub/webhook"
)

// hookReceiver is a webhook receiver on a real HTTP server.
type hookReceiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	secret string
	got    []webhook.Payload
	bad    int // deliveries whose signature did not verify
}

func newHookReceiver(t *testing.T) *hookReceiver {
	h := &hookReceiver{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if !webhook.Verify(h.secret, r.Header.Get(webhook.HeaderSignature), r.Header.Get(webhook.HeaderTimestamp), body, time.Now(), 5*time.Minute) {
			h.bad++
		}
		var p webhook.Payload
		_ = json.Unmarshal(body, &p)
		h.got = append(h.got, p)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) wait(t *testing.T, n int) []webhook.Payload {
	t.Helper()
	var got []webhook.Payload
	require.Eventually(t, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		got = append([]webhook.Payload(nil), h.got...)
		return len(got) >= n
	}, 20*time.Second, 20*time.Millisecond)
	return got
}

// TestWebhooks: an admin registers an endpoint through the API (bad input
// is refused naming the field, nothing stored), an accepted photo that
// brings its campaign to its target reaches the receiver as two signed
// events, the deliveries show on the API and the pages, and one can be sent
// again.
func TestWebhooks(t *testing.T) {
	t.Parallel()
	tb := setup(t, func(c *config.Config) {
		c.WebhookAllowPrivate = true
		c.WebhookTimeout = time.Second
		c.WebhookBackoff = 10 * time.Millisecond
		c.BaseURL = "http://hub.example.com" // http: an https one makes the cookies Secure
	})
	admin, _ := tb.userWithRole(t, "admin@example.com", auth.RoleAdmin)
	recv := newHookReceiver(t)

	for _, tc := range []struct {
		body  map[string]any
		field string
	}{
		{map[string]any{"url": "gopher://x", "events": []string{"image.accepted"}}, "url"},
		{map[string]any{"url": recv.srv.URL, "events": []string{"image.accepted", "image.melted"}}, "events[1]"},
		{map[string]any{"url": recv.srv.URL, "events": []string{}}, "events"},
		{map[string]any{"url": recv.srv.URL, "events": "image.accepted"}, "events"},
	} {
		res := admin.json(http.MethodPost, "/api/v1/webhooks", tc.body)
		require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s", res.body)
		_, field := res.apiError(t)
		require.Equal(t, tc.field, field)
	}
	require.Zero(t, tb.count(t, `SELECT count(*) FROM webhook_endpoints`))

	res := admin.json(http.MethodPost, "/api/v1/webhooks", map[string]any{
		"url": recv.srv.URL + "/hook", "events": []string{"image.accepted", "campaign.target_reached"}, "description": "CI",
	})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	created := res.json(t)
	secret := created["secret"].(string)
	require.Regexp(t, `^whsec_[0-9a-f]{48}$`, secret)
	recv.mu.Lock()
	recv.secret = secret
	recv.mu.Unlock()
	hook := created["webhook"].(map[string]any)
	id := hook["id"].(string)
	require.Equal(t, true, hook["enabled"])
	got := admin.get("/api/v1/webhooks/" + id)
	require.Equal(t, http.StatusOK, got.StatusCode)
	require.NotContains(t, string(got.body), secret, "the secret is shown once")
	list := admin.get("/api/v1/webhooks").json(t)["items"].([]any)
	require.Len(t, list, 1)
	require.NotContains(t, string(admin.get("/api/v1/webhooks").body), secret)

	res = admin.json(http.MethodPost, "/api/v1/campaigns", map[string]any{
		"title": "More bicycles", "labels": []string{"bicycle"}, "target_count": 1,
		"closes_at": time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339),
	})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	campaign := res.json(t)["campaign"].(map[string]any)["id"].(string)
	res = admin.upload(photos(1, 90), map[string][]string{"campaign_id": {campaign}, "labels": {"bicycle"}})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	image := res.json(t)["results"].([]any)[0].(map[string]any)["image"].(map[string]any)["id"].(string)

	ps := recv.wait(t, 2)
	sort.Slice(ps, func(i, j int) bool { return ps[i].Event < ps[j].Event })
	require.Equal(t, "campaign.target_reached", ps[0].Event)
	require.Equal(t, webhook.PayloadObject{Type: "campaign", ID: campaign, URL: "http://hub.example.com/api/v1/campaigns/" + campaign}, ps[0].Object)
	require.Equal(t, "image.accepted", ps[1].Event)
	require.Equal(t, webhook.PayloadObject{Type: "image", ID: image, URL: "http://hub.example.com/api/v1/images/" + image}, ps[1].Object)
	require.Zero(t, recv.bad, "every delivery is signed with the secret")
	camp := admin.get("/api/v1/campaigns/" + campaign)
	require.Equal(t, http.StatusOK, camp.StatusCode, "the object's URL answers")
	require.Equal(t, false, camp.json(t)["open"])

	var ds []any
	require.Eventually(t, func() bool {
		ds = admin.get("/api/v1/webhooks/" + id + "/deliveries").json(t)["items"].([]any)
		for _, d := range ds {
			if d.(map[string]any)["state"] != "delivered" {
				return false
			}
		}
		return len(ds) == 2
	}, 10*time.Second, 20*time.Millisecond)
	d := ds[0].(map[string]any)
	require.EqualValues(t, 1, d["attempts"])
	require.EqualValues(t, 200, d["last_status"])
	tries := d["tries"].([]any)
	require.Len(t, tries, 1)
	require.EqualValues(t, 200, tries[0].(map[string]any)["status_code"])

	// The endpoint's page lists them with a "send again" button, which
	// sends the same delivery again.
	doc := admin.get("/admin/webhooks/" + id).doc(t)
	require.Equal(t, 2, doc.Find("#deliveries tbody tr").Length())
	did := d["id"].(string)
	form := doc.Find("#delivery-" + did + " form")
	require.Equal(t, "/admin/webhooks/"+id+"/deliveries/"+did+"/redeliver", form.AttrOr("action", ""))
	require.Contains(t, form.Text(), "Send again")
	res = admin.form("/admin/webhooks/"+id+"/deliveries/"+did+"/redeliver", url.Values{})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "%s", res.body)
	ps = recv.wait(t, 3)
	require.Equal(t, did, ps[2].ID, "the same delivery, sent again")
	require.Equal(t, 1, admin.get("/admin/webhooks").doc(t).Find("#webhook-"+id).Length())

	// An endpoint disabled for failing is a notice on every admin page.
	res = admin.json(http.MethodPatch, "/api/v1/webhooks/"+id, map[string]any{"events": []string{"nope"}})
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
	_, field := res.apiError(t)
	require.Equal(t, "events[0]", field)
	_, err := tb.pool.Exec(context.Background(), `UPDATE webhook_endpoints SET enabled = false, disabled_reason = 'Disabled after 20 failed deliveries in a row' WHERE id = $1`, id)
	require.NoError(t, err)
	require.Contains(t, admin.get("/admin/users").doc(t).Find(".notice a").AttrOr("href", ""), "/admin/webhooks/"+id)
	res = admin.json(http.MethodPost, "/api/v1/webhooks/"+id+"/deliveries/"+did+"/redeliver", map[string]any{})
	require.Equal(t, http.StatusConflict, res.StatusCode, "disabled: enable it first")
	res = admin.json(http.MethodPatch, "/api/v1/webhooks/"+id, map[string]any{"enabled": true})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	require.Equal(t, true, res.json(t)["enabled"])
	require.Zero(t, admin.get("/admin/users").doc(t).Find(".notice").Length())

	res = admin.json(http.MethodDelete, "/api/v1/webhooks/"+id, map[string]any{})
	require.Equal(t, http.StatusNoContent, res.StatusCode)
	require.Equal(t, http.StatusNotFound, admin.get("/api/v1/webhooks/"+id).StatusCode)
	require.Zero(t, tb.count(t, `SELECT count(*) FROM webhook_deliveries`))
}

// recordEvents subscribes an endpoint to every event, so that a test of a
// flow can check which events the flow emitted (emitted): their delivery
// rows are written in the events' own transactions. Its deliveries go to a
// loopback port the hub refuses to dial, and their jobs wait for retries
// until the test ends.
func recordEvents(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	events := make([]string, len(webhook.Events))
	for i, e := range webhook.Events {
		events[i] = string(e)
	}
	_, err := pool.Exec(context.Background(), `INSERT INTO webhook_endpoints (url, events, secret) VALUES ('http://127.0.0.1:9/', $1, 'a-secret-for-tests')`, events)
	require.NoError(t, err)
}

// emitted lists the events recorded since recordEvents, each once, sorted.
func emitted(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	var out []string
	require.NoError(t, pool.QueryRow(context.Background(),
		`SELECT coalesce(array_agg(DISTINCT event ORDER BY event), '{}') FROM webhook_deliveries`).Scan(&out))
	return out
}
