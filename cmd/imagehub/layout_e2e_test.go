//go:build cgo

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	_ "image/jpeg"
	_ "image/png"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/imaging/imagingtest"
	"github.com/deepimageshub/imagehub/imaging/turbojpeg"
	"github.com/deepimageshub/imagehub/layout"
	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/oip"
	"github.com/deepimageshub/imagehub/openapi/openapitest"
)

// The end-to-end checks of the stock layouts: the real `imagehub serve`
// (no built-in worker) and the real `imagehub worker --onnx` on a generated
// test model, the model registered through the API with its layout, real
// photos uploaded; the proposals the hub stores are compared pixel by pixel
// with a reference decoding, written here from docs/layouts.md in float64
// and per pixel, of the raw tensors the same worker returns for the same
// input. The reference shares no code with package layout: the input it
// sends is the hub's own (layout's builders, so that the worker's answer is
// the one the hub decoded), and that input is itself checked against an
// independent per-pixel letterbox or resize here.

// e2ePhoto is an upload: a synthetic photo of an odd size (so that the
// letterbox's padding is uneven) as PNG, whose pixels decode exactly, or
// JPEG, which the hub resamples in YCbCr (docs/layouts.md: the same as
// resampling RGB up to one level).
type e2ePhoto struct {
	name string
	w, h int
	seed uint64
	png  bool
}

var e2ePhotos = []e2ePhoto{
	{"wide.png", 500, 333, 4101, true},
	{"tall.jpg", 333, 500, 4102, false},
	{"square.png", 256, 256, 4103, true},
}

func (p e2ePhoto) bytes() []byte {
	img := imagingtest.Photo(p.w, p.h, p.seed)
	if p.png {
		return imagingtest.PNG(img)
	}
	return imagingtest.JPEG(img)
}

// e2eSetup starts a hub and makes sure it knows the labels the test models
// name (a fresh hub's taxonomy may hold them already).
func e2eSetup(t *testing.T) (*hub, *server) {
	t.Helper()
	h := newHub(t, nil)
	srv := startServer(t, h.env())
	for _, name := range []string{"person", "car", "dog"} {
		status, body, _ := call(t, "POST", srv.base+"/api/v1/labels", h.token, map[string]string{"name": name})
		require.Contains(t, []int{http.StatusCreated, http.StatusConflict}, status, "%v", body)
	}
	return h, srv
}

// hubProposal is a proposal as GET /api/v1/images/{id} shows it.
type hubProposal struct {
	ID    string   `json:"id"`
	Label string   `json:"label"`
	Score float64  `json:"score"`
	BBox  []int    `json:"bbox"`
	Area  int      `json:"area"`
	Mask  mask.RLE `json:"mask"`
	Model hubModel `json:"model"`
}

type hubModel struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// waitProposals waits until the image is in review and returns its
// proposals and the stored file.
func waitProposals(t *testing.T, srv *server, token, id string, within time.Duration, logs func() string) ([]hubProposal, []byte) {
	t.Helper()
	deadline := time.Now().Add(within)
	hc := openapitest.Client(t)
	for {
		req, err := http.NewRequest("GET", srv.base+"/api/v1/images/"+id, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := hc.Do(req)
		require.NoError(t, err)
		var img struct {
			Status    string        `json:"status"`
			Proposals []hubProposal `json:"proposals"`
			Inference []any         `json:"inference"`
		}
		err = json.NewDecoder(res.Body).Decode(&img)
		res.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, res.StatusCode)
		require.NotEqual(t, "failed", img.Status, "inference failed: %v\n%s", img.Inference, logs())
		if img.Status == "awaiting_review" {
			req, err := http.NewRequest("GET", srv.base+"/api/v1/images/"+id+"/file", nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+token)
			res, err := hc.Do(req)
			require.NoError(t, err)
			data, err := io.ReadAll(res.Body)
			res.Body.Close()
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, res.StatusCode)
			return img.Proposals, data
		}
		require.True(t, time.Now().Before(deadline), "no proposals within %s: %+v\n%s", within, img, logs())
		time.Sleep(200 * time.Millisecond)
	}
}

