// Package augment makes the augmented copies of an export's train images
// (issue 11): deterministic transforms drawn per image and copy from the
// request's seed, applied to an image and its masks through one pixel
// mapping, so that a transformed mask is exactly the transformed pixels.
//
// The request form is compact, as on the export and download requests:
//
//	augment=flip_h,rot90,crop:0.8,scale:0.5-1.5,brightness:0.2,contrast:0.2&copies=3&augment_seed=7
//
// Each listed transform is drawn independently for every copy:
//
//   - flip_h: a horizontal flip, half the time;
//   - rot90: 0, 1, 2 or 3 clockwise quarter turns, each a quarter of the time;
//   - crop:F: a crop keeping a share s of each side, s uniform in [F, 1]
//     (0 < F ≤ 1), placed uniformly;
//   - scale:A-B: the result resized by a factor uniform in [A, B]
//     (0.1 ≤ A ≤ B ≤ 4; scale:A is A-A), nearest neighbour, for the image
//     as for its masks;
//   - brightness:D: D·255 times a value uniform in [−1, 1] added to every
//     channel (0 < D ≤ 1);
//   - contrast:D: every channel's distance from 128 multiplied by 1 + a
//     value uniform in [−D, D] (0 < D ≤ 1).
//
// The geometric transforms apply in that order whatever the order listed
// (flip, turns, crop, scale); brightness and contrast change the image
// only. copies (1 to MaxCopies, default 1) is the number of augmented
// copies per train image, beside the original; augment_seed (an unsigned
// 64-bit integer, default 0) picks the draws. The same request gives the
// same copies.
package augment

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"image"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/problem"
)

// MaxCopies is the most augmented copies per image a request may ask for.
const MaxCopies = 10

// Spec is a parsed augment request. The zero Spec augments nothing.
type Spec struct {
	FlipH, Rot90         bool
	Crop                 float64 // the least share of a side kept; 0 when no crop
	ScaleMin, ScaleMax   float64 // 0 when no scale
	Brightness, Contrast float64 // 0 when none
	Copies               int
	Seed                 uint64
}

// Enabled reports whether the spec makes copies.
func (s Spec) Enabled() bool { return s.Copies > 0 }

// String is the spec in its canonical request form (transforms in the
// order they apply), as README.txt and the manifest record it.
func (s Spec) String() string {
	if !s.Enabled() {
		return ""
	}
	var ops []string
	if s.FlipH {
		ops = append(ops, "flip_h")
	}
	if s.Rot90 {
		ops = append(ops, "rot90")
	}
	if s.Crop > 0 {
		ops = append(ops, "crop:"+num(s.Crop))
	}
	if s.ScaleMax > 0 {
		ops = append(ops, "scale:"+num(s.ScaleMin)+"-"+num(s.ScaleMax))
	}
	if s.Brightness > 0 {
		ops = append(ops, "brightness:"+num(s.Brightness))
	}
	if s.Contrast > 0 {
		ops = append(ops, "contrast:"+num(s.Contrast))
	}
	return fmt.Sprintf("augment=%s&copies=%d&augment_seed=%d", strings.Join(ops, ","), s.Copies, s.Seed)
}

