package app

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/imaging/imagingtest"
	"github.com/deepimageshub/imagehub/worker"
)

// TestModelRegistry registers the project's worker through the API and the
// admin page: a fitting model is saved (201, then 200), an unreachable
// endpoint is saved with the finding, a model the server does not serve is
// refused with 422 and every finding, bad fields get 400 naming the field,
// and an accepted photo ends with the model's proposals.
func TestModelRegistry(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	admin, _ := tb.userWithRole(t, "admin@example.com", auth.RoleAdmin)
	w := httptest.NewServer(worker.New(worker.Config{Capacity: 2}))
	t.Cleanup(w.Close)

	body := map[string]any{"name": "imagehub-segmenter", "version": "1", "task": "segmentation",
		"endpoints": []string{w.URL + "/"}, "capacity": 2, "enabled": true}
	res := admin.json(http.MethodPost, "/api/v1/models", body)
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	m := res.json(t)["model"].(map[string]any)
	require.Equal(t, []any{w.URL}, m["endpoints"], "the base URL, normalised")
	require.EqualValues(t, 2, m["capacity"])
	require.Equal(t, true, m["binary_data"], "the worker lists binary_tensor_data")
	require.Equal(t, true, m["label_hints"])
	require.Empty(t, m["problems"])

	body["capacity"] = 3
	res = admin.json(http.MethodPost, "/api/v1/models", body)
	require.Equal(t, http.StatusOK, res.StatusCode, "same name and version: an update")
	var slots int
	require.NoError(t, tb.pool.QueryRow(context.Background(), "SELECT count(*) FROM endpoint_slots").Scan(&slots))
	require.Equal(t, 3, slots, "one slot per unit of capacity")

	res = admin.json(http.MethodPost, "/api/v1/models", map[string]any{"name": "nobody-serves-this", "endpoints": []string{w.URL}})
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, "%s", res.body)
	e := res.json(t)["error"].(map[string]any)
	require.Equal(t, "model_unfit", e["code"])
	require.Contains(t, e["details"].([]any)[0], "does not serve model")

	res = admin.json(http.MethodPost, "/api/v1/models", map[string]any{"name": "later", "endpoints": []string{"http://127.0.0.1:1"}})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	require.Contains(t, res.json(t)["model"].(map[string]any)["problems"].([]any)[0], "not ready")
	res = admin.json(http.MethodPost, "/api/v1/models", map[string]any{"name": "later", "endpoints": []string{"http://127.0.0.1:1"}, "enabled": false})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)

	for field, bad := range map[string]map[string]any{
		"name":       {"name": "a b", "endpoints": []string{w.URL}},
		"endpoints":  {"name": "x", "endpoints": []string{"http://gpu:8000/v2"}},
		"capacity":   {"name": "x", "endpoints": []string{w.URL}, "capacity": 5000},
		"task":       {"name": "x", "endpoints": []string{w.URL}, "task": "detection"},
		"timeout_ms": {"name": "x", "endpoints": []string{w.URL}, "timeout_ms": 1},
	} {
		res := admin.json(http.MethodPost, "/api/v1/models", bad)
		require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s: %s", field, res.body)
		_, f := res.apiError(t)
		require.Equal(t, field, f)
	}

	list := admin.get("/api/v1/models").json(t)["items"].([]any)
	require.Len(t, list, 2)

	// The admin page lists them, and its form saves the same way.
	page := admin.get("/admin/models")
	require.Equal(t, http.StatusOK, page.StatusCode)
	require.Contains(t, string(page.body), "imagehub-segmenter")
	require.Contains(t, string(page.body), "not ready")
	res = admin.form("/admin/models", url.Values{"name": {"later"}, "version": {"1"}, "endpoints": {w.URL + "\nftp://x"},
		"capacity": {"1"}, "timeout_ms": {"1000"}})
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
	require.Contains(t, string(res.body), "is not an http or https URL")

	// A photo goes through ingest and inference to review.
	contributor, _ := tb.userWithRole(t, "ann@example.com", auth.RoleContributor)
	up := contributor.upload([]file{{"dog.jpg", imagingtest.JPEG(imagingtest.Photo(640, 480, 3))}}, map[string][]string{"labels": {"dog"}})
	require.Equal(t, http.StatusCreated, up.StatusCode, "%s", up.body)
	id := up.json(t)["results"].([]any)[0].(map[string]any)["image"].(map[string]any)["id"].(string)
	deadline := time.Now().Add(60 * time.Second)
	for {
		img := contributor.get("/api/v1/images/" + id).json(t)
		if img["status"] == "awaiting_review" {
			props := img["proposals"].([]any)
			require.NotEmpty(t, props)
			require.Equal(t, "dog", props[0].(map[string]any)["label"])
			runs := img["inference"].([]any)
			require.Len(t, runs, 1, "one run: the disabled model gets none")
			require.Equal(t, "succeeded", runs[0].(map[string]any)["state"])
			break
		}
		require.True(t, time.Now().Before(deadline), "no proposals: %v", img)
		time.Sleep(100 * time.Millisecond)
	}
	page = contributor.get("/images/" + id)
	require.Equal(t, http.StatusOK, page.StatusCode)
	require.Contains(t, string(page.body), "The models proposed")
	require.NotContains(t, string(page.body), "imagehub-segmenter 1", "contributors see a plain sentence, not the jobs")
	page = admin.get("/images/" + id + "/inference")
	require.Contains(t, string(page.body), "imagehub-segmenter 1")

	// The image's jobs are visible to its uploader and to admins only.
	var jobID int64
	require.NoError(t, tb.pool.QueryRow(context.Background(),
		"SELECT id FROM river_job WHERE kind = 'infer' AND args->>'image_id' = $1", id).Scan(&jobID))
	path := fmt.Sprintf("/api/v1/jobs/%d", jobID)
	job := contributor.get(path)
	require.Equal(t, http.StatusOK, job.StatusCode, "%s", job.body)
	require.Equal(t, "infer", job.json(t)["kind"])
	// River marks the job completed just after the work is stored.
	require.Eventually(t, func() bool { return contributor.get(path).json(t)["state"] == "completed" }, 10*time.Second, 50*time.Millisecond)
	require.Equal(t, http.StatusOK, admin.get(path).StatusCode)
	other, _ := tb.userWithRole(t, "bo@example.com", auth.RoleContributor)
	require.Equal(t, http.StatusNotFound, other.get(path).StatusCode)
	require.Equal(t, http.StatusNotFound, admin.get("/api/v1/jobs/999999999").StatusCode)
}

