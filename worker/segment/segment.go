// Package segment proposes instance masks for the main objects of a photo on
// the CPU, in pure Go and deterministically: the same pixels and options give
// the same masks. It is no neural network; it finds what stands out from the
// photo's borders, which is enough to drive the hub end to end and to give a
// reviewer something to correct.
//
// The method, in order:
//
//  1. Working copy. The photo is reduced by area averaging so that its long
//     side is WorkSize pixels (256), converted to CIELAB, whose distances
//     follow perceived colour differences, and smoothed with a Gaussian of
//     Sigma pixels to quiet texture and JPEG noise.
//  2. Regions. Felzenszwalb and Huttenlocher's graph-based segmentation on
//     the 8-connected pixel grid with the Lab distance as edge weight: edges
//     are taken from the lightest, and two regions merge when the edge is no
//     heavier than the internal variation of both plus K/size. Regions
//     smaller than MinRegion are then merged into a neighbour.
//  3. Saliency. The image's four borders stand for the background. For each
//     side, a region's distance to that side is a soft minimum of its Lab
//     distance to the regions along the side, weighted by how much of the
//     side they cover. The side a region most resembles is ignored (an object
//     cut by one edge of the photo still stands out) and the other three are
//     averaged. This contrast is damped for regions that cover much of the
//     image's frame and, mildly, for regions far from the centre, and mapped
//     to a score in [0, 1) as 1 - exp(-contrast/ContrastScale).
//  4. Objects. Regions scoring at least max(MinScore, half the best score)
//     are foreground. Its 8-connected components, with their holes filled,
//     are the instances; those smaller than MinObject or larger than
//     MaxObject of the image are dropped.
//  5. Output. An instance's score is the area-weighted mean score of its
//     pixels. The best MaxInstances, by score, are returned most salient
//     first, each mask brought back to the photo's full size by nearest
//     neighbour, so each full-size pixel takes the value of the working pixel
//     it was averaged into.
//
// Touching objects come out as one instance, and an object the colour of the
// background is missed: the reviewer corrects both. Labels are not this
// package's business; the worker assigns them.
package segment

import (
	"cmp"
	"image"
	"image/color"
	"math"
	"slices"

	"github.com/deepimageshub/imagehub/mask"
)

// Options tune the method; a zero field takes its default.
type Options struct {
	WorkSize      int     // long side of the working copy, px; default 256
	Sigma         float64 // Gaussian smoothing of the working copy, px; default 0.8
	K             float64 // Felzenszwalb scale: larger gives larger regions; default 300
	MinRegion     int     // smallest region, working px; default WorkSize²/1000
	ContrastScale float64 // Lab contrast that scores 1-1/e; default 18
	MinScore      float64 // lowest score of a foreground region; default 0.35
	MinObject     float64 // smallest instance, fraction of the image; default 0.002
	MaxObject     float64 // largest instance, fraction of the image; default 0.9
	MaxInstances  int     // default 8
}

func (o Options) withDefaults() Options {
	if o.WorkSize <= 0 {
		o.WorkSize = 256
	}
	if o.Sigma <= 0 {
		o.Sigma = 0.8
	}
	if o.K <= 0 {
		o.K = 300
	}
	if o.MinRegion <= 0 {
		o.MinRegion = max(4, o.WorkSize*o.WorkSize/1000)
	}
	if o.ContrastScale <= 0 {
		o.ContrastScale = 18
	}
	if o.MinScore <= 0 {
		o.MinScore = 0.35
	}
	if o.MinObject <= 0 {
		o.MinObject = 0.002
	}
	if o.MaxObject <= 0 {
		o.MaxObject = 0.9
	}
	if o.MaxInstances <= 0 {
		o.MaxInstances = 8
	}
	return o
}

// Instance is one proposed object.
type Instance struct {
	Mask  *mask.Bitmap // at the photo's full size
	Score float32      // saliency in [0, 1]
}

