//go:build cgo

package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/imaging/imagingtest"
	"github.com/deepimageshub/imagehub/inference"
	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/worker/onnxworker"
)

// serveRaw serves the ONNX file at path as model name with the file's own
// tensors over the Open Inference Protocol, as Triton's onnxruntime backend
// serves docs/triton/sam_encoder and sam_decoder: no prompt protocol, no
// layout parameter in the metadata.
func serveRaw(t *testing.T, path, name string) string {
	t.Helper()
	m, err := onnxworker.Open(path, onnxworker.Options{Threads: 1})
	require.NoError(t, err)
	srv := httptest.NewServer(onnxworker.New(m, onnxworker.Config{Model: name}))
	t.Cleanup(func() {
		srv.Close()
		m.Close()
	})
	return srv.URL
}

// TestEndToEndSAMOwnTensors: the generated SAM test models served with
// their own tensors (as Triton would), registered with layout "sam", and the
// real `imagehub serve`: the hub pre-processes the photo for the encoder,
// keeps the embedding when the image enters review, and maps each prompt
// to the decoder's six inputs. Every answer of POST
// /api/v1/review/{item}/segment is compared pixel for pixel (and the kept
// embedding value for value) with what `imagehub worker --layout sam`
// answers for the same photo and prompt.
func TestEndToEndSAMOwnTensors(t *testing.T) {
	t.Parallel()
	enc := serveRaw(t, filepath.Join(onnxTestdata, "sam-encoder.onnx"), "sam_encoder")
	dec := serveRaw(t, filepath.Join(onnxTestdata, "sam-decoder.onnx"), "sam_decoder")
	ref, line := startWorkerProcess(t, "--onnx", filepath.Join(onnxTestdata, "sam-encoder.onnx"),
		"--onnx-decoder", filepath.Join(onnxTestdata, "sam-decoder.onnx"), "--layout", "sam")
	m := samWorkerURL.FindStringSubmatch(line)
	require.NotNil(t, m, "first line: %q", line)
	ref.base = m[4]
	seg := startONNXWorker(t, "yolo-seg", "--onnx", filepath.Join(onnxTestdata, "yolo-seg.onnx"), "--layout", "yolo-seg")
	h, srv := e2eSetup(t)
	logs := func() string { return srv.logs.String() + ref.logs.String() + seg.logs.String() }

	// The registry refuses a sam model whose tensors are not SAM's,
	// naming the tensor, and the sam layout on a segmentation model.
	status, res, _ := call(t, "POST", srv.base+"/api/v1/models", h.token, map[string]any{
		"name": "sam_decoder", "version": "1", "task": "embed", "endpoints": []string{dec}, "layout": "sam"})
	require.Equal(t, http.StatusUnprocessableEntity, status, "%v", res)
	require.Contains(t, problemMessage(res), "the model takes 6 inputs; a sam encoder takes one, the pre-processed image", "%v", res)
	status, res, _ = call(t, "POST", srv.base+"/api/v1/models", h.token, map[string]any{
		"name": "sam_encoder", "version": "1", "task": "interactive", "endpoints": []string{enc}, "layout": "sam", "embed_model": "sam_encoder"})
	require.Equal(t, http.StatusUnprocessableEntity, status, "%v", res)
	require.Contains(t, problemMessage(res), "the model has no input point_coords", "%v", res)
	status, res, _ = call(t, "POST", srv.base+"/api/v1/models", h.token, map[string]any{
		"name": "sam_encoder", "version": "1", "task": "segmentation", "endpoints": []string{enc}, "layout": "sam"})
	require.Equal(t, http.StatusBadRequest, status, "%v", res)
	require.Equal(t, "layout", res["error"].(map[string]any)["field"], "%v", res)

	for _, body := range []map[string]any{
		{"name": "yolo-seg", "version": "1", "task": "segmentation", "endpoints": []string{seg.base}, "timeout_ms": 30000, "layout": "yolo-seg"},
		{"name": "sam_encoder", "version": "1", "task": "embed", "endpoints": []string{enc}, "timeout_ms": 30000, "layout": "sam"},
		{"name": "sam_decoder", "version": "1", "task": "interactive", "endpoints": []string{dec}, "layout": "sam", "embed_model": "sam_encoder"},
	} {
		status, res, _ := call(t, "POST", srv.base+"/api/v1/models", h.token, body)
		require.Equal(t, http.StatusCreated, status, "%v\n%s", res, logs())
		require.Empty(t, res["model"].(map[string]any)["problems"], "%v", body["name"])
	}

	// 600 × 400 is 1024 × 683 in SAM's frame: the clicks scale by a
	// fraction and the frame has padding below the photo.
	const w, h2 = 600, 400
	photo := imagingtest.PNG(imagingtest.Photo(w, h2, 4202))
	// The worker's answers, asked directly (the embedding while the hub
	// takes the photo in).
	client := inference.New(nil)
	ctx := context.Background()
	var (
		wantEmb   []float32
		wantShape []int64
		embErr    error
	)
	embedded := make(chan struct{})
	go func() {
		defer close(embedded)
		wantEmb, wantShape, embErr = client.Embed(ctx, inference.Endpoint{Base: ref.base, Model: "sam-encoder"}, photo)
	}()
	id := uploadPhoto(t, srv.base, h.token, "sam.png", photo)
	waitProposals(t, srv, h.token, id, 90*time.Second, logs)
	<-embedded
	require.NoError(t, embErr)
	var emb []float32
	require.Eventually(t, func() bool {
		emb = storedEmbedding(t, h.vars["DATA_DIR"])
		return emb != nil
	}, 60*time.Second, 100*time.Millisecond, "the embedding is kept\n%s", logs())
	require.Equal(t, []int64{2 + 256*64*64}, wantShape)
	require.Equal(t, wantEmb, emb, "the hub keeps what the worker's embed model returns")

	status, item, _ := call(t, "POST", srv.base+"/api/v1/review/next", h.token, nil)
	require.Equal(t, http.StatusOK, status, "%v", item)
	require.Equal(t, id, item["image"].(map[string]any)["id"], "%v", item)
	path := srv.base + "/api/v1/review/" + item["item_id"].(string) + "/segment"
	var kept *mask.RLE
	for i, c := range []struct {
		points [][]float64
		box    []float64
		refine bool
	}{
		// A click: the padding point labelled -1 follows it.
		{points: [][]float64{{101, 63, 1}}},
		// Background and object clicks and a box (labels 2 and 3).
		{points: [][]float64{{300, 100, 0}, {123, 207, 1}}, box: []float64{50, 40, 151, 122}},
		// Refining the last mask: mask_input from it, has_mask_input 1.
		{points: [][]float64{{140, 90, 1}}, refine: true},
	} {
		body := map[string]any{"points": c.points}
		p := inference.Prompt{Embedding: wantEmb, EmbeddingShape: wantShape}
		for _, pt := range c.points {
			p.Points = append(p.Points, inference.Point{X: float32(pt[0]), Y: float32(pt[1]), Object: pt[2] == 1})
		}
		if c.box != nil {
			body["box"] = c.box
			p.Box = &[4]float32{float32(c.box[0]), float32(c.box[1]), float32(c.box[2]), float32(c.box[3])}
		}
		if c.refine {
			require.NotNil(t, kept)
			body["instance"] = kept
			p.Instance = kept
		}
		want, err := client.Prompt(ctx, inference.Endpoint{Base: ref.base, Model: "sam-decoder"}, p, inference.Expect{Height: h2, Width: w})
		require.NoError(t, err, "%v", body)
		wantArea, err := want.Mask.Area()
		require.NoError(t, err)
		require.Positive(t, wantArea, "%v: the test model draws a disc", body)

		status, res, _ := call(t, "POST", path, h.token, body)
		require.Equal(t, http.StatusOK, status, "%v: %v\n%s", body, res, logs())
		raw, err := json.Marshal(res["mask"])
		require.NoError(t, err)
		var got mask.RLE
		require.NoError(t, json.Unmarshal(raw, &got))
		require.Equal(t, want.Mask, got, "prompt %d %v: the same mask as imagehub worker --layout sam", i, body)
		require.InDelta(t, want.Score, res["score"].(float64), 1e-6, "%v", body)
		kept = &got
	}
	require.False(t, strings.Contains(logs(), "panic"), "%s", logs())
	ref.stop(t)
}

// problemMessage is a problem answer's message.
func problemMessage(res map[string]any) string {
	e, _ := res["error"].(map[string]any)
	s, _ := e["message"].(string)
	return s
}
