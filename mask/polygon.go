package mask

import (
	"math"
	"slices"
)

// Polygon is a closed outline as COCO writes one: x1, y1, x2, y2, … in
// pixel-corner coordinates, where pixel (x, y) covers [x, x+1]×[y, y+1] and
// its centre is (x+0.5, y+0.5). The last point joins the first.
type Polygon []float64

// Outlines traces the outer boundary of each 4-connected part of the mask
// along the pixels' edges and simplifies it with Douglas–Peucker within
// tolerance pixels (0 keeps every corner, and the polygons then rasterise
// to exactly the mask's pixels when it has no hole). Parts come in the
// order of their first pixel in rows from the top, each outline clockwise
// on screen from its part's top-left corner, so the same mask always gives
// the same polygons. holes reports whether the mask has a hole: background
// that an 8-connected path cannot lead out of the image. A polygon cannot
// express a hole, so a caller that needs the exact pixels keeps the RLE of
// such a mask; the outlines then cover the holes.
//
// Work and memory are bounded by the mask's box, not the image.
func Outlines(b *Bitmap, tolerance float64) (polys []Polygon, holes bool) {
	parts, holes, _ := traceParts(gridOf(b))
	return simplifyAll(parts, tolerance), holes
}

// FitPolygons returns the outlines of a mask (see Outlines) at the largest
// of the tolerances OutlineTolerance, 0.7, 0.5 and 0 whose polygons
// rasterise by the COCO API's rule with an IoU of at least MinPolygonIoU
// with the mask's pixels, holes filled; at 0 they are exact. A thin or
// small part loses more to simplification than a large round one, so one
// tolerance for all would either keep every stair of the large or cut into
// the thin.
func FitPolygons(b *Bitmap) (polys []Polygon, holes bool) {
	return fit(gridOf(b))
}

// FitPolygonsRLE is FitPolygons of a mask still in RLE: it reads the runs
// into the mask's box only, never expanding the whole image.
func FitPolygonsRLE(r RLE) (polys []Polygon, holes bool, err error) {
	g, err := gridOfRLE(r)
	if err != nil {
		return nil, false, err
	}
	polys, holes = fit(g)
	return polys, holes, nil
}

func fit(g grid) ([]Polygon, bool) {
	parts, holes, box := traceParts(g)
	if len(parts) == 0 {
		return nil, holes
	}
	// The polygons' pixels lie in the box: compare there, with the mask's
	// holes filled (the exact outlines), which without holes are the
	// mask's own pixels.
	var want *Bitmap
	if holes {
		want = FromPolygons(translate(simplifyAll(parts, 0), box), box[3], box[2])
	} else {
		want = g.bitmap()
	}
	for _, tol := range []float64{OutlineTolerance, 0.7, 0.5} {
		polys := simplifyAll(parts, tol)
		got := FromPolygons(translate(polys, box), box[3], box[2])
		if pixelIoU(want, got) >= MinPolygonIoU {
			return polys, holes
		}
	}
	return simplifyAll(parts, 0), holes
}

// MinPolygonIoU is the least IoU FitPolygons lets simplification cost.
const MinPolygonIoU = 0.97

// OutlineTolerance is the Douglas–Peucker tolerance FitPolygons tries
// first, in pixels: it drops the staircase of pixel edges along a slanted
// border.
const OutlineTolerance = 1.0

// translate moves polygons to the frame of box's top-left corner.
func translate(polys []Polygon, box [4]int) []Polygon {
	out := make([]Polygon, len(polys))
	for i, p := range polys {
		q := make(Polygon, len(p))
		for j := 0; j < len(p); j += 2 {
			q[j], q[j+1] = p[j]-float64(box[0]), p[j+1]-float64(box[1])
		}
		out[i] = q
	}
	return out
}

// pixelIoU is the IoU of two bitmaps of one size (0 when both are empty).
func pixelIoU(a, b *Bitmap) float64 {
	inter, union := 0, 0
	for i := range a.Pix {
		x, y := a.Pix[i] != 0, b.Pix[i] != 0
		if x || y {
			union++
			if x && y {
				inter++
			}
		}
	}
	if union == 0 {
		return 0
	}
	return float64(inter) / float64(union)
}

func simplifyAll(parts [][]int, tol float64) []Polygon {
	var polys []Polygon
	for _, corners := range parts {
		kept := simplify(corners, tol)
		p := make(Polygon, len(kept))
		for i, v := range kept {
			p[i] = float64(v)
		}
		polys = append(polys, p)
	}
	return polys
}

