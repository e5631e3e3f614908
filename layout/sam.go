package layout

import (
	"fmt"
	"image"
	"math"

	xdraw "golang.org/x/image/draw"

	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/oip"
)

// SAM is a two-stage Segment Anything model served with its own tensors
// (docs/interactive.md): an image encoder and a prompt decoder, the two
// ONNX files of segment-anything's exports, around which this file does
// what segment-anything's SamPredictor does:
//
//   - the encoder takes the pre-processed image (one input, any name, FP32
//     [1, 3, 1024, 1024]): the photo resized so that its long side is 1024
//     (ResizeLongestSide), bilinear, normalised with SAM's pixel mean and
//     standard deviation (of 0–255 RGB), zero-padded at the right and
//     bottom; it returns image_embeddings FP32 [1, 256, 64, 64];
//   - the decoder is the file scripts/export_onnx_model.py writes:
//     image_embeddings, point_coords [1, N, 2] in the resized frame,
//     point_labels [1, N] (1 object, 0 background, 2 and 3 the box's
//     corners, -1 a padding point when there is no box), mask_input
//     [1, 1, 256, 256] logits with has_mask_input [1], orig_im_size [2]
//     (height, width); it returns masks [1, M, H, W] logits at the original
//     size and iou_predictions [1, M] (M = 1 with --return-single-mask,
//     else 4).
//
// Both imagehub worker --layout sam (which speaks the prompt protocol in
// front of the two files) and the hub (which calls the two files served as
// they are, by Triton for instance) use these functions.
const SAM Kind = "sam"

// The conventions of segment-anything's predictor.
const (
	SAMSide     = 1024 // the encoder's input side
	SAMMaskSide = 256  // the decoder's mask_input side (SAMSide / 4)
	// samMaskLogit is the logit a refined instance's pixels get in
	// mask_input (minus it outside). SAM feeds back its own low-res
	// logits; the hub has only a binary mask, so inside and outside get a
	// confident logit of either sign.
	samMaskLogit = 10
)

// SAM's pixel mean and standard deviation, per RGB channel on 0–255.
var (
	samMean = [3]float32{123.675, 116.28, 103.53}
	samStd  = [3]float32{58.395, 57.12, 57.375}
)

// The stock decoder's tensor names (and the encoder's output).
const (
	SAMEmbeddings   = "image_embeddings"
	SAMPointCoords  = "point_coords"
	SAMPointLabels  = "point_labels"
	SAMMaskInput    = "mask_input"
	SAMHasMaskInput = "has_mask_input"
	SAMOrigImSize   = "orig_im_size"
	SAMMasks        = "masks"
	SAMIoU          = "iou_predictions"
)

// SAMEmbeddingShape is image_embeddings' shape in every SAM release
// (ViT-B, -L, -H, MobileSAM): the hub's side of a sam pair sends it so.
var SAMEmbeddingShape = []int64{1, 256, SAMSide / 16, SAMSide / 16}

// SAMHeader is the number of values ahead of image_embeddings in a kept
// SAM embedding (the prompt protocol's EMBEDDING): the image's height and
// width, which the decoder needs and the hub sends back as it stored them.
const SAMHeader = 2

// SAMDecoderRanks are the decoder's inputs with their ranks, in the
// export's order; all are FP32.
var SAMDecoderRanks = []struct {
	Name string
	Rank int
}{{SAMEmbeddings, 4}, {SAMPointCoords, 3}, {SAMPointLabels, 2}, {SAMMaskInput, 4}, {SAMHasMaskInput, 1}, {SAMOrigImSize, 1}}

// SAMResized is the size of an image of w×h pixels in SAM's 1024 frame:
// each side times 1024 / the long side, rounded half up, as
// ResizeLongestSide.get_preprocess_shape.
func SAMResized(w, h int) (int, int) {
	scale := float64(SAMSide) / float64(max(w, h))
	return int(float64(w)*scale + 0.5), int(float64(h)*scale + 0.5)
}

// SAMInput is the encoder's input for img, [3, 1024, 1024] row-major:
// resized (bilinear) to SAMResized, (pixel − mean) / std per RGB channel,
// zero elsewhere.
func SAMInput(img image.Image) []float32 {
	b := img.Bounds()
	nw, nh := SAMResized(b.Dx(), b.Dy())
	rgba := image.NewRGBA(image.Rect(0, 0, nw, nh))
	xdraw.BiLinear.Scale(rgba, rgba.Bounds(), img, b, xdraw.Src, nil)
	const plane = SAMSide * SAMSide
	out := make([]float32, 3*plane)
	for y := range nh {
		row := rgba.Pix[y*rgba.Stride:]
		for x := range nw {
			for c := range 3 {
				out[c*plane+y*SAMSide+x] = (float32(row[4*x+c]) - samMean[c]) / samStd[c]
			}
		}
	}
	return out
}

// SAMPoint is one click in the image's pixels; Object is false for a
// background click.
type SAMPoint struct {
	X, Y   float32
	Object bool
}

// SAMPrompt is a prompt on an image of W×H pixels: clicks, maybe a box
// (x1 y1 x2 y2) and maybe the instance being refined, at the image's size.
type SAMPrompt struct {
	W, H     int
	Points   []SAMPoint
	Box      *[4]float32
	Instance *mask.Bitmap
}

// SAMDecoderInput is the decoder's inputs but the embedding, as the values
// of its FP32 tensors: PointCoords [1, N, 2], PointLabels [1, N],
// MaskInput [1, 1, 256, 256], HasMaskInput [1], OrigImSize [2].
type SAMDecoderInput struct {
	PointCoords  []float32
	PointLabels  []float32
	MaskInput    []float32
	HasMaskInput float32
	OrigImSize   [2]float32
}

