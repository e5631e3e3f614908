package segment

import (
	"errors"
	"image"
	"math"
	"slices"

	"github.com/deepimageshub/imagehub/mask"
)

// Interactive segmentation: a reviewer's clicks (object or background) and
// maybe a box give one mask, in the manner of Lazy Snapping (Li et al.,
// 2004), a graph cut over superpixels rather than pixels.
//
//  1. Prepare (once per image, cached by the worker): the working copy of
//     Segment (area-averaged to InteractiveOptions.WorkSize, CIELAB,
//     smoothed), cut into small graph-based regions (Felzenszwalb and
//     Huttenlocher with a small K), each with its mean colour, area and
//     centroid, and the region adjacency graph with each pair's shared
//     boundary length.
//  2. Seeds. The region under an object click is object, under a
//     background click background (a later click on the same region wins);
//     regions mostly outside the box are background. Without a box or
//     background click, the regions along the image's border that no
//     object click touches stand for the background's colours.
//  3. Colour models, from the seeds: a region's distance to the object is
//     the smallest Lab distance from its colour to an object seed's (and to
//     the instance being refined, when there is one), likewise for the
//     background. Its data cost of being object is dB-share, of being
//     background the object share, times its area; a region far from every
//     object click pays extra to be object, so that a look-alike elsewhere
//     in the photo stays out.
//  4. Smoothness: adjacent regions pay, when cut apart, their boundary
//     length times exp(-d²/2σ²) of their colour distance d, σ being the
//     mean such distance over the image's region pairs.
//  5. Minimum cut (Dinic's max-flow; seeds are infinite links), then only
//     the object regions connected to an object click (or to the instance
//     refined, or inside the box) are kept, with holes of the working grid
//     filled, and brought to full size by nearest neighbour.
//
// The score is the object's mean data confidence, in [0, 1].

// InteractiveOptions tune the interactive segmenter; a zero field takes its
// default.
type InteractiveOptions struct {
	WorkSize  int     // long side of the working copy, px; default 320
	Sigma     float64 // smoothing, px; default 0.6
	K         float64 // Felzenszwalb scale of the superpixels; default 40
	MinRegion int     // smallest superpixel, working px; default 12
	Lambda    float64 // weight of smoothness against data; default 4
	Spatial   float64 // extra object cost per image diagonal away from a click; default 0.6
}

func (o InteractiveOptions) withDefaults() InteractiveOptions {
	if o.WorkSize <= 0 {
		o.WorkSize = 320
	}
	if o.Sigma <= 0 {
		o.Sigma = 0.6
	}
	if o.K <= 0 {
		o.K = 40
	}
	if o.MinRegion <= 0 {
		o.MinRegion = 12
	}
	if o.Lambda <= 0 {
		o.Lambda = 4
	}
	if o.Spatial <= 0 {
		o.Spatial = 0.6
	}
	return o
}

// Prepared is an image made ready for prompts: immutable, so any number of
// prompts may use it at once.
type Prepared struct {
	W, H   int // full size
	g      *grid
	labels []int32 // working pixel → superpixel
	regs   []superpixel
	links  []link // adjacent pairs, a < b, sorted
	sigma2 float64
	opt    InteractiveOptions
}

type superpixel struct {
	lab    [3]float64
	area   int
	cx, cy float64 // centroid, working px
	border bool    // touches the image's border
}

type link struct {
	a, b   int32
	length float64 // shared boundary, working px
}

