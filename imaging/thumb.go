package imaging

import (
	"fmt"
	"image"
	"image/draw"
	"math"
)

// Thumbnail sizes: the longest side, in pixels.
const (
	GridSize   = 320
	ReviewSize = 1600
)

// Thumbnail scales img so that its longer side is maxSide, keeping its
// aspect ratio; an image already that small is returned as it is.
//
// A large reduction first averages k×k blocks (a box filter: one cheap
// pass that reads each source pixel once), then resamples the rest of the
// way with Catmull-Rom widened by what remains of the factor, which keeps
// edges crisp and removes what the box lets through (see boxFactor). For
// 1024 → 320 that is a 2×2 box and a 1.6× Catmull-Rom of about 7 taps,
// where Catmull-Rom over the whole reduction would take 13 taps a side on
// four times the pixels; bilinear sampling without the box would skip
// pixels and alias. A decoded JPEG is reduced plane by plane, its chroma
// from its own lower resolution, and stays in planes (an *image.YCbCr):
// the JPEG encoder takes them as they are, and the hash and quality
// measures read its Y plane as their luma, so that nothing converts a
// thumbnail to RGB and back.
func Thumbnail(img image.Image, maxSide int) image.Image {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= maxSide && h <= maxSide {
		return img
	}
	tw, th := fit(w, h, maxSide)
	if ycc, ok := img.(*image.YCbCr); ok {
		return thumbYCbCr(ycc, tw, th)
	}
	src := toRGBA(img)
	ex, ey := float64(w), float64(h)
	if k := boxFactor(min(ex/float64(tw), ey/float64(th))); k >= 2 {
		src = boxRGBA(src, k)
		ex, ey = ex/float64(k), ey/float64(k)
	}
	if src.Rect.Dx() == tw && src.Rect.Dy() == th && ex == float64(tw) && ey == float64(th) {
		return src
	}
	return resampleRGBA(src, tw, th, ex/float64(tw), ey/float64(th))
}

// boxFactor is the whole factor of the box stage for a reduction by f.
//
// A box of k folds part of what lies above its own Nyquist frequency back
// below it; Catmull-Rom widened by the rest of the reduction removes it
// again when that rest is 1.5× or more. So the box does at most f/1.5, and
// at least 2 for any reduction of 2× or more: an even box cancels the
// finest pattern there is (1-pixel stripes, sensor noise) exactly, where an
// odd one would leave it for a barely widened kernel to turn into moiré.
func boxFactor(f float64) int {
	if f < 2 {
		return 1
	}
	return max(2, int(f/1.5))
}

// fit is the size of a w×h image scaled so that its longer side is maxSide.
func fit(w, h, maxSide int) (int, int) {
	if w >= h {
		return maxSide, max(1, (h*maxSide+w/2)/w)
	}
	return max(1, (w*maxSide+h/2)/h), maxSide
}

// plane is one 8-bit channel of an image.
type plane struct {
	pix    []uint8
	w, h   int
	stride int
	ex, ey float64 // the extent it covers, in its own pixels: more than w, h when a box left out a remainder
}

// thumbYCbCr reduces each plane of a decoded JPEG to tw×th.
func thumbYCbCr(src *image.YCbCr, tw, th int) *image.YCbCr {
	r := src.Rect
	w, h := r.Dx(), r.Dy()
	y := plane{pix: src.Y[src.YOffset(r.Min.X, r.Min.Y):], w: w, h: h, stride: src.YStride, ex: float64(w), ey: float64(h)}
	// The chroma planes cover the same picture at a lower resolution.
	c0 := src.COffset(r.Min.X, r.Min.Y)
	cw := src.COffset(r.Max.X-1, r.Min.Y) - c0 + 1
	ch := (src.COffset(r.Min.X, r.Max.Y-1)-c0)/src.CStride + 1
	sx, sy := 1.0, 1.0
	switch src.SubsampleRatio {
	case image.YCbCrSubsampleRatio422:
		sx = 2
	case image.YCbCrSubsampleRatio420:
		sx, sy = 2, 2
	case image.YCbCrSubsampleRatio440:
		sy = 2
	case image.YCbCrSubsampleRatio411:
		sx = 4
	case image.YCbCrSubsampleRatio410:
		sx, sy = 4, 2
	}
	cb := plane{pix: src.Cb[c0:], w: cw, h: ch, stride: src.CStride, ex: float64(w) / sx, ey: float64(h) / sy}
	cr := cb
	cr.pix = src.Cr[c0:]

	// Chroma comes out at half the thumbnail's resolution in each direction
	// the source had it so: the thumbnail is encoded as 4:2:0 JPEG, which
	// keeps no more, and this halves the work.
	hs, vs := 0, 0
	if sx > 1 {
		hs = 1
	}
	if sy > 1 {
		vs = 1
	}
	y = shrinkPlane(y, tw, th, float64(tw), float64(th))
	cwt, cht := (tw+hs)>>hs, (th+vs)>>vs
	cox, coy := float64(tw)/float64(int(1)<<hs), float64(th)/float64(int(1)<<vs)
	cb, cr = shrinkPlane(cb, cwt, cht, cox, coy), shrinkPlane(cr, cwt, cht, cox, coy)
	ratio := [2][2]image.YCbCrSubsampleRatio{
		{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio440},
		{image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420},
	}[hs][vs]
	return &image.YCbCr{
		Y: y.own(tw, th), Cb: cb.own(cwt, cht), Cr: cr.own(cwt, cht),
		YStride: tw, CStride: cwt, SubsampleRatio: ratio, Rect: image.Rect(0, 0, tw, th),
	}
}

