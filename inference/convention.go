package inference

import (
	"fmt"
	"strings"

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
