package app

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/config"
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
