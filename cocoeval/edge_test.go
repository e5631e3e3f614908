package cocoeval

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/mask"
)

// rect is a w×h box at (x, y) on a 40×40 image.
func rect(x, y, w, h int) mask.RLE {
	b := mask.NewBitmap(40, 40)
	for yy := y; yy < y+h; yy++ {
		for xx := x; xx < x+w; xx++ {
			b.Set(xx, yy, true)
		}
	}
	return mask.Encode(b)
}

func gtRect(img, cat int64, x, y, w, h int) GroundTruth {
	return GroundTruth{ImageID: img, CategoryID: cat, Mask: rect(x, y, w, h), Area: float64(w * h)}
}

func dtRect(img, cat int64, score float64, x, y, w, h int) Detection {
	return Detection{ImageID: img, CategoryID: cat, Mask: rect(x, y, w, h), Score: score}
}

// p1 is the precision of a first detection that is right: 1/(1+ε), not 1.
const p1 = 1 / (1 + eps)

// apOf is the AP of precisions (one per IoU threshold) that hold at every
// recall threshold up to recall 1.
func apOf(perThreshold ...float64) float64 {
	var vals []float64
	for _, p := range perThreshold {
		for range numR {
			vals = append(vals, p)
		}
	}
	return mean(vals)
}

func evaluate(t *testing.T, images, cats []int64, gts []GroundTruth, dts []Detection) *Result {
	t.Helper()
	res, err := Evaluate(images, cats, gts, dts)
	require.NoError(t, err)
	return res
}

