package trainer

import (
	"context"
	"fmt"
	"image"
	"math"

	"github.com/deepimageshub/imagehub/cocoeval"
	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/regionmodel"
	"github.com/deepimageshub/imagehub/worker/segment"
)

// regionClassifier learns which of the segmenter's regions belong to which
// label (docs/recipes.md says what it can and cannot learn).
func regionClassifier() Recipe {
	return Recipe{
		Name: "region-classifier",
		Description: "Classifies the built-in segmenter's regions by colour, texture, position and shape " +
			"(multinomial logistic regression, pure Go, CPU, minutes for a few hundred images) and joins " +
			"the touching regions of a label into instances.",
		LabelsMax:  20,
		DataFormat: "coco",
		Params: []Param{
			{Name: "epochs", Type: "int", Default: 60, Min: 1, Max: 500, Description: "passes of gradient descent over the regions"},
			{Name: "learning_rate", Type: "float", Default: 0.2, Min: 0.0001, Max: 2, Description: "step of gradient descent"},
			{Name: "l2", Type: "float", Default: 0.0001, Min: 0, Max: 0.1, Description: "weight decay, against over-fitting small sets"},
			{Name: "max_images", Type: "int", Default: 2000, Min: 1, Max: 100000, Description: "train on at most this many images of the train split (the first by id)"},
			{Name: "min_prob", Type: "float", Default: 0.5, Min: 0, Max: 0.99, Description: "lowest class probability of a region the model keeps"},
		},
		train: trainRegionClassifier,
	}
}

// The segmenter's options for the regions: finer than the worker's default
// (K 300) so that a region rarely straddles an object and its background.
var regionOptions = segment.Options{WorkSize: 256, Sigma: 0.8, K: 150}

const (
	// A region is a sample of a label when at least this share of its
	// pixels lies in one instance of it, and of the background when less
	// than bgOverlap lies in any instance; regions in between are left out.
	fgOverlap = 0.5
	bgOverlap = 0.1
	minArea   = 0.002
)

func trainRegionClassifier(ctx context.Context, j Job) (*Result, error) {
	epochs := int(j.Params["epochs"])
	imgs := j.Train.Images[:min(len(j.Train.Images), int(j.Params["max_images"]))]
	if len(imgs) == 0 {
		return nil, fmt.Errorf("error training: the train split holds no images")
	}
	steps := len(imgs) + epochs + len(j.Val.Images)
	class := map[string]int{}
	for i, l := range j.Labels {
		class[l] = i + 1
	}
	probe := &regionmodel.Model{SegmentOptions: regionOptions}
	var samples []regionmodel.Sample
	for i, im := range imgs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		pix, err := j.Train.Decode(im)
		if err != nil {
			return nil, fmt.Errorf("error training: %w", err)
		}
		s, err := regionSamples(probe, pix, im, class)
		if err != nil {
			return nil, fmt.Errorf("error training on image %d: %w", im.ID, err)
		}
		samples = append(samples, s...)
		j.Report(Progress{Step: i + 1, Steps: steps, State: "running"})
	}
	m, err := regionmodel.Fit(ctx, j.Labels, samples, regionmodel.FitOptions{
		Epochs: epochs, LearningRate: j.Params["learning_rate"], L2: j.Params["l2"],
		Seed: uint64(j.Seed), Segment: regionOptions, MinProb: j.Params["min_prob"], MinArea: minArea,
		Progress: func(epoch int, loss float64) {
			e, l := epoch, loss
			j.Report(Progress{Step: len(imgs) + epoch, Steps: steps, Epoch: &e, Loss: &l, State: "running"})
		},
	})
	if err != nil {
		return nil, fmt.Errorf("error training: %w", err)
	}
	art, err := m.Bytes()
	if err != nil {
		return nil, err
	}
	metrics, err := Evaluate(ctx, m, j.Val, func(done int) {
		j.Report(Progress{Step: len(imgs) + epochs + done, Steps: steps, State: "evaluating"})
	})
	if err != nil {
		return nil, err
	}
	metrics["train_images"] = len(imgs)
	metrics["train_regions"] = len(samples)
	return &Result{Artifact: art, Format: regionmodel.Format, Metrics: metrics}, nil
}

