package layout

import (
	"encoding/binary"
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/imaging/imagingtest"
	"github.com/deepimageshub/imagehub/mask"
)

// pixels decodes an RLE into the set of its on pixels, as (x, y).
func pixels(t *testing.T, r mask.RLE) map[[2]int]bool {
	t.Helper()
	b, err := r.Decode()
	require.NoError(t, err)
	on := map[[2]int]bool{}
	for y := range b.H {
		for x := range b.W {
			if b.At(x, y) {
				on[[2]int{x, y}] = true
			}
		}
	}
	return on
}

// le32 is FP32 values as the wire carries them.
func le32(v ...float32) []byte {
	b := make([]byte, 0, 4*len(v))
	for _, f := range v {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(f))
	}
	return b
}

func rect(x0, y0, x1, y1 int) map[[2]int]bool {
	m := map[[2]int]bool{}
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			m[[2]int{x, y}] = true
		}
	}
	return m
}

func TestUpsampleHalfPixelCentres(t *testing.T) {
	t.Parallel()
	// [[0 1] [0 1]] to 4×4: columns sample the source at -0.25 (clamped to
	// 0), 0.25, 0.75 and 1.25 (clamped to the last column): 0, 0.25, 0.75,
	// 1. Above 0.5: columns 2 and 3, every row.
	g := grid{v: []float32{0, 1, 0, 1}, stride: 2, cw: 2, ch: 2}
	r := upsampleRLE(g, 4, 4, 0.5)
	require.Equal(t, [2]int{4, 4}, r.Size)
	runs, err := r.Runs()
	require.NoError(t, err)
	require.Equal(t, []uint32{8, 8}, runs)
	require.Equal(t, rect(2, 0, 4, 4), pixels(t, r))

	// Nothing above the threshold: one run of zeros.
	empty := upsampleRLE(grid{v: []float32{0.5, 0.2, 0, 0}, stride: 2, cw: 2, ch: 2}, 3, 5, 0.5)
	runs, err = empty.Runs()
	require.NoError(t, err)
	require.Equal(t, []uint32{15}, runs)

	// A window of a larger matrix: only its cells count.
	win := grid{v: []float32{
		9, 9, 9,
		9, 1, 0,
		9, 0, 0,
	}, stride: 3, left: 1, top: 1, cw: 2, ch: 2}
	require.Equal(t, map[[2]int]bool{{0, 0}: true}, pixels(t, upsampleRLE(win, 2, 2, 0.5)))
}

// TestUpsampleMatchesBruteForce compares the windowed, segment-wise
// upsampling with evaluating every pixel's bilinear value, for random
// grids going up and down in size.
func TestUpsampleMatchesBruteForce(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(3, 4))
	for range 300 {
		sw, sh := 1+r.IntN(12), 1+r.IntN(12)
		g := grid{v: make([]float32, sw*sh), stride: sw, cw: sw, ch: sh}
		for i := range g.v {
			if r.IntN(3) > 0 {
				g.v[i] = r.Float32()
			}
		}
		// Sometimes a window of the matrix.
		if sw > 2 && sh > 2 && r.IntN(2) == 0 {
			g.left, g.top, g.cw, g.ch = 1, 1, sw-2, sh-2
		}
		w, h := 1+r.IntN(40), 1+r.IntN(40)
		th := 0.2 + 0.6*r.Float32()
		tx, ty := makeTaps(g.cw, w), makeTaps(g.ch, h)
		want := mask.NewBitmap(w, h)
		for y := range h {
			for x := range w {
				a, b, lx := int(tx.i0[x]), int(tx.i1[x]), tx.l1[x]
				c0 := (1-lx)*g.at(a, int(ty.i0[y])) + lx*g.at(b, int(ty.i0[y]))
				c1 := (1-lx)*g.at(a, int(ty.i1[y])) + lx*g.at(b, int(ty.i1[y]))
				want.Set(x, y, (1-ty.l1[y])*c0+ty.l1[y]*c1 > th)
			}
		}
		got := upsampleRLE(g, w, h, th)
		require.NoError(t, got.Validate())
		require.Equal(t, mask.Encode(want), got, "%d×%d window of %d×%d to %d×%d at %v", g.cw, g.ch, sw, sh, w, h, th)
	}
}

