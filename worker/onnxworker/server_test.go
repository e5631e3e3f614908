//go:build cgo

package onnxworker_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/oip"
	"github.com/deepimageshub/imagehub/worker/onnxworker"
)

// The test models and their constants, written by testdata/onnx/generate.py
// (`make onnx-models`); its doc says what each model computes.
var testdata = filepath.Join("..", "..", "testdata", "onnx")

type testBundle struct {
	server *onnxworker.Server
	srv    *httptest.Server
	path   string // the model's base path, /v2/models/{name}
}

// setup loads testdata/onnx/<file> with ONNX Runtime (found as
// onnxworker.Library says: `make onnxruntime` installs it in the checkout's
// .bin/onnxruntime/) and serves it on a real HTTP server.
func setup(t testing.TB, file string, cfg onnxworker.Config) *testBundle {
	t.Helper()
	m, err := onnxworker.Open(filepath.Join(testdata, file), onnxworker.Options{Threads: 1})
	require.NoError(t, err, "these tests load ONNX Runtime: run `make onnxruntime` or set ONNXRUNTIME_LIB")
	t.Cleanup(func() { _ = m.Close() })
	s := onnxworker.New(m, cfg)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &testBundle{server: s, srv: srv, path: "/v2/models/" + s.Metadata().Name}
}

func (b *testBundle) get(t *testing.T, path string, v any) int {
	t.Helper()
	resp, err := b.srv.Client().Get(b.srv.URL + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	require.NoError(t, json.NewDecoder(resp.Body).Decode(v))
	return resp.StatusCode
}

// infer posts req, JSON or binary, and returns the status and the decoded
// answer or the error message.
func (b *testBundle) infer(t testing.TB, req *oip.InferRequest, bin bool) (int, *oip.InferResponse, string) {
	t.Helper()
	body, err := oip.EncodeRequest(req, bin)
	require.NoError(t, err)
	hreq, err := http.NewRequest(http.MethodPost, b.srv.URL+b.path+"/infer", bytes.NewReader(body.Bytes))
	require.NoError(t, err)
	body.SetHeaders(hreq.Header)
	resp, err := b.srv.Client().Do(hreq)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if resp.StatusCode != http.StatusOK {
		var e oip.ErrorBody
		require.NoError(t, json.Unmarshal(data, &e), string(data))
		require.NotEmpty(t, e.Error)
		return resp.StatusCode, nil, e.Error
	}
	n, err := oip.JSONLength(resp.Header, len(data))
	require.NoError(t, err)
	ans, err := oip.DecodeResponse(data, n, oip.Limits{})
	require.NoError(t, err)
	require.Equal(t, req.ID, ans.ID)
	for _, o := range ans.Outputs {
		_, isBinary := o.Parameters[oip.ParamBinaryDataSize]
		require.Equal(t, req.OutputBinary(o.Name), isBinary, o.Name)
	}
	return resp.StatusCode, ans, ""
}

// fetch is infer for goroutines other than the test's: it reports what
// went wrong instead of failing the test.
func (b *testBundle) fetch(req *oip.InferRequest, bin bool) (*oip.InferResponse, error) {
	body, err := oip.EncodeRequest(req, bin)
	if err != nil {
		return nil, err
	}
	hreq, err := http.NewRequest(http.MethodPost, b.srv.URL+b.path+"/infer", bytes.NewReader(body.Bytes))
	if err != nil {
		return nil, err
	}
	body.SetHeaders(hreq.Header)
	resp, err := b.srv.Client().Do(hreq)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d: %s", resp.StatusCode, data)
	}
	n, err := oip.JSONLength(resp.Header, len(data))
	if err != nil {
		return nil, err
	}
	return oip.DecodeResponse(data, n, oip.Limits{})
}

// image is a deterministic test image in [0, 1] of the given shape whose
// channels have different means, varying with seed.
func image(seed uint64, shape ...int64) []float32 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	r := rand.New(rand.NewPCG(seed, 7))
	v := make([]float32, n)
	chans := shape[len(shape)-3]
	plane := shape[len(shape)-1] * shape[len(shape)-2]
	for i := range v {
		c := (int64(i) / plane) % chans
		bias := float32((int64(seed)+c)%5) / 5
		v[i] = bias*0.6 + r.Float32()*0.4
	}
	return v
}

