// Package layout turns an image into the input tensor of a stock exported
// segmentation model and that model's raw outputs back into instance masks,
// so that an inference server can run the exported file unchanged
// (PROTOCOL.md, "Stock layouts"; docs/layouts.md has the full definitions).
//
// Two segmentation layouts are decoded here:
//
//   - yolo-seg, the ONNX export of an Ultralytics YOLOv8/YOLO11 -seg model:
//     a letterboxed RGB square in, per-anchor boxes, class scores and mask
//     coefficients plus mask prototypes out (yoloseg.go).
//   - maskrcnn, the ONNX export of torchvision's Mask R-CNN: the RGB image
//     resized to a long side in, boxes, 1-based labels, scores and
//     per-instance probability masks at the input's size out (maskrcnn.go).
//
// and, for the embed and interactive models of a Segment Anything pair
// rather than segmentation, sam: the encoder's pre-processed image, the
// decoder's prompt tensors and its masks (sam.go), shared by the hub and
// imagehub worker --layout sam.
//
// Every function is pure: no I/O, no state, the same answer for the same
// tensors. The model server is not trusted: every shape is checked against
// what the layout says before anything is read.
package layout

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/deepimageshub/imagehub/mask"
)

// Kind names a layout as a registration spells it.
type Kind string

// The layouts.
const (
	// ImageHub is the hub's own convention: encoded image in, RLE masks,
	// scores and label names out. Nothing in this package applies to it.
	ImageHub Kind = "imagehub"
	YOLOSeg  Kind = "yolo-seg"
	MaskRCNN Kind = "maskrcnn"
	// LabelStudio is not OIP at all: a Label Studio ML backend, which
	// fetches the image from a signed URL and answers with brush or
	// polygon regions (package labelstudio).
	LabelStudio Kind = "label-studio"
	// SAM (sam.go) is for the two models of a Segment Anything pair, the
	// embed model (its encoder) and the interactive model (its decoder),
	// not for segmentation.
)

// Kinds lists the layouts, the default first.
var Kinds = []Kind{ImageHub, YOLOSeg, MaskRCNN, LabelStudio, SAM}

// The label tags of a label-studio model's generated labeling config.
const (
	TagBrush   = "BrushLabels"
	TagPolygon = "PolygonLabels"
)

// Defaults of Params.
const (
	DefaultScoreThreshold = 0.25
	DefaultIoUThreshold   = 0.45
	DefaultMaskThreshold  = 0.5
	DefaultMaxInstances   = 100
	DefaultMaskRCNNSize   = 800 // long side of a maskrcnn input
	DefaultYOLOSize       = 640 // S of a yolo-seg input whose metadata leaves it open

	// MaxLabels bounds a registration's class names.
	MaxLabels = 4096
	// MaxLabelBytes bounds one class name, as the convention bounds a label.
	MaxLabelBytes = 256
	// MaxInputSize bounds the side of an input tensor.
	MaxInputSize = 4096
	// MinInputSize is the smallest input side; yolo-seg's prototypes are a
	// quarter of it.
	MinInputSize = 32
)

// Params is how a registration says to read its model.
type Params struct {
	Kind Kind
	// Labels are the class names in the model's output order: for
	// yolo-seg class c is Labels[c]; for maskrcnn, whose label 0 is the
	// background, label l is Labels[l-1].
	Labels []string
	// ScoreThreshold keeps the instances scoring above it.
	ScoreThreshold float32
	// IoUThreshold is yolo-seg's class-wise NMS: a box overlapping a
	// better one of its class by more than this is dropped. Mask R-CNN
	// runs its own NMS inside the model.
	IoUThreshold float32
	// MaskThreshold turns mask probabilities into pixels: above it is on.
	MaskThreshold float32
	// MaxInstances keeps the best this many instances of an image.
	MaxInstances int
	// InputSize is maskrcnn's long side and yolo-seg's S.
	InputSize int
	// Input names the model's image input; "" means "images".
	Input string
	// LabelTag is a label-studio model's control, TagBrush (the default)
	// or TagPolygon: which regions its backend is asked for.
	LabelTag string
}

// WithDefaults fills the zero fields. Labels and Input have none.
func (p Params) WithDefaults() Params {
	if p.Kind == "" {
		p.Kind = ImageHub
	}
	if p.ScoreThreshold == 0 {
		p.ScoreThreshold = DefaultScoreThreshold
	}
	if p.IoUThreshold == 0 {
		p.IoUThreshold = DefaultIoUThreshold
	}
	if p.MaskThreshold == 0 {
		p.MaskThreshold = DefaultMaskThreshold
	}
	if p.MaxInstances == 0 {
		p.MaxInstances = DefaultMaxInstances
	}
	if p.Kind == LabelStudio && p.LabelTag == "" {
		p.LabelTag = TagBrush
	}
	if p.InputSize == 0 {
		switch p.Kind {
		case MaskRCNN:
			p.InputSize = DefaultMaskRCNNSize
		case YOLOSeg:
			p.InputSize = DefaultYOLOSize
		}
	}
	return p
}

