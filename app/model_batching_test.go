package app

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/oip"
	"github.com/deepimageshub/imagehub/worker"
)

// fixedBatchServer is a real HTTP server playing a convention model whose
// IMAGE input is [1]: it cannot take a batch.
func fixedBatchServer(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/health/ready", func(w http.ResponseWriter, _ *http.Request) {})
	mux.HandleFunc("GET /v2", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(oip.ServerMetadata{Name: "fixed", Version: "1", Extensions: []string{"binary_tensor_data"}})
	})
	mux.HandleFunc("GET /v2/models/fixed/versions/1", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(oip.ModelMetadata{
			Name: "fixed", Versions: []string{"1"}, Platform: "test",
			Inputs: []oip.TensorMetadata{{Name: "IMAGE", Datatype: oip.BYTES, Shape: []int64{1}}},
			Outputs: []oip.TensorMetadata{
				{Name: "MASKS", Datatype: oip.BYTES, Shape: []int64{-1}},
				{Name: "SCORES", Datatype: oip.FP32, Shape: []int64{-1}},
				{Name: "LABELS", Datatype: oip.BYTES, Shape: []int64{-1}},
			},
		})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// TestModelBatching: max_batch and batch_window_ms are registered, shown
// and checked: a model that batches must declare a variable batch
// dimension, and the error names max_batch.
func TestModelBatching(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	admin, _ := tb.userWithRole(t, "admin@example.com", auth.RoleAdmin)
	w := httptest.NewServer(worker.New(worker.Config{Capacity: 2}))
	t.Cleanup(w.Close)
	fixed := fixedBatchServer(t)

	body := func(mod map[string]any) map[string]any {
		b := map[string]any{"name": "imagehub-segmenter", "endpoints": []string{w.URL}}
		for k, v := range mod {
			b[k] = v
		}
		return b
	}
	for field, bad := range map[string]map[string]any{
		"max_batch":       body(map[string]any{"max_batch": 257}),
		"batch_window_ms": body(map[string]any{"batch_window_ms": 1001}),
	} {
		res := admin.json(http.MethodPost, "/api/v1/models", bad)
		require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s: %s", field, res.body)
		_, f := res.apiError(t)
		require.Equal(t, field, f)
	}
	res := admin.json(http.MethodPost, "/api/v1/models", body(map[string]any{"max_batch": -1}))
	require.Equal(t, http.StatusBadRequest, res.StatusCode)

	// The defaults: one image a request, a 10 ms window.
	res = admin.json(http.MethodPost, "/api/v1/models", body(nil))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	m := res.json(t)["model"].(map[string]any)
	require.EqualValues(t, 1, m["max_batch"])
	require.EqualValues(t, 10, m["batch_window_ms"])

	// The project's worker takes IMAGE [-1]: batching is accepted.
	res = admin.json(http.MethodPost, "/api/v1/models", body(map[string]any{"max_batch": 8, "batch_window_ms": 0}))
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	m = res.json(t)["model"].(map[string]any)
	require.EqualValues(t, 8, m["max_batch"])
	require.EqualValues(t, 0, m["batch_window_ms"])
	doc := admin.get("/admin/models").doc(t)
	require.Contains(t, doc.Find(".model-batch").Text(), "batches of up to 8 images, gathered for 0 ms")

	// IMAGE [1] takes no batch: refused, naming max_batch; max_batch 1 is fine.
	fx := map[string]any{"name": "fixed", "endpoints": []string{fixed.URL}, "max_batch": 4}
	res = admin.json(http.MethodPost, "/api/v1/models", fx)
	require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, "%s", res.body)
	_, f := res.apiError(t)
	require.Equal(t, "max_batch", f)
	require.Contains(t, string(res.body), "max_batch is 4, but input IMAGE has shape [1]")
	fx["max_batch"] = 1
	res = admin.json(http.MethodPost, "/api/v1/models", fx)
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)

	// The form: a word is refused with the field named; a number is saved.
	form := url.Values{"name": {"imagehub-segmenter"}, "version": {"1"}, "endpoints": {w.URL},
		"capacity": {"4"}, "timeout_ms": {"60000"}, "layout": {"imagehub"}, "max_batch": {"many"}, "batch_window_ms": {"5"}}
	res = admin.form("/admin/models", form)
	require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s", res.body)
	require.Contains(t, res.doc(t).Find("#model-max-batch").Parent().Text(), "whole number of images per request")
	form.Set("max_batch", "4")
	res = admin.form("/admin/models", form)
	require.Less(t, res.StatusCode, 400, "%s", res.body)
	for _, it := range admin.get("/api/v1/models").json(t)["items"].([]any) {
		if m := it.(map[string]any); m["name"] == "imagehub-segmenter" {
			require.EqualValues(t, 4, m["max_batch"])
			require.EqualValues(t, 5, m["batch_window_ms"])
		}
	}
}
