package inference

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/layout"
	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/oip"
)

const secret = "Bearer s3cret-token"

// stockServer is a real HTTP server playing a Triton that serves one stock
// model behind a token: it refuses any request without the endpoint's
// headers, records each inference request and answers with fixed tensors.
type stockServer struct {
	srv      *httptest.Server
	meta     oip.ModelMetadata
	answer   func(req *oip.InferRequest) []oip.Tensor
	requests atomic.Int32
	lastReq  atomic.Pointer[oip.InferRequest]
}

func newStockServer(t *testing.T, meta oip.ModelMetadata, answer func(*oip.InferRequest) []oip.Tensor) *stockServer {
	t.Helper()
	s := &stockServer{meta: meta, answer: answer}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *stockServer) serve(w http.ResponseWriter, r *http.Request) {
	fail := func(code int, msg string) {
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(oip.ErrorBody{Error: msg})
	}
	if r.Header.Get("Authorization") != secret || r.Header.Get("X-Api-Key") != "k-123" || r.Host != "model.example.com" {
		// Careless servers echo what they got.
		fail(http.StatusUnauthorized, "no valid token in "+r.Header.Get("Authorization")+" / "+r.Header.Get("X-Api-Key"))
		return
	}
	switch {
	case r.Method == http.MethodGet && (r.URL.Path == "/v2/health/ready" || r.URL.Path == "/v2/models/"+s.meta.Name+"/ready"):
	case r.Method == http.MethodGet && r.URL.Path == "/v2":
		_ = json.NewEncoder(w).Encode(oip.ServerMetadata{Name: "triton", Extensions: []string{oip.ExtensionBinaryTensorData}})
	case r.Method == http.MethodGet && r.URL.Path == "/v2/models/"+s.meta.Name:
		_ = json.NewEncoder(w).Encode(s.meta)
	case r.Method == http.MethodPost && r.URL.Path == "/v2/models/"+s.meta.Name+"/infer":
		body, err := oip.ReadBody(r.Body, 64<<20)
		if err != nil {
			fail(http.StatusBadRequest, err.Error())
			return
		}
		jl, err := oip.JSONLength(r.Header, len(body))
		if err != nil {
			fail(http.StatusBadRequest, err.Error())
			return
		}
		req, err := oip.DecodeRequest(body, jl, oip.Limits{})
		if err != nil {
			fail(http.StatusBadRequest, err.Error())
			return
		}
		s.requests.Add(1)
		s.lastReq.Store(req)
		resp := &oip.InferResponse{ModelName: s.meta.Name, ID: req.ID, Outputs: s.answer(req)}
		enc, err := oip.EncodeResponse(resp, req.OutputBinary)
		if err != nil {
			fail(http.StatusInternalServerError, err.Error())
			return
		}
		enc.SetHeaders(w.Header())
		_, _ = w.Write(enc.Bytes)
	default:
		fail(http.StatusNotFound, "no such path")
	}
}

func (s *stockServer) endpoint(p layout.Params, binary bool) Endpoint {
	return Endpoint{
		Base: s.srv.URL, Model: s.meta.Name, Binary: binary, Layout: p,
		Headers: Headers{"Authorization": secret, "x-api-key": "k-123", "Host": "model.example.com"},
	}
}

func pngOf(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, img))
	return b.Bytes()
}

// yoloAnswer is, for each image of a batch, the yolo-seg answer of
// layout's hand-computed fixture (layout_test.go explains the numbers):
// 2 classes, 4 anchors, 8×8 prototypes for a 32×32 input of a 32×16 image.
func yoloAnswer(b int) []oip.Tensor {
	const a, nc = 4, 2
	ch := 4 + nc + layout.YOLOMaskDim
	preds := make([]float32, ch*a)
	set := func(row, anchor int, v float32) { preds[row*a+anchor] = v }
	boxes := [a][4]float32{{8, 16, 16, 16}, {9, 16, 16, 16}, {9, 16, 16, 16}, {20, 16, 4, 4}}
	scores := [a][nc]float32{{0.9, 0.1}, {0.8, 0.05}, {0.3, 0.7}, {0.1, 0.2}}
	for i := range a {
		for j := range 4 {
			set(j, i, boxes[i][j])
		}
		for c := range nc {
			set(4+c, i, scores[i][c])
		}
	}
	set(4+nc, 0, 10)
	set(4+nc, 1, 10)
	set(4+nc+1, 2, 10)
	protos := make([]float32, layout.YOLOMaskDim*64)
	for i := range 64 {
		protos[i], protos[64+i] = 1, -1
	}
	protos[64+3*8+2] = 1
	var allP, allQ []float32
	for range b {
		allP = append(allP, preds...)
		allQ = append(allQ, protos...)
	}
	return []oip.Tensor{
		oip.FP32Tensor("output0", []int64{int64(b), int64(ch), a}, allP),
		oip.FP32Tensor("output1", []int64{int64(b), 32, 8, 8}, allQ),
	}
}