func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// Parse reads the augment, copies and augment_seed request values (empty
// when absent). Without augment, copies and augment_seed must be absent
// too. A bad value is a 400 naming its field.
func Parse(augment, copies, seed string) (Spec, error) {
	var s Spec
	if augment == "" {
		if copies != "" {
			return Spec{}, problem.BadInput("invalid_copies", "copies", "copies needs augment: say which transforms to apply.")
		}
		if seed != "" {
			return Spec{}, problem.BadInput("invalid_augment_seed", "augment_seed", "augment_seed needs augment: say which transforms to apply.")
		}
		return s, nil
	}
	bad := func(format string, args ...any) error {
		return problem.BadInput("invalid_augment", "augment", fmt.Sprintf(format, args...)+
			" The form is a comma-separated list of flip_h, rot90, crop:F, scale:A-B, brightness:D, contrast:D.")
	}
	seen := map[string]bool{}
	for _, op := range strings.Split(augment, ",") {
		name, arg, hasArg := strings.Cut(strings.TrimSpace(op), ":")
		if seen[name] {
			return Spec{}, bad("%q is listed twice.", name)
		}
		seen[name] = true
		share := func(lo float64) (float64, error) {
			if !hasArg {
				return 0, bad("%s needs a value, as %s:0.2.", name, name)
			}
			v, err := strconv.ParseFloat(arg, 64)
			if err != nil || !(v > lo && v <= 1) {
				return 0, bad("%s takes a number above %g and at most 1, not %q.", name, lo, arg)
			}
			return v, nil
		}
		var err error
		switch name {
		case "flip_h", "rot90":
			if hasArg {
				return Spec{}, bad("%s takes no value.", name)
			}
			if name == "flip_h" {
				s.FlipH = true
			} else {
				s.Rot90 = true
			}
		case "crop":
			s.Crop, err = share(0)
		case "brightness":
			s.Brightness, err = share(0)
		case "contrast":
			s.Contrast, err = share(0)
		case "scale":
			lo, hi, isRange := strings.Cut(arg, "-")
			if !isRange {
				hi = lo
			}
			a, errA := strconv.ParseFloat(lo, 64)
			b, errB := strconv.ParseFloat(hi, 64)
			if !hasArg || errA != nil || errB != nil || !(a >= 0.1 && a <= b && b <= 4) {
				return Spec{}, bad("scale takes A-B with 0.1 ≤ A ≤ B ≤ 4, not %q.", arg)
			}
			s.ScaleMin, s.ScaleMax = a, b
		default:
			return Spec{}, bad("There is no transform %q.", name)
		}
		if err != nil {
			return Spec{}, err
		}
	}
	s.Copies = 1
	if copies != "" {
		n, err := strconv.Atoi(copies)
		if err != nil || n < 1 || n > MaxCopies {
			return Spec{}, problem.BadInput("invalid_copies", "copies", fmt.Sprintf("copies is a whole number from 1 to %d.", MaxCopies))
		}
		s.Copies = n
	}
	if seed != "" {
		v, err := strconv.ParseUint(seed, 10, 64)
		if err != nil {
			return Spec{}, problem.BadInput("invalid_augment_seed", "augment_seed", "augment_seed is a whole number from 0 to 18446744073709551615.")
		}
		s.Seed = v
	}
	return s, nil
}

// Params are the transforms drawn for one copy of one image.
type Params struct {
	FlipH bool
	// Turns is the number of clockwise quarter turns.
	Turns int
	// Crop is the kept rectangle, in the turned image's pixels; empty when
	// the whole image is kept.
	Crop image.Rectangle
	// Scale is the resize factor (1 for none); W and H the copy's size.
	Scale                float64
	W, H                 int
	Brightness, Contrast float64
}

// String records the draws, as the manifest lists them per copy.
func (p Params) String() string {
	var parts []string
	if p.FlipH {
		parts = append(parts, "flip_h")
	}
	if p.Turns > 0 {
		parts = append(parts, fmt.Sprintf("rot90×%d", p.Turns))
	}
	if !p.Crop.Empty() {
		parts = append(parts, fmt.Sprintf("crop:%d,%d,%d,%d", p.Crop.Min.X, p.Crop.Min.Y, p.Crop.Dx(), p.Crop.Dy()))
	}
	if p.Scale != 1 {
		parts = append(parts, "scale:"+strconv.FormatFloat(p.Scale, 'f', 4, 64))
	}
	if p.Brightness != 0 {
		parts = append(parts, "brightness:"+strconv.FormatFloat(p.Brightness, 'f', 4, 64))
	}
	if p.Contrast != 0 {
		parts = append(parts, "contrast:"+strconv.FormatFloat(p.Contrast, 'f', 4, 64))
	}
	parts = append(parts, fmt.Sprintf("size:%dx%d", p.W, p.H))
	return strings.Join(parts, " ")
}

// Draw picks the transforms of copy (from 1) of the image with the given
// content hash and size: the same spec, image and copy always give the
// same draws, whatever else the export holds.
func (s Spec) Draw(sha []byte, copy, w, h int) Params {
	f := fnv.New64a()
	f.Write(sha)
	var c [8]byte
	binary.BigEndian.PutUint64(c[:], uint64(copy))
	f.Write(c[:])
	rng := rand.New(rand.NewPCG(s.Seed, f.Sum64()))
	p := Params{Scale: 1}
	if s.FlipH {
		p.FlipH = rng.IntN(2) == 1
	}
	if s.Rot90 {
		p.Turns = rng.IntN(4)
	}
	tw, th := w, h
	if p.Turns%2 == 1 {
		tw, th = h, w
	}
	if s.Crop > 0 {
		share := s.Crop + (1-s.Crop)*rng.Float64()
		cw, ch := max(1, int(math.Round(float64(tw)*share))), max(1, int(math.Round(float64(th)*share)))
		x, y := rng.IntN(tw-cw+1), rng.IntN(th-ch+1)
		if cw != tw || ch != th {
			p.Crop = image.Rect(x, y, x+cw, y+ch)
		}
	}
	cw, ch := tw, th
	if !p.Crop.Empty() {
		cw, ch = p.Crop.Dx(), p.Crop.Dy()
	}
	if s.ScaleMax > 0 {
		p.Scale = s.ScaleMin + (s.ScaleMax-s.ScaleMin)*rng.Float64()
	}
	p.W, p.H = max(1, int(math.Round(float64(cw)*p.Scale))), max(1, int(math.Round(float64(ch)*p.Scale)))
	if s.Brightness > 0 {
		p.Brightness = s.Brightness * (2*rng.Float64() - 1)
	}
	if s.Contrast > 0 {
		p.Contrast = s.Contrast * (2*rng.Float64() - 1)
	}
	return p
}