// inferRaw sends one FP32 input to the worker directly and returns its
// answer, outputs in binary form.
func inferRaw(t *testing.T, base, model, input string, shape []int64, data []float32) *oip.InferResponse {
	t.Helper()
	body, err := oip.EncodeRequest(&oip.InferRequest{
		ID: "ref", Parameters: oip.Parameters{oip.ParamBinaryDataOutput: true},
		Inputs: []oip.Tensor{oip.FP32Tensor(input, shape, data)},
	}, true)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v2/models/"+model+"/versions/1/infer", bytes.NewReader(body.Bytes))
	require.NoError(t, err)
	body.SetHeaders(req.Header)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	raw, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode, string(raw))
	n, err := oip.JSONLength(res.Header, len(raw))
	require.NoError(t, err)
	ans, err := oip.DecodeResponse(raw, n, oip.Limits{})
	require.NoError(t, err)
	return ans
}

func f32s(t *testing.T, ans *oip.InferResponse, name string) ([]float64, []int64) {
	t.Helper()
	o := ans.Output(name)
	require.NotNil(t, o, "output %s", name)
	v, err := o.Float32s()
	require.NoError(t, err)
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out, o.Shape
}

// ---- the reference: docs/layouts.md, float64, per pixel ----

// refDecode is the stored photo as 8-bit RGB, h rows of w pixels, through
// the standard library's decoders (Go's own YCbCr→RGB for a JPEG).
func refDecode(t *testing.T, data []byte) (pix []float64, w, h int) {
	t.Helper()
	img, _, err := image.Decode(bytes.NewReader(data))
	require.NoError(t, err)
	b := img.Bounds()
	w, h = b.Dx(), b.Dy()
	pix = make([]float64, 3*w*h)
	for y := range h {
		for x := range w {
			c := color.RGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.RGBA)
			pix[3*(y*w+x)], pix[3*(y*w+x)+1], pix[3*(y*w+x)+2] = float64(c.R), float64(c.G), float64(c.B)
		}
	}
	return pix, w, h
}

// tap is where output index i of a resize from in to out samples: half-pixel
// centres, clamped at 0, the second tap stopping at the last index.
func tap(i, in, out int) (i0, i1 int, f float64) {
	s := (float64(i)+0.5)*float64(in)/float64(out) - 0.5
	if s < 0 {
		s = 0
	}
	i0 = int(math.Floor(s))
	if i0 > in-1 {
		i0 = in - 1
	}
	i1 = min(i0+1, in-1)
	return i0, i1, s - float64(i0)
}

// bilinear samples the h×w grid at at(x, y) for output pixel (x, y) of an
// ow×oh resize.
func bilinear(at func(x, y int) float64, w, h, ow, oh, x, y int) float64 {
	x0, x1, fx := tap(x, w, ow)
	y0, y1, fy := tap(y, h, oh)
	top := at(x0, y0)*(1-fx) + at(x1, y0)*fx
	bot := at(x0, y1)*(1-fx) + at(x1, y1)*fx
	return top*(1-fy) + bot*fy
}

// refResizeInto resizes the w×h RGB pixels to nw×nh and writes the values,
// in levels and not yet rounded, into the [3, rows, stride] planes at
// (left, top); clipped marks the values one of whose four source pixels is
// 0 or 255 in that channel.
func refResizeInto(dst []float64, clipped []bool, stride, rows int, pix []float64, w, h, nw, nh, left, top int) {
	for c := range 3 {
		at := func(x, y int) float64 { return pix[3*(y*w+x)+c] }
		for y := range nh {
			y0, y1, _ := tap(y, h, nh)
			for x := range nw {
				i := c*stride*rows + (top+y)*stride + left + x
				dst[i] = bilinear(at, w, h, nw, nh, x, y)
				x0, x1, _ := tap(x, w, nw)
				for _, v := range []float64{at(x0, y0), at(x1, y0), at(x0, y1), at(x1, y1)} {
					clipped[i] = clipped[i] || v == 0 || v == 255
				}
			}
		}
	}
}

