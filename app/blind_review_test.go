package app

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/browsertest"
	"github.com/deepimageshub/imagehub/config"
	"github.com/deepimageshub/imagehub/mask"
)

// TestBlindSecondReview: while a second review of an image is open, no
// reviewer who may be handed it sees the first review (its annotations,
// masks and author) through the review API, the image API or the image
// page; admins and the first reviewer do; once the second review is in,
// everyone sees the image as before.
func TestBlindSecondReview(t *testing.T) {
	t.Parallel()
	tb := setup(t, func(c *config.Config) { c.SecondReviewShare = 1 })
	owner, ownerUser := tb.userWithRole(t, "owner@example.com", auth.RoleContributor)
	first, _ := tb.userWithRole(t, "annfirstreviewer@example.com", auth.RoleReviewer)
	second, _ := tb.userWithRole(t, "bobsecond@example.com", auth.RoleReviewer)
	other, _ := tb.userWithRole(t, "carolother@example.com", auth.RoleReviewer)
	admin, _ := tb.userWithRole(t, "admin@example.com", auth.RoleAdmin)
	f := seedReview(t, tb, ownerUser.ID, 1, 0.5)
	_, err := tb.pool.Exec(context.Background(), `INSERT INTO image_uploads (image_id, user_id, filename) VALUES ($1, $2, 'cat.jpg')`, f.image, ownerUser.ID)
	require.NoError(t, err)
	imgPath := "/api/v1/images/" + f.image.String()
	pagePath := "/images/" + f.image.String()

	_, item := next(t, first)
	require.Equal(t, "first", item["kind"])
	dog := rect(f.h, f.w, 50, 30, 70, 50)
	res := first.json(http.MethodPost, "/api/v1/review/"+item["item_id"].(string), map[string]any{"instances": []map[string]any{
		{"proposal_id": f.proposals[0], "label": "cat", "mask": f.masks[0]},
		{"label": "dog", "mask": dog},
	}})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)

	// What the first review left, as an admin sees it.
	full := admin.get(imgPath).json(t)
	anns := full["annotations"].([]any)
	require.Len(t, anns, 2)
	var secrets []string // what must not reach a blind reviewer
	for _, a := range anns {
		a := a.(map[string]any)
		require.Equal(t, "annfirstreviewer", a["author"])
		secrets = append(secrets, a["id"].(string), a["mask"].(map[string]any)["counts"].(string))
	}
	secrets = append(secrets, "annfirstreviewer", f.proposals[0].String())

	hidden := func(c *client, who string) {
		t.Helper()
		res := c.get(imgPath)
		require.Equal(t, http.StatusOK, res.StatusCode, who)
		j := res.json(t)
		require.Empty(t, j["annotations"], who)
		require.Empty(t, j["proposals"], who)
		require.Equal(t, "reviewed", j["status"], who)
		page := c.get(pagePath)
		require.Equal(t, http.StatusOK, page.StatusCode, who)
		doc := page.doc(t)
		require.Zero(t, doc.Find("[data-annotation-id], #annotations, .author").Length(), who)
		require.Zero(t, doc.Find("ul.proposals li").Length(), who)
		partial := c.get(pagePath + "/inference")
		require.Equal(t, http.StatusOK, partial.StatusCode, who)
		for _, s := range secrets {
			require.NotContains(t, string(res.body), s, who)
			require.NotContains(t, string(page.body), s, who)
			require.NotContains(t, string(partial.body), s, who)
		}
	}
	// Before anyone takes the second review, every reviewer but the first
	// may be handed it: all are blind.
	hidden(second, "second reviewer, before leasing")
	hidden(other, "another reviewer")

	status, sec := next(t, second)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "second", sec["kind"])
	require.Empty(t, sec["proposals"])
	raw, err := json.Marshal(sec)
	require.NoError(t, err)
	for _, s := range secrets {
		require.NotContains(t, string(raw), s, "review/next answer")
	}
	hidden(second, "second reviewer, holding the lease")
	hidden(other, "another reviewer, while the second review is leased")

	// The first reviewer and admins see the first review all along; the
	// uploader sees the outlines without reviewer names.
	require.Len(t, first.get(imgPath).json(t)["annotations"], 2)
	require.Len(t, admin.get(imgPath).json(t)["annotations"], 2)
	require.Equal(t, 2, admin.get(pagePath).doc(t).Find("[data-annotation-id]").Length())
	own := owner.get(imgPath)
	require.Len(t, own.json(t)["annotations"], 2)
	require.NotContains(t, string(own.body), "annfirstreviewer", "contributors see no reviewer names")
	require.Zero(t, owner.get(pagePath).doc(t).Find(".author").Length())

	res = second.json(http.MethodPost, "/api/v1/review/"+sec["item_id"].(string), map[string]any{
		"instances": []map[string]any{{"label": "cat", "mask": f.masks[0]}}})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)

	// The second review is in: the normal view returns.
	for _, c := range []*client{second, other} {
		j := c.get(imgPath).json(t)
		require.Len(t, j["annotations"], 2)
		require.Len(t, j["proposals"], 1)
		doc := c.get(pagePath).doc(t)
		require.Equal(t, 2, doc.Find("[data-annotation-id]").Length())
		require.Contains(t, doc.Find("#annotations").Text(), "annfirstreviewer")
	}
}