// Stock reports whether p is a stock layout, whose tensors the hub makes
// and decodes (not the hub's own convention).
func (p Params) Stock() bool { return p.Kind != "" && p.Kind != ImageHub }

// InputName is the name of the model's image input.
func (p Params) InputName() string {
	if p.Input != "" {
		return p.Input
	}
	return "images"
}

// FieldError is a registration field that is not valid; Field is the name
// the API spells it with.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// Validate checks p after WithDefaults, naming the field at fault.
func (p Params) Validate() error { return p.validate(true) }

// ValidateAwaitingLabels is Validate, except that a stock layout may still
// lack its labels: the registry then takes them from the model's metadata
// (the "labels" parameter) and validates again.
func (p Params) ValidateAwaitingLabels() error { return p.validate(false) }

func (p Params) validate(needLabels bool) error {
	bad := func(field, format string, args ...any) error {
		return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
	}
	known := false
	for _, k := range Kinds {
		known = known || p.Kind == k
	}
	if !known {
		return bad("layout", `The layout is "imagehub" (the hub's convention), "yolo-seg" (an Ultralytics -seg ONNX export), "maskrcnn" (a torchvision Mask R-CNN ONNX export), "label-studio" (a Label Studio ML backend) or "sam" (a Segment Anything encoder or decoder served with its own tensors).`)
	}
	switch {
	case p.Kind == LabelStudio && p.LabelTag != TagBrush && p.LabelTag != TagPolygon:
		return bad("label_tag", `A label-studio model is asked for "BrushLabels" (masks, the default) or "PolygonLabels".`)
	case p.Kind != LabelStudio && p.LabelTag != "":
		return bad("label_tag", "label_tag is for label-studio models only.")
	}
	unit := func(v float32) bool { return !math.IsNaN(float64(v)) && v > 0 && v < 1 }
	switch {
	case !unit(p.ScoreThreshold):
		return bad("score_threshold", "The score threshold is a number between 0 and 1 (exclusive), such as 0.25.")
	case !unit(p.IoUThreshold):
		return bad("iou_threshold", "The IoU threshold of non-maximum suppression is a number between 0 and 1 (exclusive), such as 0.45.")
	case !unit(p.MaskThreshold):
		return bad("mask_threshold", "The mask threshold is a number between 0 and 1 (exclusive), such as 0.5.")
	case p.MaxInstances < 1 || p.MaxInstances > 1000:
		return bad("max_instances", "The most instances per image is 1 to 1000.")
	case p.InputSize != 0 && (p.InputSize < MinInputSize || p.InputSize > MaxInputSize):
		return bad("input_size", "The input size is %d to %d pixels.", MinInputSize, MaxInputSize)
	case p.Kind == YOLOSeg && p.InputSize%32 != 0:
		return bad("input_size", "A yolo-seg input side is a multiple of 32, such as 640.")
	case p.Kind == SAM && len(p.Labels) > 0:
		return bad("labels", "A sam model has no classes: leave labels out.")
	case len(p.Labels) > MaxLabels:
		return bad("labels", "At most %d labels.", MaxLabels)
	case needLabels && p.Kind != ImageHub && p.Kind != SAM && len(p.Labels) == 0:
		return bad("labels", "A %s model returns class numbers: give its class names, in the model's output order.", p.Kind)
	}
	seen := make(map[string]bool, len(p.Labels))
	for i, l := range p.Labels {
		if l == "" || len(l) > MaxLabelBytes || !utf8.ValidString(l) || strings.TrimSpace(l) != l {
			return bad("labels", "Label %d must be 1 to %d bytes of UTF-8 without surrounding spaces.", i+1, MaxLabelBytes)
		}
		if seen[l] {
			return bad("labels", "Label %q is given twice.", l)
		}
		seen[l] = true
	}
	return nil
}

// Detection is one instance found in an image.
type Detection struct {
	Class int     // index into Params.Labels
	Score float32 // the model's confidence
	// Box is x1, y1, x2, y2 in the image's pixels, as the model placed it
	// (the mask's own bounding box may be smaller).
	Box  [4]float32
	Mask mask.RLE // at the image's full size
}
