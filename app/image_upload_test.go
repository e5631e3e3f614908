package app

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"io"
	"mime/multipart"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/blob/blobtest"
	"github.com/deepimageshub/imagehub/config"
	"github.com/deepimageshub/imagehub/dbtest"
	"github.com/deepimageshub/imagehub/imaging/imagingtest"
)

type file struct {
	name string
	data []byte
}

// multipartBody builds an upload: files, then any fields (labels after the
// files, as some clients send them).
func multipartBody(t testing.TB, files []file, fields map[string][]string) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, f := range files {
		part, err := w.CreateFormFile("files", f.name)
		require.NoError(t, err)
		_, err = part.Write(f.data)
		require.NoError(t, err)
	}
	for k, vs := range fields {
		for _, v := range vs {
			require.NoError(t, w.WriteField(k, v))
		}
	}
	require.NoError(t, w.Close())
	return &buf, w.FormDataContentType()
}

func (c *client) upload(files []file, fields map[string][]string) *response {
	c.t.Helper()
	body, ct := multipartBody(c.t, files, fields)
	return c.do(http.MethodPost, "/api/v1/images", body, http.Header{"Content-Type": {ct}})
}

func photos(n int, seed uint64) []file { return photosSized(n, seed, 1024, 768) }

// smallPhotos are for tests that only count uploads (quotas, outages):
// 400×300 is above ingest's smallest side, and a seventh of the race-enabled
// time a 1024×768 photo costs to make and ingest.
func smallPhotos(n int, seed uint64) []file { return photosSized(n, seed, 400, 300) }

func photosSized(n int, seed uint64, w, h int) []file {
	out := make([]file, n)
	for i := range out {
		out[i] = file{fmt.Sprintf("photo-%d.jpg", i), imagingtest.JPEG(imagingtest.Photo(w, h, seed+uint64(i)))}
	}
	return out
}

func (tb *testBundle) count(t *testing.T, sql string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, tb.pool.QueryRow(context.Background(), sql, args...).Scan(&n))
	return n
}

func (tb *testBundle) blobCount(t *testing.T, prefix string) int {
	t.Helper()
	n := 0
	require.NoError(t, tb.blobs.List(context.Background(), prefix, func(blob.Info) error { n++; return nil }))
	return n
}