// Prepare computes what every prompt on img needs.
func Prepare(img image.Image, opt InteractiveOptions) *Prepared {
	opt = opt.withDefaults()
	b := img.Bounds()
	g := newGrid(img, opt.WorkSize)
	g.toLab()
	g.blur(opt.Sigma)
	labels, n := g.regions(opt.K, opt.MinRegion)
	p := &Prepared{W: b.Dx(), H: b.Dy(), g: g, labels: labels, regs: make([]superpixel, n), opt: opt}
	w, h := g.w, g.h
	pairs := map[uint64]int32{}
	for y := range h {
		for x := range w {
			i := y*w + x
			l := labels[i]
			r := &p.regs[l]
			r.area++
			for c := range 3 {
				r.lab[c] += float64(g.c[c][i])
			}
			r.cx += float64(x)
			r.cy += float64(y)
			if x == 0 || y == 0 || x == w-1 || y == h-1 {
				r.border = true
			}
			if x+1 < w && labels[i+1] != l {
				pairs[pairKey(l, labels[i+1])]++
			}
			if y+1 < h && labels[i+w] != l {
				pairs[pairKey(l, labels[i+w])]++
			}
		}
	}
	for i := range p.regs {
		r := &p.regs[i]
		a := float64(r.area)
		for c := range 3 {
			r.lab[c] /= a
		}
		r.cx /= a
		r.cy /= a
	}
	keys := make([]uint64, 0, len(pairs))
	for k := range pairs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	p.links = make([]link, len(keys))
	var sum float64
	for i, k := range keys {
		a, bb := int32(k>>32), int32(uint32(k))
		p.links[i] = link{a: a, b: bb, length: float64(pairs[k])}
		d := labDist(p.regs[a].lab, p.regs[bb].lab)
		sum += d * d
	}
	p.sigma2 = 25
	if len(keys) > 0 {
		p.sigma2 = max(p.sigma2, sum/float64(len(keys)))
	}
	return p
}

func pairKey(a, b int32) uint64 {
	if a > b {
		a, b = b, a
	}
	return uint64(a)<<32 | uint64(b)
}

// Regions is the number of superpixels, for tests and logs.
func (p *Prepared) Regions() int { return len(p.regs) }

// Click is a prompt point in full-size pixels.
type Click struct {
	X, Y   float64
	Object bool
}

// ErrEmptyPrompt is returned for a prompt with no object click, no box and
// no instance: nothing says what the object is.
var ErrEmptyPrompt = errors.New("segment: the prompt has no object click, box or instance")

// Prompt segments the object the prompt points at. box (x1 y1 x2 y2, full
// size) and instance (the mask being refined, at full size) may be nil.
// The mask is at full size; clicks outside the image are clamped to it.
func (p *Prepared) Prompt(clicks []Click, box *[4]float64, instance *mask.Bitmap) (*mask.Bitmap, float32, error) {
	n := len(p.regs)
	g := p.g
	const (
		free = iota
		object
		background
	)
	seed := make([]uint8, n)
	clickAt := func(c Click) (int, int) {
		x := min(max(int(c.X), 0), p.W-1)
		y := min(max(int(c.Y), 0), p.H-1)
		return int(g.xm[x]), int(g.ym[y])
	}
	var objClicks [][2]int
	for _, c := range clicks {
		x, y := clickAt(c)
		r := p.labels[y*g.w+x]
		if c.Object {
			seed[r] = object
			objClicks = append(objClicks, [2]int{x, y})
		} else {
			seed[r] = background
		}
	}
	// Regions mostly outside the box are background; inside counts pixels.
	var inside []int32
	if box != nil {
		x0, y0 := g.workX(box[0], p.W), g.workY(box[1], p.H)
		x1, y1 := g.workX(box[2], p.W), g.workY(box[3], p.H)
		inside = make([]int32, n)
		for y := y0; y <= y1; y++ {
			for x := x0; x <= x1; x++ {
				inside[p.labels[y*g.w+x]]++
			}
		}
		for i := range seed {
			if 2*int(inside[i]) < p.regs[i].area && seed[i] != object {
				seed[i] = background
			}
		}
	}
	// The instance being refined: regions mostly in it.
	var prior []bool
	if instance != nil && instance.W == p.W && instance.H == p.H {
		cnt := make([]int32, n)
		for y := range p.H {
			row := instance.Pix[y*p.W : (y+1)*p.W]
			base := int(g.ym[y]) * g.w
			for x, v := range row {
				if v != 0 {
					cnt[p.labels[base+int(g.xm[x])]]++
				}
			}
		}
		// cnt is in full-size pixels; a working pixel stands for sx·sy.
		per := float64(p.W) * float64(p.H) / float64(g.w*g.h)
		prior = make([]bool, n)
		anyOn := false
		for i := range prior {
			prior[i] = float64(cnt[i]) >= 0.5*per*float64(p.regs[i].area)
			anyOn = anyOn || prior[i]
		}
		if !anyOn {
			prior = nil
		}
	}
	if len(objClicks) == 0 && box == nil && prior == nil {
		return nil, 0, ErrEmptyPrompt
	}

	// Colour samples.
	var fgS, bgS [][3]float64
	hasBg := false
	for i, s := range seed {
		switch {
		case s == object, s == free && prior != nil && prior[i]:
			fgS = append(fgS, p.regs[i].lab)
		case s == background:
			bgS = append(bgS, p.regs[i].lab)
			hasBg = true
		}
	}
	if len(fgS) == 0 && inside != nil {
		// A box alone: what it holds stands for the object at first.
		for i := range seed {
			if seed[i] == free {
				fgS = append(fgS, p.regs[i].lab)
			}
		}
	}
	if !hasBg || box == nil {
		for i, r := range p.regs {
			if r.border && seed[i] != object && (prior == nil || !prior[i]) {
				bgS = append(bgS, r.lab)
			}
		}
	}
	fgS, bgS = dedupe(fgS), dedupe(bgS)

	fg := p.cut(seed, fgS, bgS, objClicks, prior, inside)
	if len(objClicks) == 0 && prior == nil {
		// A box alone: learn the object's colours from the first cut and
		// cut again, as GrabCut iterates.
		fgS = fgS[:0]
		for i, on := range fg {
			if on {
				fgS = append(fgS, p.regs[i].lab)
			}
		}
		if len(fgS) > 0 {
			fg = p.cut(seed, dedupe(fgS), bgS, objClicks, prior, inside)
		}
	}
	p.keepConnected(fg, seed, objClicks, prior, inside)
	return p.render(fg)
}