// TestBlindSecondReviewAdminHoldingIt: an admin who takes a second review is
// blind while holding it, like any reviewer.
func TestBlindSecondReviewAdminHoldingIt(t *testing.T) {
	t.Parallel()
	tb := setup(t, func(c *config.Config) { c.SecondReviewShare = 1 })
	_, ownerUser := tb.userWithRole(t, "owner@example.com", auth.RoleContributor)
	first, _ := tb.userWithRole(t, "annfirstreviewer@example.com", auth.RoleReviewer)
	admin, _ := tb.userWithRole(t, "admin@example.com", auth.RoleAdmin)
	f := seedReview(t, tb, ownerUser.ID, 1, 0.5)
	_, item := next(t, first)
	res := first.json(http.MethodPost, "/api/v1/review/"+item["item_id"].(string), map[string]any{"instances": []map[string]any{
		{"proposal_id": f.proposals[0], "label": "cat", "mask": f.masks[0]}}})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)

	imgPath := "/api/v1/images/" + f.image.String()
	require.Len(t, admin.get(imgPath).json(t)["annotations"], 1, "an admin not holding it sees everything")
	status, sec := next(t, admin)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "second", sec["kind"])
	j := admin.get(imgPath)
	require.Empty(t, j.json(t)["annotations"])
	require.NotContains(t, string(j.body), "annfirstreviewer")
	require.Zero(t, admin.get("/images/"+f.image.String()).doc(t).Find("[data-annotation-id]").Length())
	res = admin.json(http.MethodPost, "/api/v1/review/"+sec["item_id"].(string)+"/release", nil)
	require.Equal(t, http.StatusNoContent, res.StatusCode, "%s", res.body)
	require.Len(t, admin.get(imgPath).json(t)["annotations"], 1, "released: the admin sees everything again")
}

// TestDatasetWaitsForTheSecondReview: premium users may review, so an image
// whose blind second review is open stays out of new dataset versions (a
// download would show its first review) until that review is done.
func TestDatasetWaitsForTheSecondReview(t *testing.T) {
	t.Parallel()
	w := newDatasetWorld(t)
	w.addImages(t, 3)
	var open string
	for _, img := range w.images {
		open = img.ID.String()
		break
	}
	_, err := w.pool.Exec(context.Background(), `INSERT INTO review_items (image_id, kind) VALUES ($1, 'second')`, open)
	require.NoError(t, err)
	id := w.createDataset(t, map[string]any{"name": "Everything", "filter": map[string]any{}})
	v := w.publish(t, id)
	require.EqualValues(t, 2, v["counts"].(map[string]any)["images"])
	res := w.premium.get("/api/v1/datasets/" + id + "/versions/1/download")
	require.Equal(t, http.StatusOK, res.StatusCode)
	for _, r := range openZip(t, res.body).manifest(t) {
		img, known := w.images[r[0]]
		require.True(t, known, r[0])
		require.NotEqual(t, open, img.ID.String())
	}

	_, err = w.pool.Exec(context.Background(), `UPDATE review_items SET done_at = now() WHERE image_id = $1 AND kind = 'second'`, open)
	require.NoError(t, err)
	require.EqualValues(t, 3, w.publish(t, id)["counts"].(map[string]any)["images"])
}

