package regionmodel

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/deepimageshub/imagehub/worker/segment"
)

// Sample is one region's features and its class (0 background, else the
// index of its label plus one).
type Sample struct {
	X     [NumFeatures]float64
	Class int
}

// FitOptions tune Fit.
type FitOptions struct {
	Epochs       int     // passes over the samples
	LearningRate float64 // SGD step
	L2           float64 // weight decay
	Batch        int     // samples per step; default 32
	Seed         uint64  // order of the samples in each epoch
	Segment      segment.Options
	MinProb      float64
	MinArea      float64
	// Progress, when set, is called after every epoch with the epoch (from
	// 1) and the mean class-weighted cross-entropy over the epoch.
	Progress func(epoch int, loss float64)
}

// Fit trains a model by mini-batch gradient descent on the softmax
// cross-entropy, each class weighted by the inverse of its frequency so
// that the many background regions do not drown the objects. The result
// depends only on the samples, their order and the options: the same seed
// gives the same weights bit for bit.
func Fit(ctx context.Context, labels []string, samples []Sample, opt FitOptions) (*Model, error) {
	if len(samples) == 0 {
		return nil, fmt.Errorf("error fitting: no samples")
	}
	if opt.Batch <= 0 {
		opt.Batch = 32
	}
	C := len(labels) + 1
	m := &Model{Labels: labels, Weights: make([][NumFeatures + 1]float64, C), SegmentOptions: opt.Segment, MinProb: opt.MinProb, MinArea: opt.MinArea}
	count := make([]float64, C)
	for _, s := range samples {
		if s.Class < 0 || s.Class >= C {
			return nil, fmt.Errorf("error fitting: class %d out of range", s.Class)
		}
		count[s.Class]++
		for i, v := range s.X {
			m.Mean[i] += v
		}
	}
	N := float64(len(samples))
	for i := range m.Mean {
		m.Mean[i] /= N
	}
	for _, s := range samples {
		for i, v := range s.X {
			d := v - m.Mean[i]
			m.Scale[i] += d * d
		}
	}
	for i := range m.Scale {
		m.Scale[i] = math.Sqrt(m.Scale[i]/N) + 1e-6
	}
	weight := make([]float64, C)
	var present float64
	for c := range C {
		if count[c] > 0 {
			present++
		}
	}
	for c := range C {
		if count[c] > 0 {
			weight[c] = N / (present * count[c])
		}
	}
	xs := make([][NumFeatures]float64, len(samples))
	for k, s := range samples {
		for i, v := range s.X {
			xs[k][i] = (v - m.Mean[i]) / m.Scale[i]
		}
	}
	order := make([]int, len(samples))
	for i := range order {
		order[i] = i
	}
	rng := rand.New(rand.NewPCG(opt.Seed, 0x1ab5))
	grad := make([][NumFeatures + 1]float64, C)
	p := make([]float64, C)
	for epoch := 1; epoch <= opt.Epochs; epoch++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		var loss, wsum float64
		for b0 := 0; b0 < len(order); b0 += opt.Batch {
			batch := order[b0:min(b0+opt.Batch, len(order))]
			clear(grad)
			var bw float64
			for _, k := range batch {
				x, y := &xs[k], samples[k].Class
				softmax(m.Weights, x, p)
				wt := weight[y]
				loss -= wt * math.Log(max(p[y], 1e-12))
				wsum += wt
				bw += wt
				for c := range C {
					g := p[c]
					if c == y {
						g--
					}
					g *= wt
					for i, v := range x {
						grad[c][i] += g * v
					}
					grad[c][NumFeatures] += g
				}
			}
			step := opt.LearningRate / bw
			for c := range C {
				for i := range NumFeatures {
					m.Weights[c][i] -= step*grad[c][i] + opt.LearningRate*opt.L2*m.Weights[c][i]
				}
				m.Weights[c][NumFeatures] -= step * grad[c][NumFeatures]
			}
		}
		if opt.Progress != nil {
			opt.Progress(epoch, loss/wsum)
		}
	}
	return m, m.Validate()
}