// grid is a mask's box with a frame of background around it, so that no
// step of a walk needs a bounds check: fg[(y+1)*gw+x+1] is pixel
// (box[0]+x, box[1]+y).
type grid struct {
	fg     []bool
	gw, gh int
	box    [4]int
}

// bitmap is the grid's box as a mask, without the frame.
func (g grid) bitmap() *Bitmap {
	b := NewBitmap(g.box[2], g.box[3])
	for y := range g.box[3] {
		row := g.fg[(y+1)*g.gw+1:]
		for x := range g.box[2] {
			if row[x] {
				b.Pix[y*b.W+x] = 1
			}
		}
	}
	return b
}

func gridOf(b *Bitmap) grid {
	box := b.BBox()
	if box[2] == 0 {
		return grid{box: box}
	}
	g := grid{gw: box[2] + 2, gh: box[3] + 2, box: box}
	g.fg = make([]bool, g.gw*g.gh)
	for y := range box[3] {
		row := b.Pix[(box[1]+y)*b.W+box[0]:]
		for x := range box[2] {
			g.fg[(y+1)*g.gw+x+1] = row[x] != 0
		}
	}
	return g
}

func gridOfRLE(r RLE) (grid, error) {
	box, err := r.BBox()
	if err != nil {
		return grid{}, err
	}
	if box[2] == 0 {
		return grid{box: box}, nil
	}
	g := grid{gw: box[2] + 2, gh: box[3] + 2, box: box}
	g.fg = make([]bool, g.gw*g.gh)
	err = r.ColumnRuns(func(x, y0, y1 int) {
		for i := (y0-box[1]+1)*g.gw + x - box[0] + 1; y0 < y1; y0, i = y0+1, i+g.gw {
			g.fg[i] = true
		}
	})
	return g, err
}

// traceParts labels the grid's 4-connected parts and returns each one's
// outline corners in image coordinates, whether the mask has holes, and
// its box.
func traceParts(g grid) ([][]int, bool, [4]int) {
	box, fg, gw, gh := g.box, g.fg, g.gw, g.gh
	if box[2] == 0 {
		return nil, false, box
	}
	part, starts := labelParts(fg, gw, gh)
	holes := hasHoles(fg, gw, gh, len(starts))
	parts := make([][]int, 0, len(starts))
	for pi, s := range starts {
		corners := trace(part, int32(pi+1), gw, s)
		for i := 0; i < len(corners); i += 2 {
			corners[i] += box[0] - 1
			corners[i+1] += box[1] - 1
		}
		parts = append(parts, corners)
	}
	return parts, holes, box
}

