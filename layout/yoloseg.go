package layout

import (
	"fmt"
	"image"
	"math"
	"slices"
)

// YOLOMaskDim is the number of mask coefficients and prototypes of a
// yolo-seg model.
const YOLOMaskDim = 32

// maxNMS caps the candidates that go into NMS, as Ultralytics' max_nms does.
const maxNMS = 30000

// Letterbox is how an image was fitted into an S×S yolo-seg input, as
// Ultralytics' LetterBox (centred, scaled up or down) fits it: scaled by
// Gain to W×H (each side rounded half to even), then padded with grey 114,
// Left columns and Top rows before it.
type Letterbox struct {
	S          int
	Gain       float64
	W, H       int
	Left, Top  int
	ImgW, ImgH int
}

// NewLetterbox is the letterbox of an imgW×imgH image in an S×S input.
func NewLetterbox(imgW, imgH, s int) Letterbox {
	r := min(float64(s)/float64(imgH), float64(s)/float64(imgW))
	w, h := fit(imgW, imgH, r)
	w, h = min(w, s), min(h, s)
	dw, dh := float64(s-w)/2, float64(s-h)/2
	return Letterbox{
		S: s, Gain: r, W: w, H: h, ImgW: imgW, ImgH: imgH,
		Left: int(math.RoundToEven(dw - 0.1)), Top: int(math.RoundToEven(dh - 0.1)),
	}
}

// YOLOSegInputLen is the number of floats of one image's input.
func YOLOSegInputLen(s int) int { return 3 * s * s }

// YOLOSegInput writes img, letterboxed into s×s, into dst (YOLOSegInputLen
// floats: one image of the [B, 3, S, S] input): RGB planes in [0, 1], grey
// 114/255 around the image.
func YOLOSegInput(dst []float32, img image.Image, s int) Letterbox {
	b := img.Bounds()
	lb := NewLetterbox(b.Dx(), b.Dy(), s)
	dst = dst[:YOLOSegInputLen(s)]
	const grey = float32(114) / 255
	for i := range dst {
		dst[i] = grey
	}
	resizeInto(dst, s, s, img, lb.W, lb.H, lb.Left, lb.Top)
	return lb
}

// YOLOSegOutput is one image's share of a yolo-seg answer.
type YOLOSegOutput struct {
	// Preds is output0 for the image, [4+nc+32, A] row-major: per anchor
	// cx, cy, w, h in input pixels, nc class scores, 32 mask coefficients.
	Preds   []float32
	Anchors int
	// Protos is output1 for the image, [32, MH, MW].
	Protos []float32
	MH, MW int
}

// candidate is an anchor whose best class scored above the threshold.
type candidate struct {
	anchor int
	class  int
	score  float32
	box    [4]float32 // x1, y1, x2, y2 in input pixels
}

// DecodeYOLOSeg turns one image's yolo-seg outputs into detections, as
// Ultralytics' predictor does with its default options:
//
//  1. per anchor the best class (the first of equal scores), kept when its
//     score is above ScoreThreshold;
//  2. the candidates by falling score (at most 30000), then class-wise
//     NMS: a box whose IoU with a kept box of its class is above
//     IoUThreshold is dropped; the first MaxInstances kept are the answer;
//  3. each mask is sigmoid(coefficients · prototypes) on the prototype
//     grid, zero outside the box scaled to that grid (a cell (r, c) is in
//     when x1 ≤ c < x2 and y1 ≤ r < y2, as crop_mask has it);
//  4. the letterbox's padding is cut off the grid (scale_masks), the rest
//     resized to the image by bilinear interpolation (align_corners=False)
//     and kept above MaskThreshold.
//
// Detections whose mask comes out empty are kept; the caller drops them.
func DecodeYOLOSeg(out YOLOSegOutput, lb Letterbox, p Params) ([]Detection, error) {
	nc := len(p.Labels)
	a := out.Anchors
	ch := 4 + nc + YOLOMaskDim
	if a <= 0 || len(out.Preds) != ch*a {
		return nil, fmt.Errorf("output0 holds %d values for the image; %d labels need [%d, A] (4 box values, %d class scores, %d mask coefficients per anchor)",
			len(out.Preds), nc, ch, nc, YOLOMaskDim)
	}
	if out.MH <= 0 || out.MW <= 0 || len(out.Protos) != YOLOMaskDim*out.MH*out.MW {
		return nil, fmt.Errorf("output1 holds %d values for the image; it must be [%d, MH, MW]", len(out.Protos), YOLOMaskDim)
	}
	if lb.S <= 0 || lb.ImgW <= 0 || lb.ImgH <= 0 {
		return nil, fmt.Errorf("letterbox %+v is not valid", lb)
	}
	cands := yoloCandidates(out.Preds, a, nc, p.ScoreThreshold)
	kept := nms(cands, p.IoUThreshold, p.MaxInstances)

	dets := make([]Detection, 0, len(kept))
	m := make([]float32, out.MH*out.MW)
	sx, sy := float32(out.MW)/float32(lb.S), float32(out.MH)/float32(lb.S)
	g := protoWindow(lb, out.MW, out.MH)
	g.v = m
	for _, c := range kept {
		clear(m)
		coef := make([]float32, YOLOMaskDim)
		for k := range coef {
			coef[k] = out.Preds[(4+nc+k)*a+c.anchor]
		}
		maskCells(m, out.Protos, out.MW, out.MH, coef,
			[4]float32{c.box[0] * sx, c.box[1] * sy, c.box[2] * sx, c.box[3] * sy})
		dets = append(dets, Detection{
			Class: c.class, Score: c.score, Box: lb.toImage(c.box),
			Mask: upsampleRLE(g, lb.ImgW, lb.ImgH, p.MaskThreshold),
		})
	}
	return dets, nil
}

