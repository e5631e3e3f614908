// Package cocoeval computes the COCO instance-segmentation metrics of a set
// of detections against ground truth exactly as the COCO API's evaluator
// (pycocotools' COCOeval with iouType "segm" and its default parameters)
// computes them, so that the hub's figures equal those any ML engineer gets
// from pycocotools on the same annotations and detections.
//
// The definition it follows, step by step:
//
//   - Images and categories are taken in increasing id order. Ground truth
//     and detections are grouped by (image, category); within a group they
//     keep the order they were given in (the order of a COCO file).
//   - A ground truth is ignored when it is a crowd. Per area range
//     (all [0, 1e10], small [0, 32²], medium [32², 96²], large [96², 1e10],
//     bounds included) a ground truth whose Area lies outside is ignored
//     too; ignored ones are moved after the others, stably.
//   - Per group, detections are sorted by score, highest first, stably
//     (numpy's mergesort: equal scores keep their order), and only the first
//     100 are kept.
//   - The IoU of a detection and a ground truth is that of their masks;
//     against a crowd it is the intersection over the detection's own area
//     ([mask.CrowdIoU]); masks of different sizes get -1.
//   - At each IoU threshold t of 0.50, 0.55 … 0.95, each detection in order
//     takes the ground truth with the highest IoU of at least min(t,
//     1-1e-10) among those not yet taken (a crowd may be taken many times),
//     preferring any non-ignored one to an ignored one (the search stops at
//     the first ignored ground truth once it holds a non-ignored match); a
//     later ground truth with an equal IoU wins. A detection matched to an
//     ignored ground truth is ignored, and so is an unmatched one whose own
//     mask area lies outside the area range.
//   - Per category, area range and maxDets (1, 10, 100), the first maxDets
//     detections of every image are pooled and sorted again by score,
//     stably, in image order. With npig the number of non-ignored ground
//     truths (none: precision and recall stay -1), tp and fp are the running
//     counts of matched and unmatched non-ignored detections; recall is
//     tp/npig, precision tp/(tp+fp+ε) with ε = 2⁻⁵², made non-increasing
//     from the right; the precision at each of the 101 recall thresholds
//     0, 0.01 … 1 is that of the first detection whose recall reaches the
//     threshold, and 0 past the last one. The recall of the setting is the
//     last recall, 0 with no detections.
//   - A summary figure is the mean of the values that are not -1 over the
//     thresholds, recall points and categories it covers, -1 when there are
//     none (summarize()).
//
// Thresholds are made as numpy's linspace makes them, and means are summed
// pairwise as numpy sums, so figures agree with pycocotools' to the last
// bits or nearly: TestGolden holds them within 1e-12 of the COCO API's own.
package cocoeval

import (
	"cmp"
	"fmt"
	"math"
	"slices"

	"github.com/deepimageshub/imagehub/mask"
)

// GroundTruth is one annotated instance.
type GroundTruth struct {
	ImageID    int64
	CategoryID int64
	Mask       mask.RLE
	// Area decides the instance's area range. COCO takes it from the
	// annotation's "area" field, not from the mask.
	Area float64
	// Crowd marks a region of many instances (COCO's iscrowd): it is never
	// counted, and detections inside it are neither right nor wrong.
	Crowd bool
}

// Detection is one instance a model proposed.
type Detection struct {
	ImageID    int64
	CategoryID int64
	Mask       mask.RLE
	Score      float64
}

// Stats are the twelve figures of COCOeval.summarize(), in its order: AP
// over IoU .50:.95, at .50 and at .75, AP of small, medium and large
// instances (maxDets 100), AR at maxDets 1, 10, 100, and AR of small,
// medium and large instances (maxDets 100). -1 means no ground truth.
type Stats struct {
	AP    float64 `json:"AP"`
	AP50  float64 `json:"AP50"`
	AP75  float64 `json:"AP75"`
	APs   float64 `json:"APs"`
	APm   float64 `json:"APm"`
	APl   float64 `json:"APl"`
	AR1   float64 `json:"AR1"`
	AR10  float64 `json:"AR10"`
	AR100 float64 `json:"AR100"`
	ARs   float64 `json:"ARs"`
	ARm   float64 `json:"ARm"`
	ARl   float64 `json:"ARl"`
}

// Class is one category's figures at area "all" and maxDets 100: AP over
// IoU .50:.95, AP50 and AP75 (-1 without ground truth), and its counts.
type Class struct {
	AP   float64 `json:"AP"`
	AP50 float64 `json:"AP50"`
	AP75 float64 `json:"AP75"`
	// Instances counts its ground truth that is not a crowd.
	Instances int `json:"instances"`
	// Detections counts its detections on the evaluated images.
	Detections int `json:"detections"`
}

