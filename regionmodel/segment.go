package regionmodel

import (
	"cmp"
	"image"
	"math"
	"slices"

	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/worker/segment"
)

// Instance is one proposed object.
type Instance struct {
	Label string
	Score float32      // mean probability of its class over its pixels
	Mask  *mask.Bitmap // at the photo's full size
}

// MaxInstances bounds the instances Segment returns for one image.
const MaxInstances = 32

// Regions computes an image's regions and their feature vectors with the
// model's segmenter options; the trainer uses it to build its samples.
func (m *Model) Regions(img image.Image) (*segment.Regions, [][NumFeatures]float64) {
	r := segment.FindRegions(img, m.SegmentOptions)
	if r == nil {
		return nil, nil
	}
	return r, features(r)
}

// Probabilities returns the class probabilities of one feature vector,
// background first.
func (m *Model) Probabilities(f *[NumFeatures]float64) []float64 {
	var x [NumFeatures]float64
	for i := range x {
		x[i] = (f[i] - m.Mean[i]) / m.Scale[i]
	}
	return softmax(m.Weights, &x, make([]float64, len(m.Weights)))
}

func softmax(w [][NumFeatures + 1]float64, x *[NumFeatures]float64, out []float64) []float64 {
	best := math.Inf(-1)
	for c, row := range w {
		z := row[NumFeatures]
		for i, v := range x {
			z += row[i] * v
		}
		out[c] = z
		best = max(best, z)
	}
	var s float64
	for c := range out {
		out[c] = math.Exp(out[c] - best)
		s += out[c]
	}
	for c := range out {
		out[c] /= s
	}
	return out
}

// Segment proposes the labelled instances of img, best first: every region
// is classified, those whose most probable class is the background or whose
// probability is below MinProb are dropped, and the 8-connected regions of
// one class form an instance. Deterministic, like the segmenter.
func (m *Model) Segment(img image.Image) []Instance {
	r, feats := m.Regions(img)
	if r == nil {
		return nil
	}
	cls := make([]int, r.N)
	prob := make([]float64, r.N)
	for i := range feats {
		p := m.Probabilities(&feats[i])
		best := 0
		for c := range p {
			if p[c] > p[best] {
				best = c
			}
		}
		if best != 0 && p[best] >= m.MinProb {
			cls[i], prob[i] = best, p[best]
		}
	}
	w, h := r.W, r.H
	n := w * h
	comp := make([]int32, n)
	type inst struct {
		class int
		pix   []int32
		score float64
		first int
	}
	var out []inst
	stack := make([]int32, 0, 256)
	for p0 := range n {
		c := cls[r.Label[p0]]
		if c == 0 || comp[p0] != 0 {
			continue
		}
		in := inst{class: c, first: p0}
		comp[p0] = int32(len(out) + 1)
		stack = append(stack[:0], int32(p0))
		var s float64
		for len(stack) > 0 {
			p := int(stack[len(stack)-1])
			stack = stack[:len(stack)-1]
			in.pix = append(in.pix, int32(p))
			s += prob[r.Label[p]]
			x, y := p%w, p/w
			for dy := -1; dy <= 1; dy++ {
				for dx := -1; dx <= 1; dx++ {
					qx, qy := x+dx, y+dy
					if qx < 0 || qy < 0 || qx >= w || qy >= h {
						continue
					}
					q := qy*w + qx
					if comp[q] == 0 && cls[r.Label[q]] == c {
						comp[q] = comp[p0]
						stack = append(stack, int32(q))
					}
				}
			}
		}
		in.score = s / float64(len(in.pix))
		out = append(out, in)
	}
	minPix := m.MinArea * float64(n)
	kept := out[:0]
	for _, in := range out {
		if float64(len(in.pix)) >= minPix {
			kept = append(kept, in)
		}
	}
	slices.SortFunc(kept, func(a, b inst) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return cmp.Compare(a.first, b.first)
	})
	kept = kept[:min(len(kept), MaxInstances)]
	res := make([]Instance, len(kept))
	on := make([]bool, n)
	for i, in := range kept {
		clear(on)
		for _, p := range in.pix {
			on[p] = true
		}
		res[i] = Instance{Label: m.Labels[in.class-1], Score: float32(in.score), Mask: r.Upscale(on)}
	}
	return res
}
