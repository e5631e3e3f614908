package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/imaging/imagingtest"
	"github.com/deepimageshub/imagehub/worker"
)

// committeeWorld has two enabled models served by the project's worker in
// synthetic mode (each proposes the middle half of a photo): "hinted"
// labels it with the photo's first label, "blind" is not given the labels
// and calls it "object". A photo labelled dog gets a dog and an object in
// the same place (no match: agreement 0); a photo labelled object gets two
// identical objects (agreement 1).
type committeeWorld struct {
	tb          *testBundle
	admin, rev  *client
	contributor *client
}

func newCommitteeWorld(t *testing.T) *committeeWorld {
	t.Helper()
	tb := setup(t)
	w := &committeeWorld{tb: tb}
	w.admin, _ = tb.userWithRole(t, "admin@example.com", auth.RoleAdmin)
	w.rev, _ = tb.userWithRole(t, "rev@example.com", auth.RoleReviewer)
	w.contributor, _ = tb.userWithRole(t, "ann@example.com", auth.RoleContributor)
	for _, name := range []string{"hinted", "blind"} {
		srv := httptest.NewServer(worker.New(worker.Config{Model: name, Synthetic: true, Capacity: 2}))
		t.Cleanup(srv.Close)
		res := w.admin.json(http.MethodPost, "/api/v1/models", map[string]any{"name": name, "version": "1",
			"endpoints": []string{srv.URL}, "capacity": 2, "enabled": true})
		require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	}
	// What a model that declares no LABEL_HINTS input would have been
	// found to be at its check.
	_, err := tb.pool.Exec(context.Background(), `UPDATE models SET label_hints = false WHERE name = 'blind'`)
	require.NoError(t, err)
	return w
}

// upload sends one photo with label and waits until it awaits review.
func (w *committeeWorld) upload(t *testing.T, seed uint64, label string) string {
	t.Helper()
	up := w.contributor.upload([]file{{"p.jpg", imagingtest.JPEG(imagingtest.Photo(320, 240, seed))}}, map[string][]string{"labels": {label}})
	require.Equal(t, http.StatusCreated, up.StatusCode, "%s", up.body)
	id := up.json(t)["results"].([]any)[0].(map[string]any)["image"].(map[string]any)["id"].(string)
	deadline := time.Now().Add(60 * time.Second)
	for {
		img := w.contributor.get("/api/v1/images/" + id).json(t)
		if img["status"] == "awaiting_review" {
			require.Len(t, img["proposals"], 2, "one proposal per model")
			return id
		}
		require.True(t, time.Now().Before(deadline), "not awaiting review: %v", img)
		time.Sleep(100 * time.Millisecond)
	}
}

func (w *committeeWorld) agreement(t *testing.T, image string) (*float64, map[string]float64) {
	t.Helper()
	ctx := context.Background()
	var a *float64
	require.NoError(t, w.tb.pool.QueryRow(ctx,
		`SELECT model_agreement::float8 FROM review_items WHERE image_id = $1 AND kind = 'first'`, image).Scan(&a))
	rows, err := w.tb.pool.Query(ctx, `SELECT l.name, m.agreement::float8 FROM model_agreements m JOIN labels l ON l.id = m.label_id WHERE m.image_id = $1`, image)
	require.NoError(t, err)
	defer rows.Close()
	by := map[string]float64{}
	for rows.Next() {
		var l string
		var v float64
		require.NoError(t, rows.Scan(&l, &v))
		by[l] = v
	}
	require.NoError(t, rows.Err())
	return a, by
}

// TestCommitteeAgreement: two models propose for the same photos through
// the ordinary dispatch; their agreement is stored when each photo settles
// for review, and the queue serves the photo they disagree on first
// although it came later.
func TestCommitteeAgreement(t *testing.T) {
	t.Parallel()
	w := newCommitteeWorld(t)
	agree := w.upload(t, 1, "object")
	disagree := w.upload(t, 2, "dog")

	a, by := w.agreement(t, agree)
	require.NotNil(t, a)
	require.InDelta(t, 1, *a, 1e-6)
	require.Equal(t, map[string]float64{"object": 1}, by)
	a, by = w.agreement(t, disagree)
	require.NotNil(t, a)
	require.InDelta(t, 0, *a, 1e-6, "a dog and an object never match")
	require.Equal(t, map[string]float64{"dog": 0, "object": 0}, by)

	status, item := next(t, w.rev)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, disagree, item["image"].(map[string]any)["id"], "the models disagree on it: first")
	status, item = next(t, w.rev)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, agree, item["image"].(map[string]any)["id"])
}