// own is the w×h pixels of p in a slice of their own, rows w apart. The
// planes shrinkPlane makes are that already and are taken as they are
// (thumbYCbCr reduces every plane, so none is the source's); any other is
// copied.
func (p plane) own(w, h int) []uint8 {
	if p.stride == w && len(p.pix) == w*h {
		return p.pix
	}
	out := make([]uint8, w*h)
	for j := range h {
		copy(out[j*w:j*w+w], p.pix[j*p.stride:j*p.stride+w])
	}
	return out
}

// shrinkPlane scales a plane to mw×mh pixels covering ox×oy (the same but
// for a half pixel at the edge of a half-resolution chroma plane): a box
// stage, then Catmull-Rom.
func shrinkPlane(p plane, mw, mh int, ox, oy float64) plane {
	if k := boxFactor(min(p.ex/ox, p.ey/oy)); k >= 2 {
		p = boxPlane(p, k)
	}
	if p.w == mw && p.h == mh && p.ex == ox && p.ey == oy {
		return p
	}
	return resamplePlane(p, mw, mh, p.ex/ox, p.ey/oy)
}

// boxPlane averages k×k blocks of a plane; the last w%k columns and h%k
// rows are left out, and the extent keeps count of them.
func boxPlane(p plane, k int) plane {
	w, h := p.w/k, p.h/k
	out := plane{pix: make([]uint8, w*h), w: w, h: h, stride: w, ex: p.ex / float64(k), ey: p.ey / float64(k)}
	col := make([]uint32, w*k)
	n, half := uint32(k*k), uint32(k*k/2)
	for y := range h {
		clear(col)
		for sy := y * k; sy < y*k+k; sy++ {
			for i, v := range p.pix[sy*p.stride : sy*p.stride+w*k] {
				col[i] += uint32(v)
			}
		}
		o := out.pix[y*w : y*w+w]
		if k == 2 {
			for x := range o {
				o[x] = uint8((col[2*x] + col[2*x+1] + half) / n)
			}
			continue
		}
		for x := range o {
			var s uint32
			for _, v := range col[x*k : x*k+k] {
				s += v
			}
			o[x] = uint8((s + half) / n)
		}
	}
	return out
}

// boxRGBA averages k×k blocks of an RGBA image into one (w/k)×(h/k).
func boxRGBA(src *image.RGBA, k int) *image.RGBA {
	sw := src.Rect.Dx()
	w, h := sw/k, src.Rect.Dy()/k
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	col := make([]uint32, 4*w*k)
	n, half := uint32(k*k), uint32(k*k/2)
	for y := range h {
		clear(col)
		for sy := y * k; sy < y*k+k; sy++ {
			for i, v := range src.Pix[sy*src.Stride : sy*src.Stride+4*w*k] {
				col[i] += uint32(v)
			}
		}
		d := dst.Pix[y*dst.Stride : y*dst.Stride+4*w]
		for x := range w {
			var r, g, b, a uint32
			for i := 4 * x * k; i < 4*(x+1)*k; i += 4 {
				r, g, b, a = r+col[i], g+col[i+1], b+col[i+2], a+col[i+3]
			}
			d[4*x], d[4*x+1], d[4*x+2], d[4*x+3] = uint8((r+half)/n), uint8((g+half)/n), uint8((b+half)/n), uint8((a+half)/n)
		}
	}
	return dst
}

// taps are the weights of each output pixel along one axis: output pixel
// i takes width source pixels from start[i], with weights
// weights[i*width:], in fixed point summing to 1<<weightBits.
type taps struct {
	width   int
	start   []int
	weights []int32
}

const weightBits = 14

// catmullRom is the Catmull-Rom cubic (B = 0, C = 0.5).
func catmullRom(x float64) float64 {
	x = math.Abs(x)
	switch {
	case x < 1:
		return (1.5*x-2.5)*x*x + 1
	case x < 2:
		return ((-0.5*x+2.5)*x-4)*x + 2
	}
	return 0
}