// labelParts numbers the 4-connected parts of the grid from 1, in the
// order of their first pixel in rows from the top, and returns each
// pixel's number (0 for background) and each part's first pixel. It joins
// each row's runs of foreground to the runs above that share a column
// (union–find over runs), so the work is one pass over the pixels and a
// step per run: a flood fill visiting every pixel's four neighbours cost
// half of a polygon export.
func labelParts(fg []bool, gw, gh int) (part []int32, starts []int) {
	type run struct{ start, end int } // fg[start:end], within one row
	var runs []run
	var parent []int32
	find := func(i int32) int32 {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	above, aboveEnd := 0, 0 // the runs of the row above: runs[above:aboveEnd]
	for y := 1; y < gh-1; y++ {
		row, first := y*gw, len(runs)
		j := above
		for x := 1; x < gw-1; x++ {
			if !fg[row+x] {
				continue
			}
			x0 := x
			for fg[row+x] { // the frame ends every run
				x++
			}
			r := int32(len(runs))
			runs = append(runs, run{row + x0, row + x})
			parent = append(parent, r)
			// A run above that ends before x0 touches no later run of
			// this row either.
			for j < aboveEnd && runs[j].end-row+gw <= x0 {
				j++
			}
			for k := j; k < aboveEnd && runs[k].start-row+gw < x; k++ {
				a, b := find(r), find(int32(k))
				if a != b {
					parent[max(a, b)] = min(a, b) // the root is the part's first run
				}
			}
		}
		above, aboveEnd = first, len(runs)
	}
	part = make([]int32, gw*gh)
	number := make([]int32, len(runs))
	for i, r := range runs {
		root := find(int32(i))
		if number[root] == 0 {
			starts = append(starts, r.start)
			number[root] = int32(len(starts))
		}
		n := number[root]
		for p := r.start; p < r.end; p++ {
			part[p] = n
		}
	}
	return part, starts
}

// quadEuler is Gray's bit-quad weight of a 2×2 window of the grid, indexed
// by its foreground pixels (bit 0 top left, 1 bottom left, 2 top right, 3
// bottom right): +1 for one pixel, −1 for three, +2 for a diagonal pair.
var quadEuler = [16]int{1: 1, 2: 1, 4: 1, 8: 1, 7: -1, 11: -1, 13: -1, 14: -1, 6: 2, 9: 2}

// hasHoles reports whether the mask has background that an 8-connected
// path (the dual of the parts' 4-connectivity) cannot lead out of the
// grid. It counts them without a flood: for 4-connected parts the Euler
// number, parts minus holes, is a quarter of the sum of every 2×2
// window's quadEuler (Gray, "Local properties of binary images in two
// dimensions", 1971).
func hasHoles(fg []bool, gw, gh, parts int) bool {
	col := func(top, bottom bool) int {
		c := 0
		if top {
			c = 1
		}
		if bottom {
			c |= 2
		}
		return c
	}
	sum := 0
	for y := 0; y+1 < gh; y++ {
		top, bottom := fg[y*gw:(y+1)*gw], fg[(y+1)*gw:(y+2)*gw]
		left := col(top[0], bottom[0])
		for x := 1; x < gw; x++ {
			right := col(top[x], bottom[x])
			sum += quadEuler[left|right<<2]
			left = right
		}
	}
	return parts-sum/4 > 0
}

// The directions of a walk along pixel edges, in clockwise order on screen
// (y grows downwards): turning right is the next one.
var steps = [4][2]int{{1, 0}, {0, 1}, {-1, 0}, {0, -1}} // east, south, west, north

// trace walks the outer boundary of part n with the part on its right,
// from the top-left corner of the part's first pixel s, and returns the
// corners where it turns, as x, y pairs in grid corner coordinates.
// Preferring right turns keeps the walk on one 4-connected part where two
// pixels touch only at a corner.
func trace(part []int32, n int32, gw, s int) []int {
	in := func(x, y int) bool { return part[y*gw+x] == n }
	sx, sy := s%gw, s/gw
	out := []int{sx, sy}
	// The pixels left of and above s are outside: the walk comes up the
	// left edge of s and turns east at its top-left corner.
	cx, cy, d := sx+1, sy, 0
	for {
		// The pixels ahead of the corner, left and right of the way on.
		var al, ar bool
		switch d {
		case 0:
			al, ar = in(cx, cy-1), in(cx, cy)
		case 1:
			al, ar = in(cx, cy), in(cx-1, cy)
		case 2:
			al, ar = in(cx-1, cy), in(cx-1, cy-1)
		case 3:
			al, ar = in(cx-1, cy-1), in(cx, cy-1)
		}
		nd := d
		switch {
		case !ar:
			nd = (d + 1) % 4
		case al:
			nd = (d + 3) % 4
		}
		if cx == sx && cy == sy && nd == 0 {
			return out
		}
		if nd != d {
			out = append(out, cx, cy)
			d = nd
		}
		cx, cy = cx+steps[d][0], cy+steps[d][1]
	}
}

// simplify runs Douglas–Peucker on a closed outline of x, y pairs: the
// outline is cut at its first point and the point farthest from it, and
// each half keeps the points farther than tol from the chord of what it
// drops. An outline that would keep fewer than three points is kept whole.
func simplify(pts []int, tol float64) []int {
	n := len(pts) / 2
	if n <= 3 || tol <= 0 {
		return pts
	}
	far, best := 0, -1.0
	for i := 1; i < n; i++ {
		dx, dy := float64(pts[2*i]-pts[0]), float64(pts[2*i+1]-pts[1])
		if d := dx*dx + dy*dy; d > best {
			far, best = i, d
		}
	}
	keep := make([]bool, n)
	keep[0], keep[far] = true, true
	type span struct{ a, b int } // indices, b may be n for the point 0
	stack := []span{{0, far}, {far, n}}
	at := func(i int) (float64, float64) { i %= n; return float64(pts[2*i]), float64(pts[2*i+1]) }
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		ax, ay := at(s.a)
		bx, by := at(s.b)
		idx, dmax := -1, tol
		for i := s.a + 1; i < s.b; i++ {
			px, py := at(i)
			if d := segmentDistance(px, py, ax, ay, bx, by); d > dmax {
				idx, dmax = i, d
			}
		}
		if idx >= 0 {
			keep[idx] = true
			stack = append(stack, span{s.a, idx}, span{idx, s.b})
		}
	}
	out := make([]int, 0, 2*n)
	for i, k := range keep {
		if k {
			out = append(out, pts[2*i], pts[2*i+1])
		}
	}
	if len(out) < 6 {
		return pts
	}
	return out
}