// Result is an evaluation's outcome.
type Result struct {
	Stats    Stats
	PerClass map[int64]Class
}

// The default parameters of COCOeval for iouType "segm".
var (
	iouThrs = linspace(0.5, 0.95, 10)
	recThrs = linspace(0, 1, 101)
	maxDets = [...]int{1, 10, 100}
	// areaRanges are all, small, medium, large.
	areaRanges = [...][2]float64{{0, 1e5 * 1e5}, {0, 32 * 32}, {32 * 32, 96 * 96}, {96 * 96, 1e5 * 1e5}}
)

const (
	numT = 10
	numR = 101
	numA = len(areaRanges)
	numM = len(maxDets)
	// eps is numpy's spacing(1), added to precision's denominator.
	eps = 0x1p-52
)

// linspace returns numpy.linspace(start, stop, n) bit for bit: i·step +
// start, and stop itself last. The conversions stop the compiler from
// fusing the multiply and the add, which would round differently.
func linspace(start, stop float64, n int) []float64 {
	step := (stop - start) / float64(n-1)
	out := make([]float64, n)
	for i := range out {
		out[i] = float64(float64(i)*step) + start
	}
	out[n-1] = stop
	return out
}

// thresholdIndex is where summarize() finds an IoU threshold: the one equal
// to it, or -1.
func thresholdIndex(t float64) int {
	return slices.Index(iouThrs, t)
}

type groupKey struct{ image, category int64 }

// group is the ground truth and detections of one image and category, in
// input order, with the IoUs of the (sorted, truncated) detections.
type group struct {
	gts []int
	dts []int // sorted by score and truncated to the largest maxDets
	// ious[d][g]: detection dts[d] against ground truth gts[g].
	ious [][]float64
}

// imageEval is evaluateImg's outcome for one image, category and area
// range: per threshold, which detections matched and which are ignored.
type imageEval struct {
	scores   []float64 // of the detections, sorted
	matched  [numT][]bool
	ignored  [numT][]bool
	gtIgnore []bool
}

