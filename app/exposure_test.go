package app

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/config"
)

// uploadOne uploads one file and returns its result.
func uploadOne(t *testing.T, c *client, f file, labels ...string) map[string]any {
	t.Helper()
	res := c.upload([]file{f}, map[string][]string{"labels": labels})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	return res.json(t)["results"].([]any)[0].(map[string]any)
}

// TestDuplicateUploadRevealsNothing: a contributor who uploads bytes that
// another already sent sees the image as their own upload, and nothing of
// the first uploader (file name), the model, the reviewers or the
// inference servers; the first uploader sees a plain sentence for a failed
// inference; staff see the details, admins the raw error.
func TestDuplicateUploadRevealsNothing(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()
	alice, _ := tb.userWithRole(t, "alice@example.com", auth.RoleContributor)
	bob, _ := tb.userWithRole(t, "bob@example.com", auth.RoleContributor)
	rev, _ := tb.userWithRole(t, "revsecretname@example.com", auth.RoleReviewer)
	admin, _ := tb.userWithRole(t, "admin@example.com", auth.RoleAdmin)

	data := photos(1, 901)[0].data
	r := uploadOne(t, alice, file{"alice-private-holiday.jpg", data}, "dog")
	require.Equal(t, "created", r["status"])
	id := r["image"].(map[string]any)["id"].(string)
	img := alice.waitStatus(id)
	h, w := int(img["height"].(float64)), int(img["width"].(float64))

	// A model proposed an outline, another model's server failed with an
	// internal address and body, and a reviewer drew the final instance.
	var model, broken uuid.UUID
	require.NoError(t, tb.pool.QueryRow(ctx, `INSERT INTO models (name, version) VALUES ('secretmodel', '1') RETURNING id`).Scan(&model))
	require.NoError(t, tb.pool.QueryRow(ctx, `INSERT INTO models (name, version) VALUES ('brokenmodel', '1') RETURNING id`).Scan(&broken))
	m := rect(h, w, 10, 10, 60, 60)
	area, _ := m.Area()
	box, _ := m.BBox()
	proposal := uuid.New()
	_, err := tb.pool.Exec(ctx, `
		INSERT INTO proposals (id, image_id, model_id, rank, label_id, score, bbox, area, height, width, counts)
		VALUES ($1, $2, $3, 0, (SELECT id FROM labels WHERE name = 'dog'), 0.9, $4, $5, $6, $7, $8)`,
		proposal, id, model, []int32{int32(box[0]), int32(box[1]), int32(box[2]), int32(box[3])}, area, h, w, m.Counts)
	require.NoError(t, err)
	const rawError = "POST http://10.9.8.7:8000/v2/models/brokenmodel/infer: 502 <html>upstream secret body</html>"
	_, err = tb.pool.Exec(ctx, `
		INSERT INTO inference_runs (image_id, model_id, state, attempt, error_kind, last_error, endpoint)
		VALUES ($1, $2, 'failed', 10, 'retryable', $3, 'http://10.9.8.7:8000')`, id, broken, rawError)
	require.NoError(t, err)
	_, err = tb.pool.Exec(ctx, `UPDATE images SET status = 'awaiting_review' WHERE id = $1`, id)
	require.NoError(t, err)
	_, err = tb.pool.Exec(ctx, `INSERT INTO review_items (image_id, confidence) VALUES ($1, 0.9)`, id)
	require.NoError(t, err)
	_, item := next(t, rev)
	res := rev.json(http.MethodPost, "/api/v1/review/"+item["item_id"].(string), map[string]any{
		"instances": []map[string]any{{"proposal_id": proposal, "label": "dog", "mask": m}}})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	var ingestJob int64
	require.NoError(t, tb.pool.QueryRow(ctx, `SELECT id FROM river_job WHERE kind = 'ingest' AND args->>'image_id' = $1`, id).Scan(&ingestJob))
	_, err = tb.pool.Exec(ctx, `UPDATE river_job SET errors = ARRAY[jsonb_build_object('at', now(), 'attempt', 1, 'error', $2::text, 'trace', '')] WHERE id = $1`,
		ingestJob, rawError)
	require.NoError(t, err)

	// Bob sends the same bytes under his own name.
	res = bob.upload([]file{{"bobs-copy.jpg", data}}, map[string][]string{"labels": {"cat"}})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	dup := res.json(t)["results"].([]any)[0].(map[string]any)
	require.Equal(t, "duplicate", dup["status"])
	require.Equal(t, "bobs-copy.jpg", dup["image"].(map[string]any)["filename"])
	secrets := []string{"alice-private-holiday", "revsecretname", "secretmodel", "brokenmodel", proposal.String(), m.Counts, "10.9.8.7", "upstream secret body"}
	noSecrets := func(body []byte, what string) {
		t.Helper()
		for _, s := range secrets {
			require.NotContains(t, string(body), s, what)
		}
	}
	noSecrets(res.body, "duplicate upload answer")

	got := bob.get("/api/v1/images/" + id)
	require.Equal(t, http.StatusOK, got.StatusCode)
	j := got.json(t)
	require.Equal(t, "bobs-copy.jpg", j["filename"])
	require.Equal(t, "reviewed", j["status"])
	require.Empty(t, j["proposals"])
	require.Empty(t, j["annotations"])
	require.Empty(t, j["inference"])
	noSecrets(got.body, "bob's GET /api/v1/images/{id}")
	page := bob.get("/images/" + id)
	require.Equal(t, http.StatusOK, page.StatusCode)
	doc := page.doc(t)
	require.Equal(t, "bobs-copy.jpg", strings.TrimSpace(doc.Find("h1").Text()))
	require.Zero(t, doc.Find("ul.proposals li, [data-annotation-id], table").Length())
	noSecrets(page.body, "bob's image page")
	for _, path := range []string{"/images/" + id + "/inference", "/uploads/" + id + "/card", "/uploads", "/api/v1/images"} {
		res := bob.get(path)
		require.Equal(t, http.StatusOK, res.StatusCode, path)
		noSecrets(res.body, path)
	}
	job := bob.get("/api/v1/jobs/" + strconv.FormatInt(ingestJob, 10))
	require.Equal(t, http.StatusOK, job.StatusCode, "%s", job.body)
	require.Len(t, job.json(t)["errors"], 1)
	noSecrets(job.body, "bob's job")

	// Alice, the first uploader, sees the outlines and the runs, but no
	// reviewer names and no inference server's words.
	got = alice.get("/api/v1/images/" + id)
	j = got.json(t)
	require.Equal(t, "alice-private-holiday.jpg", j["filename"])
	require.Len(t, j["proposals"], 1)
	require.Len(t, j["annotations"], 1)
	runs := j["inference"].([]any)
	require.Len(t, runs, 1)
	require.Equal(t, "The model server did not answer in time; it will be tried again.", runs[0].(map[string]any)["last_error"])
	for _, s := range []string{"revsecretname", "10.9.8.7", "upstream secret body"} {
		require.NotContains(t, string(got.body), s)
		require.NotContains(t, string(alice.get("/images/"+id).body), s)
		require.NotContains(t, string(alice.get("/api/v1/jobs/"+strconv.FormatInt(ingestJob, 10)).body), s)
	}

	// Staff see the kind of failure, in the same plain words; admins the
	// inference server's own error.
	got = rev.get("/api/v1/images/" + id)
	require.Len(t, got.json(t)["annotations"], 1)
	require.Contains(t, string(got.body), "revsecretname")
	require.NotContains(t, string(got.body), "10.9.8.7")
	require.Equal(t, "retryable", got.json(t)["inference"].([]any)[0].(map[string]any)["error_kind"])
	require.Contains(t, string(admin.get("/api/v1/images/"+id).body), "upstream secret body")
	require.Contains(t, string(admin.get("/images/"+id).body), "10.9.8.7")
	require.Contains(t, string(admin.get("/api/v1/jobs/"+strconv.FormatInt(ingestJob, 10)).body), "10.9.8.7")
}