// TestYCbCrResize: a JPEG's pixels resampled in YCbCr and turned into RGB
// once per output pixel stay within a level of resampling the RGB image,
// but where a source pixel's RGB was clamped.
func TestYCbCrResize(t *testing.T) {
	t.Parallel()
	img, err := DecodeImage(imagingtest.JPEG(imagingtest.Photo(203, 151, 5)))
	require.NoError(t, err)
	_, ok := img.(*image.YCbCr)
	require.True(t, ok)
	for _, size := range [][2]int{{64, 48}, {203, 151}, {400, 297}} {
		a := make([]float32, 3*size[0]*size[1])
		b := make([]float32, len(a))
		resizeInto(a, size[0], size[1], img, size[0], size[1], 0, 0)
		resizeCHW(b, size[0], size[1], toRGB8(img), size[0], size[1], 0, 0)
		far := 0
		for i := range a {
			if d := math.Abs(float64(a[i]-b[i])) * 255; d > 1.01 {
				far++
			}
		}
		require.Less(t, far, len(a)/200, "%v: %d of %d values differ by more than a level", size, far, len(a))
	}
}

func TestParams(t *testing.T) {
	t.Parallel()
	p := Params{Kind: YOLOSeg, Labels: []string{"cat"}}.WithDefaults()
	require.Equal(t, Params{Kind: YOLOSeg, Labels: []string{"cat"}, ScoreThreshold: 0.25, IoUThreshold: 0.45,
		MaskThreshold: 0.5, MaxInstances: 100, InputSize: 640}, p)
	require.NoError(t, p.Validate())
	require.Equal(t, 800, Params{Kind: MaskRCNN}.WithDefaults().InputSize)
	require.Equal(t, ImageHub, Params{}.WithDefaults().Kind)
	require.NoError(t, Params{}.WithDefaults().Validate(), "the imagehub layout needs no labels")
	require.Equal(t, "images", p.InputName())

	for field, mod := range map[string]func(*Params){
		"layout":          func(p *Params) { p.Kind = "yolo" },
		"score_threshold": func(p *Params) { p.ScoreThreshold = 1 },
		"iou_threshold":   func(p *Params) { p.IoUThreshold = -0.1 },
		"mask_threshold":  func(p *Params) { p.MaskThreshold = 1.5 },
		"max_instances":   func(p *Params) { p.MaxInstances = 1001 },
		"input_size":      func(p *Params) { p.InputSize = 650 },
		"labels":          func(p *Params) { p.Labels = nil },
	} {
		q := p
		mod(&q)
		err := q.Validate()
		var fe *FieldError
		require.ErrorAs(t, err, &fe, field)
		require.Equal(t, field, fe.Field)
	}
	for _, labels := range [][]string{{"cat", "cat"}, {""}, {" cat"}, {string([]byte{0xff})}} {
		q := p
		q.Labels = labels
		var fe *FieldError
		require.ErrorAs(t, q.Validate(), &fe, "%q", labels)
		require.Equal(t, "labels", fe.Field)
	}
}

func TestLetterbox(t *testing.T) {
	t.Parallel()
	// 32×16 in 32: no scaling, 8 grey rows above and below.
	img := image.NewRGBA(image.Rect(0, 0, 32, 16))
	for y := range 16 {
		for x := range 32 {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), uint8(x + y), 255})
		}
	}
	dst := make([]float32, YOLOSegInputLen(32))
	lb := YOLOSegInput(dst, img, 32)
	require.Equal(t, Letterbox{S: 32, Gain: 1, W: 32, H: 16, Left: 0, Top: 8, ImgW: 32, ImgH: 16}, lb)
	grey := float32(114) / 255
	at := func(c, y, x int) float32 { return dst[c*32*32+y*32+x] }
	for _, y := range []int{0, 7, 24, 31} {
		for c := range 3 {
			require.Equal(t, grey, at(c, y, 5), "padding row %d", y)
		}
	}
	require.Equal(t, float32(5)/255, at(0, 8+3, 5))
	require.Equal(t, float32(3)/255, at(1, 8+3, 5))
	require.Equal(t, float32(8)/255, at(2, 8+3, 5))

	// 20×10 scaled by 1.6 to 32×16; its left half red, right half blue.
	// Output column 15 samples (15+0.5)·0.625 − 0.5 = 9.1875: 81.25% of
	// column 9 (red) and 18.75% of column 10 (blue): red 207.19 → 207.
	two := image.NewRGBA(image.Rect(0, 0, 20, 10))
	for y := range 10 {
		for x := range 20 {
			if x < 10 {
				two.Set(x, y, color.RGBA{255, 0, 0, 255})
			} else {
				two.Set(x, y, color.RGBA{0, 0, 255, 255})
			}
		}
	}
	lb = YOLOSegInput(dst, two, 32)
	require.Equal(t, Letterbox{S: 32, Gain: 1.6, W: 32, H: 16, Left: 0, Top: 8, ImgW: 20, ImgH: 10}, lb)
	require.Equal(t, float32(207)/255, at(0, 12, 15))
	require.Equal(t, float32(48)/255, at(2, 12, 15))
	require.Equal(t, float32(1), at(0, 12, 0))
	require.Equal(t, float32(1), at(2, 12, 31))
	require.Equal(t, grey, at(0, 7, 15))

	// Odd padding: 32×13 leaves 19 rows, 9.5 a side: round(9.4) = 9 above.
	require.Equal(t, 9, NewLetterbox(32, 13, 32).Top)
	// A tall image pads columns.
	lb = NewLetterbox(10, 40, 32)
	require.Equal(t, Letterbox{S: 32, Gain: 0.8, W: 8, H: 32, Left: 12, Top: 0, ImgW: 10, ImgH: 40}, lb)
}

