package layout

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/deepimageshub/imagehub/imaging/imagingtest"
)

// BenchmarkLayouts measures the hub's CPU cost per image of a stock layout
// on a 1600×1200 JPEG photo, on one goroutine: decoding the stored file,
// making the model's input (resize, letterbox, normalise to CHW float32)
// and decoding a realistic answer off the wire (FP32 bytes to floats, NMS,
// masks at the photo's full size, RLE).
//
//   - yolo-seg at 640: 80 classes, 8400 anchors, 5 objects each with 20
//     overlapping candidate anchors (NMS keeps one a class), 160×160
//     prototypes.
//   - maskrcnn at 800: 20 instances of which 5 score above 0.25, masks at
//     the 800×600 input.
//
// The goal is under 15 ms per image for pre- and post-processing.
func BenchmarkLayouts(b *testing.B) {
	file := imagingtest.JPEG(imagingtest.Photo(1600, 1200, 7))
	img, err := DecodeImage(file)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("decode-1600x1200", func(b *testing.B) {
		for b.Loop() {
			if _, err := DecodeImage(file); err != nil {
				b.Fatal(err)
			}
		}
	})

	labels := make([]string, 80)
	for i := range labels {
		labels[i] = "class" + string(rune('A'+i%26)) + string(rune('a'+i/26))
	}
	yp := Params{Kind: YOLOSeg, Labels: labels}.WithDefaults()
	in := make([]float32, YOLOSegInputLen(640))
	lb := YOLOSegInput(in, img, 640)
	preds, protos := yoloAnswer(80, 8400)
	b.Run("yolo-seg-640/pre", func(b *testing.B) {
		for b.Loop() {
			YOLOSegInput(in, img, 640)
		}
	})
	b.Run("yolo-seg-640/post", func(b *testing.B) {
		for b.Loop() {
			dets, err := DecodeYOLOSeg(YOLOSegOutput{Preds: floats(preds), Anchors: 8400, Protos: floats(protos), MH: 160, MW: 160}, lb, yp)
			if err != nil || len(dets) != 5 {
				b.Fatal(len(dets), err)
			}
		}
	})

	mp := Params{Kind: MaskRCNN, Labels: labels}.WithDefaults()
	_, rs := MaskRCNNInput(img, 800)
	out := maskRCNNAnswer(rs, 20, 5)
	b.Run("maskrcnn-800/pre", func(b *testing.B) {
		for b.Loop() {
			MaskRCNNInput(img, 800)
		}
	})
	b.Run("maskrcnn-800/post", func(b *testing.B) {
		for b.Loop() {
			dets, err := DecodeMaskRCNN(out, rs, mp)
			if err != nil || len(dets) != 5 {
				b.Fatal(len(dets), err)
			}
		}
	})
}

// floats converts FP32 wire bytes, as the hub does with an answer.
func floats(raw []byte) []float32 {
	out := make([]float32, len(raw)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out
}

func le(v []float32) []byte {
	b := make([]byte, 0, 4*len(v))
	for _, f := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
	}
	return b
}

// yoloAnswer is output0 [4+nc+32, a] and output1 [32, 160, 160] as bytes:
// background anchors score under 0.1; five objects of 150 to 400 input
// pixels each have 20 candidates scoring 0.3 to 0.9.
func yoloAnswer(nc, a int) (preds, protos []byte) {
	r := rand.New(rand.NewPCG(1, 2))
	ch := 4 + nc + YOLOMaskDim
	p := make([]float32, ch*a)
	for i := range a {
		p[i], p[a+i] = r.Float32()*640, r.Float32()*640
		p[2*a+i], p[3*a+i] = 4+r.Float32()*60, 4+r.Float32()*60
		for c := range nc {
			p[(4+c)*a+i] = r.Float32() * 0.1
		}
		for k := range YOLOMaskDim {
			p[(4+nc+k)*a+i] = float32(r.NormFloat64())
		}
	}
	for o := range 5 {
		cx, cy := 120+float32(o)*100, 200+float32(o)*40
		w, h := 150+float32(o)*60, 150+float32(o)*40
		for j := range 20 {
			i := o*997 + j*13
			p[i], p[a+i], p[2*a+i], p[3*a+i] = cx+float32(j%5), cy+float32(j/5), w, h
			p[(4+o*7)*a+i] = 0.9 - float32(j)*0.03
		}
	}
	q := make([]float32, YOLOMaskDim*160*160)
	for k := range YOLOMaskDim {
		for y := range 160 {
			for x := range 160 {
				q[(k*160+y)*160+x] = float32(math.Sin(float64(k+1)*float64(x)/40 + float64(y*(k%5))/30))
			}
		}
	}
	return le(p), le(q)
}

// maskRCNNAnswer is n instances, the first keep scoring above 0.25, each
// mask a soft blob in its box at the input's size.
func maskRCNNAnswer(rs Resized, n, keep int) MaskRCNNOutput {
	out := MaskRCNNOutput{N: n, MH: rs.H, MW: rs.W}
	m := make([]float32, n*rs.H*rs.W)
	for i := range n {
		x0, y0 := float32(40+i*30), float32(30+i*20)
		x1, y1 := x0+200, y0+180
		out.Boxes = append(out.Boxes, x0, y0, x1, y1)
		out.Labels = append(out.Labels, int64(1+i%80))
		s := float32(0.1)
		if i < keep {
			s = 0.95 - float32(i)*0.1
		}
		out.Scores = append(out.Scores, s)
		cx, cy := (x0+x1)/2, (y0+y1)/2
		for y := int(y0); y < int(y1); y++ {
			for x := int(x0); x < int(x1); x++ {
				dx, dy := (float32(x)-cx)/100, (float32(y)-cy)/90
				m[(i*rs.H+y)*rs.W+x] = max(0, 1-dx*dx-dy*dy)
			}
		}
	}
	out.Masks = le(m)
	return out
}