// compareInput checks the hub's input tensor against the reference's
// unrounded levels, each rounded to a whole level (half up) and divided by
// 255. For a PNG they agree except where the exact value is a tie, half way
// between two levels, which the hub's float32 tap weights may round either
// way. A JPEG the hub resamples in YCbCr, which docs/layouts.md allows to be
// a level off, or more beside a pixel whose RGB is clipped (0 or 255 here);
// when the hub decodes JPEGs with libjpeg-turbo, whose integer IDCT and
// smooth chroma upsampling differ from Go's image/jpeg (the reference's)
// by a few levels near colour edges, four: a geometric error (a shifted
// or mis-scaled input) is tens of levels. It returns how many values
// differ.
// jpegLevels is how far a JPEG's input value may be from the reference.
var jpegLevels = map[bool]float64{false: 1, true: 4}[turbojpeg.Available]

func compareInput(t *testing.T, hub []float32, raw []float64, clipped []bool, exact bool) int {
	t.Helper()
	require.Len(t, hub, len(raw))
	diff := 0
	for i, r := range raw {
		want := math.Min(math.Max(math.Floor(r+0.5), 0), 255)
		got := float64(hub[i]) * 255
		if math.Abs(got-want) < 1e-3 {
			continue
		}
		diff++
		if exact {
			require.InDelta(t, want, got, 1+1e-3, "input value %d: hub %v, reference %v levels", i, got, r)
			require.InDelta(t, 0.5, r-math.Floor(r), 1e-4, "input value %d: hub %v, reference %v levels, not a tie", i, got, r)
		} else if !clipped[i] {
			require.InDelta(t, want, got, jpegLevels+1e-3, "input value %d: hub %v, reference %v levels", i, got, r)
		}
	}
	return diff
}

// refInstance is one instance of the reference decoding.
type refInstance struct {
	label string
	score float64
	prob  func(x, y int) float64 // the mask's probability at image pixel (x, y)
}

// compareProposals matches the hub's proposals with the reference's
// instances, in order (best first), and compares each mask pixel by pixel.
// A pixel whose reference probability lies within band of the threshold is
// not counted when the two differ (float32 in the hub against float64
// here); every other pixel must agree, and the undecided ones must stay
// below 0.5% of the image.
func compareProposals(t *testing.T, name string, got []hubProposal, want []refInstance, w, h int, thr, band float64) {
	t.Helper()
	sort.SliceStable(got, func(i, j int) bool { return got[i].Score > got[j].Score })
	require.Len(t, got, len(want), "%s: proposals", name)
	for i, ref := range want {
		p := got[i]
		require.Equal(t, ref.label, p.Label, "%s: proposal %d", name, i)
		require.InDelta(t, ref.score, p.Score, 1e-6, "%s: proposal %d score", name, i)
		require.Equal(t, [2]int{h, w}, p.Mask.Size, "%s: proposal %d mask size", name, i)
		bm, err := p.Mask.Decode()
		require.NoError(t, err)
		on, mismatched, undecided := 0, 0, 0
		x0, y0, x1, y1 := w, h, -1, -1
		for y := range h {
			for x := range w {
				v := ref.prob(x, y)
				want := v > thr
				if want {
					on++
					x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x), max(y1, y)
				}
				if bm.At(x, y) != want {
					if math.Abs(v-thr) <= band {
						undecided++
						continue
					}
					mismatched++
					if mismatched <= 5 {
						t.Errorf("%s: proposal %d (%s) pixel (%d, %d): hub %v, reference %v (probability %.9f)", name, i, ref.label, x, y, bm.At(x, y), want, v)
					}
				}
			}
		}
		require.Zero(t, mismatched, "%s: proposal %d (%s): pixels that differ from the reference", name, i, ref.label)
		require.LessOrEqual(t, undecided, w*h/200, "%s: proposal %d: pixels at the threshold", name, i)
		require.Positive(t, on, "%s: proposal %d: an empty mask proposes nothing", name, i)
		if undecided == 0 {
			require.Equal(t, on, p.Area, "%s: proposal %d area", name, i)
			require.Equal(t, []int{x0, y0, x1 - x0 + 1, y1 - y0 + 1}, p.BBox, "%s: proposal %d bbox", name, i)
		}
		t.Logf("%s: %s %.4f, %d pixels on; %d of %d differ, each within %g of the threshold", name, ref.label, ref.score, on, undecided, w*h, band)
	}
}