// Segment proposes the instances of img, most salient first.
func Segment(img image.Image, opt Options) []Instance {
	opt = opt.withDefaults()
	b := img.Bounds()
	W, H := b.Dx(), b.Dy()
	if W < 2 || H < 2 {
		return nil
	}
	g := newGrid(img, opt.WorkSize)
	g.toLab()
	g.blur(opt.Sigma)
	labels, nreg := g.regions(opt.K, opt.MinRegion)
	regs := g.regionStats(labels, nreg)
	scores := saliency(regs, g.w, g.h, opt.ContrastScale)
	comps := objects(g.w, g.h, labels, scores, opt)
	out := make([]Instance, len(comps))
	for i, c := range comps {
		out[i] = Instance{Mask: g.upscale(c, W, H), Score: float32(c.score)}
	}
	return out
}

// grid is the working copy: three float planes of w×h, plus the maps from
// full-size columns and rows to working ones.
type grid struct {
	w, h   int
	c      [3][]float32
	xm, ym []int32
}

// newGrid reduces img by area averaging to a long side of at most size px.
func newGrid(img image.Image, size int) *grid {
	b := img.Bounds()
	W, H := b.Dx(), b.Dy()
	w, h := W, H
	if max(W, H) > size {
		if W >= H {
			w, h = size, max(1, int(math.Round(float64(H)*float64(size)/float64(W))))
		} else {
			w, h = max(1, int(math.Round(float64(W)*float64(size)/float64(H)))), size
		}
	}
	g := &grid{w: w, h: h, xm: make([]int32, W), ym: make([]int32, H)}
	for x := range g.xm {
		g.xm[x] = int32(x * w / W)
	}
	for y := range g.ym {
		g.ym[y] = int32(y * h / H)
	}
	n := w * h
	var sum [3][]uint32
	for i := range sum {
		sum[i] = make([]uint32, n)
	}
	cnt := make([]uint32, n)
	add := func(row []uint32, i int, a, bb, c uint32) {
		sum[0][i] += a
		sum[1][i] += bb
		sum[2][i] += c
		row[i]++
	}
	switch m := img.(type) {
	case *image.YCbCr:
		for y := 0; y < H; y++ {
			base := int(g.ym[y]) * w
			for x := 0; x < W; x++ {
				yi := m.YOffset(b.Min.X+x, b.Min.Y+y)
				ci := m.COffset(b.Min.X+x, b.Min.Y+y)
				add(cnt, base+int(g.xm[x]), uint32(m.Y[yi]), uint32(m.Cb[ci]), uint32(m.Cr[ci]))
			}
		}
	case *image.RGBA:
		for y := 0; y < H; y++ {
			base := int(g.ym[y]) * w
			p := m.Pix[y*m.Stride:]
			for x := 0; x < W; x++ {
				add(cnt, base+int(g.xm[x]), uint32(p[4*x]), uint32(p[4*x+1]), uint32(p[4*x+2]))
			}
		}
	case *image.NRGBA:
		for y := 0; y < H; y++ {
			base := int(g.ym[y]) * w
			p := m.Pix[y*m.Stride:]
			for x := 0; x < W; x++ {
				add(cnt, base+int(g.xm[x]), uint32(p[4*x]), uint32(p[4*x+1]), uint32(p[4*x+2]))
			}
		}
	case *image.Gray:
		for y := 0; y < H; y++ {
			base := int(g.ym[y]) * w
			p := m.Pix[y*m.Stride:]
			for x := 0; x < W; x++ {
				v := uint32(p[x])
				add(cnt, base+int(g.xm[x]), v, v, v)
			}
		}
	default:
		for y := 0; y < H; y++ {
			base := int(g.ym[y]) * w
			for x := 0; x < W; x++ {
				r, gg, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
				add(cnt, base+int(g.xm[x]), r>>8, gg>>8, bl>>8)
			}
		}
	}
	_, ycc := img.(*image.YCbCr)
	for i := range g.c {
		g.c[i] = make([]float32, n)
	}
	for i := 0; i < n; i++ {
		c := max(cnt[i], 1)
		a, bb, cc := (sum[0][i]+c/2)/c, (sum[1][i]+c/2)/c, (sum[2][i]+c/2)/c
		if ycc {
			r, gg, bl := color.YCbCrToRGB(uint8(a), uint8(bb), uint8(cc))
			a, bb, cc = uint32(r), uint32(gg), uint32(bl)
		}
		g.c[0][i], g.c[1][i], g.c[2][i] = float32(a), float32(bb), float32(cc)
	}
	return g
}

