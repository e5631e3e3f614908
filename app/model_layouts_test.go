package app

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/imaging/imagingtest"
	"github.com/deepimageshub/imagehub/oip"
	"github.com/deepimageshub/imagehub/worker"
)

const workerToken = "Bearer tok-9f8e7d-secret"

// TestModelHeaders registers the project's worker behind a gateway that
// demands a token and a Host, as a KServe ingress does: the check and the
// inference send the stored headers, and no answer or page shows them.
func TestModelHeaders(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	admin, _ := tb.userWithRole(t, "admin@example.com", auth.RoleAdmin)
	wk := worker.New(worker.Config{Capacity: 2})
	var refused atomic.Int32
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != workerToken || r.Host != "seg.models.example.com" {
			refused.Add(1)
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		wk.ServeHTTP(w, r)
	}))
	t.Cleanup(gw.Close)

	body := map[string]any{"name": "imagehub-segmenter", "endpoints": []string{gw.URL},
		"headers": map[string]string{"Authorization": workerToken, "host": "seg.models.example.com"}}
	res := admin.json(http.MethodPost, "/api/v1/models", body)
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	m := res.json(t)["model"].(map[string]any)
	require.Empty(t, m["problems"], "the check got through with the headers")
	require.Equal(t, []any{"Authorization", "Host"}, m["header_names"])
	require.Equal(t, "imagehub", m["layout"])
	require.NotContains(t, string(res.body), "tok-9f8e7d")

	// An update without headers keeps them, and checks with them.
	delete(body, "headers")
	body["capacity"] = 3
	res = admin.json(http.MethodPost, "/api/v1/models", body)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	require.Empty(t, res.json(t)["model"].(map[string]any)["problems"])
	require.Zero(t, refused.Load())

	for _, path := range []string{"/api/v1/models", "/admin/models"} {
		page := admin.get(path)
		require.Equal(t, http.StatusOK, page.StatusCode)
		require.NotContains(t, string(page.body), "tok-9f8e7d", path)
	}
	require.Contains(t, string(admin.get("/admin/models").body), "Request headers (values hidden): Authorization, Host")

	// The inference sends them too.
	contributor, _ := tb.userWithRole(t, "ann@example.com", auth.RoleContributor)
	up := contributor.upload([]file{{"dog.jpg", imagingtest.JPEG(imagingtest.Photo(640, 480, 3))}}, map[string][]string{"labels": {"dog"}})
	require.Equal(t, http.StatusCreated, up.StatusCode, "%s", up.body)
	id := up.json(t)["results"].([]any)[0].(map[string]any)["image"].(map[string]any)["id"].(string)
	require.Eventually(t, func() bool {
		img := contributor.get("/api/v1/images/" + id).json(t)
		return img["status"] == "awaiting_review" && len(img["proposals"].([]any)) > 0
	}, 60*time.Second, 100*time.Millisecond)
	require.Zero(t, refused.Load())
	require.NotContains(t, string(admin.get("/images/"+id+"/inference").body), "tok-9f8e7d")

	// Without the token the gateway refuses: the model is saved with the
	// finding, which names no value.
	res = admin.json(http.MethodPost, "/api/v1/models", map[string]any{"name": "imagehub-segmenter", "version": "2",
		"endpoints": []string{gw.URL}, "headers": map[string]string{"Authorization": "Bearer wrong-value"}})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	require.Contains(t, res.json(t)["model"].(map[string]any)["problems"].([]any)[0], "401")
	require.NotContains(t, string(res.body), "wrong-value")

	// Clearing them: an empty object.
	res = admin.json(http.MethodPost, "/api/v1/models", map[string]any{"name": "imagehub-segmenter", "version": "2",
		"endpoints": []string{gw.URL}, "headers": map[string]string{}})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	require.Empty(t, res.json(t)["model"].(map[string]any)["header_names"])

	before := refused.Load()
	// The form takes "Name: value" lines and never shows them back, even
	// when it re-renders with an error.
	res = admin.form("/admin/models", url.Values{"name": {"imagehub-segmenter"}, "version": {"1"}, "endpoints": {gw.URL},
		"capacity": {"1"}, "timeout_ms": {"1000"}, "layout": {"imagehub"},
		"headers": {"Authorization: " + workerToken + "\nHost: seg.models.example.com"}, "score_threshold": {"2"}})
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
	require.NotContains(t, string(res.body), "tok-9f8e7d")
	res = admin.form("/admin/models", url.Values{"name": {"imagehub-segmenter"}, "version": {"1"}, "endpoints": {gw.URL},
		"capacity": {"1"}, "timeout_ms": {"1000"}, "layout": {"imagehub"}, "enabled": {"on"},
		"headers": {"Authorization: " + workerToken + "\nHost: seg.models.example.com"}})
	require.Less(t, res.StatusCode, 400, "%s", res.body)
	var names []string
	for _, it := range admin.get("/api/v1/models").json(t)["items"].([]any) {
		if it.(map[string]any)["version"] == "1" {
			for _, n := range it.(map[string]any)["header_names"].([]any) {
				names = append(names, n.(string))
			}
			require.Empty(t, it.(map[string]any)["problems"])
		}
	}
	require.Equal(t, []string{"Authorization", "Host"}, names)
	require.Equal(t, before, refused.Load(), "the form's headers got through")
}