// segmentDistance is the distance from p to the segment from a to b.
func segmentDistance(px, py, ax, ay, bx, by float64) float64 {
	dx, dy := bx-ax, by-ay
	l := dx*dx + dy*dy
	t := 0.0
	if l > 0 {
		t = max(0, min(1, ((px-ax)*dx+(py-ay)*dy)/l))
	}
	return math.Hypot(px-(ax+t*dx), py-(ay+t*dy))
}

// FromPolygons rasterises polygons into an h×w mask as the COCO API does
// (frPyObjects then merge): each polygon is filled by pycocotools' rule,
// rleFrPoly of maskApi.c, and the results are united. rleFrPoly samples
// the outline at five times the resolution, keeps where it crosses a
// column of pixel centres, and sets each column's pixels between
// crossings; the same arithmetic here gives the same pixels.
func FromPolygons(polys []Polygon, h, w int) *Bitmap {
	out := NewBitmap(w, h)
	for _, p := range polys {
		fillPolygon(out, p)
	}
	return out
}

func fillPolygon(out *Bitmap, p Polygon) {
	k := len(p) / 2
	if k == 0 {
		return
	}
	h, w := out.H, out.W
	const scale = 5.0
	x := make([]int, k+1)
	y := make([]int, k+1)
	for j := range k {
		x[j] = int(scale*p[2*j] + .5)
		y[j] = int(scale*p[2*j+1] + .5)
	}
	x[k], y[k] = x[0], y[0]
	// The dense outline: every point of the upsampled grid along each
	// edge, walked from its lower end in the major axis.
	m := 0
	for j := range k {
		m += max(abs(x[j]-x[j+1]), abs(y[j]-y[j+1])) + 1
	}
	u, v := make([]int, 0, m), make([]int, 0, m)
	for j := range k {
		xs, xe, ys, ye := x[j], x[j+1], y[j], y[j+1]
		dx, dy := abs(xe-xs), abs(ys-ye)
		flip := (dx >= dy && xs > xe) || (dx < dy && ys > ye)
		if flip {
			xs, xe = xe, xs
			ys, ye = ye, ys
		}
		if dx >= dy {
			s := 0.0
			if dx > 0 {
				s = float64(ye-ys) / float64(dx)
			}
			for d := 0; d <= dx; d++ {
				t := d
				if flip {
					t = dx - d
				}
				u = append(u, t+xs)
				v = append(v, int(float64(ys)+s*float64(t)+.5))
			}
		} else {
			s := float64(xe-xs) / float64(dy)
			for d := 0; d <= dy; d++ {
				t := d
				if flip {
					t = dy - d
				}
				v = append(v, t+ys)
				u = append(u, int(float64(xs)+s*float64(t)+.5))
			}
		}
	}
	// Where the outline crosses a column of pixel centres, the first pixel
	// below the crossing toggles; sorted, the toggles are the RLE's runs.
	var toggles []int
	for j := 1; j < len(u); j++ {
		if u[j] == u[j-1] {
			continue
		}
		xd := float64(u[j])
		if u[j] >= u[j-1] {
			xd = float64(u[j] - 1)
		}
		xd = (xd+.5)/scale - .5
		if math.Floor(xd) != xd || xd < 0 || xd > float64(w-1) {
			continue
		}
		yd := float64(min(v[j], v[j-1]))
		yd = (yd+.5)/scale - .5
		yd = math.Ceil(max(0, min(float64(h), yd)))
		toggles = append(toggles, int(xd)*h+int(yd))
	}
	slices.Sort(toggles)
	// Pixel i (column-major) is set when an odd number of toggles are at
	// or before it; equal toggles cancel, as rleFrPoly's merging of empty
	// runs does.
	for j := 0; j+1 < len(toggles); j += 2 {
		columnSpans(toggles[j], min(toggles[j+1], h*w), h, func(x, y0, y1 int) {
			for p := y0*w + x; y0 < y1; y0, p = y0+1, p+w {
				out.Pix[p] = 1
			}
		})
	}
}

// columnSpans calls fn with each column's part of [a, b), a range of
// pixel indices in column-major order (RLE's) of an image h pixels high:
// column x, rows y0 to y1 (exclusive). Callers walk a run a column at a
// time instead of dividing every pixel's index by h.
func columnSpans(a, b, h int, fn func(x, y0, y1 int)) {
	for a < b {
		x, y := a/h, a%h
		n := min(b-a, h-y)
		fn(x, y, y+n)
		a += n
	}
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