// toLab converts the planes from sRGB 0..255 to CIELAB (D65).
func (g *grid) toLab() {
	var lin [256]float64
	for i := range lin {
		v := float64(i) / 255
		if v <= 0.04045 {
			lin[i] = v / 12.92
		} else {
			lin[i] = math.Pow((v+0.055)/1.055, 2.4)
		}
	}
	f := func(t float64) float64 {
		if t > 216.0/24389 {
			return math.Cbrt(t)
		}
		return (24389.0/27*t + 16) / 116
	}
	for i := range g.c[0] {
		r, gg, b := lin[uint8(g.c[0][i])], lin[uint8(g.c[1][i])], lin[uint8(g.c[2][i])]
		x := (0.4124*r + 0.3576*gg + 0.1805*b) / 0.95047
		y := 0.2126*r + 0.7152*gg + 0.0722*b
		z := (0.0193*r + 0.1192*gg + 0.9505*b) / 1.08883
		fx, fy, fz := f(x), f(y), f(z)
		g.c[0][i] = float32(116*fy - 16)
		g.c[1][i] = float32(500 * (fx - fy))
		g.c[2][i] = float32(200 * (fy - fz))
	}
}

// blur smooths each plane with a separable Gaussian, clamping at the edges.
func (g *grid) blur(sigma float64) {
	r := int(math.Ceil(3 * sigma))
	k := make([]float32, 2*r+1)
	var s float32
	for i := range k {
		d := float64(i - r)
		k[i] = float32(math.Exp(-d * d / (2 * sigma * sigma)))
		s += k[i]
	}
	for i := range k {
		k[i] /= s
	}
	w, h := g.w, g.h
	tmp := make([]float32, w*h)
	for _, p := range g.c {
		for y := 0; y < h; y++ {
			row := p[y*w : (y+1)*w]
			for x := 0; x < w; x++ {
				var v float32
				for j, kv := range k {
					v += kv * row[min(max(x+j-r, 0), w-1)]
				}
				tmp[y*w+x] = v
			}
		}
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				var v float32
				for j, kv := range k {
					v += kv * tmp[min(max(y+j-r, 0), h-1)*w+x]
				}
				p[y*w+x] = v
			}
		}
	}
}

// The four directions of the 8-connected grid's edges that point forward
// (right, down, down-right, down-left), so each edge is listed once.
var dirs = [4][2]int{{1, 0}, {0, 1}, {1, 1}, {-1, 1}}

func (g *grid) dist(p, q int) float32 {
	d0, d1, d2 := g.c[0][p]-g.c[0][q], g.c[1][p]-g.c[1][q], g.c[2][p]-g.c[2][q]
	return float32(math.Sqrt(float64(d0*d0 + d1*d1 + d2*d2)))
}

