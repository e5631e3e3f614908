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

	// Destination rows come in segments that read the same two source
	// rows; along a segment the value is linear in the row's weight, so
	// when a segment's first and last rows agree the whole segment does,
	// and only segments that cross the threshold are computed row by row.
	type segment struct{ y0, y1, i0, i1 int }
	var segs []segment
	for y := ylo; y < yhi; y++ {
		i0, i1 := int(ty.i0[y]), int(ty.i1[y])
		if n := len(segs); n > 0 && segs[n-1].i0 == i0 && segs[n-1].i1 == i1 {
			segs[n-1].y1 = y + 1
			continue
		}
		segs = append(segs, segment{y, y + 1, i0, i1})
	}

	// Runs are counted column by column (COCO RLE is column-major): n is
	// the length of the current run, of value on.
	runs := make([]uint32, 0, 2*(xhi-xlo)+2)
	on, n := false, uint32(xlo*h)
	add := func(v bool, k int) {
		if v != on {
			runs, on, n = append(runs, n), v, 0
		}
		n += uint32(k)
	}
	s0, s1 := int(ty.i0[ylo]), int(ty.i1[yhi-1])
	col := make([]float32, s1-s0+1)
	for x := xlo; x < xhi; x++ {
		a, b, lx := int(tx.i0[x]), int(tx.i1[x]), tx.l1[x]
		l0 := 1 - lx
		for s := s0; s <= s1; s++ {
			col[s-s0] = l0*g.at(a, s) + lx*g.at(b, s)
		}
		if ylo > 0 {
			add(false, ylo)
		}
		for _, sg := range segs {
			c0, c1 := col[sg.i0-s0], col[sg.i1-s0]
			first := (1-ty.l1[sg.y0])*c0+ty.l1[sg.y0]*c1 > t
			last := (1-ty.l1[sg.y1-1])*c0+ty.l1[sg.y1-1]*c1 > t
			if first == last {
				add(first, sg.y1-sg.y0)
				continue
			}
			for y := sg.y0; y < sg.y1; y++ {
				ly := ty.l1[y]
				add((1-ly)*c0+ly*c1 > t, 1)
			}
		}
		if h > yhi {
			add(false, h-yhi)
		}
	}
	if w > xhi {
		add(false, (w-xhi)*h)
	}
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