func TestEdges(t *testing.T) {
	t.Parallel()

	t.Run("perfect", func(t *testing.T) {
		t.Parallel()
		res := evaluate(t, []int64{1}, []int64{1},
			[]GroundTruth{gtRect(1, 1, 0, 0, 40, 30)},
			[]Detection{dtRect(1, 1, 0.9, 0, 0, 40, 30)})
		require.Equal(t, apOf(p1, p1, p1, p1, p1, p1, p1, p1, p1, p1), res.Stats.AP)
		require.InDelta(t, 1.0, res.Stats.AP, 1e-15)
		require.Equal(t, 1.0, res.Stats.AR100)
		require.Equal(t, -1.0, res.Stats.APs, "no small instance")
		require.Equal(t, res.Stats.AP, res.Stats.APm, "1200 pixels is medium")
		c := res.PerClass[1]
		require.Equal(t, 1, c.Instances)
		require.Equal(t, 1, c.Detections)
		require.Equal(t, res.Stats.AP, c.AP)
		require.Equal(t, res.Stats.AP50, c.AP50)
	})

	t.Run("ties across images keep image order", func(t *testing.T) {
		t.Parallel()
		gts := []GroundTruth{gtRect(1, 1, 0, 0, 10, 10), gtRect(2, 1, 0, 0, 10, 10)}
		// Equal scores: the right one on image 1 comes first.
		res := evaluate(t, []int64{1, 2}, []int64{1}, gts, []Detection{
			dtRect(2, 1, 0.5, 20, 20, 10, 10), dtRect(1, 1, 0.5, 0, 0, 10, 10),
		})
		want := func(p float64) float64 { // precision p up to recall .5, then 0
			var vals []float64
			for range numT {
				for r := range numR {
					if r <= 50 {
						vals = append(vals, p)
					} else {
						vals = append(vals, 0)
					}
				}
			}
			return mean(vals)
		}
		require.Equal(t, want(p1), res.Stats.AP)
		// The right one on image 2: it comes second, precision 1/2.
		res = evaluate(t, []int64{1, 2}, []int64{1}, gts, []Detection{
			dtRect(1, 1, 0.5, 20, 20, 10, 10), dtRect(2, 1, 0.5, 0, 0, 10, 10),
		})
		require.Equal(t, want(0.5), res.Stats.AP)
		require.Equal(t, 0.5, res.Stats.AR100)
	})

	t.Run("ties in an image keep input order", func(t *testing.T) {
		t.Parallel()
		gts := []GroundTruth{gtRect(1, 1, 0, 0, 10, 1)}                              // 10 pixels
		exact, part := dtRect(1, 1, 0.7, 0, 0, 10, 1), dtRect(1, 1, 0.7, 0, 0, 6, 1) // IoU 1 and 0.6
		res := evaluate(t, []int64{1}, []int64{1}, gts, []Detection{exact, part})
		require.Equal(t, apOf(p1, p1, p1, p1, p1, p1, p1, p1, p1, p1), res.Stats.AP)
		// The partial one first takes the ground truth up to IoU .6
		// (included: 6/10 equals the threshold), then misses.
		res = evaluate(t, []int64{1}, []int64{1}, gts, []Detection{part, exact})
		require.Equal(t, apOf(p1, p1, p1, .5, .5, .5, .5, .5, .5, .5), res.Stats.AP)
		require.InDelta(t, p1, res.Stats.AP50, 1e-15)
		require.Equal(t, 0.5, res.Stats.AP75)
	})

	t.Run("duplicate detections", func(t *testing.T) {
		t.Parallel()
		gts := []GroundTruth{gtRect(1, 1, 0, 0, 10, 10)}
		res := evaluate(t, []int64{1}, []int64{1}, gts, []Detection{
			dtRect(1, 1, 0.7, 0, 0, 10, 10), dtRect(1, 1, 0.9, 0, 0, 10, 10), dtRect(1, 1, 0.8, 0, 0, 10, 10),
		})
		require.Equal(t, p1, res.Stats.AP, "the best-scored one matches; the others come after recall 1")
		require.Equal(t, 1.0, res.Stats.AR1)
		// A wrong one scored above the right one halves the precision.
		res = evaluate(t, []int64{1}, []int64{1}, gts, []Detection{
			dtRect(1, 1, 0.8, 0, 0, 10, 10), dtRect(1, 1, 0.9, 20, 20, 10, 10),
		})
		require.Equal(t, 0.5, res.Stats.AP)
		require.Equal(t, 0.0, res.Stats.AR1, "maxDets 1 keeps only the wrong one")
		require.Equal(t, 1.0, res.Stats.AR10)
	})

	t.Run("empty classes", func(t *testing.T) {
		t.Parallel()
		gts := []GroundTruth{gtRect(1, 1, 0, 0, 10, 10)}
		dts := []Detection{dtRect(1, 1, 0.9, 0, 0, 10, 10), dtRect(1, 3, 0.9, 0, 0, 10, 10), dtRect(1, 9, 0.9, 0, 0, 10, 10)}
		base := evaluate(t, []int64{1}, []int64{1}, gts, dts[:1])
		res := evaluate(t, []int64{1}, []int64{1, 2, 3}, gts, dts)
		require.Equal(t, base.Stats, res.Stats, "classes without ground truth change nothing")
		require.Equal(t, Class{AP: -1, AP50: -1, AP75: -1}, res.PerClass[2], "neither ground truth nor detections")
		require.Equal(t, Class{AP: -1, AP50: -1, AP75: -1, Detections: 1}, res.PerClass[3], "detections only")
		require.NotContains(t, res.PerClass, int64(9), "a category not evaluated is left out")

		none := evaluate(t, []int64{1}, []int64{1}, nil, nil)
		require.Equal(t, Stats{-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1}, none.Stats)
	})

	t.Run("images without detections or ground truth", func(t *testing.T) {
		t.Parallel()
		// Image 2 has ground truth and no detection: recall 1/2.
		res := evaluate(t, []int64{1, 2, 3}, []int64{1},
			[]GroundTruth{gtRect(1, 1, 0, 0, 10, 10), gtRect(2, 1, 0, 0, 10, 10)},
			[]Detection{dtRect(1, 1, 0.9, 0, 0, 10, 10)})
		require.Equal(t, 0.5, res.Stats.AR100)
		require.Equal(t, 2, res.PerClass[1].Instances)
		// Image 2 has a detection and no ground truth: a false positive,
		// here the first one.
		res = evaluate(t, []int64{1, 2, 3}, []int64{1},
			[]GroundTruth{gtRect(1, 1, 0, 0, 10, 10)},
			[]Detection{dtRect(1, 1, 0.9, 0, 0, 10, 10), dtRect(2, 1, 0.95, 0, 0, 10, 10)})
		require.Equal(t, 0.5, res.Stats.AP)
		require.Equal(t, 1.0, res.Stats.AR100)
		// Image 3 has neither: it counts for nothing.
		two := evaluate(t, []int64{1, 2}, []int64{1},
			[]GroundTruth{gtRect(1, 1, 0, 0, 10, 10)},
			[]Detection{dtRect(1, 1, 0.9, 0, 0, 10, 10), dtRect(2, 1, 0.95, 0, 0, 10, 10)})
		require.Equal(t, two.Stats, res.Stats)
	})

	t.Run("crowd", func(t *testing.T) {
		t.Parallel()
		crowd := gtRect(1, 1, 10, 10, 30, 30)
		crowd.Crowd = true
		gts := []GroundTruth{gtRect(1, 1, 0, 0, 8, 8), crowd}
		dts := []Detection{
			dtRect(1, 1, 0.95, 20, 20, 5, 5), // inside the crowd: ignored, not wrong
			dtRect(1, 1, 0.9, 30, 30, 5, 5),  // inside it too: a crowd is matched many times
			dtRect(1, 1, 0.8, 0, 0, 8, 8),    // right
		}
		res := evaluate(t, []int64{1}, []int64{1}, gts, dts)
		require.Equal(t, p1, res.Stats.AP)
		require.Equal(t, 1.0, res.Stats.AR100)
		require.Equal(t, 1, res.PerClass[1].Instances, "a crowd is not an instance")

		// The same region, not a crowd: both small detections are wrong
		// (IoU 25/900) and the region is missed.
		plain := crowd
		plain.Crowd = false
		res = evaluate(t, []int64{1}, []int64{1}, []GroundTruth{gts[0], plain}, dts)
		require.Equal(t, 0.5, res.Stats.AR100)
		require.Less(t, res.Stats.AP, 0.5)

		// A detection that fits a crowd better than an instance still
		// takes the instance.
		// Inside the crowd and inside an instance within it: IoU 1 with
		// the crowd, 48/64 with the instance.
		inside := dtRect(1, 1, 0.9, 12, 12, 8, 6)
		inst := gtRect(1, 1, 12, 12, 8, 8)
		res = evaluate(t, []int64{1}, []int64{1}, []GroundTruth{crowd, inst}, []Detection{inside})
		require.InDelta(t, p1, res.Stats.AP50, 1e-15)
		require.InDelta(t, p1, res.Stats.AP75, 1e-15)
	})

	t.Run("area ranges", func(t *testing.T) {
		t.Parallel()
		// 32×32 = 1024 is both small and medium (bounds included).
		res := evaluate(t, []int64{1}, []int64{1},
			[]GroundTruth{gtRect(1, 1, 0, 0, 32, 32)},
			[]Detection{dtRect(1, 1, 0.9, 0, 0, 32, 32)})
		require.Equal(t, p1, res.Stats.APs)
		require.Equal(t, p1, res.Stats.APm)
		require.Equal(t, -1.0, res.Stats.APl)

		// The ground truth's area field decides, not its mask.
		g := gtRect(1, 1, 0, 0, 10, 10)
		g.Area = 96*96 + 1
		res = evaluate(t, []int64{1}, []int64{1}, []GroundTruth{g}, []Detection{dtRect(1, 1, 0.9, 0, 0, 10, 10)})
		require.Equal(t, p1, res.Stats.APl)
		require.Equal(t, -1.0, res.Stats.APm)

		// An unmatched detection outside the range is ignored there: a
		// large false positive does not hurt small AP.
		res = evaluate(t, []int64{1}, []int64{1},
			[]GroundTruth{gtRect(1, 1, 0, 0, 5, 5)},
			[]Detection{dtRect(1, 1, 0.95, 0, 0, 40, 40), dtRect(1, 1, 0.9, 0, 0, 5, 5)})
		require.Equal(t, p1, res.Stats.APs)
		require.Equal(t, 0.5, res.Stats.AP)
	})

	t.Run("at most 100 detections per image", func(t *testing.T) {
		t.Parallel()
		var dts []Detection
		for i := range 100 {
			dts = append(dts, dtRect(1, 1, 0.9-float64(i)/1000, 30, 30, 5, 5))
		}
		dts = append(dts, dtRect(1, 1, 0.1, 0, 0, 10, 10)) // the 101st: dropped
		res := evaluate(t, []int64{1}, []int64{1}, []GroundTruth{gtRect(1, 1, 0, 0, 10, 10)}, dts)
		require.Equal(t, 0.0, res.Stats.AR100)
		require.Equal(t, 0.0, res.Stats.AP)
	})

	t.Run("bad input", func(t *testing.T) {
		t.Parallel()
		_, err := Evaluate([]int64{1}, []int64{1}, []GroundTruth{gtRect(2, 1, 0, 0, 1, 1)}, nil)
		require.ErrorContains(t, err, "image 2")
		_, err = Evaluate([]int64{1}, []int64{1}, []GroundTruth{gtRect(1, 2, 0, 0, 1, 1)}, nil)
		require.ErrorContains(t, err, "category 2")
		_, err = Evaluate([]int64{1}, []int64{1}, nil, []Detection{dtRect(5, 1, 0.5, 0, 0, 1, 1)})
		require.ErrorContains(t, err, "image 5")
		_, err = Evaluate([]int64{1}, []int64{1}, nil, []Detection{{ImageID: 1, CategoryID: 1, Mask: mask.RLE{Size: [2]int{2, 2}, Counts: "zz"}, Score: 1}})
		require.ErrorIs(t, err, mask.ErrInvalid)
	})
}

func TestPairwiseSum(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 7, 8, 9, 127, 128, 129, 1000, 76760} {
		vals := make([]float64, n)
		want := 0
		for i := range vals {
			vals[i] = float64(i % 17)
			want += i % 17
		}
		require.Equal(t, float64(want), pairwiseSum(vals), "n=%d", n)
	}
}