func yoloMeta() oip.ModelMetadata {
	return oip.ModelMetadata{
		Name: "yolo", Platform: "onnxruntime_onnx",
		Inputs: []oip.TensorMetadata{{Name: "images", Datatype: oip.FP32, Shape: []int64{-1, 3, 32, 32}}},
		Outputs: []oip.TensorMetadata{
			{Name: "output0", Datatype: oip.FP32, Shape: []int64{-1, 38, -1}},
			{Name: "output1", Datatype: oip.FP32, Shape: []int64{-1, 32, 8, 8}},
		},
	}
}

func onPixels(t *testing.T, r mask.RLE) [][2]int {
	t.Helper()
	b, err := r.Decode()
	require.NoError(t, err)
	var on [][2]int
	for y := range b.H {
		for x := range b.W {
			if b.At(x, y) {
				on = append(on, [2]int{x, y})
			}
		}
	}
	return on
}

func TestSegmentYOLOSeg(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := newStockServer(t, yoloMeta(), func(req *oip.InferRequest) []oip.Tensor {
		return yoloAnswer(int(req.Input("images").Shape[0]))
	})
	c := New(srv.srv.Client())
	img := image.NewGray(image.Rect(0, 0, 32, 16))
	for i := range img.Pix {
		img.Pix[i] = 200
	}
	file := pngOf(t, img)
	want := Expect{Width: 32, Height: 16}

	// The check finds S in the metadata and the image input's name.
	p := layout.Params{Kind: layout.YOLOSeg, Labels: []string{"cat", "dog"}}
	ep := srv.endpoint(p, false)
	meta, err := c.ModelMetadata(ctx, ep)
	require.NoError(t, err)
	got, problems := CheckLayout(meta, p)
	require.Empty(t, problems)
	require.Equal(t, 32, got.InputSize)
	require.Equal(t, "images", got.Input)

	for _, binary := range []bool{false, true} {
		ep := srv.endpoint(got, binary)
		require.NoError(t, c.Ready(ctx, ep))
		ins, err := c.Segment(ctx, ep, file, []string{"hint"}, want)
		require.NoError(t, err, "binary %v", binary)
		require.Len(t, ins, 2)
		require.Equal(t, "cat", ins[0].Label)
		require.Equal(t, float32(0.9), ins[0].Score)
		require.Equal(t, 256, ins[0].Area)
		require.Equal(t, [4]int{0, 0, 16, 16}, ins[0].BBox)
		require.Equal(t, "dog", ins[1].Label)
		require.Equal(t, 12, ins[1].Area)
		require.Equal(t, [4]int{8, 4, 4, 4}, ins[1].BBox)
		require.Len(t, onPixels(t, ins[1].Mask), 12)

		// The request: one letterboxed image, grey rows around it, no hints.
		req := srv.lastReq.Load()
		require.Len(t, req.Inputs, 1)
		in := req.Input("images")
		require.Equal(t, []int64{1, 3, 32, 32}, in.Shape)
		v, err := in.Float32s()
		require.NoError(t, err)
		require.Equal(t, float32(114)/255, v[0])
		require.Equal(t, float32(200)/255, v[8*32])
		require.Equal(t, binary, req.OutputBinary("output0"))
	}

	// A batch of two along the batch dimension, in one request.
	before := srv.requests.Load()
	out, err := c.segmentLayout(ctx, srv.endpoint(got, true), []Item{{Image: file, Want: want}, {Image: file, Want: want}})
	require.NoError(t, err)
	require.Len(t, out, 2)
	require.Equal(t, before+1, srv.requests.Load())
	require.Equal(t, []int64{2, 3, 32, 32}, srv.lastReq.Load().Input("images").Shape)
	for _, ins := range out {
		require.Len(t, ins, 2)
	}

	// Labels the hub does not know make a contract error.
	bad := want
	bad.KnownLabel = func(l string) (string, bool) { return l, l == "cat" }
	_, err = c.Segment(ctx, srv.endpoint(got, true), file, nil, bad)
	var ce *Contract
	require.ErrorAs(t, err, &ce)
	require.Contains(t, ce.Message, `"dog"`)

	// Registered labels that do not match the model's class count.
	three := got
	three.Labels = []string{"a", "b", "c"}
	_, problems = CheckLayout(meta, three)
	require.Len(t, problems, 1)
	require.Equal(t, "output0", problems[0].Tensor)
	require.Contains(t, problems[0].Message, "knows 2 classes, but the registration gives 3 labels")
	_, err = c.Segment(ctx, srv.endpoint(three, true), file, nil, want)
	require.ErrorAs(t, err, &ce)

	// A registration's input_size that the model's metadata contradicts.
	sized := p
	sized.InputSize = 640
	_, problems = CheckLayout(meta, sized)
	require.Len(t, problems, 1)
	require.Contains(t, problems[0].Message, "input_size is 640")

	// An image-hub model is not a yolo-seg one.
	_, problems = CheckLayout(&oip.ModelMetadata{Inputs: []oip.TensorMetadata{{Name: "IMAGE", Datatype: oip.BYTES, Shape: []int64{1}}}}, p)
	require.NotEmpty(t, problems)
}

