package layout

import (
	"fmt"
	"image"
	"math"

	"github.com/deepimageshub/imagehub/imaging"
)

// DecodeImage decodes the hub's canonical stored image (JPEG, PNG or WebP,
// already upright: the orientation was applied at ingest).
func DecodeImage(data []byte) (image.Image, error) {
	res, err := imaging.Process(data)
	if err != nil {
		return nil, fmt.Errorf("error decoding the image: %w", err)
	}
	return res.Image, nil
}

// rgb8 is an image as packed 8-bit RGB, row-major: what the resampler
// reads, made in one pass so that the inner loop has no type switch.
type rgb8 struct {
	w, h int
	pix  []uint8
}

func toRGB8(img image.Image) rgb8 {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	out := rgb8{w: w, h: h, pix: make([]uint8, 3*w*h)}
	p := out.pix
	switch src := img.(type) {
	case *image.YCbCr:
		// Chroma planes are subsampled by a shift in x and y (4:2:0
		// halves both); anything else falls back to COffset.
		sx, sy, fast := 0, 0, true
		switch src.SubsampleRatio {
		case image.YCbCrSubsampleRatio420:
			sx, sy = 1, 1
		case image.YCbCrSubsampleRatio422:
			sx = 1
		case image.YCbCrSubsampleRatio440:
			sy = 1
		case image.YCbCrSubsampleRatio444:
		default:
			fast = false
		}
		for y := range h {
			i := 3 * y * w
			if !fast {
				for x := range w {
					yi := src.YOffset(b.Min.X+x, b.Min.Y+y)
					ci := src.COffset(b.Min.X+x, b.Min.Y+y)
					p[i], p[i+1], p[i+2] = ycbcrToRGB(src.Y[yi], src.Cb[ci], src.Cr[ci])
					i += 3
				}
				continue
			}
			sy0 := b.Min.Y + y
			yrow := src.Y[(sy0-src.Rect.Min.Y)*src.YStride+(b.Min.X-src.Rect.Min.X):]
			coff := ((sy0>>sy)-(src.Rect.Min.Y>>sy))*src.CStride - (src.Rect.Min.X >> sx)
			cb, cr := src.Cb[coff:], src.Cr[coff:]
			out := p[i : i+3*w]
			for x := range w {
				c := (b.Min.X + x) >> sx
				out[3*x], out[3*x+1], out[3*x+2] = ycbcrToRGB(yrow[x], cb[c], cr[c])
			}
		}
	case *image.RGBA:
		for y := range h {
			row := src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
			i := 3 * y * w
			for x := range w {
				p[i], p[i+1], p[i+2] = row[4*x], row[4*x+1], row[4*x+2]
				i += 3
			}
		}
	case *image.NRGBA:
		// Transparent pixels keep their colour, as OpenCV's imread (which
		// drops alpha) would.
		for y := range h {
			row := src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
			i := 3 * y * w
			for x := range w {
				p[i], p[i+1], p[i+2] = row[4*x], row[4*x+1], row[4*x+2]
				i += 3
			}
		}
	case *image.Gray:
		for y := range h {
			row := src.Pix[src.PixOffset(b.Min.X, b.Min.Y+y):]
			i := 3 * y * w
			for x := range w {
				v := row[x]
				p[i], p[i+1], p[i+2] = v, v, v
				i += 3
			}
		}
	default:
		i := 0
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				r, g, bb, _ := img.At(x, y).RGBA()
				p[i], p[i+1], p[i+2] = uint8(r>>8), uint8(g>>8), uint8(bb>>8)
				i += 3
			}
		}
	}
	return out
}

// ycbcrToRGB is image/color's JFIF conversion, inlined.
func ycbcrToRGB(y, cb, cr uint8) (uint8, uint8, uint8) {
	yy := int32(y) * 0x10101
	cb1 := int32(cb) - 128
	cr1 := int32(cr) - 128
	r := yy + 91881*cr1
	g := yy - 22554*cb1 - 46802*cr1
	b := yy + 116130*cb1
	return clamp16(r), clamp16(g), clamp16(b)
}

func clamp16(v int32) uint8 {
	if uint32(v)&0xff000000 == 0 {
		return uint8(v >> 16)
	}
	return uint8(^(v >> 31))
}

// taps are the two source indices and the weight of the second for each
// destination index of a bilinear resampling with half-pixel centres
// (PyTorch's align_corners=False, OpenCV's INTER_LINEAR): the source
// coordinate of destination i is (i+0.5)·in/out − 0.5, clamped at 0, and the
// second tap stops at the last source index.
type taps struct {
	i0, i1 []int32
	l1     []float32
}

func makeTaps(in, out int) taps {
	t := taps{i0: make([]int32, out), i1: make([]int32, out), l1: make([]float32, out)}
	// The positions in float64: in float32 a position hundreds of pixels
	// in is off by 1e-5 of a pixel, enough to round a value next to a
	// half level the other way (a level off). Only the weights are kept
	// as float32.
	scale := float64(in) / float64(out)
	for i := range out {
		s := scale*(float64(i)+0.5) - 0.5
		if s < 0 {
			s = 0
		}
		i0 := int32(s)
		if int(i0) > in-1 {
			i0 = int32(in - 1)
		}
		i1 := i0
		if int(i0) < in-1 {
			i1 = i0 + 1
		}
		t.i0[i], t.i1[i], t.l1[i] = i0, i1, float32(s-float64(i0))
	}
	return t
}

