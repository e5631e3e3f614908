// Package prompt is the prompt protocol of interactive models over the Open
// Inference Protocol (docs/interactive.md): its tensors, and the reading of
// a prompt request that every server of it shares (the built-in
// imagehub-interactive of imagehub worker and the SAM decoder of
// imagehub worker --layout sam), so that both refuse the same requests with
// the same words.
package prompt

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/oip"
)

// The protocol's tensors.
const (
	Image       = "IMAGE"
	Embedding   = "EMBEDDING"
	Points      = "POINTS"
	PointLabels = "POINT_LABELS"
	Box         = "BOX"
	MaskInput   = "MASK_INPUT"
	Masks       = "MASKS"
	Scores      = "SCORES"
)

// Point is one click in the image's full-size pixels; Object is false for
// a background click.
type Point struct {
	X, Y   float32
	Object bool
}

// Request is a prompt as a server reads it. Exactly one of Image (the
// encoded file, BYTES [1]) and Embedding (the tensor as it came; its
// shape is the model's to check) is set, whichever the server takes.
type Request struct {
	Image     []byte
	Embedding *oip.Tensor
	Points    []Point
	Box       *[4]float32 // x1 y1 x2 y2, x1 < x2 and y1 < y2
	// Instance is MASK_INPUT as sent: COCO RLE, neither decoded nor
	// checked against the image's size, which the server learns from the
	// image (InstanceMask does both).
	Instance *mask.RLE
}

// WarmUp is whether the request is a warm-up: no clicks and no box. The
// server prepares the image and answers no mask.
func (r *Request) WarmUp() bool { return len(r.Points) == 0 && r.Box == nil }

// InstanceMask is the instance to refine at the image's h×w, or nil when
// there is none.
func (r *Request) InstanceMask(h, w int) (*mask.Bitmap, error) {
	if r.Instance == nil {
		return nil, nil
	}
	if r.Instance.Size != [2]int{h, w} {
		return nil, bad("MASK_INPUT has size %v but the image is [%d, %d]", r.Instance.Size, h, w)
	}
	bm, err := r.Instance.Decode()
	if err != nil {
		return nil, bad("MASK_INPUT is not a valid mask: %v", err)
	}
	return bm, nil
}

// Error is a request that breaks the protocol: the server answers 400
// with it.
type Error struct{ msg string }

func (e *Error) Error() string { return e.msg }

func bad(format string, a ...any) error { return &Error{fmt.Sprintf(format, a...)} }

// Decode reads req as a prompt whose image comes as source (Image or
// Embedding), with at most maxPoints clicks. Every error is an *Error.
func Decode(req *oip.InferRequest, source string, maxPoints int) (*Request, error) {
	takes := []string{source, Points, PointLabels, Box, MaskInput}
	for _, in := range req.Inputs {
		if !slices.Contains(takes, in.Name) {
			return nil, bad("unexpected input %q: this model takes %s", in.Name, strings.Join(takes, ", "))
		}
	}
	var r Request
	switch source {
	case Image:
		t := req.Input(Image)
		if t == nil || t.Datatype != oip.BYTES || len(t.Elems) != 1 {
			return nil, bad("input IMAGE must be BYTES [1], one encoded image file")
		}
		r.Image = t.Elems[0]
	case Embedding:
		r.Embedding = req.Input(Embedding)
		if r.Embedding == nil {
			return nil, bad("input EMBEDDING is missing: this model takes what its embed model returns for the image")
		}
	default:
		return nil, fmt.Errorf("prompt: %q is no image input of the protocol", source)
	}
	if pt := req.Input(Points); pt != nil {
		v, err := pt.Float32s()
		if err != nil || len(pt.Shape) != 2 || pt.Shape[1] != 2 {
			return nil, bad("input POINTS must be FP32 [K, 2]")
		}
		k := int(pt.Shape[0])
		if k > maxPoints {
			return nil, bad("input POINTS holds %d points; at most %d", k, maxPoints)
		}
		lt := req.Input(PointLabels)
		if lt == nil {
			return nil, bad("input POINT_LABELS is missing: POINTS needs one label per point")
		}
		ls, err := lt.Int32s()
		if err != nil || len(lt.Shape) != 1 || len(ls) != k {
			return nil, bad("input POINT_LABELS must be INT32 [%d], one per point", k)
		}
		for i := range k {
			x, y := v[2*i], v[2*i+1]
			if !finite(x) || !finite(y) {
				return nil, bad("POINTS element %d is not a pair of numbers", i)
			}
			if ls[i] != 0 && ls[i] != 1 {
				return nil, bad("POINT_LABELS element %d is %d; a label is 1 (object) or 0 (background)", i, ls[i])
			}
			r.Points = append(r.Points, Point{X: x, Y: y, Object: ls[i] == 1})
		}
	} else if req.Input(PointLabels) != nil {
		return nil, bad("input POINT_LABELS came without POINTS")
	}
	if bt := req.Input(Box); bt != nil {
		v, err := bt.Float32s()
		if err != nil || len(v) != 4 || !finite(v[0]) || !finite(v[1]) || !finite(v[2]) || !finite(v[3]) {
			return nil, bad("input BOX must be FP32 [4], x1 y1 x2 y2")
		}
		if !(v[0] < v[2] && v[1] < v[3]) {
			return nil, bad("input BOX must have x1 < x2 and y1 < y2")
		}
		r.Box = &[4]float32{v[0], v[1], v[2], v[3]}
	}
	if mt := req.Input(MaskInput); mt != nil {
		if mt.Datatype != oip.BYTES || len(mt.Elems) != 1 {
			return nil, bad("input MASK_INPUT must be BYTES [1], one COCO RLE JSON object")
		}
		var rle mask.RLE
		if err := json.Unmarshal(mt.Elems[0], &rle); err != nil {
			return nil, bad("MASK_INPUT is not a COCO RLE JSON object: %v", err)
		}
		r.Instance = &rle
	}
	if !r.WarmUp() && r.Box == nil && r.Instance == nil && !slices.ContainsFunc(r.Points, func(p Point) bool { return p.Object }) {
		return nil, bad("the prompt has no object point, box or instance: nothing says what to segment")
	}
	return &r, nil
}

func finite(f float32) bool { return !math.IsNaN(float64(f)) && !math.IsInf(float64(f), 0) }