// ---- yolo-seg ----

// refYOLOInput letterboxes the photo into S×S (docs/layouts.md).
func refYOLOInput(pix []float64, w, h, s int) (in []float64, clipped []bool, left, top int) {
	r := math.Min(float64(s)/float64(h), float64(s)/float64(w))
	nw := min(int(math.RoundToEven(float64(w)*r)), s)
	nh := min(int(math.RoundToEven(float64(h)*r)), s)
	dw, dh := float64(s-nw)/2, float64(s-nh)/2
	left, top = int(math.RoundToEven(dw-0.1)), int(math.RoundToEven(dh-0.1))
	in = make([]float64, 3*s*s)
	for i := range in {
		in[i] = 114
	}
	clipped = make([]bool, len(in))
	refResizeInto(in, clipped, s, s, pix, w, h, nw, nh, left, top)
	return in, clipped, left, top
}

// refYOLO decodes one image's output0 [4+nc+32, A] and output1 [32, MH, MW]
// for a w×h image in an S×S input.
func refYOLO(o0 []float64, a int, o1 []float64, mh, mw, s int, labels []string, w, h int, p layout.Params) []refInstance {
	nc := len(labels)
	at := func(row, anchor int) float64 { return o0[row*a+anchor] }
	type cand struct {
		anchor, class int
		score         float64
		box           [4]float64
	}
	var cands []cand
	for i := range a {
		best := 0
		for c := 1; c < nc; c++ {
			if at(4+c, i) > at(4+best, i) {
				best = c
			}
		}
		if sc := at(4+best, i); sc > float64(p.ScoreThreshold) {
			cx, cy, bw, bh := at(0, i), at(1, i), at(2, i), at(3, i)
			cands = append(cands, cand{i, best, sc, [4]float64{cx - bw/2, cy - bh/2, cx + bw/2, cy + bh/2}})
		}
	}
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].score > cands[j].score })
	iou := func(a, b [4]float64) float64 {
		iw := math.Max(0, math.Min(a[2], b[2])-math.Max(a[0], b[0]))
		ih := math.Max(0, math.Min(a[3], b[3])-math.Max(a[1], b[1]))
		inter := iw * ih
		return inter / ((a[2]-a[0])*(a[3]-a[1]) + (b[2]-b[0])*(b[3]-b[1]) - inter)
	}
	var kept []cand
	for _, c := range cands {
		drop := false
		for _, k := range kept {
			drop = drop || (k.class == c.class && iou(k.box, c.box) > float64(p.IoUThreshold))
		}
		if !drop && len(kept) < p.MaxInstances {
			kept = append(kept, c)
		}
	}
	// The window of the prototype grid that covers the image (scale_masks).
	g := math.Min(float64(mh)/float64(h), float64(mw)/float64(w))
	px, py := (float64(mw)-float64(w)*g)/2, (float64(mh)-float64(h)*g)/2
	wl, wt := int(math.RoundToEven(px-0.1)), int(math.RoundToEven(py-0.1))
	wr, wb := mw-int(math.RoundToEven(px+0.1)), mh-int(math.RoundToEven(py+0.1))
	var out []refInstance
	for _, k := range kept {
		cells := make([]float64, mh*mw)
		for r := range mh {
			for c := range mw {
				// crop_mask: integer cell indices against the box scaled to the grid.
				if float64(c) < k.box[0]*float64(mw)/float64(s) || float64(c) >= k.box[2]*float64(mw)/float64(s) ||
					float64(r) < k.box[1]*float64(mh)/float64(s) || float64(r) >= k.box[3]*float64(mh)/float64(s) {
					continue
				}
				dot := 0.0
				for j := range layout.YOLOMaskDim {
					dot += at(4+nc+j, k.anchor) * o1[(j*mh+r)*mw+c]
				}
				cells[r*mw+c] = 1 / (1 + math.Exp(-dot))
			}
		}
		win := func(x, y int) float64 { return cells[(wt+y)*mw+wl+x] }
		out = append(out, refInstance{
			label: labels[k.class], score: k.score,
			prob: func(x, y int) float64 { return bilinear(win, wr-wl, wb-wt, w, h, x, y) },
		})
	}
	return out
}