// TestBlindSecondReviewInBrowser: the blind second review screen in real
// Chromium. A first reviewer has accepted a proposal and drawn another
// instance; the second reviewer's page says the review is blind, lists no
// instance and draws no mask over the photo (the first review never reaches
// the page), and what the second reviewer paints is what is stored for the
// second review, which closes it.
func TestBlindSecondReviewInBrowser(t *testing.T) {
	t.Parallel()
	const w, h = 640, 480
	cat := rectMask(h, w, 60, 80, 260, 240)
	s := seedReviewScene(t, w, h, 1, func(h, w int) []sceneProposal {
		return []sceneProposal{{"cat", 0.9, mask.Encode(cat)}}
	}, 1)
	first, _ := s.tb.userWithRole(t, "annfirstreviewer@example.com", auth.RoleReviewer)
	_, item := next(t, first)
	require.Equal(t, "first", item["kind"])
	dog := ellipseRLE(h, w, 470, 300, 90, 60)
	res := first.json(http.MethodPost, "/api/v1/review/"+item["item_id"].(string), map[string]any{"instances": []map[string]any{
		{"proposal_id": s.proposals[0], "label": "cat", "mask": mask.Encode(cat)},
		{"label": "dog", "mask": dog},
	}})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	var second uuid.UUID
	require.NoError(t, s.tb.pool.QueryRow(context.Background(),
		`SELECT id FROM review_items WHERE image_id = $1 AND kind = 'second'`, s.image).Scan(&second))

	s.open(t, "rita@example.com", 0)
	ctx := s.ctx
	require.Equal(t, second.String(), eval[string](t, ctx, `imagehubReview.item().id`))
	require.Equal(t, "second", eval[string](t, ctx, `imagehubReview.item().kind`))
	require.Equal(t, "second review (blind)", eval[string](t, ctx, `document.querySelector('#review-item .badge').textContent`))
	require.Contains(t, eval[string](t, ctx, `document.getElementById('review-item').textContent`), "first reviewer's masks are hidden")
	require.Zero(t, eval[int](t, ctx, `document.querySelectorAll('#review-instances li').length`))
	s.key(t, "1")
	s.nextFrames(t)
	require.Equal(t, 255, s.layerAlpha(t, "image", 160, 160), "the photo is drawn")
	for _, p := range [][2]float64{{160, 160}, {470, 300}} {
		require.Zero(t, s.layerAlpha(t, "others", p[0], p[1]), "no mask of the first review at %v", p)
		require.Zero(t, s.layerAlpha(t, "active", p[0], p[1]), "no mask of the first review at %v", p)
	}
	require.NotContains(t, eval[string](t, ctx, `document.documentElement.outerHTML`), "annfirstreviewer")

	// The second reviewer draws the cat with the brush and submits.
	s.key(t, "n")
	require.NoError(t, chromedp.Do(ctx, chromedp.WaitVisible(`#review-picker-input`)))
	s.key(t, "cat")
	browsertest.WaitFor(t, ctx, `document.querySelector('#review-picker-list li[aria-selected=true]').dataset.name === 'cat'`,
		`document.getElementById('review-picker-list').textContent`, 5*time.Second)
	s.key(t, kb.Enter)
	browsertest.WaitFor(t, ctx, `imagehubReview.item().instances === 1 && imagehubReview.item().active === 0`,
		`JSON.stringify(imagehubReview.item())`, 5*time.Second)
	v := s.view(t)
	var pts [][2]float64
	for i := 0; i <= 20; i++ {
		cx, cy := v.toClient(80+160*float64(i)/20, 100+120*float64(i%5)/4)
		pts = append(pts, [2]float64{cx, cy})
	}
	painted := s.drag(t, v, pts)
	s.nextFrames(t)
	brush := eval[int](t, ctx, `imagehubReview.brushSize()`)
	s.key(t, kb.Enter)
	browsertest.WaitFor(t, ctx, `imagehubReview.saved() === 1`, `document.getElementById('review-message').textContent`, 15*time.Second)

	want := mask.NewBitmap(w, h)
	brushPaint(want, brush, 1, painted)
	var label string
	var rle mask.RLE
	require.NoError(t, s.tb.pool.QueryRow(context.Background(), `
		SELECT l.name, a.height, a.width, a.counts FROM annotations a JOIN labels l ON l.id = a.label_id
		WHERE a.review_item_id = $1`, second).Scan(&label, &rle.Size[0], &rle.Size[1], &rle.Counts))
	require.Equal(t, "cat", label)
	requireSamePixels(t, want, rle, "the second reviewer's cat")
	require.Equal(t, 1, s.tb.count(t, `SELECT count(*) FROM review_items WHERE id = $1 AND done_at IS NOT NULL`, second))
	s.js.none(t)
}