// regions runs Felzenszwalb-Huttenlocher and returns each pixel's region,
// numbered 0..n-1 in raster order of first appearance.
func (g *grid) regions(k float64, minSize int) ([]int32, int) {
	w, h := g.w, g.h
	n := w * h
	// An edge is a key: its weight's float bits (which order like the
	// weights, all being non-negative) above its index, so sorting the keys
	// sorts by weight with a deterministic tie-break.
	edges := make([]uint64, 0, 4*n)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			p := y*w + x
			for d, dv := range dirs {
				qx, qy := x+dv[0], y+dv[1]
				if qx < 0 || qx >= w || qy >= h {
					continue
				}
				wt := g.dist(p, qy*w+qx)
				edges = append(edges, uint64(math.Float32bits(wt))<<32|uint64(p*4+d))
			}
		}
	}
	slices.Sort(edges)
	u := newForest(n)
	thresh := make([]float32, n)
	for i := range thresh {
		thresh[i] = float32(k)
	}
	ends := func(e uint64) (int, int, float32) {
		idx := int(uint32(e))
		p, d := idx/4, idx%4
		q := p + dirs[d][1]*w + dirs[d][0]
		return p, q, math.Float32frombits(uint32(e >> 32))
	}
	for _, e := range edges {
		p, q, wt := ends(e)
		a, b := u.find(p), u.find(q)
		if a != b && wt <= thresh[a] && wt <= thresh[b] {
			r := u.union(a, b)
			thresh[r] = wt + float32(k)/float32(u.size[r])
		}
	}
	for _, e := range edges {
		p, q, _ := ends(e)
		a, b := u.find(p), u.find(q)
		if a != b && (u.size[a] < int32(minSize) || u.size[b] < int32(minSize)) {
			u.union(a, b)
		}
	}
	labels := make([]int32, n)
	id := make([]int32, n) // root → region number + 1
	next := int32(0)
	for p := range labels {
		r := u.find(p)
		if id[r] == 0 {
			next++
			id[r] = next
		}
		labels[p] = id[r] - 1
	}
	return labels, int(next)
}

// forest is a union-find with union by size and path halving.
type forest struct {
	parent, size []int32
}

func newForest(n int) *forest {
	f := &forest{parent: make([]int32, n), size: make([]int32, n)}
	for i := range f.parent {
		f.parent[i] = int32(i)
		f.size[i] = 1
	}
	return f
}

func (f *forest) find(p int) int {
	for int(f.parent[p]) != p {
		f.parent[p] = f.parent[f.parent[p]]
		p = int(f.parent[p])
	}
	return p
}

func (f *forest) union(a, b int) int {
	if f.size[a] < f.size[b] {
		a, b = b, a
	}
	f.parent[b] = int32(a)
	f.size[a] += f.size[b]
	return a
}

// region is what saliency needs to know about a region.
type region struct {
	lab    [3]float64 // mean colour
	area   int
	cx, cy float64 // centroid, as fractions of the image
	side   [4]int  // pixels on the top, bottom, left and right edges
	frame  float64 // share of the image's frame the region covers
}

func (g *grid) regionStats(labels []int32, n int) []region {
	w, h := g.w, g.h
	rs := make([]region, n)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			p := y*w + x
			r := &rs[labels[p]]
			r.area++
			for c := range 3 {
				r.lab[c] += float64(g.c[c][p])
			}
			r.cx += float64(x)
			r.cy += float64(y)
			if y == 0 {
				r.side[0]++
			}
			if y == h-1 {
				r.side[1]++
			}
			if x == 0 {
				r.side[2]++
			}
			if x == w-1 {
				r.side[3]++
			}
		}
	}
	perimeter := float64(2 * (w + h))
	for i := range rs {
		r := &rs[i]
		a := float64(r.area)
		for c := range 3 {
			r.lab[c] /= a
		}
		r.cx = (r.cx/a + 0.5) / float64(w)
		r.cy = (r.cy/a + 0.5) / float64(h)
		r.frame = float64(r.side[0]+r.side[1]+r.side[2]+r.side[3]) / perimeter
	}
	return rs
}

