package cocoeval

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/mask"
)

// cocoFile is the part of a COCO ground-truth file the evaluator reads.
type cocoFile struct {
	Images []struct {
		ID int64 `json:"id"`
	} `json:"images"`
	Categories []struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	} `json:"categories"`
	Annotations []struct {
		ImageID      int64    `json:"image_id"`
		CategoryID   int64    `json:"category_id"`
		Segmentation mask.RLE `json:"segmentation"`
		Area         float64  `json:"area"`
		IsCrowd      int      `json:"iscrowd"`
	} `json:"annotations"`
}

type cocoResult struct {
	ImageID      int64    `json:"image_id"`
	CategoryID   int64    `json:"category_id"`
	Segmentation mask.RLE `json:"segmentation"`
	Score        float64  `json:"score"`
}

type expected struct {
	Stats    map[string]float64            `json:"stats"`
	PerClass map[string]map[string]float64 `json:"per_class"`
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, v))
}

// TestGolden reproduces what the COCO API's COCOeval computes for
// testdata/gt.json and dt.json (testdata/README.txt): the twelve summary
// figures and every class's AP, AP50 and AP75.
func TestGolden(t *testing.T) {
	t.Parallel()
	var gt cocoFile
	var dt []cocoResult
	var want expected
	readJSON(t, "testdata/gt.json", &gt)
	readJSON(t, "testdata/dt.json", &dt)
	readJSON(t, "testdata/expected.json", &want)
	require.Len(t, dt, 734)

	var images, cats []int64
	names := map[int64]string{}
	for _, im := range gt.Images {
		images = append(images, im.ID)
	}
	for _, c := range gt.Categories {
		cats = append(cats, c.ID)
		names[c.ID] = c.Name
	}
	var gts []GroundTruth
	for _, a := range gt.Annotations {
		gts = append(gts, GroundTruth{ImageID: a.ImageID, CategoryID: a.CategoryID, Mask: a.Segmentation, Area: a.Area, Crowd: a.IsCrowd != 0})
	}
	var dts []Detection
	for _, d := range dt {
		dts = append(dts, Detection{ImageID: d.ImageID, CategoryID: d.CategoryID, Mask: d.Segmentation, Score: d.Score})
	}

	res, err := Evaluate(images, cats, gts, dts)
	require.NoError(t, err)

	worst := 0.0
	check := func(what string, want, got float64) {
		t.Helper()
		d := math.Abs(want - got)
		worst = max(worst, d)
		require.InDelta(t, want, got, 1e-12, what)
	}
	s := res.Stats
	got := map[string]float64{
		"AP": s.AP, "AP50": s.AP50, "AP75": s.AP75, "APs": s.APs, "APm": s.APm, "APl": s.APl,
		"AR1": s.AR1, "AR10": s.AR10, "AR100": s.AR100, "ARs": s.ARs, "ARm": s.ARm, "ARl": s.ARl,
	}
	require.Len(t, want.Stats, 12)
	for k, v := range want.Stats {
		check(k, v, got[k])
	}
	require.Len(t, res.PerClass, len(want.PerClass))
	for id, c := range res.PerClass {
		w, ok := want.PerClass[names[id]]
		require.True(t, ok, "class %s", names[id])
		check(names[id]+" AP", w["AP"], c.AP)
		check(names[id]+" AP50", w["AP50"], c.AP50)
		check(names[id]+" AP75", w["AP75"], c.AP75)
	}
	t.Logf("largest difference from the COCO API's figures: %g", worst)
}

// TestThresholds pins the thresholds to numpy's linspace, including that
// summarize() finds .5 and .75 among them by equality.
func TestThresholds(t *testing.T) {
	t.Parallel()
	require.Len(t, iouThrs, 10)
	require.Equal(t, 0.5, iouThrs[0])
	require.Equal(t, 0.95, iouThrs[9])
	require.Equal(t, 0, thresholdIndex(.5))
	require.Equal(t, 5, thresholdIndex(.75))
	// numpy: np.linspace(.5, .95, 10)[8] is 0.8999999999999999, not 0.9.
	require.Equal(t, 0.55, iouThrs[1])
	require.Equal(t, 0.8999999999999999, iouThrs[8])
	require.Len(t, recThrs, 101)
	require.Equal(t, 1.0, recThrs[100])
	require.Equal(t, 0.07, recThrs[7])
}
