package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	_ "image/png"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/imaging/imagingtest"
	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/openapi/openapitest"
)

// A Label Studio ML backend as label-studio-ml-backend's server answers:
// GET /health {"status": "UP"}, POST /setup {"model_version"}, POST
// /predict {"results": [{"result": [...], "score", "model_version"}]}. It
// downloads each task's data.image, as the SDK's get_local_path does, and
// checks the hub's signed URL is the only way in.
type lsBackend struct {
	srv  *httptest.Server
	mode string // "brush", "polygon" or "nonsense"

	mu      sync.Mutex
	schemas []string // the labeling configs /setup and /predict carried
	fetched int      // images downloaded
}

func newLSBackend(t *testing.T, mode string) *lsBackend {
	b := &lsBackend{mode: mode}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"status": "UP", "model_dir": "/data/models"}`)
	})
	mux.HandleFunc("POST /setup", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Project string `json:"project"`
			Schema  string `json:"schema"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Schema == "" || req.Project == "" {
			http.Error(w, "bad setup", http.StatusBadRequest)
			return
		}
		b.mu.Lock()
		b.schemas = append(b.schemas, req.Schema)
		b.mu.Unlock()
		_, _ = io.WriteString(w, `{"model_version": "`+mode+`-7"}`)
	})
	mux.HandleFunc("POST /predict", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Tasks []struct {
				ID   int64 `json:"id"`
				Data struct {
					Image string `json:"image"`
				} `json:"data"`
			} `json:"tasks"`
			LabelConfig string `json:"label_config"`
			Project     string `json:"project"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Tasks) == 0 {
			http.Error(w, "bad predict", http.StatusBadRequest)
			return
		}
		b.mu.Lock()
		b.schemas = append(b.schemas, req.LabelConfig)
		b.mu.Unlock()
		if mode == "nonsense" {
			_, _ = io.WriteString(w, `{"predictions": "of doom", "results": {"not": "a list"}}`)
			return
		}
		var results []any
		for _, task := range req.Tasks {
			iw, ih, err := b.fetch(task.Data.Image)
			if err != nil {
				t.Errorf("backend: %v", err)
				http.Error(w, err.Error(), http.StatusInternalServerError)
				return
			}
			results = append(results, lsPrediction(mode, iw, ih))
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"results": results, "model_version": mode + "-7"})
	})
	b.srv = httptest.NewServer(mux)
	t.Cleanup(b.srv.Close)
	return b
}

// fetch downloads a task's image and checks that the URL opens nothing
// else: not with a changed signature, not for another image.
func (b *lsBackend) fetch(raw string) (w, h int, err error) {
	get := func(u string) (int, []byte, error) {
		res, err := http.Get(u)
		if err != nil {
			return 0, nil, err
		}
		defer res.Body.Close()
		data, err := io.ReadAll(res.Body)
		return res.StatusCode, data, err
	}
	status, data, err := get(raw)
	if err != nil || status != http.StatusOK {
		return 0, 0, fmt.Errorf("GET %s: %d %v %s", raw, status, err, data)
	}
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return 0, 0, fmt.Errorf("the signed URL's bytes are not an image: %v", err)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return 0, 0, err
	}
	q := u.Query()
	sig := q.Get("signature")
	q.Set("signature", strings.ToUpper(sig[:1])+sig[1:]+"x")
	forged := *u
	forged.RawQuery = q.Encode()
	other := *u
	other.Path = u.Path[:strings.LastIndex(u.Path, "/")+1] + "0190c1d2-0000-7000-8000-000000000000"
	later := *u
	q = u.Query()
	e, _ := strconv.ParseInt(q.Get("expires"), 10, 64)
	q.Set("expires", strconv.FormatInt(e+3600, 10))
	later.RawQuery = q.Encode()
	for _, bad := range []url.URL{forged, other, later} {
		if status, _, err := get(bad.String()); err != nil || status != http.StatusNotFound {
			return 0, 0, fmt.Errorf("GET %s: %d %v; a URL not signed for it must be refused with 404", bad.String(), status, err)
		}
	}
	b.mu.Lock()
	b.fetched++
	b.mu.Unlock()
	return cfg.Width, cfg.Height, nil
}

// lsBrushMask is the brush the backend paints on a w×h image: an ellipse
// with a soft edge, whose alpha is above 127 inside lsBrushOn.
func lsBrushAlpha(x, y, w, h int) byte {
	dx, dy := float64(x-w/3)/float64(w/4), float64(y-h/2)/float64(h/3)
	d := dx*dx + dy*dy
	switch {
	case d < 0.8:
		return 255
	case d < 1:
		return 140 // on: above half
	case d < 1.2:
		return 90 // off: a faint fringe
	}
	return 0
}

// lsEncodeBrush writes Label Studio's brush RLE from its definition, as
// simply as it allows: 8-bit words, four 16-bit count fields, every run a
// repeat chunk (at most 65536 values each).
func lsEncodeBrush(vals []byte) []int {
	var bits []byte
	put := func(v uint64, n int) {
		for i := n - 1; i >= 0; i-- {
			bits = append(bits, byte(v>>i&1))
		}
	}
	put(uint64(len(vals)), 32)
	put(7, 5)
	for range 4 {
		put(15, 4)
	}
	for i := 0; i < len(vals); {
		j := i
		for j < len(vals) && vals[j] == vals[i] && j-i < 1<<16 {
			j++
		}
		put(1, 1)
		put(3, 2)
		put(uint64(j-i-1), 16)
		put(uint64(vals[i]), 8)
		i = j
	}
	out := make([]int, (len(bits)+7)/8)
	for i, b := range bits {
		out[i/8] |= int(b) << (7 - i%8)
	}
	return out
}

func lsPrediction(mode string, w, h int) map[string]any {
	region := map[string]any{"id": "r1", "from_name": "tag", "to_name": "image", "original_width": w, "original_height": h}
	switch mode {
	case "brush":
		vals := make([]byte, 0, 4*w*h)
		for y := range h {
			for x := range w {
				a := lsBrushAlpha(x, y, w, h)
				vals = append(vals, 255, 0, 0, a)
			}
		}
		region["type"] = "brushlabels"
		region["value"] = map[string]any{"format": "rle", "rle": lsEncodeBrush(vals), "brushlabels": []string{"cat"}}
		return map[string]any{"result": []any{region}, "score": 0.9, "model_version": "brush-7"}
	default:
		region["type"] = "polygonlabels"
		region["score"] = 0.8
		region["value"] = map[string]any{"closed": true, "polygonlabels": []string{"dog"},
			"points": [][]float64{{10, 20}, {60, 20}, {60, 70}, {10, 70}}}
		// An older backend's bare prediction, version as a number.
		return map[string]any{"result": []any{region}, "model_version": 3}
	}
}

// TestEndToEndLabelStudio registers three Label Studio ML backends with the
// real hub, one answering brush masks, one polygons and one nonsense, and
// uploads a photo: the brush and polygon regions become the proposals,
// pixel for pixel, with the models' provenance; the nonsense is recorded
// as a contract error on its run, and the image still goes to review.
func TestEndToEndLabelStudio(t *testing.T) {
	t.Parallel()
	brush, poly, junk := newLSBackend(t, "brush"), newLSBackend(t, "polygon"), newLSBackend(t, "nonsense")

	// The hub signs URLs under BASE_URL: give it its own port.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	require.NoError(t, ln.Close())
	h := newHub(t, map[string]string{"PORT": port, "BASE_URL": "http://127.0.0.1:" + port})
	srv := startServer(t, h.env())
	for _, name := range []string{"cat", "dog"} {
		status, body, _ := call(t, "POST", srv.base+"/api/v1/labels", h.token, map[string]string{"name": name})
		require.Contains(t, []int{http.StatusCreated, http.StatusConflict}, status, "%v", body)
	}
	register := func(name string, b *lsBackend, extra map[string]any) map[string]any {
		spec := map[string]any{"name": name, "version": "1", "endpoints": []string{b.srv.URL}, "capacity": 2,
			"timeout_ms": 30000, "layout": "label-studio"}
		for k, v := range extra {
			spec[k] = v
		}
		status, body, _ := call(t, "POST", srv.base+"/api/v1/models", h.token, spec)
		require.Equal(t, http.StatusCreated, status, "%v\n%s", body, srv.logs)
		m := body["model"].(map[string]any)
		require.Empty(t, m["problems"], "%v", m)
		return m
	}
	register("ls-brush", brush, map[string]any{"labels": []string{"cat", "dog"}})
	m := register("ls-poly", poly, map[string]any{"label_tag": "PolygonLabels"})
	require.Contains(t, m["labels"], "dog", "no labels given: the hub's")
	register("ls-junk", junk, nil)
	require.Equal(t, []string{`<View><Image name="image" value="$image"/><BrushLabels name="tag" toName="image"><Label value="cat"/><Label value="dog"/></BrushLabels></View>`},
		brush.schemas, "/setup got the generated config")
	require.Contains(t, poly.schemas[0], `<PolygonLabels name="tag" toName="image">`)
	require.Contains(t, poly.schemas[0], `<Label value="dog"/>`)

	status, body, _ := call(t, "POST", srv.base+"/api/v1/models", h.token, map[string]any{
		"name": "ls-bad", "endpoints": []string{brush.srv.URL}, "layout": "label-studio", "label_tag": "RectangleLabels"})
	require.Equal(t, http.StatusBadRequest, status, "%v", body)
	require.Equal(t, "label_tag", body["error"].(map[string]any)["field"])

	const w, ih = 500, 400
	id := uploadPhoto(t, srv.base, h.token, "photo.png", imagingtest.PNG(imagingtest.Photo(w, ih, 1818)))
	got, _ := waitProposals(t, srv, h.token, id, 60*time.Second, srv.logs.String)
	require.Len(t, got, 2, "%+v", got)
	byModel := map[string]hubProposal{}
	for _, p := range got {
		byModel[p.Model.Name] = p
	}
	want := func(on func(x, y int) bool) *mask.Bitmap {
		b := mask.NewBitmap(w, ih)
		for y := range ih {
			for x := range w {
				b.Set(x, y, on(x, y))
			}
		}
		return b
	}
	for name, tc := range map[string]struct {
		label string
		score float64
		on    func(x, y int) bool
	}{
		"ls-brush": {"cat", 0.9, func(x, y int) bool { return lsBrushAlpha(x, y, w, ih) > 127 }},
		// 10–60 % of 500 across, 20–70 % of 400 down.
		"ls-poly": {"dog", 0.8, func(x, y int) bool { return x >= 50 && x < 300 && y >= 80 && y < 280 }},
	} {
		p, ok := byModel[name]
		require.True(t, ok, "a proposal of %s: %+v", name, got)
		require.Equal(t, tc.label, p.Label)
		require.InDelta(t, tc.score, p.Score, 1e-6)
		require.Equal(t, "1", p.Model.Version)
		bm, err := p.Mask.Decode()
		require.NoError(t, err)
		exp := want(tc.on)
		require.Equal(t, exp.Area(), p.Area, name)
		require.Equal(t, exp.Pix, bm.Pix, "%s: the mask, pixel for pixel", name)
	}
	// Each backend read the image (more than once when a slow machine
	// made a call time out and the job retried it).
	require.Positive(t, brush.fetched)
	require.Positive(t, poly.fetched)

	var runs struct {
		Inference []struct {
			Model           hubModel `json:"model"`
			State           string   `json:"state"`
			ErrorKind       *string  `json:"error_kind"`
			LastError       *string  `json:"last_error"`
			ReportedVersion *string  `json:"reported_version"`
		} `json:"inference"`
	}
	req, err := http.NewRequest("GET", srv.base+"/api/v1/images/"+id, nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+h.token)
	res, err := openapitest.Client(t).Do(req)
	require.NoError(t, err)
	require.NoError(t, json.NewDecoder(res.Body).Decode(&runs))
	res.Body.Close()
	seen := 0
	for _, r := range runs.Inference {
		switch r.Model.Name {
		case "ls-brush", "ls-poly":
			require.Equal(t, "succeeded", r.State)
			require.NotNil(t, r.ReportedVersion)
			require.Equal(t, map[string]string{"ls-brush": "brush-7", "ls-poly": "3"}[r.Model.Name], *r.ReportedVersion)
		case "ls-junk":
			require.Equal(t, "failed", r.State)
			require.Equal(t, "contract", *r.ErrorKind)
			require.Contains(t, *r.LastError, `"results"`)
		}
		seen++
	}
	require.Equal(t, 3, seen)
	junk.mu.Lock()
	predicts := len(junk.schemas) - 1 // one came with /setup
	junk.mu.Unlock()
	require.Equal(t, predicts, count(t, h.pool, "SELECT attempt FROM inference_runs WHERE error_kind = 'contract' AND state = 'failed'"),
		"the contract error ended the run: no attempt after it")
	h.checkStored(t)
}