// cut builds the graph and returns each region's side.
func (p *Prepared) cut(seed []uint8, fgS, bgS [][3]float64, clicks [][2]int, prior []bool, inside []int32) []bool {
	n := len(p.regs)
	s, t := n, n+1
	fg := newFlowGraph(n + 2)
	diag := math.Hypot(float64(p.g.w), float64(p.g.h))
	for i, r := range p.regs {
		switch seed[i] {
		case 1:
			fg.addEdge(s, i, inf, 0)
			continue
		case 2:
			fg.addEdge(i, t, inf, 0)
			continue
		}
		dF, dB := nearest(r.lab, fgS), nearest(r.lab, bgS)
		costFg := dF / (dF + dB + 1e-9) // paid when labelled object
		costBg := 1 - costFg
		if len(clicks) > 0 {
			near := math.Inf(1)
			for _, c := range clicks {
				near = min(near, math.Hypot(r.cx-float64(c[0]), r.cy-float64(c[1])))
			}
			costFg += p.opt.Spatial * near / diag
		}
		if prior != nil && prior[i] {
			costBg += 0.5
		}
		a := float64(r.area)
		// s→i is cut when i ends up background; i→t when it is object.
		fg.addEdge(s, i, a*costBg, 0)
		fg.addEdge(i, t, a*costFg, 0)
	}
	for _, l := range p.links {
		d := labDist(p.regs[l.a].lab, p.regs[l.b].lab)
		w := p.opt.Lambda * l.length * math.Exp(-d*d/(2*p.sigma2))
		fg.addEdge(int(l.a), int(l.b), w, w)
	}
	fg.maxFlow(s, t)
	out := make([]bool, n)
	for i := range out {
		out[i] = fg.source(i)
	}
	return out
}

// keepConnected drops object regions not connected to what the prompt
// points at: an object click, the refined instance, or (a box alone) the
// largest object part inside the box.
func (p *Prepared) keepConnected(fg []bool, seed []uint8, clicks [][2]int, prior []bool, inside []int32) {
	n := len(p.regs)
	adj := make([][]int32, n)
	for _, l := range p.links {
		if fg[l.a] && fg[l.b] {
			adj[l.a] = append(adj[l.a], l.b)
			adj[l.b] = append(adj[l.b], l.a)
		}
	}
	comp := make([]int32, n)
	for i := range comp {
		comp[i] = -1
	}
	var areas []int
	var stack []int32
	for i := range n {
		if !fg[i] || comp[i] >= 0 {
			continue
		}
		id := int32(len(areas))
		area := 0
		comp[i] = id
		stack = append(stack[:0], int32(i))
		for len(stack) > 0 {
			u := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			area += p.regs[u].area
			for _, v := range adj[u] {
				if comp[v] < 0 {
					comp[v] = id
					stack = append(stack, v)
				}
			}
		}
		areas = append(areas, area)
	}
	keep := make([]bool, len(areas))
	kept := false
	for i := range n {
		if fg[i] && (seed[i] == 1 || (prior != nil && prior[i])) {
			keep[comp[i]], kept = true, true
		}
	}
	if !kept {
		best := -1
		for c, a := range areas {
			if best < 0 || a > areas[best] {
				best = c
			}
		}
		if best >= 0 {
			keep[best] = true
		}
	}
	for i := range n {
		if fg[i] && !keep[comp[i]] {
			fg[i] = false
		}
	}
}