// resizeInto resamples img to nw×nh into the CHW planes of dst (see
// resizeCHW). A JPEG's YCbCr pixels are resampled as they are and turned
// into RGB once per output pixel: the conversion is linear, so this is the
// resampling of the RGB image up to the clamping and 8-bit rounding of
// each source pixel (at most one level), at a sixth of the conversions for
// a 1600×1200 photo going into 640.
func resizeInto(dst []float32, stride, rows int, img image.Image, nw, nh, left, top int) {
	if src, ok := img.(*image.YCbCr); ok {
		if sx, sy, ok := chromaShift(src.SubsampleRatio); ok {
			resizeYCbCr(dst, stride, rows, src, sx, sy, nw, nh, left, top)
			return
		}
	}
	resizeCHW(dst, stride, rows, toRGB8(img), nw, nh, left, top)
}

// chromaShift is how a subsample ratio divides chroma coordinates.
func chromaShift(r image.YCbCrSubsampleRatio) (sx, sy int, ok bool) {
	switch r {
	case image.YCbCrSubsampleRatio420:
		return 1, 1, true
	case image.YCbCrSubsampleRatio422:
		return 1, 0, true
	case image.YCbCrSubsampleRatio440:
		return 0, 1, true
	case image.YCbCrSubsampleRatio444:
		return 0, 0, true
	}
	return 0, 0, false
}

func resizeYCbCr(dst []float32, stride, rows int, src *image.YCbCr, sx, sy, nw, nh, left, top int) {
	b := src.Bounds()
	tx, ty := makeTaps(b.Dx(), nw), makeTaps(b.Dy(), nh)
	plane := stride * rows
	// Per output column, the offsets of its two taps in a Y row and in a
	// chroma row.
	ya, yb := make([]int, nw), make([]int, nw)
	ca, cb := make([]int, nw), make([]int, nw)
	for x := range nw {
		a, bb := b.Min.X+int(tx.i0[x]), b.Min.X+int(tx.i1[x])
		ya[x], yb[x] = a-src.Rect.Min.X, bb-src.Rect.Min.X
		ca[x], cb[x] = (a>>sx)-(src.Rect.Min.X>>sx), (bb>>sx)-(src.Rect.Min.X>>sx)
	}
	yrow := func(y int) []uint8 { return src.Y[(y-src.Rect.Min.Y)*src.YStride:] }
	crow := func(p []uint8, y int) []uint8 { return p[((y>>sy)-(src.Rect.Min.Y>>sy))*src.CStride:] }
	for y := range nh {
		r0, r1 := b.Min.Y+int(ty.i0[y]), b.Min.Y+int(ty.i1[y])
		y0, y1 := yrow(r0), yrow(r1)
		cb0, cb1, cr0, cr1 := crow(src.Cb, r0), crow(src.Cb, r1), crow(src.Cr, r0), crow(src.Cr, r1)
		ly := ty.l1[y]
		base := (top+y)*stride + left
		for x := range nw {
			lx := tx.l1[x]
			a, bb, p, q := ya[x], yb[x], ca[x], cb[x]
			lerp := func(r0, r1 []uint8, a, b int) float32 {
				t := float32(r0[a]) + lx*(float32(r0[b])-float32(r0[a]))
				u := float32(r1[a]) + lx*(float32(r1[b])-float32(r1[a]))
				return t + ly*(u-t)
			}
			yy := lerp(y0, y1, a, bb)
			u := lerp(cb0, cb1, p, q) - 128
			v := lerp(cr0, cr1, p, q) - 128
			i := base + x
			dst[i] = unit8[level(yy+1.402*v)]
			dst[plane+i] = unit8[level(yy-0.34414*u-0.71414*v)]
			dst[2*plane+i] = unit8[level(yy+1.772*u)]
		}
	}
}

// level rounds v to the nearest 8-bit level, clamped.
func level(v float32) int32 {
	switch {
	case v <= 0:
		return 0
	case v >= 255:
		return 255
	}
	return int32(v + 0.5)
}

// resizeCHW resamples src to nw×nh and writes it, as RGB in [0, 1], into
// the three planes of dst (each of stride×rows floats) at column left, row
// top. Each value is rounded to a whole 8-bit level first, as OpenCV's
// resize of the 8-bit image that Ultralytics and torchvision pipelines
// start from would give.
func resizeCHW(dst []float32, stride, rows int, src rgb8, nw, nh, left, top int) {
	tx, ty := makeTaps(src.w, nw), makeTaps(src.h, nh)
	plane := stride * rows
	for y := range nh {
		r0 := src.pix[3*int(ty.i0[y])*src.w:]
		r1 := src.pix[3*int(ty.i1[y])*src.w:]
		ly := ty.l1[y]
		base := (top+y)*stride + left
		for x := range nw {
			a, b, lx := 3*int(tx.i0[x]), 3*int(tx.i1[x]), tx.l1[x]
			for c := range 3 {
				top := float32(r0[a+c]) + lx*(float32(r0[b+c])-float32(r0[a+c]))
				bot := float32(r1[a+c]) + lx*(float32(r1[b+c])-float32(r1[a+c]))
				v := top + ly*(bot-top)
				dst[c*plane+base+x] = unit8[int32(v+0.5)] // v ≥ 0: rounds half up
			}
		}
	}
}

// unit8 is n/255 for each 8-bit level, computed as float32 division (what
// numpy's img / 255 gives).
var unit8 = func() (t [256]float32) {
	for i := range t {
		t[i] = float32(i) / 255
	}
	return t
}()

// fit is the size of w×h scaled by r, each side rounded half to even as
// Python's round does, and at least 1.
func fit(w, h int, r float64) (int, int) {
	nw := int(math.RoundToEven(float64(w) * r))
	nh := int(math.RoundToEven(float64(h) * r))
	return max(nw, 1), max(nh, 1)
}