// TestEndToEndYOLOSeg: the generated YOLO-seg model served by `imagehub
// worker --onnx`, registered with layout yolo-seg and no labels (they come
// from the worker's metadata, which read them from the file's Ultralytics
// names), photos uploaded; the stored proposals equal the reference
// decoding pixel for pixel.
func TestEndToEndYOLOSeg(t *testing.T) {
	t.Parallel()
	testEndToEndYOLOSeg(t, "yolo-seg", 64, 84, []string{"person", "car", "dog"})
}

// TestEndToEndYOLOSeg640 is the same with a model shaped as Ultralytics'
// default export leaves it: images [1, 3, 640, 640] with the batch fixed
// at 1 (so the hub sends one image a request), output0 [1, 116, 8400],
// output1 [1, 32, 160, 160], the 80 COCO names in the file's metadata.
func TestEndToEndYOLOSeg640(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(onnxTestdata, "yolo-seg-640.json"))
	require.NoError(t, err)
	var spec struct {
		Names []string `json:"names"`
	}
	require.NoError(t, json.Unmarshal(raw, &spec))
	require.Len(t, spec.Names, 80)
	testEndToEndYOLOSeg(t, "yolo-seg-640", 640, 8400, spec.Names)
}

// testEndToEndYOLOSeg runs testdata/onnx/<model>.onnx, of side s with
// the given anchors and class names, through the hub.
func testEndToEndYOLOSeg(t *testing.T, model string, s, anchors int, labels []string) {
	w := startONNXWorker(t, model, "--onnx", filepath.Join(onnxTestdata, model+".onnx"), "--layout", "yolo-seg")
	h, srv := e2eSetup(t)
	logs := func() string { return srv.logs.String() + w.logs.String() }

	status, body, _ := call(t, "POST", srv.base+"/api/v1/models", h.token, map[string]any{
		"name": model, "version": "1", "task": "segmentation", "endpoints": []string{w.base},
		"capacity": 2, "timeout_ms": 30000, "enabled": true, "layout": "yolo-seg",
	})
	require.Equal(t, http.StatusCreated, status, "%v", body)
	m := body["model"].(map[string]any)
	require.Empty(t, m["problems"])
	var gotLabels []string
	for _, l := range m["labels"].([]any) {
		gotLabels = append(gotLabels, l.(string))
	}
	require.Equal(t, labels, gotLabels, "labels from the model's metadata")
	for _, ph := range e2ePhotos {
		id := uploadPhoto(t, srv.base, h.token, ph.name, ph.bytes())
		got, stored := waitProposals(t, srv, h.token, id, 90*time.Second, logs)
		compareYOLOSeg(t, ph, stored, got, w.base, model, s, anchors, labels)
		for _, g := range got {
			require.Equal(t, hubModel{model, "1"}, g.Model)
		}
	}
	h.checkStored(t)
}