func loadSpec(t testing.TB, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testdata, name+".json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, v))
}

type yoloSpec struct {
	W0, C0, Q, P []float64
	Names        []string
}

// yoloExpected computes output0 and output1 of yolo-seg.onnx for a batch of
// 64×64 images from the generator's definition, in float64.
func yoloExpected(spec *yoloSpec, images []float32, batch int) (out0, out1 []float64) {
	const s, rows, anchors, protos, side = 64, 39, 84, 32, 16
	for b := range batch {
		img := images[b*3*s*s : (b+1)*3*s*s]
		var mean [3]float64
		for c := range 3 {
			for _, v := range img[c*s*s : (c+1)*s*s] {
				mean[c] += float64(v)
			}
			mean[c] /= s * s
		}
		for i := range rows * anchors {
			v := spec.C0[i]
			for c := range 3 {
				v += mean[c] * spec.W0[c*rows*anchors+i]
			}
			out0 = append(out0, v)
		}
		var pool [side * side]float64
		for y := range side {
			for x := range side {
				for c := range 3 {
					for dy := range 4 {
						for dx := range 4 {
							pool[y*side+x] += float64(img[c*s*s+(4*y+dy)*s+4*x+dx])
						}
					}
				}
				pool[y*side+x] /= 48
			}
		}
		for j := range protos {
			for p := range side * side {
				out1 = append(out1, pool[p]*spec.Q[j]+spec.P[j*side*side+p])
			}
		}
	}
	return out0, out1
}

func requireClose(t *testing.T, want []float64, got *oip.Tensor, shape []int64) {
	t.Helper()
	require.NotNil(t, got)
	require.Equal(t, shape, got.Shape, got.Name)
	v, err := got.Float32s()
	require.NoError(t, err)
	require.Len(t, v, len(want))
	for i := range want {
		if math.Abs(float64(v[i])-want[i]) > 1e-4*(1+math.Abs(want[i])) {
			require.Failf(t, "wrong element", "%s[%d] = %v, want %v", got.Name, i, v[i], want[i])
		}
	}
}

func TestMetadata(t *testing.T) {
	t.Parallel()
	t.Run("yolo-seg", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "yolo-seg.onnx", onnxworker.Config{Model: "yolo", Layout: onnxworker.LayoutYOLOSeg, Labels: []string{"person", "car", `a "dog"`}})
		var mm oip.ModelMetadata
		require.Equal(t, 200, b.get(t, "/v2/models/yolo/versions/1", &mm))
		require.Equal(t, oip.ModelMetadata{
			Name: "yolo", Versions: []string{"1"}, Platform: "onnxruntime_onnx",
			Inputs: []oip.TensorMetadata{{Name: "images", Datatype: oip.FP32, Shape: []int64{-1, 3, 64, 64}}},
			Outputs: []oip.TensorMetadata{
				{Name: "output0", Datatype: oip.FP32, Shape: []int64{-1, 39, 84}},
				{Name: "output1", Datatype: oip.FP32, Shape: []int64{-1, 32, 16, 16}},
			},
			Parameters: oip.Parameters{"layout": "yolo-seg", "labels": `["person","car","a \"dog\""]`},
		}, mm)
		var sm oip.ServerMetadata
		require.Equal(t, 200, b.get(t, "/v2", &sm))
		require.True(t, sm.HasExtension(oip.ExtensionBinaryTensorData))
		var ok map[string]bool
		require.Equal(t, 200, b.get(t, "/v2/health/ready", &ok))
		require.Equal(t, 200, b.get(t, "/v2/models/yolo/ready", &ok))
		var e oip.ErrorBody
		require.Equal(t, 404, b.get(t, "/v2/models/other", &e))
		require.Contains(t, e.Error, "unknown model other")
		require.Equal(t, 404, b.get(t, "/v2/models/yolo/versions/2", &e))
	})
	t.Run("maskrcnn", func(t *testing.T) {
		t.Parallel()
		b := setup(t, "maskrcnn.onnx", onnxworker.Config{Model: "mrcnn", Layout: onnxworker.LayoutMaskRCNN})
		var mm oip.ModelMetadata
		require.Equal(t, 200, b.get(t, "/v2/models/mrcnn", &mm))
		require.Equal(t, []oip.TensorMetadata{{Name: "image", Datatype: oip.FP32, Shape: []int64{3, -1, -1}}}, mm.Inputs)
		require.Equal(t, []oip.TensorMetadata{
			{Name: "boxes", Datatype: oip.FP32, Shape: []int64{-1, 4}},
			{Name: "labels", Datatype: oip.INT64, Shape: []int64{-1}},
			{Name: "scores", Datatype: oip.FP32, Shape: []int64{-1}},
			{Name: "masks", Datatype: oip.FP32, Shape: []int64{-1, 1, -1, -1}},
		}, mm.Outputs)
		// No --labels and no Ultralytics names: only the layout.
		require.Equal(t, oip.Parameters{"layout": "maskrcnn"}, mm.Parameters)
	})
}