// waitStatus waits until an image leaves the ingest states.
func (c *client) waitStatus(id string) map[string]any {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		img := c.get("/api/v1/images/" + id).json(c.t)
		switch img["status"] {
		case "uploaded", "processing":
		default:
			return img
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("image %s still %v", id, img["status"])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestUploadSixPhotos(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	c := tb.client(t)
	c.signup("ada@example.com", "Ada")

	files := photos(6, 1)
	files[0].data = imagingtest.WithEXIF(files[0].data, 6) // taken in portrait, with GPS
	res := c.upload(files, map[string][]string{"labels": {"dog", "person"}})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	results := res.json(t)["results"].([]any)
	require.Len(t, results, 6)
	for i, r := range results {
		r := r.(map[string]any)
		require.Equal(t, "created", r["status"])
		require.Equal(t, files[i].name, r["filename"])
		img := r["image"].(map[string]any)
		require.ElementsMatch(t, []any{"dog", "person"}, img["labels"])
	}

	first := results[0].(map[string]any)["image"].(map[string]any)
	img := c.waitStatus(first["id"].(string))
	require.Equal(t, "awaiting_inference", img["status"], "%v", img)
	require.EqualValues(t, 768, img["width"], "EXIF orientation applied")
	require.EqualValues(t, 1024, img["height"])

	// What is served is the cleaned copy: no GPS, rotated pixels.
	file := c.get("/api/v1/images/" + first["id"].(string) + "/file")
	require.Equal(t, http.StatusOK, file.StatusCode)
	require.Equal(t, "image/jpeg", file.Header.Get("Content-Type"))
	require.NotContains(t, string(file.body), imagingtest.GPSMarker)
	dec, _, err := image.DecodeConfig(bytes.NewReader(file.body))
	require.NoError(t, err)
	require.Equal(t, 768, dec.Width)
	thumb := c.get("/images/" + first["id"].(string) + "/thumb/grid")
	require.Equal(t, http.StatusOK, thumb.StatusCode)

	for _, r := range results {
		c.waitStatus(r.(map[string]any)["image"].(map[string]any)["id"].(string))
	}
	require.Equal(t, 6, tb.count(t, "SELECT count(*) FROM images WHERE status = 'awaiting_inference'"))
	require.Equal(t, 0, tb.blobCount(t, "uploads/"), "upload bytes (with GPS) are deleted after ingest")
	require.Equal(t, 6, tb.blobCount(t, "images/"))
	require.Equal(t, 12, tb.blobCount(t, "thumbs/"))
}

func TestUploadRefusesTheBadCorpus(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	c := tb.client(t)
	c.signup("ada@example.com", "Ada")
	for _, bad := range imagingtest.BadFiles() {
		t.Run(bad.Name, func(t *testing.T) {
			res := c.upload([]file{{bad.Name, bad.Data}}, nil)
			require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s", res.body)
			r := res.json(t)["results"].([]any)[0].(map[string]any)
			require.Equal(t, "refused", r["status"])
			e := r["error"].(map[string]any)
			require.Equal(t, bad.WantCode, e["code"], e["message"])
			require.Equal(t, "files[0]", e["field"])
			require.Contains(t, e["message"], bad.Name, "the reason names the file")
			code, _ := res.apiError(t)
			require.Equal(t, bad.WantCode, code)
		})
	}
	require.Equal(t, 0, tb.count(t, "SELECT count(*) FROM images"))
	require.Equal(t, 0, tb.blobCount(t, ""), "a refused file leaves no blob")
}

func TestUploadMixedIs207(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	c := tb.client(t)
	c.signup("ada@example.com", "Ada")
	res := c.upload([]file{photos(1, 5)[0], {"evil.svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`)}}, nil)
	require.Equal(t, http.StatusMultiStatus, res.StatusCode, "%s", res.body)
	results := res.json(t)["results"].([]any)
	require.Equal(t, "created", results[0].(map[string]any)["status"])
	require.Equal(t, "refused", results[1].(map[string]any)["status"])
	require.Equal(t, 1, tb.count(t, "SELECT count(*) FROM images"))
}

func TestUploadCaps(t *testing.T) {
	t.Parallel()
	tb := setup(t, func(cfg *config.Config) {
		cfg.UploadMaxFileBytes = 100 << 10
		cfg.UploadMaxRequestBytes = 1 << 20
		cfg.UploadMaxFiles = 3
	})
	c := tb.client(t)
	c.signup("ada@example.com", "Ada")
	big := file{"big.jpg", imagingtest.JPEG(imagingtest.Photo(1600, 1200, 1))}
	require.Greater(t, len(big.data), 100<<10)

	res := c.upload([]file{big}, nil)
	require.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode, "%s", res.body)
	r := res.json(t)["results"].([]any)[0].(map[string]any)
	require.Equal(t, "too_large", r["error"].(map[string]any)["code"])

	small := file{"small.jpg", imagingtest.JPEG(imagingtest.Photo(400, 300, 2))}
	res = c.upload([]file{big, small}, nil)
	require.Equal(t, http.StatusMultiStatus, res.StatusCode, "%s", res.body)

	many := make([]file, 9)
	for i := range many {
		many[i] = file{fmt.Sprintf("%d.jpg", i), imagingtest.JPEG(imagingtest.Photo(300, 300, uint64(i)))}
	}
	res = c.upload(many[:4], nil)
	require.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode)
	code, field := res.apiError(t)
	require.Equal(t, "too_many_files", code)
	require.Equal(t, "files", field)

	// Over the request cap in all.
	huge := make([]file, 3)
	for i := range huge {
		huge[i] = file{fmt.Sprintf("h%d.jpg", i), bytes.Repeat([]byte{0xFF}, 400<<10)}
	}
	res = c.upload(huge, nil)
	require.Equal(t, http.StatusRequestEntityTooLarge, res.StatusCode, "%s", res.body)
	require.Equal(t, 1, tb.count(t, "SELECT count(*) FROM images"), "only the small file of the earlier upload")
}

func TestUploadBadFields(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	c := tb.client(t)
	c.signup("ada@example.com", "Ada")
	p := photos(1, 3)

	res := c.upload(p, map[string][]string{"labels": {"dog", "unicorn"}})
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
	code, field := res.apiError(t)
	require.Equal(t, "unknown_label", code)
	require.Equal(t, "labels", field)

	res = c.upload(p, map[string][]string{"campaign_id": {"not-an-id"}})
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
	_, field = res.apiError(t)
	require.Equal(t, "campaign_id", field)

	res = c.upload(nil, map[string][]string{"labels": {"dog"}})
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
	_, field = res.apiError(t)
	require.Equal(t, "files", field)

	res = c.json(http.MethodPost, "/api/v1/images", `{"files": []}`)
	require.Equal(t, http.StatusUnsupportedMediaType, res.StatusCode)

	// A body cut off in the middle of a file stores nothing.
	body, ct := multipartBody(t, p, nil)
	b, _ := io.ReadAll(body)
	res = c.do(http.MethodPost, "/api/v1/images", bytes.NewReader(b[:len(b)/2]), http.Header{"Content-Type": {ct}})
	require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s", res.body)
	code, _ = res.apiError(t)
	require.Equal(t, "truncated_upload", code)

	require.Equal(t, 0, tb.count(t, "SELECT count(*) FROM images"))
	require.Equal(t, 0, tb.blobCount(t, ""))
}

// TestConcurrentIdenticalUploads: the same bytes from many people at once
// make one image; every uploader's labels are kept and each sees it as theirs.
func TestConcurrentIdenticalUploads(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.client(t).signup("admin@example.com", "Admin")
	data := photos(1, 42)[0].data
	labels := []string{"dog", "cat", "bird", "horse", "sheep", "cow", "bear", "zebra"}
	var created, duplicate atomic.Int32
	var ids sync.Map
	var wg sync.WaitGroup
	clients := make([]*client, len(labels))
	for i := range labels {
		clients[i], _ = tb.userWithRole(t, fmt.Sprintf("u%d@example.com", i), auth.RoleContributor)
	}
	for i, l := range labels {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := clients[i].upload([]file{{"same.jpg", data}}, map[string][]string{"labels": {l}})
			if res.StatusCode != http.StatusCreated {
				t.Errorf("upload %d: %d %s", i, res.StatusCode, res.body)
				return
			}
			var m map[string]any
			m = res.json(t)
			r := m["results"].([]any)[0].(map[string]any)
			switch r["status"] {
			case "created":
				created.Add(1)
			case "duplicate":
				duplicate.Add(1)
			}
			ids.Store(r["image"].(map[string]any)["id"], true)
		}()
	}
	wg.Wait()
	require.EqualValues(t, 1, created.Load())
	require.EqualValues(t, len(labels)-1, duplicate.Load())
	require.Equal(t, 1, tb.count(t, "SELECT count(*) FROM images"))
	require.Equal(t, len(labels), tb.count(t, "SELECT count(*) FROM image_labels"))
	require.Equal(t, 1, tb.count(t, "SELECT count(*) FROM river_job WHERE kind = 'ingest'"))
	for _, c := range clients {
		items := c.get("/api/v1/images").json(t)["items"].([]any)
		require.Len(t, items, 1, "each uploader sees the image among their own")
	}
}

func TestImagesOfOthersAreNotFound(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.client(t).signup("admin@example.com", "Admin")
	alice, _ := tb.userWithRole(t, "alice@example.com", auth.RoleContributor)
	bob, _ := tb.userWithRole(t, "bob@example.com", auth.RoleContributor)
	reviewer, _ := tb.userWithRole(t, "rev@example.com", auth.RoleReviewer)

	res := alice.upload(photos(1, 7), nil)
	require.Equal(t, http.StatusCreated, res.StatusCode)
	id := res.json(t)["results"].([]any)[0].(map[string]any)["image"].(map[string]any)["id"].(string)
	alice.waitStatus(id)

	for _, path := range []string{"/api/v1/images/" + id, "/api/v1/images/" + id + "/file", "/images/" + id, "/images/" + id + "/thumb/grid", "/uploads/" + id + "/card"} {
		require.Equal(t, http.StatusNotFound, bob.get(path).StatusCode, path)
		require.Equal(t, http.StatusOK, alice.get(path).StatusCode, path)
		require.Equal(t, http.StatusOK, reviewer.get(path).StatusCode, path)
	}
	require.Empty(t, bob.get("/api/v1/images").json(t)["items"])
	require.Len(t, reviewer.get("/api/v1/images").json(t)["items"], 1, "reviewers see every image")
	require.Equal(t, http.StatusNotFound, bob.get("/api/v1/images/"+strings.Repeat("0", 8)).StatusCode)
}

func TestUploadIntoCampaign(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	admin := tb.client(t)
	admin.signup("admin@example.com", "Admin")
	res := admin.json(http.MethodPost, "/api/v1/campaigns", map[string]any{
		"title": "More bicycles", "labels": []string{"bicycle"}, "target_count": 4,
		"closes_at": time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339),
	})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	campID := res.json(t)["campaign"].(map[string]any)["id"].(string)

	c, _ := tb.userWithRole(t, "c@example.com", auth.RoleContributor)
	res = c.upload(photos(2, 50), map[string][]string{"campaign_id": {campID}, "labels": {"bicycle"}})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	camps := c.get("/api/v1/campaigns").json(t)["items"].([]any)
	require.Len(t, camps, 1)
	require.EqualValues(t, 2, camps[0].(map[string]any)["image_count"])
	require.Equal(t, true, camps[0].(map[string]any)["open"])
	page := c.get("/campaigns").doc(t)
	v, _ := page.Find("#campaign-" + campID + " progress").Attr("value")
	require.Equal(t, "2", v)

	// Closed campaigns take no uploads.
	_, err := tb.pool.Exec(context.Background(), "UPDATE campaigns SET closes_at = now() - interval '1 minute'")
	require.NoError(t, err)
	res = c.upload(photos(1, 60), map[string][]string{"campaign_id": {campID}})
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
	code, _ := res.apiError(t)
	require.Equal(t, "campaign_closed", code)

	// Bad campaign input names the field.
	for body, field := range map[string]string{
		`{"title": "", "labels": ["dog"], "target_count": 1, "closes_at": "2099-01-01T00:00:00Z"}`:   "title",
		`{"title": "x", "labels": [], "target_count": 1, "closes_at": "2099-01-01T00:00:00Z"}`:       "labels",
		`{"title": "x", "labels": ["dog"], "target_count": 0, "closes_at": "2099-01-01T00:00:00Z"}`:  "target_count",
		`{"title": "x", "labels": ["dog"], "target_count": 1, "closes_at": "2001-01-01T00:00:00Z"}`:  "closes_at",
		`{"title": "x", "labels": ["nope"], "target_count": 1, "closes_at": "2099-01-01T00:00:00Z"}`: "labels",
	} {
		res := admin.json(http.MethodPost, "/api/v1/campaigns", body)
		require.Equal(t, http.StatusBadRequest, res.StatusCode, body)
		_, f := res.apiError(t)
		require.Equal(t, field, f, body)
	}
	require.Equal(t, http.StatusForbidden, c.json(http.MethodPost, "/api/v1/campaigns", "{}").StatusCode)
}

// TestBlobStoreDown: with the S3 server stopped, an upload answers 503 and
// records nothing.
func TestBlobStoreDown(t *testing.T) {
	t.Parallel()
	srv := blobtest.Start(t)
	tb := startBundle(t, testConfig(t), dbtest.NewPool(t), srv.Open(t))
	c := tb.client(t)
	c.signup("ada@example.com", "Ada")

	res := c.upload(photos(1, 70), nil)
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	id := res.json(t)["results"].([]any)[0].(map[string]any)["image"].(map[string]any)["id"].(string)
	c.waitStatus(id)
	// With S3 the browser gets the bytes from a presigned URL.
	file := c.get("/api/v1/images/" + id + "/file")
	require.Equal(t, http.StatusFound, file.StatusCode)
	direct, err := http.Get(file.Header.Get("Location"))
	require.NoError(t, err)
	direct.Body.Close()
	require.Equal(t, http.StatusOK, direct.StatusCode)

	srv.Stop()
	res = c.upload(photos(1, 71), nil)
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode, "%s", res.body)
	code, _ := res.apiError(t)
	require.Equal(t, "storage_unavailable", code)
	require.NotEmpty(t, res.Header.Get("Retry-After"))
	require.Equal(t, 1, tb.count(t, "SELECT count(*) FROM images"))
	// The upload page says the same, with the form to try again.
	body, ct := multipartBody(t, photos(1, 72), nil)
	page := c.do(http.MethodPost, "/upload", body, http.Header{"Content-Type": {ct}, "Origin": {tb.base}, "Sec-Fetch-Site": {"same-origin"}})
	require.Equal(t, http.StatusServiceUnavailable, page.StatusCode, "%s", page.body)
	require.NotEmpty(t, page.Header.Get("Retry-After"))
	require.Equal(t, 1, page.doc(t).Find("form#upload-form").Length())
	// /readyz names the part that is down, and no error text.
	ready := tb.client(t).get("/readyz")
	require.Equal(t, http.StatusServiceUnavailable, ready.StatusCode)
	require.Equal(t, map[string]any{"database": "ok", "blobs": "down"}, ready.json(t)["checks"])
	require.Equal(t, "unavailable", ready.json(t)["status"])
	require.NotContains(t, string(ready.body), "127.0.0.1")
}

