package app

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/config"
	"github.com/deepimageshub/imagehub/jobs"
)

// TestUploadFormWithoutJavaScript posts the upload form as a browser without
// JavaScript does: all files at once, outcomes rendered on the page.
func TestUploadFormWithoutJavaScript(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	c := tb.client(t)
	c.signup("ada@example.com", "Ada")
	page := c.get("/upload").doc(t)
	require.Equal(t, 1, page.Find(`form#upload-form[enctype="multipart/form-data"] input[type=file][name=files][multiple]`).Length())
	require.Greater(t, page.Find(`#label-list option`).Length(), 79, "the label picker lists the taxonomy")

	body, ct := multipartBody(t, append(photos(1, 90), file{"doc.pdf", []byte("%PDF-1.4\n")}), map[string][]string{"labels": {"dog"}})
	res := c.do(http.MethodPost, "/upload", body, http.Header{"Content-Type": {ct}, "Origin": {tb.base}, "Sec-Fetch-Site": {"same-origin"}})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	d := res.doc(t)
	require.Equal(t, 1, d.Find("#upload-results li.created").Length())
	require.Contains(t, d.Find("#upload-results li.refused .reason").Text(), "PDF files are not accepted")

	// A cross-site form post is refused before anything is read.
	body, ct = multipartBody(t, photos(1, 91), nil)
	res = c.do(http.MethodPost, "/upload", body, http.Header{"Content-Type": {ct}, "Origin": {"https://evil.example"}})
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	body, ct = multipartBody(t, photos(1, 91), nil)
	res = c.do(http.MethodPost, "/upload", body, http.Header{"Content-Type": {ct}})
	require.Equal(t, http.StatusForbidden, res.StatusCode, "a page form post must say where it comes from")
	require.Equal(t, 1, tb.count(t, "SELECT count(*) FROM images"))
}

// TestSweepDeletesOrphans: blobs no image needs are deleted once older than
// the grace period; blobs in use, or young, stay.
func TestSweepDeletesOrphans(t *testing.T) {
	t.Parallel()
	tb := setup(t, func(cfg *config.Config) { cfg.BlobGracePeriod = time.Hour })
	c := tb.client(t)
	c.signup("ada@example.com", "Ada")
	res := c.upload(photos(1, 95), nil)
	require.Equal(t, http.StatusCreated, res.StatusCode)
	c.waitStatus(res.json(t)["results"].([]any)[0].(map[string]any)["image"].(map[string]any)["id"].(string))
	ctx := context.Background()

	orphan := strings.Repeat("ab", 32)
	young := strings.Repeat("cd", 32)
	for _, k := range []string{"uploads/" + orphan, "images/" + orphan, "thumbs/grid/" + orphan + ".jpg", "uploads/" + young} {
		require.NoError(t, tb.blobs.Put(ctx, k, bytes.NewReader([]byte("x")), 1, ""))
	}
	// Age everything but the young upload by two hours.
	fs := tb.blobs.(*blob.FS)
	old := time.Now().Add(-2 * time.Hour)
	require.NoError(t, tb.blobs.List(ctx, "", func(i blob.Info) error {
		if !strings.Contains(i.Key, young) {
			return fs.Touch(i.Key, old)
		}
		return nil
	}))
	before := tb.blobCount(t, "")

	_, err := tb.server.river.Insert(ctx, jobs.SweepArgs{}, &river.InsertOpts{UniqueOpts: river.UniqueOpts{}})
	require.NoError(t, err)
	deadline := time.Now().Add(20 * time.Second)
	for tb.count(t, "SELECT count(*) FROM river_job WHERE kind = 'blob_sweep' AND state = 'completed'") == 0 {
		require.True(t, time.Now().Before(deadline), "sweep did not run")
		time.Sleep(50 * time.Millisecond)
	}
	require.Equal(t, before-3, tb.blobCount(t, ""), "the three old orphans are gone")
	_, err = tb.blobs.Stat(ctx, "uploads/"+young)
	require.NoError(t, err, "a young upload may still be committing: kept")
	require.Equal(t, 1, tb.blobCount(t, "images/"))
	require.Equal(t, 2, tb.blobCount(t, "thumbs/"))
}

func TestLabels(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	admin := tb.client(t)
	admin.signup("ada@example.com", "Ada")
	c, _ := tb.userWithRole(t, "c@example.com", "contributor")

	items := c.get("/api/v1/labels?limit=500").json(t)["items"].([]any) // pages of 50 by default
	require.Len(t, items, 81, "seeded with the 80 COCO categories and \"object\", for what a model cannot name")

	res := admin.json(http.MethodPost, "/api/v1/labels", map[string]string{"name": "Red Panda", "display_name": "Red panda", "external_id": "/m/0p9z"})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	require.Equal(t, "red panda", res.json(t)["label"].(map[string]any)["name"])
	res = admin.json(http.MethodPost, "/api/v1/labels", map[string]string{"name": "red panda"})
	require.Equal(t, http.StatusConflict, res.StatusCode)
	res = admin.json(http.MethodPost, "/api/v1/labels", map[string]string{"name": "<script>"})
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
	require.Equal(t, http.StatusForbidden, c.json(http.MethodPost, "/api/v1/labels", map[string]string{"name": "x"}).StatusCode)

	// The admin page edits a label.
	page := admin.get("/admin/labels").doc(t)
	require.Equal(t, 82, page.Find("tbody tr").Length())
	id, _ := page.Find("tbody tr").FilterFunction(func(_ int, s *goquery.Selection) bool {
		return s.Find("td").First().Text() == "red panda"
	}).Attr("id")
	res = admin.form("/admin/labels/"+strings.TrimPrefix(id, "label-"), url.Values{"display_name": {"Lesser panda"}, "external_id": {"/m/0p9z"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "%s", res.body)
	require.Equal(t, 1, tb.count(t, "SELECT count(*) FROM labels WHERE display_name = 'Lesser panda'"))
}