func TestUltralyticsNamesFromTheFile(t *testing.T) {
	t.Parallel()
	m, err := onnxworker.Open(filepath.Join(testdata, "yolo-seg.onnx"), onnxworker.Options{Threads: 1})
	require.NoError(t, err)
	defer m.Close()
	names, err := m.Names()
	require.NoError(t, err)
	require.Equal(t, []string{"person", "car", "dog"}, names)

	mr, err := onnxworker.Open(filepath.Join(testdata, "maskrcnn.onnx"), onnxworker.Options{Threads: 1})
	require.NoError(t, err)
	defer mr.Close()
	names, err = mr.Names()
	require.NoError(t, err)
	require.Nil(t, names)
}

func TestYOLOSegInfer(t *testing.T) {
	t.Parallel()
	b := setup(t, "yolo-seg.onnx", onnxworker.Config{Model: "yolo", Layout: onnxworker.LayoutYOLOSeg})
	var spec yoloSpec
	loadSpec(t, "yolo-seg", &spec)
	for _, tc := range []struct {
		batch int
		bin   bool
	}{{1, false}, {1, true}, {3, false}, {4, true}} {
		t.Run(fmt.Sprintf("batch %d binary %v", tc.batch, tc.bin), func(t *testing.T) {
			shape := []int64{int64(tc.batch), 3, 64, 64}
			var img []float32
			for i := range tc.batch {
				img = append(img, image(uint64(10*tc.batch+i), 1, 3, 64, 64)...)
			}
			req := &oip.InferRequest{ID: fmt.Sprint("y", tc.batch, tc.bin), Inputs: []oip.Tensor{oip.FP32Tensor("images", shape, img)}}
			if tc.bin {
				req.Parameters = oip.Parameters{oip.ParamBinaryDataOutput: true}
			}
			status, ans, msg := b.infer(t, req, tc.bin)
			require.Equal(t, 200, status, msg)
			require.Equal(t, "yolo", ans.ModelName)
			require.Equal(t, "1", ans.ModelVersion)
			require.Len(t, ans.Outputs, 2)
			want0, want1 := yoloExpected(&spec, img, tc.batch)
			requireClose(t, want0, ans.Output("output0"), []int64{int64(tc.batch), 39, 84})
			requireClose(t, want1, ans.Output("output1"), []int64{int64(tc.batch), 32, 16, 16})
		})
	}
	t.Run("concurrent requests", func(t *testing.T) {
		// ONNX Runtime runs one session from several goroutines at once;
		// each answer must still be its own image's. The goroutines only
		// fetch; the checks run here, on the test's goroutine.
		const n = 6
		imgs := make([][]float32, n)
		answers := make([]*oip.InferResponse, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			imgs[i] = image(uint64(100+i), 1, 3, 64, 64)
			wg.Go(func() {
				req := &oip.InferRequest{ID: fmt.Sprint("c", i), Inputs: []oip.Tensor{oip.FP32Tensor("images", []int64{1, 3, 64, 64}, imgs[i])}}
				answers[i], errs[i] = b.fetch(req, i%2 == 0)
			})
		}
		wg.Wait()
		for i := range n {
			require.NoError(t, errs[i])
			require.Equal(t, fmt.Sprint("c", i), answers[i].ID)
			want0, want1 := yoloExpected(&spec, imgs[i], 1)
			requireClose(t, want0, answers[i].Output("output0"), []int64{1, 39, 84})
			requireClose(t, want1, answers[i].Output("output1"), []int64{1, 32, 16, 16})
		}
	})
	t.Run("one output, binary", func(t *testing.T) {
		img := image(5, 1, 3, 64, 64)
		req := &oip.InferRequest{
			ID:      "only-protos",
			Inputs:  []oip.Tensor{oip.FP32Tensor("images", []int64{1, 3, 64, 64}, img)},
			Outputs: []oip.RequestedOutput{{Name: "output1", Parameters: oip.Parameters{oip.ParamBinaryData: true}}},
		}
		status, ans, msg := b.infer(t, req, false)
		require.Equal(t, 200, status, msg)
		require.Len(t, ans.Outputs, 1)
		_, want1 := yoloExpected(&spec, img, 1)
		requireClose(t, want1, ans.Output("output1"), []int64{1, 32, 16, 16})
	})
}