// TestModelLayouts registers stock layouts: every field is checked (400
// naming it), a layout's signature is checked against the model's metadata
// (422), and an unreachable model keeps its layout and defaults.
func TestModelLayouts(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	admin, _ := tb.userWithRole(t, "admin@example.com", auth.RoleAdmin)
	w := httptest.NewServer(worker.New(worker.Config{Capacity: 2}))
	t.Cleanup(w.Close)

	yolo := func(mod map[string]any) map[string]any {
		b := map[string]any{"name": "yolo11n-seg", "endpoints": []string{"http://127.0.0.1:1"}, "layout": "yolo-seg",
			"labels": []string{"person", "dog"}}
		for k, v := range mod {
			b[k] = v
		}
		return b
	}
	for field, bad := range map[string]map[string]any{
		"layout":          yolo(map[string]any{"layout": "yolov8"}),
		"labels":          yolo(map[string]any{"labels": []string{}}),
		"score_threshold": yolo(map[string]any{"score_threshold": 1.5}),
		"iou_threshold":   yolo(map[string]any{"iou_threshold": -0.2}),
		"mask_threshold":  yolo(map[string]any{"mask_threshold": 1}),
		"max_instances":   yolo(map[string]any{"max_instances": 5000}),
		"input_size":      yolo(map[string]any{"input_size": 20}),
		"headers":         yolo(map[string]any{"headers": map[string]string{"Content-Length": "1"}}),
	} {
		res := admin.json(http.MethodPost, "/api/v1/models", bad)
		require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s: %s", field, res.body)
		_, f := res.apiError(t)
		require.Equal(t, field, f)
	}
	for _, bad := range []map[string]string{{"Transfer-Encoding": "chunked"}, {"Connection": "close"}, {"X-Token": "a\nb"}} {
		res := admin.json(http.MethodPost, "/api/v1/models", yolo(map[string]any{"headers": bad}))
		require.Equal(t, http.StatusBadRequest, res.StatusCode)
		_, f := res.apiError(t)
		require.Equal(t, "headers", f)
	}

	// Unreachable: saved with its layout and the defaults.
	res := admin.json(http.MethodPost, "/api/v1/models", yolo(nil))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	m := res.json(t)["model"].(map[string]any)
	require.Equal(t, "yolo-seg", m["layout"])
	require.Equal(t, []any{"person", "dog"}, m["labels"])
	require.InDelta(t, 0.25, m["score_threshold"], 1e-6)
	require.InDelta(t, 0.45, m["iou_threshold"], 1e-6)
	require.InDelta(t, 0.5, m["mask_threshold"], 1e-6)
	require.EqualValues(t, 100, m["max_instances"])
	require.EqualValues(t, 640, m["input_size"])
	page := string(admin.get("/admin/models").body)
	require.Contains(t, page, "yolo-seg · 2 labels")

	// The project's worker follows the convention, not a stock layout.
	for _, l := range []string{"yolo-seg", "maskrcnn"} {
		res = admin.json(http.MethodPost, "/api/v1/models", map[string]any{"name": "imagehub-segmenter",
			"endpoints": []string{w.URL}, "layout": l, "labels": []string{"thing"}})
		require.Equal(t, http.StatusUnprocessableEntity, res.StatusCode, "%s", res.body)
		require.True(t, strings.Contains(string(res.body), "does not fit the "+l+" layout"), "%s", res.body)
	}

	// The form's "check again" carries the layout along.
	res = admin.form("/admin/models", url.Values{"name": {"yolo11n-seg"}, "version": {"1"}, "endpoints": {"http://127.0.0.1:1"},
		"capacity": {"4"}, "timeout_ms": {"60000"}, "layout": {"yolo-seg"}, "labels": {"person\ndog\ncat"},
		"score_threshold": {"0.3"}, "iou_threshold": {"0.5"}, "mask_threshold": {"0.4"}, "max_instances": {"50"}, "input_size": {"320"}})
	require.Less(t, res.StatusCode, 400, "%s", res.body)
	for _, it := range admin.get("/api/v1/models").json(t)["items"].([]any) {
		m := it.(map[string]any)
		if m["name"] == "yolo11n-seg" {
			require.Equal(t, []any{"person", "dog", "cat"}, m["labels"])
			require.InDelta(t, 0.3, m["score_threshold"], 1e-6)
			require.EqualValues(t, 50, m["max_instances"])
			require.EqualValues(t, 320, m["input_size"])
		}
	}
}