// yoloFixture is a yolo-seg answer for a 32×16 image in a 32×32 input
// (8 grey rows above and below), 2 classes, 4 anchors, 8×8 prototypes.
//
//   - anchor 0: class 0 at 0.9, box (0, 8)–(16, 24): the left half of the
//     image. Its mask uses prototype 0, 1 everywhere, with coefficient 10:
//     sigmoid(10) in every grid cell of the box (columns 0–3, rows 2–5).
//   - anchor 1: class 0 at 0.8, box (1, 8)–(17, 24): IoU 240/272 = 0.88
//     with anchor 0's, so NMS drops it.
//   - anchor 2: class 1 at 0.7 (class 0 at 0.3), the same box as anchor 1:
//     another class, so it stays. Its mask uses prototype 1, 1 in cell
//     (row 3, column 2) and −1 elsewhere, with coefficient 10.
//   - anchor 3: best class 1 at 0.2, under the 0.25 threshold.
func yoloFixture() (YOLOSegOutput, Letterbox) {
	const a, nc = 4, 2
	ch := 4 + nc + YOLOMaskDim
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
	set(4+nc+0, 0, 10)
	set(4+nc+0, 1, 10)
	set(4+nc+1, 2, 10)
	protos := make([]float32, YOLOMaskDim*8*8)
	for i := range 64 {
		protos[i] = 1     // prototype 0
		protos[64+i] = -1 // prototype 1
	}
	protos[64+3*8+2] = 1
	return YOLOSegOutput{Preds: preds, Anchors: a, Protos: protos, MH: 8, MW: 8}, NewLetterbox(32, 16, 32)
}

func TestDecodeYOLOSeg(t *testing.T) {
	t.Parallel()
	out, lb := yoloFixture()
	p := Params{Kind: YOLOSeg, Labels: []string{"cat", "dog"}}.WithDefaults()
	dets, err := DecodeYOLOSeg(out, lb, p)
	require.NoError(t, err)
	require.Len(t, dets, 2)

	require.Equal(t, 0, dets[0].Class)
	require.Equal(t, float32(0.9), dets[0].Score)
	require.Equal(t, [4]float32{0, 0, 16, 16}, dets[0].Box)
	require.Equal(t, [2]int{16, 32}, dets[0].Mask.Size)
	// The padding rows 0–1 and 6–7 of the grid are cut off; the 8×4 rest
	// is scaled 4×. Grid column 3 is on, 4 off: image column 15 samples
	// 3.375 (0.625 on), column 16 samples 3.625 (0.375): columns 0–15.
	require.Equal(t, rect(0, 0, 16, 16), pixels(t, dets[0].Mask))

	require.Equal(t, 1, dets[1].Class)
	require.Equal(t, float32(0.7), dets[1].Score)
	require.Equal(t, [4]float32{1, 0, 17, 16}, dets[1].Box)
	// One cell, window (row 1, column 2), on: image rows 4–7 weigh it
	// 0.625, 0.875, 0.875, 0.625 and columns 8–11 the same; a product above
	// 0.5 needs an 0.875: the 4×4 square less its corners.
	want := rect(9, 4, 11, 8)
	for k := range rect(8, 5, 12, 7) {
		want[k] = true
	}
	require.Equal(t, want, pixels(t, dets[1].Mask))

	// A looser NMS keeps anchor 1 between them; max_instances cuts.
	loose := p
	loose.IoUThreshold = 0.9
	dets, err = DecodeYOLOSeg(out, lb, loose)
	require.NoError(t, err)
	require.Len(t, dets, 3)
	require.Equal(t, []float32{0.9, 0.8, 0.7}, []float32{dets[0].Score, dets[1].Score, dets[2].Score})
	one := p
	one.MaxInstances = 1
	dets, err = DecodeYOLOSeg(out, lb, one)
	require.NoError(t, err)
	require.Len(t, dets, 1)
	require.Equal(t, float32(0.9), dets[0].Score)

	// A stricter score threshold leaves only anchor 0.
	strict := p
	strict.ScoreThreshold = 0.85
	dets, err = DecodeYOLOSeg(out, lb, strict)
	require.NoError(t, err)
	require.Len(t, dets, 1)

	// A higher mask threshold: anchor 2's best pixels weigh 0.766.
	high := p
	high.MaskThreshold = 0.7
	dets, err = DecodeYOLOSeg(out, lb, high)
	require.NoError(t, err)
	require.Equal(t, rect(9, 5, 11, 7), pixels(t, dets[1].Mask))

	// Labels that do not match the class count.
	three := p
	three.Labels = []string{"a", "b", "c"}
	_, err = DecodeYOLOSeg(out, lb, three)
	require.ErrorContains(t, err, "3 labels need [39, A]")
	bad := out
	bad.Protos = bad.Protos[:10]
	_, err = DecodeYOLOSeg(bad, lb, p)
	require.ErrorContains(t, err, "output1")
}