// mapping is where each of a copy's pixels comes from in the original:
// src[y*dw+x] is the index (row-major) of the original's pixel that pixel
// (x, y) of the copy takes.
type mapping struct {
	w, h   int // the original's size
	dw, dh int // the copy's size
	src    []int32
}

// mapOf computes, for each pixel of the copy, the index of the original's
// pixel it takes: scale (nearest neighbour, the source pixel under each
// centre, as mask.Bitmap.Scale), then the crop, the turns and the flip
// undone in turn.
func (p Params) mapOf(w, h int) mapping {
	tw, th := w, h
	if p.Turns%2 == 1 {
		tw, th = h, w
	}
	crop := p.Crop
	if crop.Empty() {
		crop = image.Rect(0, 0, tw, th)
	}
	cw, ch := crop.Dx(), crop.Dy()
	m := mapping{w: w, h: h, dw: p.W, dh: p.H, src: make([]int32, p.W*p.H)}
	xs := make([]int, p.W)
	for x := range xs {
		xs[x] = crop.Min.X + (2*x+1)*cw/(2*p.W)
	}
	for y := range p.H {
		ty := crop.Min.Y + (2*y+1)*ch/(2*p.H)
		for x, tx := range xs {
			// (tx, ty) in the turned image → (ox, oy) in the flipped one.
			ox, oy := tx, ty
			switch p.Turns % 4 {
			case 1: // clockwise: turned (x, y) is flipped (y, h−1−x)
				ox, oy = ty, h-1-tx
			case 2:
				ox, oy = w-1-tx, h-1-ty
			case 3:
				ox, oy = w-1-ty, tx
			}
			if p.FlipH {
				ox = w - 1 - ox
			}
			m.src[y*p.W+x] = int32(oy*w + ox)
		}
	}
	return m
}

// Mask is the copy of a mask of the original's size: exactly the pixels
// the copy's image takes from the original.
func (p Params) Mask(b *mask.Bitmap) *mask.Bitmap {
	m := p.mapOf(b.W, b.H)
	out := mask.NewBitmap(m.dw, m.dh)
	for i, s := range m.src {
		out.Pix[i] = b.Pix[s]
	}
	return out
}

// Masks transforms several masks of the same size with one mapping.
func (p Params) Masks(bs []*mask.Bitmap) []*mask.Bitmap {
	if len(bs) == 0 {
		return nil
	}
	m := p.mapOf(bs[0].W, bs[0].H)
	out := make([]*mask.Bitmap, len(bs))
	for j, b := range bs {
		o := mask.NewBitmap(m.dw, m.dh)
		for i, s := range m.src {
			o.Pix[i] = b.Pix[s]
		}
		out[j] = o
	}
	return out
}

// Image is the copy of an image: the same pixel mapping as Mask, then
// brightness and contrast.
func (p Params) Image(img image.Image) *image.NRGBA {
	b := img.Bounds()
	src := image.NewNRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	for y := range b.Dy() {
		for x := range b.Dx() {
			src.Set(x, y, img.At(b.Min.X+x, b.Min.Y+y))
		}
	}
	m := p.mapOf(b.Dx(), b.Dy())
	out := image.NewNRGBA(image.Rect(0, 0, m.dw, m.dh))
	var lut [256]uint8
	for v := range lut {
		f := (float64(v)-128)*(1+p.Contrast) + 128 + p.Brightness*255
		lut[v] = uint8(min(255, max(0, math.Round(f))))
	}
	for i, s := range m.src {
		c := src.Pix[4*int(s) : 4*int(s)+4]
		copy(out.Pix[4*i:], []uint8{lut[c[0]], lut[c[1]], lut[c[2]], c[3]})
	}
	return out
}

// Point maps pixel (x, y) of the original to the pixel of the copy that
// takes it before scaling, for the tests and for anyone checking
// coordinates: the flip, then the turns, then the crop's offset.
func (p Params) Point(x, y, w, h int) (int, int) {
	if p.FlipH {
		x = w - 1 - x
	}
	for range p.Turns % 4 {
		x, y = h-1-y, x
		w, h = h, w
	}
	return x - p.Crop.Min.X, y - p.Crop.Min.Y
}