// render draws the object regions at full size, filling holes on the
// working grid, and scores them.
func (p *Prepared) render(fg []bool) (*mask.Bitmap, float32, error) {
	g := p.g
	on := make([]bool, g.w*g.h)
	y0, y1 := g.h, -1
	for i, l := range p.labels {
		if fg[l] {
			on[i] = true
			y := i / g.w
			y0, y1 = min(y0, y), max(y1, y)
		}
	}
	fillHolesGrid(g.w, g.h, on)
	bm := mask.NewBitmap(p.W, p.H)
	for y := range p.H {
		ly := int(g.ym[y])
		if ly < y0 || ly > y1 {
			continue
		}
		row := on[ly*g.w : (ly+1)*g.w]
		out := bm.Pix[y*p.W : (y+1)*p.W]
		for x := range p.W {
			if row[g.xm[x]] {
				out[x] = 1
			}
		}
	}
	// Score: how much the object's border stands out, as the share of its
	// boundary links that are colour edges.
	var cut, strong float64
	for _, l := range p.links {
		if fg[l.a] != fg[l.b] {
			d := labDist(p.regs[l.a].lab, p.regs[l.b].lab)
			cut += l.length
			strong += l.length * (1 - math.Exp(-d*d/(2*p.sigma2)))
		}
	}
	score := float32(0)
	if cut > 0 {
		score = float32(strong / cut)
	}
	return bm, score, nil
}

// fillHolesGrid sets every off pixel not reachable from the border through
// off pixels (4-connected).
func fillHolesGrid(w, h int, on []bool) {
	seen := make([]bool, len(on))
	stack := make([]int32, 0, 2*(w+h))
	push := func(i int) {
		if !on[i] && !seen[i] {
			seen[i] = true
			stack = append(stack, int32(i))
		}
	}
	for x := range w {
		push(x)
		push((h-1)*w + x)
	}
	for y := range h {
		push(y * w)
		push(y*w + w - 1)
	}
	for len(stack) > 0 {
		i := int(stack[len(stack)-1])
		stack = stack[:len(stack)-1]
		x, y := i%w, i/w
		if x > 0 {
			push(i - 1)
		}
		if x+1 < w {
			push(i + 1)
		}
		if y > 0 {
			push(i - w)
		}
		if y+1 < h {
			push(i + w)
		}
	}
	for i := range on {
		if !on[i] && !seen[i] {
			on[i] = true
		}
	}
}

// nearest is the smallest Lab distance from c to a sample; a large one
// when there are none.
func nearest(c [3]float64, samples [][3]float64) float64 {
	best := math.Inf(1)
	for _, s := range samples {
		d0, d1, d2 := c[0]-s[0], c[1]-s[1], c[2]-s[2]
		best = min(best, d0*d0+d1*d1+d2*d2)
	}
	if math.IsInf(best, 1) {
		return 100
	}
	return math.Sqrt(best)
}

// dedupe keeps one sample per 2-unit Lab cell, in order, so the colour
// models stay small on large images.
func dedupe(s [][3]float64) [][3]float64 {
	seen := make(map[[3]int32]bool, len(s))
	out := s[:0:0]
	for _, c := range s {
		k := [3]int32{int32(math.Floor(c[0] / 2)), int32(math.Floor(c[1] / 2)), int32(math.Floor(c[2] / 2))}
		if !seen[k] {
			seen[k] = true
			out = append(out, c)
		}
	}
	return out
}

// workX maps a full-size x (a box edge) to a working column.
func (g *grid) workX(x float64, W int) int {
	return int(g.xm[min(max(int(x), 0), W-1)])
}

func (g *grid) workY(y float64, H int) int {
	return int(g.ym[min(max(int(y), 0), H-1)])
}