func TestMaskRCNN(t *testing.T) {
	t.Parallel()
	// 8×4 to a long side of 4: 4×2, each input pixel the mean of a 2×2
	// block (half-pixel centres land between the two source pixels).
	img := image.NewGray(image.Rect(0, 0, 8, 4))
	for y := range 4 {
		for x := range 8 {
			img.SetGray(x, y, color.Gray{uint8(10*x + 100*(y/2))})
		}
	}
	in, rs := MaskRCNNInput(img, 4)
	require.Equal(t, Resized{W: 4, H: 2, ImgW: 8, ImgH: 4}, rs)
	require.Len(t, in, 3*4*2)
	// Column 1 of row 0 averages 20 and 30; row 1 adds 100. RGB equal.
	for c := range 3 {
		require.Equal(t, float32(25)/255, in[c*8+1])
		require.Equal(t, float32(125)/255, in[c*8+4+1])
	}

	// Three instances: B (label 1, 0.9) whose mask never reaches 0.5, A
	// (label 2, 0.6) on in input columns 2–3, C (label 1, 0.1) under the
	// threshold.
	out := MaskRCNNOutput{
		N:      3,
		Boxes:  []float32{2, 0, 4, 2, 0, 0, 1, 1, 0, 0, 4, 2},
		Labels: []int64{2, 1, 1},
		Scores: []float32{0.6, 0.9, 0.1},
		Masks: le32(
			0, 0, 1, 1, 0, 0, 1, 1,
			0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4,
			1, 1, 1, 1, 1, 1, 1, 1,
		),
		MH: 2, MW: 4,
	}
	p := Params{Kind: MaskRCNN, Labels: []string{"cat", "dog"}}.WithDefaults()
	dets, err := DecodeMaskRCNN(out, rs, p)
	require.NoError(t, err)
	require.Len(t, dets, 2)
	require.Equal(t, 0, dets[0].Class, "label 1 is the first name")
	require.Equal(t, float32(0.9), dets[0].Score)
	require.Empty(t, pixels(t, dets[0].Mask))
	require.Equal(t, 1, dets[1].Class)
	require.Equal(t, [4]float32{4, 0, 8, 4}, dets[1].Box)
	// Image column 3 samples input column 1.25 (0.25 on), column 4 samples
	// 1.75 (0.75): the right half.
	require.Equal(t, rect(4, 0, 8, 4), pixels(t, dets[1].Mask))

	p.MaxInstances = 1
	dets, err = DecodeMaskRCNN(out, rs, p)
	require.NoError(t, err)
	require.Len(t, dets, 1)
	require.Equal(t, float32(0.9), dets[0].Score)

	for name, mod := range map[string]func(*MaskRCNNOutput){
		"labels element 1 is 0":    func(o *MaskRCNNOutput) { o.Labels = []int64{2, 0, 1} },
		"labels element 0 is 3":    func(o *MaskRCNNOutput) { o.Labels = []int64{3, 1, 1} },
		"scores element 2 is 1.5":  func(o *MaskRCNNOutput) { o.Scores = []float32{0.6, 0.9, 1.5} },
		"masks are 2×3":            func(o *MaskRCNNOutput) { o.MW = 3; o.Masks = o.Masks[:4*18] },
		"boxes, labels and scores": func(o *MaskRCNNOutput) { o.Boxes = o.Boxes[:8] },
	} {
		o := out
		mod(&o)
		_, err := DecodeMaskRCNN(o, rs, p)
		require.ErrorContains(t, err, name)
	}
}