// yoloServer is a real HTTP server playing Triton with a yolo-seg export
// of 2 classes at S = 32: whatever the image, two objects (inference's
// layout_test.go explains the numbers).
func yoloServer(t *testing.T) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	meta := oip.ModelMetadata{
		Name: "yolo-test", Platform: "onnxruntime_onnx",
		Inputs: []oip.TensorMetadata{{Name: "images", Datatype: oip.FP32, Shape: []int64{-1, 3, 32, 32}}},
		Outputs: []oip.TensorMetadata{
			{Name: "output0", Datatype: oip.FP32, Shape: []int64{-1, 38, 4}},
			{Name: "output1", Datatype: oip.FP32, Shape: []int64{-1, 32, 8, 8}},
		},
	}
	const a = 4
	preds := make([]float32, 38*a)
	set := func(row, anchor int, v float32) { preds[row*a+anchor] = v }
	for i, box := range [a][6]float32{{8, 16, 16, 16, 0.9, 0.1}, {9, 16, 16, 16, 0.8, 0.05}, {9, 16, 16, 16, 0.3, 0.7}, {20, 16, 4, 4, 0.1, 0.2}} {
		for j, v := range box {
			set(j, i, v)
		}
	}
	set(6, 0, 10)
	set(6, 1, 10)
	set(7, 2, 10)
	protos := make([]float32, 32*64)
	for i := range 64 {
		protos[i], protos[64+i] = 1, -1
	}
	protos[64+3*8+2] = 1
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/health/ready":
		case "/v2":
			_ = json.NewEncoder(w).Encode(oip.ServerMetadata{Name: "triton", Extensions: []string{oip.ExtensionBinaryTensorData}})
		case "/v2/models/yolo-test/versions/1":
			_ = json.NewEncoder(w).Encode(meta)
		case "/v2/models/yolo-test/versions/1/infer":
			body, _ := oip.ReadBody(r.Body, 64<<20)
			jl, _ := oip.JSONLength(r.Header, len(body))
			req, err := oip.DecodeRequest(body, jl, oip.Limits{})
			if err != nil || req.Input("images") == nil {
				http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
				return
			}
			calls.Add(1)
			b := req.Input("images").Shape[0]
			var p, q []float32
			for range b {
				p, q = append(p, preds...), append(q, protos...)
			}
			enc, _ := oip.EncodeResponse(&oip.InferResponse{ModelName: "yolo-test", ID: req.ID, Outputs: []oip.Tensor{
				oip.FP32Tensor("output0", []int64{b, 38, a}, p),
				oip.FP32Tensor("output1", []int64{b, 32, 8, 8}, q),
			}}, req.OutputBinary)
			enc.SetHeaders(w.Header())
			_, _ = w.Write(enc.Bytes)
		default:
			http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

// TestModelYOLOSegEndToEnd: a yolo-seg export registered with its labels
// gives an uploaded photo proposals named by those labels, through the
// inference jobs.
func TestModelYOLOSegEndToEnd(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	admin, _ := tb.userWithRole(t, "admin@example.com", auth.RoleAdmin)
	srv, calls := yoloServer(t)
	res := admin.json(http.MethodPost, "/api/v1/models", map[string]any{"name": "yolo-test", "endpoints": []string{srv.URL},
		"layout": "yolo-seg", "labels": []string{"person", "car"}})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	m := res.json(t)["model"].(map[string]any)
	require.Empty(t, m["problems"])
	require.EqualValues(t, 32, m["input_size"], "S from the metadata")
	require.Equal(t, true, m["binary_data"])

	contributor, _ := tb.userWithRole(t, "ann@example.com", auth.RoleContributor)
	up := contributor.upload([]file{{"street.jpg", imagingtest.JPEG(imagingtest.Photo(640, 480, 3))}}, map[string][]string{"labels": {"car"}})
	require.Equal(t, http.StatusCreated, up.StatusCode, "%s", up.body)
	id := up.json(t)["results"].([]any)[0].(map[string]any)["image"].(map[string]any)["id"].(string)
	var props []any
	require.Eventually(t, func() bool {
		img := contributor.get("/api/v1/images/" + id).json(t)
		props, _ = img["proposals"].([]any)
		return img["status"] == "awaiting_review"
	}, 60*time.Second, 100*time.Millisecond)
	require.GreaterOrEqual(t, calls.Load(), int32(1))
	labels := map[string]float64{}
	for _, p := range props {
		p := p.(map[string]any)
		labels[p["label"].(string)] = p["score"].(float64)
	}
	// The 640×480 photo goes in at 32×24 with 4 grey rows above: both
	// objects land on it.
	require.Len(t, labels, 2, "%v", props)
	require.InDelta(t, 0.9, labels["person"], 1e-6)
	require.InDelta(t, 0.7, labels["car"], 1e-6)
}