// compareYOLOSeg checks the proposals the hub stored for the photo ph
// (stored: its file) against the reference decoding of what the
// `imagehub worker --onnx` at base answers for model, of side s with the
// given anchors and class names, on the hub's own input.
func compareYOLOSeg(t *testing.T, ph e2ePhoto, stored []byte, got []hubProposal, base, model string, s, anchors int, labels []string) {
	t.Helper()
	p := layout.Params{Kind: layout.YOLOSeg, Labels: labels, InputSize: s}.WithDefaults()
	// The hub's input and the reference's own letterbox of the stored file.
	img, err := layout.DecodeImage(stored)
	require.NoError(t, err)
	hubIn := make([]float32, layout.YOLOSegInputLen(s))
	layout.YOLOSegInput(hubIn, img, s)
	pix, iw, ih := refDecode(t, stored)
	require.Equal(t, [2]int{ph.w, ph.h}, [2]int{iw, ih})
	refIn, clipped, left, top := refYOLOInput(pix, iw, ih, s)
	diff := compareInput(t, hubIn, refIn, clipped, ph.png)

	ans := inferRaw(t, base, model, "images", []int64{1, 3, int64(s), int64(s)}, hubIn)
	o0, sh0 := f32s(t, ans, "output0")
	o1, sh1 := f32s(t, ans, "output1")
	require.Equal(t, []int64{1, int64(4 + len(labels) + layout.YOLOMaskDim), int64(anchors)}, sh0)
	require.Equal(t, []int64{1, layout.YOLOMaskDim, int64(s / 4), int64(s / 4)}, sh1)
	want := refYOLO(o0, anchors, o1, s/4, s/4, s, p.Labels, iw, ih, p)
	require.NotEmpty(t, want, "%s: the test model detects something", ph.name)
	t.Logf("%s: letterbox at (%d, %d); %d of %d input values a level off the reference", ph.name, left, top, diff, len(refIn))
	compareProposals(t, ph.name, got, want, iw, ih, float64(p.MaskThreshold), 1e-6)
}

// ---- maskrcnn ----

// refMaskRCNN decodes boxes, labels, scores and masks [N, 1, H, W] for a
// w×h image (docs/layouts.md).
func refMaskRCNN(scores []float64, lab []int64, masks []float64, ih, iw int, labels []string, w, h int, p layout.Params) []refInstance {
	order := make([]int, 0, len(scores))
	for i, s := range scores {
		if s > float64(p.ScoreThreshold) {
			order = append(order, i)
		}
	}
	sort.SliceStable(order, func(a, b int) bool { return scores[order[a]] > scores[order[b]] })
	if len(order) > p.MaxInstances {
		order = order[:p.MaxInstances]
	}
	var out []refInstance
	for _, n := range order {
		plane := masks[n*ih*iw : (n+1)*ih*iw]
		at := func(x, y int) float64 { return plane[y*iw+x] }
		out = append(out, refInstance{
			label: labels[lab[n]-1], score: scores[n],
			prob: func(x, y int) float64 { return bilinear(at, iw, ih, w, h, x, y) },
		})
	}
	return out
}