func TestMaskRCNNInfer(t *testing.T) {
	t.Parallel()
	b := setup(t, "maskrcnn.onnx", onnxworker.Config{Model: "mrcnn", Layout: onnxworker.LayoutMaskRCNN})
	var spec struct {
		BN, SA, SB []float64
		L          []int64
		T, MA, MB  float64
	}
	loadSpec(t, "maskrcnn", &spec)
	const h, w = 40, 56
	black := make([]float32, 3*h*w)
	for _, tc := range []struct {
		name  string
		img   []float32
		bin   bool
		wantN int
	}{
		{"three detections", image(2, 3, h, w), false, 3},
		{"three detections, binary", image(2, 3, h, w), true, 3},
		{"two detections, binary", image(3, 3, h, w), true, 2},
		{"none", black, false, 0},
		{"none, binary", black, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &oip.InferRequest{ID: "m", Inputs: []oip.Tensor{oip.FP32Tensor("image", []int64{3, h, w}, tc.img)}}
			if tc.bin {
				req.Parameters = oip.Parameters{oip.ParamBinaryDataOutput: true}
			}
			status, ans, msg := b.infer(t, req, tc.bin)
			require.Equal(t, 200, status, msg)
			boxes, scores, masks := []float64{}, []float64{}, []float64{}
			labels := []int64{}
			for n := range 3 {
				var mean float64
				for _, v := range tc.img[n*h*w : (n+1)*h*w] {
					mean += float64(v)
				}
				score := mean/(h*w)*spec.SA[n] + spec.SB[n]
				if score <= spec.T {
					continue
				}
				scores = append(scores, score)
				for i, side := range []float64{w, h, w, h} {
					boxes = append(boxes, spec.BN[4*n+i]*side)
				}
				for _, v := range tc.img[n*h*w : (n+1)*h*w] {
					masks = append(masks, float64(v)*spec.MA+spec.MB)
				}
				labels = append(labels, spec.L[n])
			}
			require.Len(t, scores, tc.wantN, "the test's image does not give the detections it is meant to")
			n := int64(tc.wantN)
			requireClose(t, boxes, ans.Output("boxes"), []int64{n, 4})
			requireClose(t, scores, ans.Output("scores"), []int64{n})
			requireClose(t, masks, ans.Output("masks"), []int64{n, 1, h, w})
			got := ans.Output("labels")
			require.Equal(t, oip.INT64, got.Datatype)
			require.Equal(t, []int64{n}, got.Shape)
			gotLabels := []int64{}
			for i := 0; i < len(got.Raw); i += 8 {
				gotLabels = append(gotLabels, int64(binary.LittleEndian.Uint64(got.Raw[i:])))
			}
			require.Equal(t, labels, gotLabels)
		})
	}
}

