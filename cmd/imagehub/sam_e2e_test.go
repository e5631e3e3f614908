//go:build cgo

package main

import (
	"bytes"
	binenc "encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/imaging/imagingtest"
	"github.com/deepimageshub/imagehub/mask"
)

var samWorkerURL = regexp.MustCompile(`^imagehub worker: serving models (\S+) \(embed\) and (\S+) \(interactive\) version (\S+) on (http://\S+)$`)

// TestEndToEndSAM: the real `imagehub worker --onnx encoder --onnx-decoder
// decoder --layout sam` on the generated SAM test models (generate.py says
// what they compute) beside a YOLO-seg worker for the proposals, and the
// real `imagehub serve`. The encoder is registered as the embed model and
// the decoder as the interactive model naming it; an uploaded photo's
// embedding is kept when it enters review, and a reviewer's clicks come
// back as the decoder's disc round the first point, scaled between the
// photo and SAM's 1024 frame, with the score that shows what reached it.
func TestEndToEndSAM(t *testing.T) {
	t.Parallel()
	sam, line := startWorkerProcess(t, "--onnx", filepath.Join(onnxTestdata, "sam-encoder.onnx"),
		"--onnx-decoder", filepath.Join(onnxTestdata, "sam-decoder.onnx"), "--layout", "sam")
	m := samWorkerURL.FindStringSubmatch(line)
	require.NotNil(t, m, "first line: %q", line)
	require.Equal(t, []string{"sam-encoder", "sam-decoder", "1"}, m[1:4], "the models are named after their files")
	sam.base = m[4]
	seg := startONNXWorker(t, "yolo-seg", "--onnx", filepath.Join(onnxTestdata, "yolo-seg.onnx"), "--layout", "yolo-seg")
	h, srv := e2eSetup(t)
	logs := func() string { return srv.logs.String() + sam.logs.String() + seg.logs.String() }

	for _, body := range []map[string]any{
		{"name": "yolo-seg", "version": "1", "task": "segmentation", "endpoints": []string{seg.base}, "timeout_ms": 30000, "layout": "yolo-seg"},
		{"name": "sam-encoder", "version": "1", "task": "embed", "endpoints": []string{sam.base}, "timeout_ms": 30000},
		{"name": "sam-decoder", "version": "1", "task": "interactive", "endpoints": []string{sam.base}, "embed_model": "sam-encoder"},
	} {
		status, res, _ := call(t, "POST", srv.base+"/api/v1/models", h.token, body)
		require.Equal(t, http.StatusCreated, status, "%v\n%s", res, logs())
		require.Empty(t, res["model"].(map[string]any)["problems"], "%v", body["name"])
	}

	// 512 × 256 is 1024 × 512 in SAM's frame: clicks scale by exactly 2.
	const w, h2 = 512, 256
	id := uploadPhoto(t, srv.base, h.token, "sam.png", imagingtest.PNG(imagingtest.Photo(w, h2, 4201)))
	waitProposals(t, srv, h.token, id, 90*time.Second, logs)

	// prepare_prompts keeps the embedding ahead of any click.
	var emb []float32
	require.Eventually(t, func() bool {
		emb = storedEmbedding(t, h.vars["DATA_DIR"])
		return emb != nil
	}, 60*time.Second, 100*time.Millisecond, "the embedding is kept\n%s", logs())
	require.Len(t, emb, 2+256*64*64)
	require.Equal(t, []float32{h2, w}, emb[:2], "EMBEDDING starts with the photo's height and width")
	var emean float64
	for _, f := range emb[2:] {
		emean += float64(f)
	}
	emean /= 256 * 64 * 64
	require.NotZero(t, emean)

	status, item, _ := call(t, "POST", srv.base+"/api/v1/review/next", h.token, nil)
	require.Equal(t, http.StatusOK, status, "%v", item)
	require.Equal(t, id, item["image"].(map[string]any)["id"], "%v", item)
	path := srv.base + "/api/v1/review/" + item["item_id"].(string) + "/segment"
	sigmoid := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	for _, c := range []struct {
		body   map[string]any
		cx, cy float64 // the disc's centre, in the photo's pixels
		r2     float64
		score  float64
	}{
		{map[string]any{"points": [][]float64{{100, 60, 1}}}, 100, 60, 300, sigmoid(0.1*(1-1) + emean)},
		{map[string]any{"points": [][]float64{{300, 100, 0}, {120, 200, 1}}}, 300, 100, 200, sigmoid(0.1*(0+1-1) + emean)},
		{map[string]any{"points": [][]float64{}, "box": []float64{50, 40, 150, 120}}, 50, 40, 400, sigmoid(0.1*(2+3) + emean)},
	} {
		status, res, _ := call(t, "POST", path, h.token, c.body)
		require.Equal(t, http.StatusOK, status, "%v: %v\n%s", c.body, res, logs())
		raw, err := json.Marshal(res["mask"])
		require.NoError(t, err)
		var got mask.RLE
		require.NoError(t, json.Unmarshal(raw, &got))
		require.Equal(t, samDiscRLE(w, h2, c.cx, c.cy, c.r2), got, "%v", c.body)
		require.InDelta(t, c.score, res["score"].(float64), 1e-5, "%v", c.body)
	}
	sam.stop(t)
}

// samDiscRLE is what sam-decoder.onnx answers: the pixels whose centres lie
// within sqrt(r2) of (cx, cy).
func samDiscRLE(w, h int, cx, cy, r2 float64) mask.RLE {
	bm := mask.NewBitmap(w, h)
	for y := range h {
		for x := range w {
			dx, dy := float64(x)+0.5-cx, float64(y)+0.5-cy
			if dx*dx+dy*dy < r2 {
				bm.Pix[y*w+x] = 1
			}
		}
	}
	return mask.Encode(bm)
}

// storedEmbedding reads the one embedding kept under DATA_DIR's blob store
// (docs/interactive.md: a JSON line with the shape, then little-endian
// float32), nil while there is none.
func storedEmbedding(t *testing.T, dataDir string) []float32 {
	t.Helper()
	var found []string
	_ = filepath.WalkDir(dataDir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(filepath.ToSlash(p), "/embeddings/") {
			found = append(found, p)
		}
		return nil
	})
	if len(found) == 0 {
		return nil
	}
	require.Len(t, found, 1, "one image, one embed model")
	b, err := os.ReadFile(found[0])
	require.NoError(t, err)
	i := bytes.IndexByte(b, '\n')
	require.Positive(t, i)
	var head struct {
		Shape []int64 `json:"shape"`
	}
	require.NoError(t, json.Unmarshal(b[:i], &head))
	require.Equal(t, []int64{2 + 256*64*64}, head.Shape)
	raw := b[i+1:]
	require.Len(t, raw, 4*(2+256*64*64))
	v := make([]float32, len(raw)/4)
	for j := range v {
		v[j] = math.Float32frombits(binenc.LittleEndian.Uint32(raw[4*j:]))
	}
	return v
}