// saliency scores every region in [0, 1) by its contrast with the image's
// borders (see the package doc).
func saliency(rs []region, w, h int, scale float64) []float64 {
	const tau = 6.0 // softness of the soft minimum, in Lab units
	sideLen := [4]float64{float64(w), float64(w), float64(h), float64(h)}
	out := make([]float64, len(rs))
	for i := range rs {
		r := &rs[i]
		var d [4]float64
		for s := range 4 {
			var acc float64
			for j := range rs {
				if rs[j].side[s] == 0 {
					continue
				}
				wt := float64(rs[j].side[s]) / sideLen[s]
				acc += wt * math.Exp(-labDist(r.lab, rs[j].lab)/tau)
			}
			d[s] = -tau * math.Log(max(acc, 1e-300))
		}
		slices.Sort(d[:])
		contrast := (d[1] + d[2] + d[3]) / 3
		frame := max(0, 1-r.frame/0.3)
		dx, dy := r.cx-0.5, r.cy-0.5
		centre := 0.6 + 0.4*math.Exp(-(dx*dx+dy*dy)/(2*0.3*0.3))
		out[i] = 1 - math.Exp(-contrast*frame*centre/scale)
	}
	return out
}

func labDist(a, b [3]float64) float64 {
	d0, d1, d2 := a[0]-b[0], a[1]-b[1], a[2]-b[2]
	return math.Sqrt(d0*d0 + d1*d1 + d2*d2)
}

// component is one instance on the working grid.
type component struct {
	pix            []int32 // working pixels, hole fill included
	x0, y0, x1, y1 int     // box on the working grid, inclusive
	score          float64
	first          int32
}

// objects finds the instances: connected foreground with holes filled.
func objects(w, h int, labels []int32, scores []float64, opt Options) []component {
	n := w * h
	best := 0.0
	for _, s := range scores {
		best = max(best, s)
	}
	cut := max(opt.MinScore, best/2)
	fg := make([]bool, n)
	for p, l := range labels {
		fg[p] = scores[l] >= cut
	}
	comp := make([]int32, n) // 0: none, else component number + 1
	var comps []component
	stack := make([]int32, 0, 1024)
	for p0 := range n {
		if !fg[p0] || comp[p0] != 0 {
			continue
		}
		id := int32(len(comps) + 1)
		c := component{x0: w, y0: h, x1: -1, y1: -1, first: int32(p0)}
		comp[p0] = id
		stack = append(stack[:0], int32(p0))
		for len(stack) > 0 {
			p := int(stack[len(stack)-1])
			stack = stack[:len(stack)-1]
			c.pix = append(c.pix, int32(p))
			x, y := p%w, p/w
			c.x0, c.y0, c.x1, c.y1 = min(c.x0, x), min(c.y0, y), max(c.x1, x), max(c.y1, y)
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					qx, qy := x+dx, y+dy
					if qx < 0 || qy < 0 || qx >= w || qy >= h {
						continue
					}
					q := qy*w + qx
					if fg[q] && comp[q] == 0 {
						comp[q] = id
						stack = append(stack, int32(q))
					}
				}
			}
		}
		comps = append(comps, c)
	}
	fillHoles(w, h, comp, comps)

	minA, maxA := opt.MinObject*float64(n), opt.MaxObject*float64(n)
	kept := comps[:0]
	for _, c := range comps {
		a := float64(len(c.pix))
		if a < minA || a > maxA {
			continue
		}
		// Holes filled in do not dilute the score.
		var s, m float64
		for _, p := range c.pix {
			if fg[p] {
				s += scores[labels[p]]
				m++
			}
		}
		c.score = min(1, max(0, s/m))
		kept = append(kept, c)
	}
	slices.SortFunc(kept, func(a, b component) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return cmp.Compare(a.first, b.first)
	})
	return kept[:min(len(kept), opt.MaxInstances)]
}