func TestSegmentMaskRCNN(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	meta := oip.ModelMetadata{
		Name:   "mrcnn",
		Inputs: []oip.TensorMetadata{{Name: "image", Datatype: oip.FP32, Shape: []int64{3, -1, -1}}},
		Outputs: []oip.TensorMetadata{
			{Name: "boxes", Datatype: oip.FP32, Shape: []int64{-1, 4}},
			{Name: "labels", Datatype: oip.INT64, Shape: []int64{-1}},
			{Name: "scores", Datatype: oip.FP32, Shape: []int64{-1}},
			{Name: "masks", Datatype: oip.FP32, Shape: []int64{-1, 1, -1, -1}},
		},
	}
	// A 64×32 image goes in at 32×16. Instance 0, label 2 at 0.6, is on
	// in input columns 16–31: upsampled 2×, image column 31 samples input
	// column 15.25 (0.25 on) and column 32 samples 15.75 (0.75): the right
	// half. Instance 1, label 1 at 0.9, never reaches 0.5; instance 2 is
	// under the score threshold.
	labels := make([]byte, 0, 24)
	for _, l := range []int64{2, 1, 1} {
		labels = append(labels, byte(l), 0, 0, 0, 0, 0, 0, 0)
	}
	masks := make([]float32, 3*16*32)
	for y := range 16 {
		for x := range 32 {
			if x >= 16 {
				masks[y*32+x] = 1
			}
			masks[512+y*32+x] = 0.4
			masks[1024+y*32+x] = 1
		}
	}
	srv := newStockServer(t, meta, func(*oip.InferRequest) []oip.Tensor {
		return []oip.Tensor{
			oip.FP32Tensor("boxes", []int64{3, 4}, []float32{16, 0, 32, 16, 0, 0, 1, 1, 0, 0, 32, 16}),
			{Name: "labels", Datatype: oip.INT64, Shape: []int64{3}, Raw: labels},
			oip.FP32Tensor("scores", []int64{3}, []float32{0.6, 0.9, 0.1}),
			oip.FP32Tensor("masks", []int64{3, 1, 16, 32}, masks),
		}
	})
	c := New(srv.srv.Client())
	p := layout.Params{Kind: layout.MaskRCNN, Labels: []string{"cat", "dog"}, InputSize: 32}
	m, err := c.ModelMetadata(ctx, srv.endpoint(p, false))
	require.NoError(t, err)
	got, problems := CheckLayout(m, p)
	require.Empty(t, problems)
	require.Equal(t, "image", got.Input, "the only input, whatever its name")
	require.Equal(t, 32, got.InputSize)

	img := image.NewGray(image.Rect(0, 0, 64, 32))
	file := pngOf(t, img)
	for _, binary := range []bool{false, true} {
		ins, err := c.Segment(ctx, srv.endpoint(got, binary), file, nil, Expect{Width: 64, Height: 32})
		require.NoError(t, err)
		require.Len(t, ins, 1, "the empty mask proposes nothing")
		require.Equal(t, "dog", ins[0].Label)
		require.Equal(t, float32(0.6), ins[0].Score)
		require.Equal(t, [4]int{32, 0, 32, 32}, ins[0].BBox)
		require.Equal(t, 32*32, ins[0].Area)
		require.Equal(t, []int64{3, 16, 32}, srv.lastReq.Load().Input("image").Shape)
	}
	_, err = c.segmentLayout(ctx, srv.endpoint(got, true), []Item{{Image: file, Want: Expect{Width: 64, Height: 32}}, {Image: file, Want: Expect{Width: 64, Height: 32}}})
	require.ErrorContains(t, err, "one image a request")

	fixed := m
	fixed.Inputs = []oip.TensorMetadata{{Name: "image", Datatype: oip.FP32, Shape: []int64{3, 800, 800}}}
	_, problems = CheckLayout(fixed, p)
	require.Len(t, problems, 1)
	require.Contains(t, problems[0].Message, "must be variable")
}