// yoloCandidates finds each anchor's best class, reading the class rows in
// memory order.
func yoloCandidates(preds []float32, a, nc int, thr float32) []candidate {
	best := slices.Clone(preds[4*a : 5*a])
	cls := make([]int32, a)
	for c := 1; c < nc; c++ {
		row := preds[(4+c)*a : (5+c)*a]
		for i, v := range row {
			if v > best[i] {
				best[i], cls[i] = v, int32(c)
			}
		}
	}
	var cands []candidate
	for i, s := range best {
		if !(s > thr) { // NaN is never above
			continue
		}
		cx, cy, w, h := preds[i], preds[a+i], preds[2*a+i], preds[3*a+i]
		cands = append(cands, candidate{anchor: i, class: int(cls[i]), score: s,
			box: [4]float32{cx - w/2, cy - h/2, cx + w/2, cy + h/2}})
	}
	return cands
}

// nms sorts cands by falling score (ties by anchor) and keeps, greedily,
// those whose IoU with every kept box of their class is at most thr, up to
// max of them.
func nms(cands []candidate, thr float32, max int) []candidate {
	slices.SortStableFunc(cands, func(x, y candidate) int {
		switch {
		case x.score > y.score:
			return -1
		case x.score < y.score:
			return 1
		}
		return 0
	})
	if len(cands) > maxNMS {
		cands = cands[:maxNMS]
	}
	var kept []candidate
	for _, c := range cands {
		if len(kept) == max {
			break
		}
		ok := true
		for _, k := range kept {
			if k.class == c.class && iou(k.box, c.box) > thr {
				ok = false
				break
			}
		}
		if ok {
			kept = append(kept, c)
		}
	}
	return kept
}

// iou is torchvision's box IoU of two x1y1x2y2 boxes.
func iou(a, b [4]float32) float32 {
	areaA := (a[2] - a[0]) * (a[3] - a[1])
	areaB := (b[2] - b[0]) * (b[3] - b[1])
	w := max(0, min(a[2], b[2])-max(a[0], b[0]))
	h := max(0, min(a[3], b[3])-max(a[1], b[1]))
	inter := w * h
	return inter / (areaA + areaB - inter)
}

// maskCells writes sigmoid(coef · protos) into m for the cells of the
// mw×mh grid inside box (grid units), leaving the others at 0.
func maskCells(m, protos []float32, mw, mh int, coef []float32, box [4]float32) {
	c0 := max(0, int(math.Ceil(float64(box[0]))))
	c1 := min(mw, int(math.Ceil(float64(box[2])))) // c < x2
	r0 := max(0, int(math.Ceil(float64(box[1]))))
	r1 := min(mh, int(math.Ceil(float64(box[3]))))
	if c0 >= c1 || r0 >= r1 {
		return
	}
	plane := mw * mh
	for k, w := range coef {
		p := protos[k*plane:]
		for r := r0; r < r1; r++ {
			row, acc := p[r*mw:], m[r*mw:]
			for c := c0; c < c1; c++ {
				acc[c] += w * row[c]
			}
		}
	}
	for r := r0; r < r1; r++ {
		for c := c0; c < c1; c++ {
			m[r*mw+c] = float32(1 / (1 + math.Exp(-float64(m[r*mw+c]))))
		}
	}
}

// protoWindow is the part of the prototype grid that covers the image, as
// Ultralytics' scale_masks cuts off the letterbox's padding.
func protoWindow(lb Letterbox, mw, mh int) grid {
	gain := min(float64(mh)/float64(lb.ImgH), float64(mw)/float64(lb.ImgW))
	px := (float64(mw) - float64(lb.ImgW)*gain) / 2
	py := (float64(mh) - float64(lb.ImgH)*gain) / 2
	top, left := int(math.RoundToEven(py-0.1)), int(math.RoundToEven(px-0.1))
	bottom, right := mh-int(math.RoundToEven(py+0.1)), mw-int(math.RoundToEven(px+0.1))
	if right <= left {
		left, right = 0, mw
	}
	if bottom <= top {
		top, bottom = 0, mh
	}
	return grid{stride: mw, left: left, top: top, cw: right - left, ch: bottom - top}
}

// toImage maps an input box to the image, clipped to it (scale_boxes).
func (lb Letterbox) toImage(b [4]float32) [4]float32 {
	g := float32(lb.Gain)
	l, t := float32(lb.Left), float32(lb.Top)
	w, h := float32(lb.ImgW), float32(lb.ImgH)
	return [4]float32{
		min(max((b[0]-l)/g, 0), w), min(max((b[1]-t)/g, 0), h),
		min(max((b[2]-l)/g, 0), w), min(max((b[3]-t)/g, 0), h),
	}
}