// filterTaps computes the Catmull-Rom taps that scale n source pixels to m
// output pixels, each output pixel covering scale source pixels (n/m, or a
// little more where a box stage left pixels out). The kernel is widened by
// the reduction factor, so that it averages what it drops; pixels beyond
// the edges repeat the edge.
func filterTaps(n, m int, scale float64) taps {
	widen := max(scale, 1)
	support := 2 * widen
	t := taps{width: min(int(math.Ceil(2*support))+1, n), start: make([]int, m)}
	if t.width < 8 && n >= 8 {
		// Narrower kernels (5 to 7 taps: reductions by up to 1.5× after
		// the box) get zero taps up to 8, which horizontal and the column
		// pass take in fixed steps faster than they count out 7.
		t.width = 8
	}
	t.weights = make([]int32, m*t.width)
	fw := make([]float64, t.width)
	for i := range m {
		center := (float64(i)+0.5)*scale - 0.5
		lo := int(math.Floor(center-support)) + 1
		start := min(max(lo, 0), n-t.width)
		clear(fw)
		sum := 0.0
		for j := lo; float64(j) < center+support; j++ {
			v := catmullRom((float64(j) - center) / widen)
			fw[min(max(j, 0), n-1)-start] += v
			sum += v
		}
		ws := t.weights[i*t.width : (i+1)*t.width]
		total, peak := int32(0), 0
		for k, v := range fw {
			ws[k] = int32(math.Round(v / sum * (1 << weightBits)))
			total += ws[k]
			if ws[k] > ws[peak] {
				peak = k
			}
		}
		ws[peak] += 1<<weightBits - total // exactly 1 in all
		t.start[i] = start
	}
	return t
}

func clampWeighted(v int32) uint8 {
	return uint8(min(max((v+1<<(weightBits-1))>>weightBits, 0), 255))
}

// resamplePlane scales a plane to tw×th with a separable Catmull-Rom filter
// in fixed point: along each row first, then down each column.
func resamplePlane(p plane, tw, th int, sx, sy float64) plane {
	xt, yt := filterTaps(p.w, tw, sx), filterTaps(p.h, th, sy)
	// Only the source rows some output row needs.
	y0, y1 := yt.start[0], yt.start[th-1]+yt.width
	tmp := make([]uint8, tw*(y1-y0))
	for sy := y0; sy < y1; sy++ {
		row := p.pix[sy*p.stride : sy*p.stride+p.w]
		out := tmp[tw*(sy-y0) : tw*(sy-y0+1)]
		horizontal(out, row, xt)
	}
	dst := plane{pix: make([]uint8, tw*th), w: tw, h: th, stride: tw, ex: float64(tw), ey: float64(th)}
	acc := make([]int32, tw)
	for y := range th {
		clear(acc)
		ws := yt.weights[y*yt.width : (y+1)*yt.width]
		row := func(k int) []uint8 { return tmp[tw*(yt.start[y]+k-y0):][:len(acc)] }
		// Four source rows a pass, then two, then one: acc is read and
		// written once for several taps (twice for the 8 that most
		// reductions take, see filterTaps, rather than eight times).
		k := 0
		for ; k+4 <= len(ws); k += 4 {
			addRows4(acc, row(k), row(k+1), row(k+2), row(k+3), ws[k:k+4])
		}
		if k+2 <= len(ws) {
			addRows2(acc, row(k), row(k+1), ws[k], ws[k+1])
			k += 2
		}
		if k < len(ws) {
			wt := ws[k]
			for i, v := range row(k) {
				acc[i] += wt * int32(v)
			}
		}
		d := dst.pix[y*tw:]
		d = d[:len(acc)]
		for i, v := range acc {
			d[i] = clampWeighted(v)
		}
	}
	return dst
}

// addRows4 adds four rows, weighted by ws, to acc; the rows are as long as
// acc.
func addRows4(acc []int32, r0, r1, r2, r3 []uint8, ws []int32) {
	w0, w1, w2, w3 := ws[0], ws[1], ws[2], ws[3]
	r0, r1, r2, r3 = r0[:len(acc)], r1[:len(acc)], r2[:len(acc)], r3[:len(acc)]
	for i := range acc {
		acc[i] += w0*int32(r0[i]) + w1*int32(r1[i]) + w2*int32(r2[i]) + w3*int32(r3[i])
	}
}

// addRows2 is addRows4 for two rows.
func addRows2(acc []int32, r0, r1 []uint8, w0, w1 int32) {
	r0, r1 = r0[:len(acc)], r1[:len(acc)]
	for i := range acc {
		acc[i] += w0*int32(r0[i]) + w1*int32(r1[i])
	}
}