// Evaluate scores dts against gts over the given images and categories, as
// COCOeval.evaluate(), accumulate() and summarize() do. Ground truth and
// detections must lie on the given images, and ground truth in the given
// categories; detections of other categories are left out, as COCOeval
// leaves them out.
func Evaluate(images, categories []int64, gts []GroundTruth, dts []Detection) (*Result, error) {
	imgs := slices.Clone(images)
	slices.Sort(imgs)
	imgs = slices.Compact(imgs)
	cats := slices.Clone(categories)
	slices.Sort(cats)
	cats = slices.Compact(cats)
	_, knownImage := indexOf(imgs)
	_, knownCat := indexOf(cats)

	groups := map[groupKey]*group{}
	get := func(k groupKey) *group {
		g := groups[k]
		if g == nil {
			g = &group{}
			groups[k] = g
		}
		return g
	}
	for i, g := range gts {
		if !knownImage(g.ImageID) {
			return nil, fmt.Errorf("ground truth %d is on image %d, which is not evaluated", i, g.ImageID)
		}
		if !knownCat(g.CategoryID) {
			return nil, fmt.Errorf("ground truth %d is of category %d, which is not evaluated", i, g.CategoryID)
		}
		get(groupKey{g.ImageID, g.CategoryID}).gts = append(get(groupKey{g.ImageID, g.CategoryID}).gts, i)
	}
	dtArea := make([]float64, len(dts))
	detections := map[int64]int{}
	for i, d := range dts {
		if !knownImage(d.ImageID) {
			return nil, fmt.Errorf("detection %d is on image %d, which is not evaluated", i, d.ImageID)
		}
		if !knownCat(d.CategoryID) {
			continue
		}
		if math.IsNaN(d.Score) {
			return nil, fmt.Errorf("detection %d has no score (NaN)", i)
		}
		a, err := d.Mask.Area()
		if err != nil {
			return nil, fmt.Errorf("error reading the mask of detection %d: %w", i, err)
		}
		dtArea[i] = float64(a)
		detections[d.CategoryID]++
		k := groupKey{d.ImageID, d.CategoryID}
		get(k).dts = append(get(k).dts, i)
	}

	// computeIoU: detections by score, at most the largest maxDets.
	for k, g := range groups {
		sortByScore(g.dts, func(i int) float64 { return dts[i].Score })
		g.dts = g.dts[:min(len(g.dts), maxDets[numM-1])]
		g.ious = make([][]float64, len(g.dts))
		for di, d := range g.dts {
			row := make([]float64, len(g.gts))
			for gi, t := range g.gts {
				iou, err := maskIoU(dts[d].Mask, gts[t].Mask, gts[t].Crowd)
				if err != nil {
					return nil, fmt.Errorf("error comparing masks on image %d, category %d: %w", k.image, k.category, err)
				}
				row[gi] = iou
			}
			g.ious[di] = row
		}
	}

	K := len(cats)
	precision := newGrid(numT * numR * K * numA * numM)
	recall := newGrid(numT * K * numA * numM)
	pIdx := func(t, r, k, a, m int) int { return (((t*numR+r)*K+k)*numA+a)*numM + m }
	rIdx := func(t, k, a, m int) int { return ((t*K+k)*numA+a)*numM + m }

	evals := make([]*imageEval, len(imgs))
	for k, cat := range cats {
		for a, rng := range areaRanges {
			for i, img := range imgs {
				evals[i] = nil
				if g := groups[groupKey{img, cat}]; g != nil {
					evals[i] = evaluateImage(g, gts, dts, dtArea, rng)
				}
			}
			for m, maxDet := range maxDets {
				accumulate(evals, maxDet, func(t, r int, v float64) {
					precision[pIdx(t, r, k, a, m)] = v
				}, func(t int, v float64) {
					recall[rIdx(t, k, a, m)] = v
				})
			}
		}
	}

	// summarize(): the mean of what is not -1, in numpy's C order.
	meanP := func(ts []int, a, m int, ks []int) float64 {
		var vals []float64
		for _, t := range ts {
			for r := range numR {
				for _, k := range ks {
					if v := precision[pIdx(t, r, k, a, m)]; v > -1 {
						vals = append(vals, v)
					}
				}
			}
		}
		return mean(vals)
	}
	meanR := func(a, m int) float64 {
		var vals []float64
		for t := range numT {
			for k := range K {
				if v := recall[rIdx(t, k, a, m)]; v > -1 {
					vals = append(vals, v)
				}
			}
		}
		return mean(vals)
	}
	allT := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	at := func(thr float64) []int {
		if i := thresholdIndex(thr); i >= 0 {
			return []int{i}
		}
		return nil
	}
	allK := make([]int, K)
	for k := range allK {
		allK[k] = k
	}
	const all, small, medium, large = 0, 1, 2, 3
	res := &Result{
		Stats: Stats{
			AP: meanP(allT, all, 2, allK), AP50: meanP(at(.5), all, 2, allK), AP75: meanP(at(.75), all, 2, allK),
			APs: meanP(allT, small, 2, allK), APm: meanP(allT, medium, 2, allK), APl: meanP(allT, large, 2, allK),
			AR1: meanR(all, 0), AR10: meanR(all, 1), AR100: meanR(all, 2),
			ARs: meanR(small, 2), ARm: meanR(medium, 2), ARl: meanR(large, 2),
		},
		PerClass: make(map[int64]Class, K),
	}
	instances := map[int64]int{}
	for _, g := range gts {
		if !g.Crowd {
			instances[g.CategoryID]++
		}
	}
	for k, cat := range cats {
		ks := []int{k}
		res.PerClass[cat] = Class{
			AP: meanP(allT, all, 2, ks), AP50: meanP(at(.5), all, 2, ks), AP75: meanP(at(.75), all, 2, ks),
			Instances: instances[cat], Detections: detections[cat],
		}
	}
	return res, nil
}

// evaluateImage is COCOeval.evaluateImg for one group and area range.
func evaluateImage(g *group, gts []GroundTruth, dts []Detection, dtArea []float64, rng [2]float64) *imageEval {
	outside := func(area float64) bool { return area < rng[0] || area > rng[1] }
	// Ground truth not ignored first, stably.
	order := make([]int, len(g.gts)) // positions in g.gts
	for i := range order {
		order[i] = i
	}
	ignore := func(gi int) bool {
		t := gts[g.gts[gi]]
		return t.Crowd || outside(t.Area)
	}
	slices.SortStableFunc(order, func(a, b int) int {
		return cmp.Compare(b2i(ignore(a)), b2i(ignore(b)))
	})
	G, D := len(order), len(g.dts)
	e := &imageEval{scores: make([]float64, D), gtIgnore: make([]bool, G)}
	crowd := make([]bool, G)
	for j, gi := range order {
		e.gtIgnore[j] = ignore(gi)
		crowd[j] = gts[g.gts[gi]].Crowd
	}
	for d, di := range g.dts {
		e.scores[d] = dts[di].Score
	}
	for t, thr := range iouThrs {
		matched, ignored := make([]bool, D), make([]bool, D)
		taken := make([]bool, G)
		for d := range D {
			best, m := min(thr, 1-1e-10), -1
			for j, gi := range order {
				if taken[j] && !crowd[j] {
					continue
				}
				if m > -1 && !e.gtIgnore[m] && e.gtIgnore[j] {
					break
				}
				iou := g.ious[d][gi]
				if iou < best {
					continue
				}
				best, m = iou, j
			}
			if m == -1 {
				continue
			}
			matched[d], ignored[d], taken[m] = true, e.gtIgnore[m], true
		}
		for d, di := range g.dts {
			if !matched[d] && outside(dtArea[di]) {
				ignored[d] = true
			}
		}
		e.matched[t], e.ignored[t] = matched, ignored
	}
	return e
}