// fillHoles gives each background area that does not reach the image's
// border (4-connected) to the component around it.
func fillHoles(w, h int, comp []int32, comps []component) {
	n := w * h
	seen := make([]bool, n)
	var area []int32
	stack := make([]int32, 0, 1024)
	for p0 := range n {
		if comp[p0] != 0 || seen[p0] {
			continue
		}
		area = area[:0]
		border := false
		owner := int32(0)
		seen[p0] = true
		stack = append(stack[:0], int32(p0))
		for len(stack) > 0 {
			p := int(stack[len(stack)-1])
			stack = stack[:len(stack)-1]
			area = append(area, int32(p))
			x, y := p%w, p/w
			if x == 0 || y == 0 || x == w-1 || y == h-1 {
				border = true
			}
			for _, d := range [4][2]int{{1, 0}, {-1, 0}, {0, 1}, {0, -1}} {
				qx, qy := x+d[0], y+d[1]
				if qx < 0 || qy < 0 || qx >= w || qy >= h {
					continue
				}
				q := qy*w + qx
				if comp[q] != 0 {
					owner = comp[q]
				} else if !seen[q] {
					seen[q] = true
					stack = append(stack, int32(q))
				}
			}
		}
		if !border && owner != 0 {
			c := &comps[owner-1]
			c.pix = append(c.pix, area...)
		}
	}
}

// upscale draws a component at the photo's full size.
func (g *grid) upscale(c component, W, H int) *mask.Bitmap {
	on := make([]bool, g.w*g.h)
	for _, p := range c.pix {
		on[p] = true
	}
	bm := mask.NewBitmap(W, H)
	for y := 0; y < H; y++ {
		ly := int(g.ym[y])
		if ly < c.y0 || ly > c.y1 {
			continue
		}
		row := on[ly*g.w : (ly+1)*g.w]
		out := bm.Pix[y*W : (y+1)*W]
		for x := range W {
			if row[g.xm[x]] {
				out[x] = 1
			}
		}
	}
	return bm
}

// Regions is the working copy and its graph-based regions, for callers that
// classify regions themselves (package regionmodel). Segment does the same
// first two steps; Regions leaves the saliency to the caller but computes it
// too, as one feature among others.
type Regions struct {
	W, H     int          // working size
	FullW    int          // the photo's size
	FullH    int          //
	Lab      [3][]float32 // smoothed CIELAB planes, W×H
	Label    []int32      // each working pixel's region, 0..N-1
	N        int
	Saliency []float64 // each region's saliency score (step 3)
	xm, ym   []int32
}

// FindRegions runs steps 1 to 3 of the method on img.
func FindRegions(img image.Image, opt Options) *Regions {
	opt = opt.withDefaults()
	b := img.Bounds()
	if b.Dx() < 2 || b.Dy() < 2 {
		return nil
	}
	g := newGrid(img, opt.WorkSize)
	g.toLab()
	g.blur(opt.Sigma)
	labels, nreg := g.regions(opt.K, opt.MinRegion)
	regs := g.regionStats(labels, nreg)
	scores := saliency(regs, g.w, g.h, opt.ContrastScale)
	return &Regions{W: g.w, H: g.h, FullW: b.Dx(), FullH: b.Dy(), Lab: g.c, Label: labels, N: nreg, Saliency: scores, xm: g.xm, ym: g.ym}
}

// WorkPixel maps a full-size pixel to its working pixel's index.
func (r *Regions) WorkPixel(x, y int) int { return int(r.ym[y])*r.W + int(r.xm[x]) }

// Upscale draws a set of working pixels at the photo's full size, as
// Segment draws its instances.
func (r *Regions) Upscale(on []bool) *mask.Bitmap {
	bm := mask.NewBitmap(r.FullW, r.FullH)
	for y := 0; y < r.FullH; y++ {
		row := on[int(r.ym[y])*r.W : (int(r.ym[y])+1)*r.W]
		out := bm.Pix[y*r.FullW : (y+1)*r.FullW]
		for x := range r.FullW {
			if row[r.xm[x]] {
				out[x] = 1
			}
		}
	}
	return bm
}