// horizontal filters one row of a plane into out with the taps t.
func horizontal(out, row []uint8, t taps) {
	n, starts, weights := t.width, t.start, t.weights
	starts = starts[:len(out)]
	if n == 8 {
		// Most reductions (see filterTaps): the taps written out, which
		// spares the loop its counting.
		for x, st := range starts {
			w, s := (*[8]int32)(weights[x*8:]), (*[8]uint8)(row[st:])
			v0 := w[0]*int32(s[0]) + w[1]*int32(s[1]) + w[2]*int32(s[2]) + w[3]*int32(s[3])
			v1 := w[4]*int32(s[4]) + w[5]*int32(s[5]) + w[6]*int32(s[6]) + w[7]*int32(s[7])
			out[x] = clampWeighted(v0 + v1)
		}
		return
	}
	for x, st := range starts {
		ws := weights[x*n : x*n+n]
		s := row[st : st+n] // one bounds check, not one a tap
		var v0, v1 int32
		k := 0
		for ; k+1 < n; k += 2 {
			v0 += ws[k] * int32(s[k])
			v1 += ws[k+1] * int32(s[k+1])
		}
		if k < n {
			v0 += ws[k] * int32(s[k])
		}
		out[x] = clampWeighted(v0 + v1)
	}
}

// resampleRGBA scales src to tw×th as resamplePlane does, the four
// channels together. Colours stay premultiplied, as filtering premultiplied
// colours is what keeps transparent pixels from bleeding into their
// neighbours.
func resampleRGBA(src *image.RGBA, tw, th int, sx, sy float64) *image.RGBA {
	sw, sh := src.Rect.Dx(), src.Rect.Dy()
	xt, yt := filterTaps(sw, tw, sx), filterTaps(sh, th, sy)
	y0, y1 := yt.start[0], yt.start[th-1]+yt.width
	tmp := make([]uint8, 4*tw*(y1-y0))
	for row := y0; row < y1; row++ {
		in := src.Pix[row*src.Stride : row*src.Stride+4*sw]
		out := tmp[4*tw*(row-y0) : 4*tw*(row-y0+1)]
		for x := range tw {
			p := in[4*xt.start[x] : 4*(xt.start[x]+xt.width)]
			ws := xt.weights[x*xt.width : (x+1)*xt.width]
			var r, g, b, a int32
			for k, wt := range ws {
				q := p[4*k : 4*k+4 : 4*k+4]
				r += wt * int32(q[0])
				g += wt * int32(q[1])
				b += wt * int32(q[2])
				a += wt * int32(q[3])
			}
			putPremul(out[4*x:4*x+4:4*x+4], r, g, b, a)
		}
	}
	dst := image.NewRGBA(image.Rect(0, 0, tw, th))
	acc := make([]int32, 4*tw)
	for y := range th {
		clear(acc)
		ws := yt.weights[y*yt.width : (y+1)*yt.width]
		for k, wt := range ws {
			row := tmp[4*tw*(yt.start[y]+k-y0):]
			row = row[:len(acc)]
			for i, v := range row {
				acc[i] += wt * int32(v)
			}
		}
		d := dst.Pix[y*dst.Stride : y*dst.Stride+4*tw]
		for i := 0; i < len(d); i += 4 {
			putPremul(d[i:i+4:i+4], acc[i], acc[i+1], acc[i+2], acc[i+3])
		}
	}
	return dst
}

// putPremul rounds a filtered premultiplied pixel and clamps it: the
// kernel's negative lobes can overshoot, and no colour may exceed alpha.
func putPremul(d []uint8, r, g, b, a int32) {
	const half = 1 << (weightBits - 1)
	a = min(max((a+half)>>weightBits, 0), 255)
	d[0] = uint8(min(max((r+half)>>weightBits, 0), a))
	d[1] = uint8(min(max((g+half)>>weightBits, 0), a))
	d[2] = uint8(min(max((b+half)>>weightBits, 0), a))
	d[3] = uint8(a)
}

// toRGBA returns img as an RGBA image at origin (0, 0), converting it when
// it is something else.
func toRGBA(img image.Image) *image.RGBA {
	if r, ok := img.(*image.RGBA); ok && r.Rect.Min == (image.Point{}) {
		return r
	}
	b := img.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Bounds(), img, b.Min, draw.Src)
	return dst
}

// EncodeJPEG encodes an image, a thumbnail typically, as JPEG.
func EncodeJPEG(img image.Image, quality int) ([]byte, error) {
	b, err := encodeJPEG(img, quality)
	if err != nil {
		return nil, fmt.Errorf("error encoding JPEG: %w", err)
	}
	return b, nil
}