// TestJobConsole: riverui answers admins only, and its writes need a
// same-origin browser.
func TestJobConsole(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	admin, _ := tb.userWithRole(t, "admin@example.com", auth.RoleAdmin)
	reviewer, _ := tb.userWithRole(t, "rev@example.com", auth.RoleReviewer)

	res := admin.get("/admin/jobs")
	require.Equal(t, http.StatusMovedPermanently, res.StatusCode)
	require.Equal(t, "/admin/jobs/", res.Header.Get("Location"))
	res = admin.get("/admin/jobs/")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, strings.ToLower(string(res.body)), "<!doctype html>")
	res = admin.get("/admin/jobs/api/jobs?state=completed&limit=5")
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	require.Equal(t, http.StatusForbidden, reviewer.get("/admin/jobs").StatusCode)

	cancel := `{"job_ids": ["1"]}`
	h := http.Header{"Content-Type": {"application/json"}}
	res = admin.do(http.MethodPost, "/admin/jobs/api/jobs/cancel", strings.NewReader(cancel), h)
	require.Equal(t, http.StatusForbidden, res.StatusCode, "no Origin, no token: refused")
	h.Set("Origin", "https://evil.example")
	h.Set("Sec-Fetch-Site", "cross-site")
	res = admin.do(http.MethodPost, "/admin/jobs/api/jobs/cancel", strings.NewReader(cancel), h)
	require.Equal(t, http.StatusForbidden, res.StatusCode, "cross-site: refused")
	h.Set("Origin", tb.base)
	h.Set("Sec-Fetch-Site", "same-origin")
	res = admin.do(http.MethodPost, "/admin/jobs/api/jobs/cancel", strings.NewReader(cancel), h)
	require.NotEqual(t, http.StatusForbidden, res.StatusCode, "same-origin: let through to riverui (%s)", res.body)
}