func TestEndpointHeaders(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := newStockServer(t, yoloMeta(), func(req *oip.InferRequest) []oip.Tensor { return yoloAnswer(1) })
	c := New(srv.srv.Client())
	p := layout.Params{Kind: layout.YOLOSeg, Labels: []string{"cat", "dog"}, InputSize: 32}
	ep := srv.endpoint(p, true)

	// With the headers every call gets through, Host included.
	require.NoError(t, c.Ready(ctx, ep))
	require.NoError(t, c.ModelReady(ctx, ep))
	_, err := c.ServerMetadata(ctx, ep)
	require.NoError(t, err)
	_, err = c.ModelMetadata(ctx, ep)
	require.NoError(t, err)

	// Without them, or with a wrong one, the server refuses and no error
	// says what the token was.
	for _, h := range []Headers{nil, {"Authorization": secret, "X-Api-Key": "k-123", "Host": "wrong.example.com"}} {
		e := ep
		e.Headers = h
		err := c.Ready(ctx, e)
		var ce *Contract
		require.ErrorAs(t, err, &ce)
		require.Equal(t, http.StatusUnauthorized, ce.Status)
		_, err = c.Segment(ctx, e, pngOf(t, image.NewGray(image.Rect(0, 0, 32, 16))), nil, Expect{Width: 32, Height: 16})
		require.ErrorAs(t, err, &ce)
		_, merr := c.ModelMetadata(ctx, e)
		for _, err := range []error{err, merr} {
			require.Contains(t, err.Error(), "no valid token in")
			require.NotContains(t, err.Error(), "s3cret", "the server echoed the token; the error must not")
			require.NotContains(t, err.Error(), "k-123")
		}
	}

	// Printing or logging an endpoint shows the header names only.
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("endpoint", "headers", ep.Headers, "ep", ep)
	for _, s := range []string{fmt.Sprint(ep), fmt.Sprintf("%+v", ep), fmt.Sprintf("%#v", ep), ep.Headers.String(), logs.String()} {
		require.NotContains(t, s, "s3cret")
		require.NotContains(t, s, "k-123")
	}
	require.Contains(t, ep.Headers.String(), "Authorization")
	require.Equal(t, []string{"Authorization", "Host", "X-Api-Key"}, ep.Headers.Names())
}

func TestHeadersCheck(t *testing.T) {
	t.Parallel()
	require.Empty(t, Headers{"Authorization": "Bearer x", "Host": "m.example.com:8080", "x-api-key": "k"}.Check())
	require.Empty(t, Headers(nil).Check())
	for h, want := range map[string]Headers{
		"Content-Length":                  {"content-length": "3"},
		"Transfer-Encoding":               {"Transfer-Encoding": "chunked"},
		"Connection":                      {"Connection": "close"},
		"Inference-Header-Content-Length": {"Inference-Header-Content-Length": "5"},
		"not a valid header name":         {"Bad Name": "x"},
		"line breaks":                     {"X-Token": "a\r\nInjected: 1"},
		"given twice":                     {"x-token": "a", "X-Token": "b"},
		"Host is a host name":             {"Host": "http://evil/"},
	} {
		msg := want.Check()
		require.Contains(t, msg, h)
		require.False(t, strings.Contains(msg, "Injected"))
	}
	many := Headers{}
	for i := range MaxHeaders + 1 {
		many[fmt.Sprintf("X-H%d", i)] = "v"
	}
	require.Contains(t, many.Check(), "At most")
}