// TestPixelBombsKeepTheHeapSmall uploads the pixel bombs and samples the
// heap while they are refused.
func TestPixelBombsKeepTheHeapSmall(t *testing.T) {
	tb := setup(t)
	c := tb.client(t)
	c.signup("ada@example.com", "Ada")
	var bombs []file
	for _, f := range imagingtest.BadFiles() {
		if f.WantCode == "too_many_pixels" {
			bombs = append(bombs, file{f.Name, f.Data})
		}
	}
	runtime.GC()
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	for range 5 {
		res := c.upload(bombs, nil)
		require.Equal(t, http.StatusBadRequest, res.StatusCode)
	}
	close(stop)
	<-done
	require.Less(t, peak.Load(), uint64(64<<20), "peak heap %d MiB", peak.Load()>>20)
}

// TestImagesByLabel: ?label= keeps the images carrying that image-level
// label, in a contributor's own list and in everyone's; an unknown label
// finds nothing.
func TestImagesByLabel(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.client(t).signup("admin@example.com", "Admin")
	alice, _ := tb.userWithRole(t, "alice@example.com", auth.RoleContributor)
	bob, _ := tb.userWithRole(t, "bob@example.com", auth.RoleContributor)
	reviewer, _ := tb.userWithRole(t, "rev@example.com", auth.RoleReviewer)

	ids := func(c *client, path string) []string {
		var out []string
		for _, it := range c.get(path).json(t)["items"].([]any) {
			out = append(out, it.(map[string]any)["id"].(string))
		}
		return out
	}
	up := func(c *client, seed uint64, labels ...string) string {
		res := c.upload(photos(1, seed), map[string][]string{"labels": labels})
		require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
		return res.json(t)["results"].([]any)[0].(map[string]any)["image"].(map[string]any)["id"].(string)
	}
	cat := up(alice, 11, "cat")
	both := up(alice, 12, "cat", "dog")
	dog := up(alice, 13, "dog")
	bobCat := up(bob, 14, "cat")

	require.ElementsMatch(t, []string{cat, both}, ids(alice, "/api/v1/images?label=cat"))
	require.ElementsMatch(t, []string{both, dog}, ids(alice, "/api/v1/images?label=dog"))
	require.ElementsMatch(t, []string{bobCat}, ids(bob, "/api/v1/images?label=cat"))
	require.Empty(t, ids(bob, "/api/v1/images?label=dog"))
	require.ElementsMatch(t, []string{cat, both, bobCat}, ids(reviewer, "/api/v1/images?label=cat"))
	require.ElementsMatch(t, []string{both, dog}, ids(reviewer, "/api/v1/images?label=dog"))
	require.Empty(t, ids(reviewer, "/api/v1/images?label=unicorn"))
	require.Empty(t, ids(alice, "/api/v1/images?label=unicorn"))
}
