package layout

import (
	"encoding/binary"
	"fmt"
	"image"
	"math"
	"slices"
)

// Resized is how an image was scaled into a maskrcnn input: to W×H, its
// long side the registration's input size.
type Resized struct {
	W, H       int
	ImgW, ImgH int
}

// NewResized is the input size of an imgW×imgH image whose long side
// becomes longSide (each side rounded half to even).
func NewResized(imgW, imgH, longSide int) Resized {
	w, h := fit(imgW, imgH, float64(longSide)/float64(max(imgW, imgH)))
	return Resized{W: w, H: h, ImgW: imgW, ImgH: imgH}
}

// MaskRCNNInput is img resized so that its long side is longSide, as the
// [3, H, W] RGB input in [0, 1] of a torchvision Mask R-CNN export (which
// normalises with its own mean and deviation inside the model).
func MaskRCNNInput(img image.Image, longSide int) ([]float32, Resized) {
	b := img.Bounds()
	rs := NewResized(b.Dx(), b.Dy(), longSide)
	dst := make([]float32, 3*rs.W*rs.H)
	resizeInto(dst, rs.W, rs.H, img, rs.W, rs.H, 0, 0)
	return dst, rs
}

// MaskRCNNOutput is a maskrcnn answer for one image.
type MaskRCNNOutput struct {
	N      int
	Boxes  []float32 // [N, 4] x1, y1, x2, y2 in input pixels
	Labels []int64   // [N], 1-based: 0 is torchvision's background
	Scores []float32 // [N]
	// Masks is [N, 1, MH, MW] FP32, little-endian as the wire carries it:
	// probabilities at the input's size (the model pastes each instance's
	// mask into its box itself). Only the kept instances' planes are read,
	// as torchvision returns up to 100 instances, most of them under any
	// useful threshold, and converting them all would cost more than the
	// rest of the decoding.
	Masks  []byte
	MH, MW int
}

// DecodeMaskRCNN turns a maskrcnn answer into detections: those scoring
// above ScoreThreshold, best first (ties in the model's order), at most
// MaxInstances, each mask resized to the image by bilinear interpolation
// (align_corners=False) and kept above MaskThreshold. Label l names
// p.Labels[l-1]; a label outside 1…len(Labels), a score outside [0, 1] or a
// mask of another size than the input is an error.
func DecodeMaskRCNN(out MaskRCNNOutput, rs Resized, p Params) ([]Detection, error) {
	n := out.N
	switch {
	case n < 0 || len(out.Boxes) != 4*n || len(out.Labels) != n || len(out.Scores) != n:
		return nil, fmt.Errorf("boxes, labels and scores hold %d, %d and %d values; %d instances need %d, %d and %d",
			len(out.Boxes), len(out.Labels), len(out.Scores), n, 4*n, n, n)
	case out.MH != rs.H || out.MW != rs.W:
		return nil, fmt.Errorf("masks are %d×%d (h×w) but the input was %d×%d", out.MH, out.MW, rs.H, rs.W)
	case len(out.Masks) != 4*n*out.MH*out.MW:
		return nil, fmt.Errorf("masks hold %d values; [%d, 1, %d, %d] needs %d", len(out.Masks)/4, n, out.MH, out.MW, n*out.MH*out.MW)
	}
	var order []int
	for i := range n {
		s := out.Scores[i]
		if math.IsNaN(float64(s)) || s < 0 || s > 1 {
			return nil, fmt.Errorf("scores element %d is %v; a score must be a number in [0, 1]", i, s)
		}
		if l := out.Labels[i]; l < 1 || l > int64(len(p.Labels)) {
			return nil, fmt.Errorf("labels element %d is %d; with %d labels registered it must be 1 to %d (0 is the background)", i, l, len(p.Labels), len(p.Labels))
		}
		if s > p.ScoreThreshold {
			order = append(order, i)
		}
	}
	slices.SortStableFunc(order, func(a, b int) int {
		switch sa, sb := out.Scores[a], out.Scores[b]; {
		case sa > sb:
			return -1
		case sa < sb:
			return 1
		}
		return 0
	})
	if len(order) > p.MaxInstances {
		order = order[:p.MaxInstances]
	}
	sx, sy := float32(rs.ImgW)/float32(rs.W), float32(rs.ImgH)/float32(rs.H)
	plane := out.MH * out.MW
	dets := make([]Detection, 0, len(order))
	v := make([]float32, plane)
	for _, i := range order {
		b := out.Boxes[4*i : 4*i+4]
		raw := out.Masks[4*i*plane : 4*(i+1)*plane]
		for k := range v {
			v[k] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*k:]))
		}
		g := grid{v: v, stride: out.MW, cw: out.MW, ch: out.MH}
		dets = append(dets, Detection{
			Class: int(out.Labels[i] - 1), Score: out.Scores[i],
			Box: [4]float32{
				min(max(b[0]*sx, 0), float32(rs.ImgW)), min(max(b[1]*sy, 0), float32(rs.ImgH)),
				min(max(b[2]*sx, 0), float32(rs.ImgW)), min(max(b[3]*sy, 0), float32(rs.ImgH)),
			},
			Mask: upsampleRLE(g, rs.ImgW, rs.ImgH, p.MaskThreshold),
		})
	}
	return dets, nil
}