// regionSamples labels each region of an image by its overlap with the
// ground truth.
func regionSamples(probe *regionmodel.Model, pix image.Image, im Image, class map[string]int) ([]regionmodel.Sample, error) {
	r, feats := probe.Regions(pix)
	if r == nil {
		return nil, nil
	}
	size := make([]int, r.W*r.H) // full-size pixels per working pixel
	for y := range r.FullH {
		for x := range r.FullW {
			size[r.WorkPixel(x, y)]++
		}
	}
	area := make([]int, r.N)
	for i := range r.Label {
		area[r.Label[i]] += size[i]
	}
	best := make([]float64, r.N)
	bestClass := make([]int, r.N)
	cover := make([]float64, r.N)
	in := make([]int, r.N)
	for _, t := range im.Instances {
		c, ok := class[t.Label]
		if !ok {
			continue
		}
		bm, err := t.Mask.Decode()
		if err != nil {
			return nil, fmt.Errorf("error decoding a mask: %w", err)
		}
		if bm.W != r.FullW || bm.H != r.FullH {
			return nil, fmt.Errorf("a mask is %dx%d, its image %dx%d", bm.W, bm.H, r.FullW, r.FullH)
		}
		clear(in)
		for y := range bm.H {
			row := bm.Pix[y*bm.W : (y+1)*bm.W]
			for x, v := range row {
				if v != 0 {
					in[r.Label[r.WorkPixel(x, y)]]++
				}
			}
		}
		for k := range in {
			f := float64(in[k]) / float64(max(area[k], 1))
			cover[k] += f
			if f > best[k] {
				best[k], bestClass[k] = f, c
			}
		}
	}
	var out []regionmodel.Sample
	for k := range r.N {
		switch {
		case best[k] >= fgOverlap:
			out = append(out, regionmodel.Sample{X: feats[k], Class: bestClass[k]})
		case cover[k] < bgOverlap:
			out = append(out, regionmodel.Sample{X: feats[k], Class: 0})
		}
	}
	return out, nil
}

// Evaluate runs m over the split and scores its instances with the COCO
// API's method (package cocoeval), beside the built-in segmenter's with its
// worker defaults, labelled as the worker labels them when given the
// model's labels as hints (the i-th instance takes label i mod K). done is
// called after each image.
func Evaluate(ctx context.Context, m *regionmodel.Model, val *Split, done func(int)) (map[string]any, error) {
	cats := make([]int64, len(m.Labels))
	class := map[string]int64{}
	for i, l := range m.Labels {
		cats[i] = int64(i + 1)
		class[l] = int64(i + 1)
	}
	var ids []int64
	var gts []cocoeval.GroundTruth
	var dts, base []cocoeval.Detection
	for i, im := range val.Images {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		pix, err := val.Decode(im)
		if err != nil {
			return nil, fmt.Errorf("error evaluating: %w", err)
		}
		ids = append(ids, im.ID)
		for _, t := range im.Instances {
			if c, ok := class[t.Label]; ok {
				a, _ := t.Mask.Area()
				gts = append(gts, cocoeval.GroundTruth{ImageID: im.ID, CategoryID: c, Mask: t.Mask, Area: float64(a)})
			}
		}
		for _, in := range m.Segment(pix) {
			dts = append(dts, cocoeval.Detection{ImageID: im.ID, CategoryID: class[in.Label], Mask: mask.Encode(in.Mask), Score: float64(in.Score)})
		}
		for k, in := range segment.Segment(pix, segment.Options{}) {
			base = append(base, cocoeval.Detection{ImageID: im.ID, CategoryID: cats[k%len(cats)], Mask: mask.Encode(in.Mask), Score: float64(in.Score)})
		}
		if done != nil {
			done(i + 1)
		}
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("error evaluating: the val split holds no images")
	}
	res, err := cocoeval.Evaluate(ids, cats, gts, dts)
	if err != nil {
		return nil, fmt.Errorf("error evaluating the model: %w", err)
	}
	bres, err := cocoeval.Evaluate(ids, cats, gts, base)
	if err != nil {
		return nil, fmt.Errorf("error evaluating the segmenter: %w", err)
	}
	per := map[string]any{}
	for i, l := range m.Labels {
		c, b := res.PerClass[cats[i]], bres.PerClass[cats[i]]
		per[l] = map[string]any{"AP": round(c.AP), "AP50": round(c.AP50), "baseline_AP50": round(b.AP50), "instances": c.Instances, "detections": c.Detections}
	}
	return map[string]any{
		"AP": round(res.Stats.AP), "AP50": round(res.Stats.AP50), "AP75": round(res.Stats.AP75),
		"baseline_AP": round(bres.Stats.AP), "baseline_AP50": round(bres.Stats.AP50),
		"baseline":  "imagehub-segmenter (worker defaults, labels from hints)",
		"per_class": per, "val_images": len(ids),
	}, nil
}

// round keeps metrics readable and stable in JSON.
func round(v float64) float64 { return math.Round(v*1e6) / 1e6 }
