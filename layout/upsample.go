package layout

import "github.com/deepimageshub/imagehub/mask"

// grid is a window of a row-major float32 matrix: the cw×ch values whose
// top-left corner is (left, top) in a matrix of stride columns.
type grid struct {
	v         []float32
	stride    int
	left, top int
	cw, ch    int
}

func (g grid) at(x, y int) float32 { return g.v[(g.top+y)*g.stride+g.left+x] }

// upsampleRLE resizes g to w×h by bilinear interpolation with half-pixel
// centres (PyTorch's F.interpolate(mode="bilinear", align_corners=False)),
// keeps the pixels above t and returns them as COCO RLE.
//
// Only the part of the image that can be on is computed: a bilinear value
// is a convex combination of its four taps, so it exceeds t only where one
// of them does. That window is usually a box's worth of pixels, which keeps
// a full-size mask of a large photo cheap. t must be ≥ 0 for the zeros
// around an instance to stay off.
func upsampleRLE(g grid, w, h int, t float32) mask.RLE {
	// The window of source values above t.
	c0, c1, r0, r1 := g.cw, -1, g.ch, -1
	for y := range g.ch {
		row := g.v[(g.top+y)*g.stride+g.left:][:g.cw]
		for x, v := range row {
			if v > t {
				c0, c1 = min(c0, x), max(c1, x)
				r0, r1 = min(r0, y), max(r1, y)
			}
		}
	}
	if c1 < 0 {
		return mask.FromRuns(h, w, []uint32{uint32(w * h)})
	}
	tx, ty := makeTaps(g.cw, w), makeTaps(g.ch, h)
	// The destination rows and columns with a tap in the window: the taps
	// grow with the destination index, so each is one interval.
	ylo, yhi := span(ty, r0, r1)
	xlo, xhi := span(tx, c0, c1)
	if ylo >= yhi || xlo >= xhi {
		// A reduction that samples none of the window.
		return mask.FromRuns(h, w, []uint32{uint32(w * h)})
	}

	runs := make([]uint32, 0, 2*(xhi-xlo)+2)
	on, n := false, uint32(0)
	emit := func(v bool, k uint32) {
		if k == 0 {
			return
		}
		if v != on {
			runs = append(runs, n)
			on, n = v, 0
		}
		n += k
	}
	// Source rows the active destination rows read.
	s0, s1 := int(ty.i0[ylo]), int(ty.i1[yhi-1])
	col := make([]float32, s1-s0+1)
	emit(false, uint32(xlo*h))
	for x := xlo; x < xhi; x++ {
		a, b, lx := int(tx.i0[x]), int(tx.i1[x]), tx.l1[x]
		l0 := 1 - lx
		for s := s0; s <= s1; s++ {
			col[s-s0] = l0*g.at(a, s) + lx*g.at(b, s)
		}
		emit(false, uint32(ylo))
		for y := ylo; y < yhi; y++ {
			ly := ty.l1[y]
			v := (1-ly)*col[int(ty.i0[y])-s0] + ly*col[int(ty.i1[y])-s0]
			emit(v > t, 1)
		}
		emit(false, uint32(h-yhi))
	}
	emit(false, uint32((w-xhi)*h))
	runs = append(runs, n)
	return mask.FromRuns(h, w, runs)
}

// span is the interval [lo, hi) of destination indices one of whose taps
// lies in [s0, s1].
func span(t taps, s0, s1 int) (int, int) {
	n := len(t.i0)
	lo := 0
	for lo < n && int(t.i1[lo]) < s0 {
		lo++
	}
	hi := lo
	for hi < n && int(t.i0[hi]) <= s1 {
		hi++
	}
	return lo, hi
}
