package app

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/blob/blobtest"
	"github.com/deepimageshub/imagehub/browsertest"
	"github.com/deepimageshub/imagehub/dbtest"
)

// TestCSPInBrowser opens every kind of page in Chromium, signed out and as
// an admin (the upload page, an image, a dataset version with its
// histogram, the review page, the admin pages, an error page, the job
// console, whose React app must load its jobs, and the API docs) and checks that none
// reported a Content-Security-Policy violation; then that an inline style
// is indeed refused, so that the check can fail.
func TestCSPInBrowser(t *testing.T) {
	t.Parallel()
	w := newDatasetWorld(t)
	w.addImages(t, 4)
	res := w.admin.form("/admin/datasets", url.Values{"name": {"Pets"}, "labels": {"cat, dog"}, "train": {"0.7"}, "val": {"0.2"}, "test": {"0.1"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "%s", res.body)
	dataset := strings.TrimPrefix(res.Header.Get("Location"), "/datasets/")
	w.publish(t, dataset)
	res = w.admin.upload(photos(1, 5), nil)
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	image := res.json(t)["results"].([]any)[0].(map[string]any)["image"].(map[string]any)["id"].(string)
	w.admin.waitStatus(image)

	ctx := browsertest.New(t)
	visit := func(path, ready string) {
		t.Helper()
		require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(w.base+path)))
		browsertest.WaitFor(t, ctx, `document.readyState === 'complete' && (`+ready+`)`, `location.href + ' ' + document.title`, 20*time.Second)
		// Let deferred work (htmx polling, images) run.
		time.Sleep(300 * time.Millisecond)
	}
	visit("/", "true")
	visit("/login?next=/upload", "!!document.querySelector('#email')")
	visit("/signup", "true")
	visit("/no-such-page", "true")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(w.base+"/login?next=/upload"),
		chromedp.SendKeys(`#email`, "admin@example.com"),
		chromedp.SendKeys(`#password`, testPassword),
		chromedp.Submit(`#password`),
		chromedp.WaitVisible(`#files`),
	))
	pages := []struct{ path, ready string }{
		{"/", "true"},
		{"/upload", "!!document.querySelector('#files')"},
		{"/uploads", "document.querySelectorAll('.image-card img').length > 0"},
		{"/images/" + image, "Array.from(document.images).every(i => i.complete)"},
		{"/campaigns", "true"},
		{"/account", "true"},
		{"/review", "document.getElementById('review-toolbar').hidden === false"}, // the modules ran
		{"/review/stats", "true"},
		{"/datasets", "true"},
		{"/trainings", "true"},
		{"/datasets/" + dataset, "true"},
		{"/datasets/" + dataset + "/versions/1", "!!document.querySelector('#histogram svg')"},
		{"/admin/users", "true"},
		{"/admin/labels", "true"},
		{"/admin/models", "true"},
		{"/admin/datasets", "true"},
		{"/admin/jobs", "document.body.innerText.includes('Running')"},
		{"/admin/jobs/jobs?state=completed", "document.body.innerText.includes('dataset_publish')"},
		{"/admin/jobs/queues", "document.body.innerText.includes('default')"},
		// Swagger UI drew the description's operations.
		{"/api/docs", "document.querySelectorAll('.opblock').length >= 50"},
	}
	for _, p := range pages {
		visit(p.path, p.ready)
	}
	got := browsertest.TakeCSPViolations(ctx)
	require.Empty(t, got, "Content-Security-Policy violations")

	// The check sees what the policy refuses.
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate(w.base+"/account")))
	_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(document.head.insertAdjacentHTML('beforeend', '<style>body { color: red }</style>'), true)`))
	require.NoError(t, err)
	deadline := time.Now().Add(5 * time.Second)
	for len(got) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		got = browsertest.TakeCSPViolations(ctx)
	}
	require.Len(t, got, 1, "an inline style must be reported")
	var v struct{ Directive string }
	require.NoError(t, json.Unmarshal([]byte(got[0]), &v))
	require.Equal(t, "style-src-elem", v.Directive)
}

// TestCSPPresignedImagesInBrowser: with S3 for blobs, thumbnails redirect to
// presigned URLs on the S3 server's origin; the CSP names that origin, and
// the uploads page shows its thumbnails with no violation.
func TestCSPPresignedImagesInBrowser(t *testing.T) {
	t.Parallel()
	srv := blobtest.Start(t)
	tb := startBundle(t, testConfig(t), dbtest.NewPool(t), srv.Open(t))
	c, _ := tb.userWithRole(t, "carl@example.com", auth.RoleContributor)
	res := c.upload(photos(2, 60), nil)
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	for _, r := range res.json(t)["results"].([]any) {
		c.waitStatus(r.(map[string]any)["image"].(map[string]any)["id"].(string))
	}
	page := c.get("/uploads")
	require.Equal(t, "'self' "+srv.Endpoint, cspDirectives(t, page.Header.Get("Content-Security-Policy"))["img-src"])

	ctx := browsertest.New(t)
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(tb.base+"/login"),
		chromedp.SendKeys(`#email`, "carl@example.com"),
		chromedp.SendKeys(`#password`, testPassword),
		chromedp.Submit(`#password`),
		chromedp.WaitVisible(`a[href="/uploads"]`),
		chromedp.Navigate(tb.base+"/uploads"),
	))
	browsertest.WaitFor(t, ctx,
		`Array.from(document.querySelectorAll('.image-card img')).filter(i => i.complete && i.naturalWidth > 0).length === 2`,
		`Array.from(document.querySelectorAll('.image-card img')).map(i => i.currentSrc + ' ' + i.complete + ' ' + i.naturalWidth).join(' | ')`, 20*time.Second)
	require.Empty(t, browsertest.TakeCSPViolations(ctx))
}