// N is the number of points (point_coords' second dimension).
func (in SAMDecoderInput) N() int { return len(in.PointLabels) }

// SAMDecoderInputs maps p to the decoder's inputs as SamPredictor does:
// each click scaled to the resized frame, labels 1 and 0; a box as two
// points after the clicks, labelled 2 and 3, or, without one, the padding
// point (0, 0) labelled −1; the instance as mask_input (SAMMaskInputGrid)
// with has_mask_input 1, else zeros and 0.
func SAMDecoderInputs(p SAMPrompt) SAMDecoderInput {
	nw, nh := SAMResized(p.W, p.H)
	sx, sy := float32(nw)/float32(p.W), float32(nh)/float32(p.H)
	in := SAMDecoderInput{OrigImSize: [2]float32{float32(p.H), float32(p.W)}}
	for _, pt := range p.Points {
		label := float32(0)
		if pt.Object {
			label = 1
		}
		in.PointCoords = append(in.PointCoords, pt.X*sx, pt.Y*sy)
		in.PointLabels = append(in.PointLabels, label)
	}
	if v := p.Box; v != nil {
		in.PointCoords = append(in.PointCoords, v[0]*sx, v[1]*sy, v[2]*sx, v[3]*sy)
		in.PointLabels = append(in.PointLabels, 2, 3)
	} else {
		// Without a box the export expects a padding point.
		in.PointCoords = append(in.PointCoords, 0, 0)
		in.PointLabels = append(in.PointLabels, -1)
	}
	in.MaskInput = make([]float32, SAMMaskSide*SAMMaskSide)
	if p.Instance != nil {
		SAMMaskInputGrid(p.Instance, nw, nh, in.MaskInput)
		in.HasMaskInput = 1
	}
	return in
}

// SAMMaskInputGrid writes the instance bm (at the image's size, resized to
// nw×nh in the 1024 frame) as the decoder's mask_input: a 256×256 grid over
// the padded frame, each cell the logit of the instance's pixel under its
// centre (−samMaskLogit in the padding).
func SAMMaskInputGrid(bm *mask.Bitmap, nw, nh int, out []float32) {
	const cell = SAMSide / SAMMaskSide
	for i := range SAMMaskSide {
		cy := i*cell + cell/2
		for j := range SAMMaskSide {
			cx := j*cell + cell/2
			v := float32(-samMaskLogit)
			if cx < nw && cy < nh {
				x := min(cx*bm.W/nw, bm.W-1)
				y := min(cy*bm.H/nh, bm.H-1)
				if bm.Pix[y*bm.W+x] != 0 {
					v = samMaskLogit
				}
			}
			out[i*SAMMaskSide+j] = v
		}
	}
}

// DecodeSAM turns the decoder's masks (logits [1, M, h, w], the shape
// given as mshape) and iou_predictions (M values) into M masks, a pixel on
// where its logit is above 0, and their scores: the predictions clamped to
// [0, 1], 0 for one that is not a number.
func DecodeSAM(logits []float32, mshape []int64, ious []float32, h, w int) ([]mask.RLE, []float32, error) {
	if len(mshape) != 4 || mshape[0] != 1 || mshape[1] < 0 || mshape[2] != int64(h) || mshape[3] != int64(w) || int64(len(logits)) != mshape[1]*int64(h)*int64(w) {
		return nil, nil, fmt.Errorf("masks is %v with %d values; it must be FP32 [1, M, %d, %d]", mshape, len(logits), h, w)
	}
	m := int(mshape[1])
	if len(ious) != m {
		return nil, nil, fmt.Errorf("iou_predictions holds %d values for %d masks", len(ious), m)
	}
	rles := make([]mask.RLE, m)
	scores := make([]float32, m)
	for i := range m {
		bm := mask.NewBitmap(w, h)
		for j, l := range logits[i*w*h : (i+1)*w*h] {
			if l > 0 {
				bm.Pix[j] = 1
			}
		}
		rles[i] = mask.Encode(bm)
		// SAM's IoU head is a regression and may leave [0, 1] a little.
		scores[i] = min(max(ious[i], 0), 1)
		if math.IsNaN(float64(ious[i])) || math.IsInf(float64(ious[i]), 0) {
			scores[i] = 0
		}
	}
	return rles, scores, nil
}

// SAMDecoderTensors are the decoder's six input tensors by name: emb, the
// encoder's image_embeddings (passed on as it is, not converted), and the
// prompt's inputs di.
func SAMDecoderTensors(emb oip.Tensor, di SAMDecoderInput) map[string]oip.Tensor {
	n := int64(di.N())
	emb.Name = SAMEmbeddings
	return map[string]oip.Tensor{
		SAMEmbeddings:   emb,
		SAMPointCoords:  oip.FP32Tensor(SAMPointCoords, []int64{1, n, 2}, di.PointCoords),
		SAMPointLabels:  oip.FP32Tensor(SAMPointLabels, []int64{1, n}, di.PointLabels),
		SAMMaskInput:    oip.FP32Tensor(SAMMaskInput, []int64{1, 1, SAMMaskSide, SAMMaskSide}, di.MaskInput),
		SAMHasMaskInput: oip.FP32Tensor(SAMHasMaskInput, []int64{1}, []float32{di.HasMaskInput}),
		SAMOrigImSize:   oip.FP32Tensor(SAMOrigImSize, []int64{2}, di.OrigImSize[:]),
	}
}
