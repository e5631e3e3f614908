package inference

import (
	"fmt"
	"strings"

	"github.com/deepimageshub/imagehub/layout"
	"github.com/deepimageshub/imagehub/oip"
)

// Problem is one way a model's metadata does not fit the segmentation
// convention, in words for the admin registering it.
type Problem struct {
	Tensor  string // the input or output at fault; "" for the model as a whole
	Message string
}

func (p Problem) String() string { return p.Message }

// CheckConvention lists what in a model's metadata does not fit the
// convention (PROTOCOL.md): input IMAGE BYTES [1] or [-1] and optionally
// LABEL_HINTS BYTES [K], nothing else required; outputs MASKS (BYTES [N] of
// COCO RLE, or UINT8 or BOOL [N, H, W]), SCORES FP32 [N], LABELS BYTES [N],
// and optionally BATCH_INDEX INT32 [N]. Other outputs are ignored. An empty
// list means the model fits.
func CheckConvention(meta *oip.ModelMetadata) []Problem {
	var ps []Problem
	add := func(tensor, format string, args ...any) {
		ps = append(ps, Problem{Tensor: tensor, Message: fmt.Sprintf(format, args...)})
	}
	if meta == nil {
		add("", "the server sent no model metadata")
		return ps
	}
	ins := index(meta.Inputs)
	outs := index(meta.Outputs)

	if t, ok := ins["IMAGE"]; !ok {
		add("IMAGE", `the model has no input IMAGE: it must take the uploaded image file as input "IMAGE", BYTES of shape [1] or [-1]`)
	} else {
		if t.Datatype != oip.BYTES {
			add("IMAGE", "input IMAGE is %s; it must be BYTES, the encoded image file as uploaded (JPEG, PNG or WebP), not decoded pixels", t.Datatype)
		}
		if !vector(t.Shape) {
			add("IMAGE", "input IMAGE has shape %s; it must be [1] or [-1], one encoded file per image", shape(t.Shape))
		}
	}
	if t, ok := ins["LABEL_HINTS"]; ok && (t.Datatype != oip.BYTES || !vector(t.Shape)) {
		add("LABEL_HINTS", "input LABEL_HINTS is %s %s; it must be BYTES [-1], the contributor's label names", t.Datatype, shape(t.Shape))
	}
	for _, t := range meta.Inputs {
		if t.Name != "IMAGE" && t.Name != "LABEL_HINTS" {
			add(t.Name, "the model needs input %q (%s %s), which the hub never sends; a compatible model takes only IMAGE and, optionally, LABEL_HINTS", t.Name, t.Datatype, shape(t.Shape))
		}
	}

	if t, ok := outs["MASKS"]; !ok {
		add("MASKS", "the model has no output MASKS: it must return the instance masks as MASKS, BYTES [N] of COCO RLE JSON or UINT8 or BOOL [N, H, W]")
	} else {
		rle := t.Datatype == oip.BYTES && vector(t.Shape)
		dense := (t.Datatype == oip.UINT8 || t.Datatype == oip.BOOL) && len(t.Shape) == 3 && dims(t.Shape)
		if !rle && !dense {
			add("MASKS", "output MASKS is %s %s; it must be BYTES [N] (one COCO RLE JSON object per instance) or UINT8 or BOOL [N, H, W] (dense 0/1 masks at the image's size; probabilities must be thresholded by the model)", t.Datatype, shape(t.Shape))
		}
	}
	if t, ok := outs["SCORES"]; !ok {
		add("SCORES", "the model has no output SCORES: it must return one confidence in [0, 1] per instance as SCORES, FP32 [N]")
	} else if t.Datatype != oip.FP32 || !vector(t.Shape) {
		add("SCORES", "output SCORES is %s %s; it must be FP32 [N], one confidence in [0, 1] per instance", t.Datatype, shape(t.Shape))
	}
	if t, ok := outs["LABELS"]; !ok {
		add("LABELS", "the model has no output LABELS: it must return one label name per instance as LABELS, BYTES [N]")
	} else if t.Datatype != oip.BYTES || !vector(t.Shape) {
		add("LABELS", "output LABELS is %s %s; it must be BYTES [N], one label name per instance", t.Datatype, shape(t.Shape))
	}
	if t, ok := outs["BATCH_INDEX"]; ok && (t.Datatype != oip.INT32 || !vector(t.Shape)) {
		add("BATCH_INDEX", "output BATCH_INDEX is %s %s; it must be INT32 [N], the image each instance belongs to", t.Datatype, shape(t.Shape))
	}
	return ps
}

// AcceptsLabelHints reports whether the model declares the LABEL_HINTS
// input; when it does not, set Endpoint.SkipHints.
func AcceptsLabelHints(meta *oip.ModelMetadata) bool {
	_, ok := index(meta.Inputs)["LABEL_HINTS"]
	return ok
}

func index(ts []oip.TensorMetadata) map[string]oip.TensorMetadata {
	m := make(map[string]oip.TensorMetadata, len(ts))
	for _, t := range ts {
		m[t.Name] = t
	}
	return m
}

// vector reports whether a shape is one dimension of any or a fixed size.
func vector(s []int64) bool { return len(s) == 1 && dims(s) }

// dims reports whether every dimension is -1 (any size) or a size.
func dims(s []int64) bool {
	for _, d := range s {
		if d < -1 || d == 0 {
			return false
		}
	}
	return true
}