func TestBadInputs(t *testing.T) {
	t.Parallel()
	yolo := setup(t, "yolo-seg.onnx", onnxworker.Config{Model: "yolo", Layout: onnxworker.LayoutYOLOSeg})
	fixed := setup(t, "yolo-seg-b1.onnx", onnxworker.Config{Model: "yolo1", Layout: onnxworker.LayoutYOLOSeg})
	mrcnn := setup(t, "maskrcnn.onnx", onnxworker.Config{Model: "mrcnn", Layout: onnxworker.LayoutMaskRCNN})
	fp32 := func(name string, shape ...int64) oip.Tensor { return oip.FP32Tensor(name, shape, image(1, shape...)) }
	for _, tc := range []struct {
		name string
		b    *testBundle
		in   []oip.Tensor
		out  []oip.RequestedOutput
		want string
	}{
		{"wrong side", yolo, []oip.Tensor{fp32("images", 1, 3, 32, 32)}, nil, `input "images" has shape [1 3 32 32]; the model takes [-1,3,64,64]`},
		{"wrong rank", yolo, []oip.Tensor{fp32("images", 3, 64, 64)}, nil, `input "images" has shape [3 64 64]; the model takes [-1,3,64,64]`},
		{"batch over a fixed batch", fixed, []oip.Tensor{fp32("images", 2, 3, 64, 64)}, nil, `input "images" has shape [2 3 64 64]; the model takes [1,3,64,64]`},
		{"wrong datatype", yolo, []oip.Tensor{{Name: "images", Datatype: oip.UINT8, Shape: []int64{1, 3, 64, 64}, Raw: make([]byte, 3*64*64)}}, nil, `input "images" must be FP32, not UINT8`},
		{"unknown input", yolo, []oip.Tensor{fp32("images", 1, 3, 64, 64), fp32("IMAGE", 1, 3, 64, 64)}, nil, `unexpected input "IMAGE": this model takes images FP32 [-1,3,64,64]`},
		{"missing input", mrcnn, []oip.Tensor{}, nil, `input "image" is missing: this model takes image FP32 [3,-1,-1]`},
		{"empty dynamic dimension", mrcnn, []oip.Tensor{{Name: "image", Datatype: oip.FP32, Shape: []int64{3, 0, 8}, Raw: []byte{}}}, nil, `input "image" has shape [3 0 8]`},
		{"unknown output", mrcnn, []oip.Tensor{fp32("image", 3, 8, 8)}, []oip.RequestedOutput{{Name: "MASKS"}}, `unknown output "MASKS": this model returns boxes FP32 [-1,4], labels INT64 [-1], scores FP32 [-1], masks FP32 [-1,1,-1,-1]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, bin := range []bool{false, true} {
				status, _, msg := tc.b.infer(t, &oip.InferRequest{ID: "bad", Inputs: tc.in, Outputs: tc.out}, bin)
				require.Equal(t, 400, status, msg)
				require.Contains(t, msg, tc.want)
			}
		})
	}
	t.Run("data that does not fill the shape", func(t *testing.T) {
		body := []byte(`{"id":"x","inputs":[{"name":"images","datatype":"FP32","shape":[1,3,64,64],"data":[1,2,3]}]}`)
		resp, err := yolo.srv.Client().Post(yolo.srv.URL+"/v2/models/yolo/infer", "application/json", bytes.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, 400, resp.StatusCode)
	})
}

// TestDynamicSides serves a model declared as Ultralytics' dynamic=True
// export is, [batch, 3, height, width]: any side passes the shape check, and
// a side its graph cannot take is answered 400 with ONNX Runtime's reason.
func TestDynamicSides(t *testing.T) {
	t.Parallel()
	b := setup(t, "yolo-seg-dynamic.onnx", onnxworker.Config{Model: "yolo", Layout: onnxworker.LayoutYOLOSeg})
	md := b.server.Metadata()
	require.Equal(t, []oip.TensorMetadata{{Name: "images", Datatype: oip.FP32, Shape: []int64{-1, 3, -1, -1}}}, md.Inputs)
	// ONNX Runtime works output1's sides out from the constant P it adds
	// and reports those rather than the file's mask_height and mask_width.
	require.Equal(t, []int64{-1, 32, 16, 16}, md.Outputs[1].Shape)
	var spec yoloSpec
	loadSpec(t, "yolo-seg", &spec)
	img := image(4, 2, 3, 64, 64)
	status, ans, msg := b.infer(t, &oip.InferRequest{ID: "ok", Inputs: []oip.Tensor{oip.FP32Tensor("images", []int64{2, 3, 64, 64}, img)}}, true)
	require.Equal(t, 200, status, msg)
	want0, want1 := yoloExpected(&spec, img, 2)
	requireClose(t, want0, ans.Output("output0"), []int64{2, 39, 84})
	requireClose(t, want1, ans.Output("output1"), []int64{2, 32, 16, 16})

	status, _, msg = b.infer(t, &oip.InferRequest{ID: "small", Inputs: []oip.Tensor{oip.FP32Tensor("images", []int64{1, 3, 32, 48}, image(4, 1, 3, 32, 48))}}, false)
	require.Equal(t, 400, status, msg)
	require.Contains(t, msg, "the model could not run on these inputs: ")
}

func TestOpenRefusesABrokenFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "broken.onnx")
	require.NoError(t, os.WriteFile(path, []byte("not a model"), 0o600))
	_, err := onnxworker.Open(path, onnxworker.Options{Threads: 1})
	require.ErrorContains(t, err, "error loading "+path)
	_, err = onnxworker.Open(filepath.Join(t.TempDir(), "absent.onnx"), onnxworker.Options{Threads: 1})
	require.ErrorContains(t, err, "error loading")
}

func TestCapacity(t *testing.T) {
	t.Parallel()
	// One slot that a request holds while its body is still arriving
	// cannot be shown without timing; a capacity of 1 answered in turn
	// must serve every request.
	b := setup(t, "maskrcnn.onnx", onnxworker.Config{Model: "mrcnn", Layout: onnxworker.LayoutMaskRCNN, Capacity: 1})
	for range 3 {
		status, _, msg := b.infer(t, &oip.InferRequest{ID: "c", Inputs: []oip.Tensor{oip.FP32Tensor("image", []int64{3, 4, 4}, image(2, 3, 4, 4))}}, true)
		require.Equal(t, 200, status, msg)
	}
}

// BenchmarkONNXWorker measures the images/s the worker serves for
// yolo-seg.onnx over HTTP with binary tensors, one request at a time, with
// one intra-op thread per core: batches of 1 and of 8.
func BenchmarkONNXWorker(b *testing.B) {
	m, err := onnxworker.Open(filepath.Join(testdata, "yolo-seg.onnx"), onnxworker.Options{})
	require.NoError(b, err, "run `make onnxruntime` or set ONNXRUNTIME_LIB")
	defer m.Close()
	srv := httptest.NewServer(onnxworker.New(m, onnxworker.Config{Model: "yolo", Layout: onnxworker.LayoutYOLOSeg}))
	defer srv.Close()
	bundle := &testBundle{srv: srv, path: "/v2/models/yolo"}
	for _, batch := range []int{1, 8} {
		b.Run(fmt.Sprint("batch=", batch), func(b *testing.B) {
			req := &oip.InferRequest{
				ID:         "bench",
				Parameters: oip.Parameters{oip.ParamBinaryDataOutput: true},
				Inputs:     []oip.Tensor{oip.FP32Tensor("images", []int64{int64(batch), 3, 64, 64}, image(9, int64(batch), 3, 64, 64))},
			}
			for b.Loop() {
				if status, _, msg := bundle.infer(b, req, true); status != 200 {
					b.Fatal(msg)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "images/s")
		})
	}

	// The shape of Ultralytics' default export (yolo-seg-640.onnx: one
	// image of 640×640, 8400 anchors, 80 classes): over HTTP, and ONNX
	// Runtime's Run alone with the CPU time it takes (all its threads).
	m640, err := onnxworker.Open(filepath.Join(testdata, "yolo-seg-640.onnx"), onnxworker.Options{})
	require.NoError(b, err)
	defer m640.Close()
	srv640 := httptest.NewServer(onnxworker.New(m640, onnxworker.Config{Model: "yolo640", Layout: onnxworker.LayoutYOLOSeg}))
	defer srv640.Close()
	in640 := []oip.Tensor{oip.FP32Tensor("images", []int64{1, 3, 640, 640}, image(9, 1, 3, 640, 640))}
	b.Run("yolo-seg-640/http", func(b *testing.B) {
		bundle := &testBundle{srv: srv640, path: "/v2/models/yolo640"}
		req := &oip.InferRequest{ID: "bench", Parameters: oip.Parameters{oip.ParamBinaryDataOutput: true}, Inputs: in640}
		for b.Loop() {
			if status, _, msg := bundle.infer(b, req, true); status != 200 {
				b.Fatal(msg)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
	})
	b.Run("yolo-seg-640/run", func(b *testing.B) {
		before := cpuTime(b)
		for b.Loop() {
			if _, err := m640.Run(in640); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(cpuTime(b)-before)/float64(b.N)/1e6, "cpu-ms/image")
	})
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
