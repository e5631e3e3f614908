//go:build cgo

package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/dataset"
	"github.com/deepimageshub/imagehub/dataset/datasettest"
	"github.com/deepimageshub/imagehub/imaging/imagingtest"
	"github.com/deepimageshub/imagehub/openapi/openapitest"
	"github.com/deepimageshub/imagehub/worker/onnxworker"
)

// TestTrainedONNXServedByBuiltinWorker is issue 14's point 4 for an ONNX
// artifact, on `imagehub serve` as `make run` starts it but with no
// built-in trainer: a GPU trainer (this test, speaking the protocol of
// docs/training.md) leases a premium user's yolo-seg run and uploads an
// Ultralytics-shaped export (testdata/onnx/yolo-seg.onnx, whose metadata
// names person, car and dog); the hub registers it, its built-in worker
// serves it through ONNX Runtime for the evaluation and, once an admin
// enables it, for a new upload, whose stored proposals equal, pixel for
// pixel, the reference decoding of what `imagehub worker --onnx` answers
// for the same file and input.
func TestTrainedONNXServedByBuiltinWorker(t *testing.T) {
	t.Parallel()
	lib := onnxworker.Library(os.Getenv)
	labels := []string{"person", "car", "dog"}
	h := startTrainingHub(t, map[string]string{"BUILTIN_TRAINER": "false", "ONNXRUNTIME_LIB": lib}, labels...)
	ref := startONNXWorker(t, "yolo-seg", "--onnx", filepath.Join(onnxTestdata, "yolo-seg.onnx"), "--layout", "yolo-seg")
	logs := func() string { return h.srv.logs.String() + ref.logs.String() }

	// A few reviewed images with an instance of each label, at least two in
	// train and two in val: the dataset's seed decides each one's split.
	h.createDataset(t, map[string]float64{"train": 0.5, "val": 0.5, "test": 0})
	var seed []byte
	require.NoError(t, h.pool.QueryRow(context.Background(), `SELECT seed FROM datasets WHERE id = $1`, h.datasetID).Scan(&seed))
	fx := h.fixture(t)
	const side = 200
	splits := map[dataset.Split]int{}
	for i := uint64(0); splits[dataset.Train] < 2 || splits[dataset.Val] < 2; i++ {
		png := imagingtest.PNG(imagingtest.Photo(side, side, 5200+i))
		sum := sha256.Sum256(png)
		split := dataset.Assign(seed, sum[:], dataset.Ratios{Train: 500_000, Val: 500_000})
		if splits[split] >= 2 {
			continue
		}
		splits[split]++
		img := fx.Image(datasettest.ImageOpts{W: side, H: side, PNG: true, Bytes: png})
		fx.Review(img,
			datasettest.Instance{Label: "person", Mask: datasettest.Blob(side, side, 10, 10, 90, 150)},
			datasettest.Instance{Label: "car", Mask: datasettest.Box(side, side, 100, 120, 190, 180)},
			datasettest.Instance{Label: "dog", Mask: datasettest.Blob(side, side, 110, 10, 180, 100)})
	}
	h.publish(t)

	status, body, _ := call(t, "POST", h.srv.base+"/api/v1/trainings", h.premium, map[string]any{
		"dataset_id": h.datasetID, "version": h.version, "labels": labels, "recipe": "yolo-seg"})
	require.Equal(t, http.StatusAccepted, status, "%v", body)
	id := body["training"].(map[string]any)["id"].(string)

	// The trainer leases the run and uploads the export as its artifact.
	tok, errOut, err := runCmd(t, h.vars, "tokens", "create", "--email", "admin@example.com", "--name", "gpu-pod", "--role", "trainer")
	require.NoError(t, err, errOut)
	trainerToken := strings.TrimSpace(tok)
	status, body, _ = call(t, "POST", h.srv.base+"/api/v1/trainer/lease", trainerToken, map[string]any{
		"recipes": []string{"yolo-seg"}, "trainer": "test-trainer/1"})
	require.Equal(t, http.StatusOK, status, "%v", body)
	run := body["run"].(map[string]any)
	require.Equal(t, id, run["id"])
	require.ElementsMatch(t, []any{"person", "car", "dog"}, run["labels"])
	lease := run["lease"].(map[string]any)["token"].(string)
	file, err := os.ReadFile(filepath.Join(onnxTestdata, "yolo-seg.onnx"))
	require.NoError(t, err)
	upload := func(file []byte) (int, map[string]any) {
		req, err := http.NewRequest(http.MethodPut, h.srv.base+"/api/v1/trainer/runs/"+id+"/artifact", bytes.NewReader(file))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+trainerToken)
		req.Header.Set("X-Lease-Token", lease)
		req.Header.Set("X-Artifact-Format", "onnx")
		req.Header.Set("X-Artifact-Layout", "yolo-seg")
		req.Header.Set("Content-Type", "application/octet-stream")
		res, err := openapitest.Client(t).Do(req)
		require.NoError(t, err)
		var up map[string]any
		require.NoError(t, json.NewDecoder(res.Body).Decode(&up))
		res.Body.Close()
		return res.StatusCode, up
	}
	// A copy with corrupt weights (initializer W0, [3, 3276] as varints
	// 03 and cc 19, said to be [3, 3275]) has the right signature; the hub
	// loads it and refuses it.
	corrupt := bytes.Clone(file)
	at := bytes.Index(corrupt, []byte{0x08, 0x03, 0x08, 0xcc, 0x19, 0x10, 0x01, 0x42, 0x02, 'W', '0'})
	require.Positive(t, at, "W0's dims in yolo-seg.onnx")
	corrupt[at+3] = 0xcb
	code, up := upload(corrupt)
	require.Equal(t, http.StatusBadRequest, code, "%v", up)
	require.Contains(t, up["error"].(map[string]any)["message"], "ONNX Runtime cannot load it", "%v", up)
	t.Logf("a corrupt file: %v", up["error"].(map[string]any)["message"])
	code, up = upload(file)
	require.Equal(t, http.StatusOK, code, "%v", up)
	require.Equal(t, "evaluating", up["state"], "%v", up)

	// The evaluation ran the model through the built-in worker's ONNX
	// Runtime on the val split, beside the segmenter.
	tr, _ := h.wait(t, id, 60*time.Second, succeeded)
	model := tr["model"].(map[string]any)
	name, version := model["name"].(string), model["version"].(string)
	require.Equal(t, "1", version)
	ev := tr["metrics"].(map[string]any)["evaluation"].(map[string]any)
	require.Equal(t, name, ev["model"].(map[string]any)["name"], "%v", ev)
	require.Contains(t, h.srv.logs.String(), "serving a trained ONNX model")

	// Registered disabled, with the file's labels and layout; an admin
	// enables it with its registration.
	status, body, _ = call(t, "GET", h.srv.base+"/api/v1/models", h.token, nil)
	require.Equal(t, http.StatusOK, status)
	var reg map[string]any
	for _, m := range body["items"].([]any) {
		if m := m.(map[string]any); m["name"] == name && m["version"] == version {
			reg = m
		}
	}
	require.NotNil(t, reg, "the trained model is registered: %v", body)
	require.Equal(t, false, reg["enabled"])
	require.Equal(t, "yolo-seg", reg["layout"])
	require.Equal(t, []any{"person", "car", "dog"}, reg["labels"], "the labels of the file's metadata, in its order")
	status, body, _ = call(t, "POST", h.srv.base+"/api/v1/models", h.token, map[string]any{
		"name": name, "version": version, "task": "segmentation", "endpoints": reg["endpoints"], "layout": "yolo-seg",
		"capacity": reg["capacity"], "timeout_ms": reg["timeout_ms"], "labels": reg["labels"], "enabled": true})
	require.Equal(t, http.StatusOK, status, "%v", body)
	require.Empty(t, body["model"].(map[string]any)["problems"], "%v", body)

	ph := e2ePhotos[0]
	imgID := uploadPhoto(t, h.srv.base, h.token, ph.name, ph.bytes())
	props, stored := waitProposals(t, h.srv, h.token, imgID, 60*time.Second, logs)
	var mine []hubProposal
	for _, p := range props {
		if p.Model.Name == name {
			require.Equal(t, version, p.Model.Version)
			mine = append(mine, p)
		}
	}
	require.NotEmpty(t, mine, "the trained model proposes on a new upload: %+v", props)
	compareYOLOSeg(t, ph, stored, mine, ref.base, "yolo-seg", 64, 84, labels)
	h.checkStored(t)
}