// TestCheckLayoutStockExports checks the metadata Triton gives for the
// files the frameworks export by default: Ultralytics' static
// [1, 3, 640, 640] with 80 COCO classes, and torchvision's dynamic axes.
func TestCheckLayoutStockExports(t *testing.T) {
	t.Parallel()
	coco := make([]string, 80)
	for i := range coco {
		coco[i] = fmt.Sprintf("class-%d", i)
	}
	yolo := &oip.ModelMetadata{
		Name: "yolo11n-seg", Versions: []string{"1"}, Platform: "onnxruntime_onnx",
		Inputs: []oip.TensorMetadata{{Name: "images", Datatype: oip.FP32, Shape: []int64{1, 3, 640, 640}}},
		Outputs: []oip.TensorMetadata{
			{Name: "output0", Datatype: oip.FP32, Shape: []int64{1, 116, 8400}},
			{Name: "output1", Datatype: oip.FP32, Shape: []int64{1, 32, 160, 160}},
		},
	}
	p, problems := CheckLayout(yolo, layout.Params{Kind: layout.YOLOSeg, Labels: coco})
	require.Empty(t, problems)
	require.Equal(t, 640, p.InputSize)
	require.Equal(t, "images", p.Input)
	require.InDelta(t, 0.25, p.ScoreThreshold, 1e-9)

	// FP16 exports and missing outputs are findings naming the tensor.
	half := *yolo
	half.Inputs = []oip.TensorMetadata{{Name: "images", Datatype: oip.FP16, Shape: []int64{1, 3, 640, 640}}}
	half.Outputs = yolo.Outputs[:1]
	_, problems = CheckLayout(&half, layout.Params{Kind: layout.YOLOSeg, Labels: coco})
	var tensors []string
	for _, pr := range problems {
		tensors = append(tensors, pr.Tensor)
	}
	require.Equal(t, []string{"images", "output1"}, tensors)

	mrcnn := &oip.ModelMetadata{
		Name: "maskrcnn", Platform: "onnxruntime_onnx",
		Inputs: []oip.TensorMetadata{{Name: "input", Datatype: oip.FP32, Shape: []int64{3, -1, -1}}},
		Outputs: []oip.TensorMetadata{
			{Name: "boxes", Datatype: oip.FP32, Shape: []int64{-1, 4}},
			{Name: "labels", Datatype: oip.INT64, Shape: []int64{-1}},
			{Name: "scores", Datatype: oip.FP32, Shape: []int64{-1}},
			{Name: "masks", Datatype: oip.FP32, Shape: []int64{-1, 1, -1, -1}},
		},
	}
	p, problems = CheckLayout(mrcnn, layout.Params{Kind: layout.MaskRCNN, Labels: coco})
	require.Empty(t, problems)
	require.Equal(t, "input", p.Input)
	require.Equal(t, 800, p.InputSize)
	wrong := *mrcnn
	wrong.Outputs = append([]oip.TensorMetadata{{Name: "labels", Datatype: oip.INT32, Shape: []int64{-1}}}, mrcnn.Outputs[0], mrcnn.Outputs[2], mrcnn.Outputs[3])
	_, problems = CheckLayout(&wrong, layout.Params{Kind: layout.MaskRCNN, Labels: coco})
	require.Len(t, problems, 1)
	require.Equal(t, "labels", problems[0].Tensor)
	require.Contains(t, problems[0].Message, "INT64 [N], 1-based")

	// An image that is not the size the hub recorded is refused before
	// anything is sent.
	c := New(nil)
	file := pngOf(t, image.NewGray(image.Rect(0, 0, 40, 30)))
	_, err := c.segmentLayout(context.Background(), Endpoint{Base: "http://127.0.0.1:1", Model: "m", Layout: p},
		[]Item{{Image: file, Want: Expect{Width: 30, Height: 40}}})
	require.ErrorContains(t, err, "is 40×30, not the 30×40 expected")
}
