package app

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/config"
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
	*datasetWorld
	tb          *testBundle
	rev         *client
	contributor *client
}

func newCommitteeWorld(t *testing.T, mods ...func(*config.Config)) *committeeWorld {
	t.Helper()
	// No blind second reviews unless mods ask for them: an image waiting
	// for one stays out of a version.
	tb := setup(t, append([]func(*config.Config){func(c *config.Config) { c.SecondReviewShare = 0 }}, mods...)...)
	dw := &datasetWorld{testBundle: tb}
	dw.admin, _ = tb.userWithRole(t, "admin@example.com", auth.RoleAdmin)
	dw.premium, _ = tb.userWithRole(t, "premium@example.com", auth.RolePremium)
	w := &committeeWorld{datasetWorld: dw, tb: tb}
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

// review submits the reviewer's next item keeping the proposals of the
// model named keep as they are and rejecting the others.
func (w *committeeWorld) review(t *testing.T, image, keep string) {
	t.Helper()
	status, item := next(t, w.rev)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, image, item["image"].(map[string]any)["id"])
	props := w.contributor.get("/api/v1/images/" + image).json(t)["proposals"].([]any)
	instances, rejected := []any{}, []any{}
	for _, p := range props {
		p := p.(map[string]any)
		if p["model"].(map[string]any)["name"] == keep {
			instances = append(instances, map[string]any{"proposal_id": p["id"], "label": p["label"], "mask": p["mask"]})
		} else {
			rejected = append(rejected, p["id"])
		}
	}
	res := w.rev.json(http.MethodPost, "/api/v1/review/"+item["item_id"].(string),
		map[string]any{"instances": instances, "rejected_proposals": rejected})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
}

// TestCommitteeInsights: the insights show per class how often the models
// agreed and what reviewers kept of each model's proposals.
func TestCommitteeInsights(t *testing.T) {
	t.Parallel()
	w := newCommitteeWorld(t)
	agree := w.upload(t, 1, "object")
	disagree := w.upload(t, 2, "dog")
	// The dog is right; of the two identical objects the blind model's is kept.
	w.review(t, disagree, "hinted")
	w.review(t, agree, "blind")

	id := w.createDataset(t, map[string]any{"name": "committee", "splits": map[string]float64{"train": 1, "val": 0, "test": 0}})
	w.publish(t, id)
	items := w.admin.get("/api/v1/insights/classes?dataset_id=" + id).json(t)["items"].([]any)
	by := map[string]map[string]any{}
	for _, it := range items {
		it := it.(map[string]any)
		by[it["label"].(string)] = it
	}
	require.Contains(t, by, "dog")
	require.Contains(t, by, "object")
	require.Equal(t, map[string]any{"images": 1.0, "agreed": 0.0, "agreed_share": 0.0, "mean_agreement": 0.0}, by["dog"]["model_agreement"])
	require.Equal(t, map[string]any{"images": 2.0, "agreed": 1.0, "agreed_share": 0.5, "mean_agreement": 0.5}, by["object"]["model_agreement"])
	require.Equal(t, []any{map[string]any{"model": "hinted", "version": "1", "judged": 1.0, "accepted_share": 1.0, "corrected_share": 0.0}},
		by["dog"]["models"])
	// object: blind's two proposals, one kept (the agreed photo) and one
	// rejected; hinted's one, rejected.
	require.Equal(t, []any{
		map[string]any{"model": "blind", "version": "1", "judged": 2.0, "accepted_share": 0.5, "corrected_share": 0.0},
		map[string]any{"model": "hinted", "version": "1", "judged": 1.0, "accepted_share": 0.0, "corrected_share": 0.0},
	}, by["object"]["models"])

	doc := w.admin.get("/insights?dataset_id=" + id).doc(t)
	require.Equal(t, "50% of 2", strings.Join(strings.Fields(doc.Find(`#class-insights tr[data-label="object"] td.agreed`).Text()), " "))
	require.Equal(t, "blind 1: 50% accepted, 0% corrected of 2",
		doc.Find(`#class-insights tr[data-label="object"] td.kept div[data-model="blind 1"]`).Text())
	require.Equal(t, "0%", strings.TrimSpace(doc.Find(`#class-insights tr[data-label="dog"] td.agreed`).Text())[:2])

	// A third photo and a second version: the growth chart draws both.
	third := w.upload(t, 3, "dog")
	w.review(t, third, "hinted")
	w.publish(t, id)
	doc = w.admin.get("/insights?dataset_id=" + id).doc(t)
	require.Equal(t, "2 / 0 / 0", doc.Find(`#growth-table tr[data-version="1"] td.images`).Text())
	require.Equal(t, "3 / 0 / 0", doc.Find(`#growth-table tr[data-version="2"] td.images`).Text())
	require.Equal(t, "3 / 0 / 0", doc.Find(`#growth-table tr[data-version="2"] td.instances`).Text())
	train := doc.Find(`svg#growth-images rect[data-split="train"]`)
	require.Equal(t, 2, train.Length(), "one bar per version")
	// Scaled to the largest total: 2 of 3 images is 106 of 160 units.
	require.Equal(t, "106", train.Eq(0).AttrOr("height", ""))
	require.Equal(t, "160", train.Eq(1).AttrOr("height", ""))
	require.Equal(t, "version 2, train: 3 images", train.Eq(1).Find("title").Text())
	require.Equal(t, []string{"v1", "v2"}, doc.Find("svg#growth-instances text.version").Map(func(_ int, s *goquery.Selection) string { return s.Text() }))
}