func shape(s []int64) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// CheckLayout checks a model's metadata against the signature of p's
// layout (docs/layouts.md) and returns p with its defaults and what the
// metadata settles: Input, the name of the image input, and for yolo-seg
// InputSize, S, when the metadata fixes it. p.InputSize is 0 when the
// registration leaves it to the default. For the imagehub layout it is
// CheckConvention.
func CheckLayout(meta *oip.ModelMetadata, p layout.Params) (layout.Params, []Problem) {
	given := p.InputSize
	p = p.WithDefaults()
	if !p.Stock() {
		return p, CheckConvention(meta)
	}
	if p.Kind == layout.SAM {
		// An embed or interactive model: CheckSAMEncoder and
		// CheckSAMDecoder check it for its task.
		return p, nil
	}
	var ps []Problem
	add := func(tensor, format string, args ...any) {
		ps = append(ps, Problem{Tensor: tensor, Message: fmt.Sprintf(format, args...)})
	}
	if meta == nil {
		add("", "the server sent no model metadata")
		return p, ps
	}
	ins, outs := index(meta.Inputs), index(meta.Outputs)
	// The image input: "images" as Ultralytics names it, or the model's
	// only input whatever its name (torchvision exports name it freely).
	in, ok := ins[p.InputName()]
	if !ok && len(meta.Inputs) == 1 {
		in, ok = meta.Inputs[0], true
	}
	if !ok {
		add(p.InputName(), "the model has no input %q and more than one input; a %s model takes one image tensor", p.InputName(), p.Kind)
		return p, ps
	}
	p.Input = in.Name
	for _, t := range meta.Inputs {
		if t.Name != in.Name {
			add(t.Name, "the model needs input %q (%s %s), which the hub never sends; a %s model takes only its image", t.Name, t.Datatype, shape(t.Shape), p.Kind)
		}
	}
	if in.Datatype != oip.FP32 {
		add(in.Name, "input %s is %s; a %s model takes FP32 pixels", in.Name, in.Datatype, p.Kind)
	}
	switch p.Kind {
	case layout.YOLOSeg:
		s := int64(-1)
		if len(in.Shape) != 4 || !dims(in.Shape) || in.Shape[1] != 3 || in.Shape[2] != in.Shape[3] {
			add(in.Name, "input %s has shape %s; a yolo-seg model takes [B, 3, S, S] (a batch of square RGB images)", in.Name, shape(in.Shape))
		} else {
			s = in.Shape[2]
		}
		switch {
		case s > 0 && given != 0 && int64(given) != s:
			add(in.Name, "input %s is %d pixels square but the registration's input_size is %d; leave input_size out to take the model's", in.Name, s, given)
		case s > 0 && (s < layout.MinInputSize || s > layout.MaxInputSize || s%32 != 0):
			add(in.Name, "input %s is %d pixels square; the hub sends %d to %d, a multiple of 32", in.Name, s, layout.MinInputSize, layout.MaxInputSize)
		case s > 0:
			p.InputSize = int(s)
		}
		nc := int64(len(p.Labels))
		if t, ok := outs[yoloPreds]; !ok {
			add(yoloPreds, "the model has no output %s: a yolo-seg model returns its detections as %s, FP32 [B, 4+nc+32, A]", yoloPreds, yoloPreds)
		} else if t.Datatype != oip.FP32 || len(t.Shape) != 3 || !dims(t.Shape) {
			add(yoloPreds, "output %s is %s %s; it must be FP32 [B, 4+nc+32, A] (box, class scores, mask coefficients per anchor)", yoloPreds, t.Datatype, shape(t.Shape))
		} else if c := t.Shape[1]; c != -1 && c != 4+nc+layout.YOLOMaskDim {
			add(yoloPreds, "output %s has %d values per anchor, so the model knows %d classes, but the registration gives %d labels", yoloPreds, c, c-4-layout.YOLOMaskDim, nc)
		}
		if t, ok := outs[yoloProtos]; !ok {
			add(yoloProtos, "the model has no output %s: a yolo-seg model returns its mask prototypes as %s, FP32 [B, 32, S/4, S/4]", yoloProtos, yoloProtos)
		} else if t.Datatype != oip.FP32 || len(t.Shape) != 4 || !dims(t.Shape) || (t.Shape[1] != -1 && t.Shape[1] != layout.YOLOMaskDim) {
			add(yoloProtos, "output %s is %s %s; it must be FP32 [B, 32, S/4, S/4]", yoloProtos, t.Datatype, shape(t.Shape))
		}
	case layout.MaskRCNN:
		if len(in.Shape) != 3 || !dims(in.Shape) || in.Shape[0] != 3 {
			add(in.Name, "input %s has shape %s; a maskrcnn model takes one RGB image, [3, H, W]", in.Name, shape(in.Shape))
		} else if in.Shape[1] != -1 || in.Shape[2] != -1 {
			add(in.Name, "input %s has shape %s; the hub sends the image at its own aspect ratio, so H and W must be variable (-1): export with dynamic axes", in.Name, shape(in.Shape))
		}
		want := map[string]struct {
			dt   oip.Datatype
			rank int
			desc string
		}{
			"boxes":  {oip.FP32, 2, "FP32 [N, 4], x1 y1 x2 y2"},
			"labels": {oip.INT64, 1, "INT64 [N], 1-based class numbers"},
			"scores": {oip.FP32, 1, "FP32 [N]"},
			"masks":  {oip.FP32, 4, "FP32 [N, 1, H, W], probabilities at the input's size"},
		}
		for _, name := range maskRCNNOutputs {
			w := want[name]
			t, ok := outs[name]
			switch {
			case !ok:
				add(name, "the model has no output %s: a maskrcnn model returns %s as %s", name, name, w.desc)
			case t.Datatype != w.dt || len(t.Shape) != w.rank || !dims(t.Shape):
				add(name, "output %s is %s %s; it must be %s", name, t.Datatype, shape(t.Shape), w.desc)
			}
		}
	}
	return p, ps
}