// TestEndToEndMaskRCNN: the generated Mask R-CNN model served by `imagehub
// worker --onnx --labels`, registered with layout maskrcnn and its labels,
// photos uploaded; the stored proposals equal the reference decoding.
func TestEndToEndMaskRCNN(t *testing.T) {
	t.Parallel()
	w := startONNXWorker(t, "maskrcnn", "--onnx", filepath.Join(onnxTestdata, "maskrcnn.onnx"), "--layout", "maskrcnn",
		"--labels", filepath.Join(onnxTestdata, "maskrcnn-labels.txt"))
	h, srv := e2eSetup(t)
	logs := func() string { return srv.logs.String() + w.logs.String() }
	labels := []string{"person", "car", "dog"}
	const long = 400 // upscales the 333-pixel sides, downscales the 500-pixel ones
	status, body, _ := call(t, "POST", srv.base+"/api/v1/models", h.token, map[string]any{
		"name": "maskrcnn", "version": "1", "task": "segmentation", "endpoints": []string{w.base},
		"capacity": 2, "timeout_ms": 30000, "enabled": true, "layout": "maskrcnn", "labels": labels,
		"input_size": long,
	})
	require.Equal(t, http.StatusCreated, status, "%v", body)
	require.Empty(t, body["model"].(map[string]any)["problems"])
	p := layout.Params{Kind: layout.MaskRCNN, Labels: labels, InputSize: long}.WithDefaults()

	for _, ph := range e2ePhotos {
		id := uploadPhoto(t, srv.base, h.token, ph.name, ph.bytes())
		got, stored := waitProposals(t, srv, h.token, id, 90*time.Second, logs)

		img, err := layout.DecodeImage(stored)
		require.NoError(t, err)
		hubIn, rs := layout.MaskRCNNInput(img, long)
		pix, iw, ih := refDecode(t, stored)
		r := float64(long) / float64(max(iw, ih))
		nw, nh := int(math.RoundToEven(float64(iw)*r)), int(math.RoundToEven(float64(ih)*r))
		require.Equal(t, [2]int{nw, nh}, [2]int{rs.W, rs.H}, "%s: the input's size", ph.name)
		refIn, clipped := make([]float64, 3*nw*nh), make([]bool, 3*nw*nh)
		refResizeInto(refIn, clipped, nw, nh, pix, iw, ih, nw, nh, 0, 0)
		diff := compareInput(t, hubIn, refIn, clipped, ph.png)

		ans := inferRaw(t, w.base, "maskrcnn", "image", []int64{3, int64(nh), int64(nw)}, hubIn)
		scores, _ := f32s(t, ans, "scores")
		masks, msh := f32s(t, ans, "masks")
		lo := ans.Output("labels")
		require.NotNil(t, lo)
		lab, err := lo.Int64s()
		require.NoError(t, err)
		require.Equal(t, []int64{int64(len(scores)), 1, int64(nh), int64(nw)}, msh)
		want := refMaskRCNN(scores, lab, masks, nh, nw, labels, iw, ih, p)
		require.NotEmpty(t, want, "%s: the test model detects something", ph.name)
		t.Logf("%s: input %d×%d; %d of %d input values a level off the reference", ph.name, nw, nh, diff, len(refIn))
		// The masks are 0.8·x + 0.1 of a pixel level x/255, so a pixel
		// between two levels can sit exactly on 0.5 in exact arithmetic;
		// there float32 (the hub) and float64 (here) may round either way.
		compareProposals(t, ph.name, got, want, iw, ih, float64(p.MaskThreshold), 1e-6)
	}
	h.checkStored(t)
}

// TestEndToEndLabelsRequired: a stock registration without labels whose
// model's metadata names none is refused with 400 naming labels, and
// nothing is saved.
func TestEndToEndLabelsRequired(t *testing.T) {
	t.Parallel()
	// Without --labels the Mask R-CNN file names no classes.
	w := startONNXWorker(t, "maskrcnn", "--onnx", filepath.Join(onnxTestdata, "maskrcnn.onnx"), "--layout", "maskrcnn")
	h, srv := e2eSetup(t)
	status, body, _ := call(t, "POST", srv.base+"/api/v1/models", h.token, map[string]any{
		"name": "maskrcnn", "version": "1", "task": "segmentation", "endpoints": []string{w.base},
		"capacity": 1, "timeout_ms": 30000, "enabled": true, "layout": "maskrcnn",
	})
	require.Equal(t, http.StatusBadRequest, status, "%v", body)
	require.Equal(t, "labels", body["error"].(map[string]any)["field"], "%v", body)
	require.Zero(t, count(t, h.pool, "SELECT count(*) FROM models"), "nothing saved")
}