// accumulate is COCOeval.accumulate for one category and area range at one
// maxDets, over the images' evaluations in image order (nil: the image has
// neither ground truth nor detections of the category). It leaves the
// figures at -1 when there is no ground truth to count.
func accumulate(evals []*imageEval, maxDet int, setPrecision func(t, r int, v float64), setRecall func(t int, v float64)) {
	type pooled struct {
		e *imageEval
		d int
	}
	var dets []pooled
	npig := 0
	seen := false
	for _, e := range evals {
		if e == nil {
			continue
		}
		seen = true
		for d := range min(maxDet, len(e.scores)) {
			dets = append(dets, pooled{e, d})
		}
		for _, ig := range e.gtIgnore {
			if !ig {
				npig++
			}
		}
	}
	if !seen || npig == 0 {
		return
	}
	slices.SortStableFunc(dets, func(a, b pooled) int {
		return cmp.Compare(-a.e.scores[a.d], -b.e.scores[b.d])
	})
	nd := len(dets)
	rc, pr := make([]float64, nd), make([]float64, nd)
	for t := range numT {
		var tp, fp float64
		for i, p := range dets {
			if !p.e.ignored[t][p.d] {
				if p.e.matched[t][p.d] {
					tp++
				} else {
					fp++
				}
			}
			rc[i] = tp / float64(npig)
			pr[i] = tp / (fp + tp + eps)
		}
		if nd > 0 {
			setRecall(t, rc[nd-1])
		} else {
			setRecall(t, 0)
		}
		// The precision envelope: non-increasing from the right.
		for i := nd - 1; i > 0; i-- {
			if pr[i] > pr[i-1] {
				pr[i-1] = pr[i]
			}
		}
		// searchsorted(rc, recThrs, side="left"): the first detection whose
		// recall reaches each threshold; none, and the precision is 0.
		i := 0
		for r, thr := range recThrs {
			for i < nd && rc[i] < thr {
				i++
			}
			if i < nd {
				setPrecision(t, r, pr[i])
			} else {
				setPrecision(t, r, 0)
			}
		}
	}
}

// maskIoU is the COCO API's iou of a detection and a ground truth: -1 for
// masks of different sizes, which then never match.
func maskIoU(dt, gt mask.RLE, crowd bool) (float64, error) {
	if dt.Size != gt.Size {
		return -1, nil
	}
	if crowd {
		return mask.CrowdIoU(dt, gt)
	}
	return mask.IoU(dt, gt)
}

// sortByScore sorts indices by score, highest first, keeping the order of
// equal scores (numpy's argsort(-scores, kind="mergesort")).
func sortByScore(idx []int, score func(int) float64) {
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(-score(a), -score(b)) })
}

// mean is numpy's mean of a 1-d array: its pairwise sum over its length,
// or -1 (summarize()'s "no value") for an empty one.
func mean(vals []float64) float64 {
	if len(vals) == 0 {
		return -1
	}
	return pairwiseSum(vals) / float64(len(vals))
}

// pairwiseSum adds as numpy's pairwise_sum does: blocks of up to 128 with
// eight accumulators, halves (at multiples of 8) above.
func pairwiseSum(a []float64) float64 {
	n := len(a)
	switch {
	case n < 8:
		s := 0.0
		for _, v := range a {
			s += v
		}
		return s
	case n <= 128:
		var r [8]float64
		copy(r[:], a[:8])
		i := 8
		for ; i < n-n%8; i += 8 {
			for j := range 8 {
				r[j] += a[i+j]
			}
		}
		s := ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
		for ; i < n; i++ {
			s += a[i]
		}
		return s
	default:
		n2 := n / 2
		n2 -= n2 % 8
		return pairwiseSum(a[:n2]) + pairwiseSum(a[n2:])
	}
}

func newGrid(n int) []float64 {
	g := make([]float64, n)
	for i := range g {
		g[i] = -1
	}
	return g
}

func indexOf(ids []int64) (map[int64]int, func(int64) bool) {
	m := make(map[int64]int, len(ids))
	for i, id := range ids {
		m[id] = i
	}
	return m, func(id int64) bool { _, ok := m[id]; return ok }
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