// TestUploadQuota: with a daily quota, files beyond it are refused with the
// reason (207 when others were stored, 429 with Retry-After when none
// was), refused files do not count, and parallel uploads cannot pass it.
func TestUploadQuota(t *testing.T) {
	t.Parallel()
	tb := setup(t, func(c *config.Config) { c.UploadQuotaFilesPerDay = 3 })
	ada, adaUser := tb.userWithRole(t, "ada@example.com", auth.RoleContributor)

	// A refused file is not counted.
	res := ada.upload([]file{{"notes.txt", []byte("not an image at all")}}, nil)
	require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s", res.body)
	res = ada.upload(smallPhotos(2, 300), nil)
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	require.Empty(t, res.Header.Get("Retry-After"))

	res = ada.upload(smallPhotos(2, 310), nil)
	require.Equal(t, http.StatusMultiStatus, res.StatusCode, "%s", res.body)
	results := res.json(t)["results"].([]any)
	require.Equal(t, "created", results[0].(map[string]any)["status"])
	over := results[1].(map[string]any)
	require.Equal(t, "refused", over["status"])
	e := over["error"].(map[string]any)
	require.Equal(t, "quota_exceeded", e["code"])
	require.Equal(t, "files[1]", e["field"])
	require.Regexp(t, `^photo-1\.jpg was not stored: you have reached today's upload limit \(3 files a day\)\. It starts again at midnight UTC, in \d+h \d\dm\.$`, e["message"])
	require.NotEmpty(t, res.Header.Get("Retry-After"))

	res = ada.upload(smallPhotos(1, 320), nil)
	require.Equal(t, http.StatusTooManyRequests, res.StatusCode, "%s", res.body)
	code, _ := res.apiError(t)
	require.Equal(t, "quota_exceeded", code)
	wait, err := strconv.Atoi(res.Header.Get("Retry-After"))
	require.NoError(t, err)
	require.True(t, wait >= 1 && wait <= 86400, "Retry-After %d", wait)
	require.Equal(t, 3, tb.count(t, "SELECT count(*) FROM images WHERE owner_id = $1", adaUser.ID))

	// The upload page says the same.
	body, ct := multipartBody(t, smallPhotos(1, 330), nil)
	page := ada.do(http.MethodPost, "/upload", body, http.Header{"Content-Type": {ct}, "Origin": {tb.base}, "Sec-Fetch-Site": {"same-origin"}})
	require.Equal(t, http.StatusTooManyRequests, page.StatusCode, "%s", page.body)
	require.Contains(t, page.doc(t).Find("#upload-results").Text(), "today's upload limit")

	// Twelve parallel uploads of one file each by a fresh contributor: at
	// most three are stored.
	bea, beaUser := tb.userWithRole(t, "bea@example.com", auth.RoleContributor)
	files := smallPhotos(12, 400)
	statuses := make([]int, len(files))
	var wg sync.WaitGroup
	for i, f := range files {
		wg.Go(func() { statuses[i] = bea.upload([]file{f}, nil).StatusCode })
	}
	wg.Wait()
	stored := 0
	for _, s := range statuses {
		require.Contains(t, []int{http.StatusCreated, http.StatusTooManyRequests}, s)
		if s == http.StatusCreated {
			stored++
		}
	}
	require.Equal(t, 3, stored, "%v", statuses)
	require.Equal(t, 3, tb.count(t, "SELECT count(*) FROM images WHERE owner_id = $1", beaUser.ID))
}

// TestUploadQuotaBytes: the byte quota refuses the file that would pass it.
func TestUploadQuotaBytes(t *testing.T) {
	t.Parallel()
	files := smallPhotos(3, 500)
	limit := int64(len(files[0].data) + len(files[1].data))
	tb := setup(t, func(c *config.Config) { c.UploadQuotaBytesPerDay = limit })
	c, _ := tb.userWithRole(t, "cy@example.com", auth.RoleContributor)
	res := c.upload(files, nil)
	require.Equal(t, http.StatusMultiStatus, res.StatusCode, "%s", res.body)
	results := res.json(t)["results"].([]any)
	require.Equal(t, "created", results[1].(map[string]any)["status"])
	e := results[2].(map[string]any)["error"].(map[string]any)
	require.Equal(t, "quota_exceeded", e["code"])
	require.Contains(t, e["message"], humanBytes(limit)+" a day")
	var files32, bytes int64
	require.NoError(t, tb.pool.QueryRow(context.Background(), "SELECT files, bytes FROM upload_quota").Scan(&files32, &bytes))
	require.EqualValues(t, 2, files32)
	require.Equal(t, limit, bytes)
}
