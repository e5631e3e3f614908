package views

import "fmt"

// GrowthVersion is one published version of a dataset on the growth
// chart: its images and instances per split (train, val, test).
type GrowthVersion struct {
	Number    int
	Images    [3]int64
	Instances [3]int64
}

// Splits names a version's splits in the order of GrowthVersion's and
// ClassInsightRow's arrays.
var Splits = [3]string{"train", "val", "test"}

// growthBar is one split's segment of one version's stacked bar.
type growthBar struct {
	Split      string
	X, Y, W, H int
	Title      string
}

// growthChart is a laid-out stacked bar chart of one measure.
type growthChart struct {
	ID, Measure string
	Width       int
	Max         int64
	Bars        []growthBar
	Axis        []growthTick
}

// growthTick is a version's label under its bar, with its total.
type growthTick struct {
	X            int
	Label, Total string
}

const (
	growthHeight = 160 // the bars' area, in SVG units
	growthBarW   = 28
	growthGap    = 16
	growthLeft   = 8
)

// layoutGrowth stacks each version's splits into one bar, the bars scaled
// to the largest total; which picks images or instances.
func layoutGrowth(id, measure string, vs []GrowthVersion, which func(GrowthVersion) [3]int64) growthChart {
	c := growthChart{ID: id, Measure: measure, Width: growthLeft*2 + len(vs)*(growthBarW+growthGap)}
	for _, v := range vs {
		var t int64
		for _, n := range which(v) {
			t += n
		}
		c.Max = max(c.Max, t)
	}
	for i, v := range vs {
		x := growthLeft + i*(growthBarW+growthGap)
		y := growthHeight + 10
		var total int64
		for s, n := range which(v) {
			total += n
			h := 0
			if c.Max > 0 {
				h = int(n * growthHeight / c.Max)
			}
			y -= h
			c.Bars = append(c.Bars, growthBar{Split: Splits[s], X: x, Y: y, W: growthBarW, H: h,
				Title: fmt.Sprintf("version %d, %s: %d %s", v.Number, Splits[s], n, measure)})
		}
		c.Axis = append(c.Axis, growthTick{X: x + growthBarW/2, Label: fmt.Sprintf("v%d", v.Number), Total: fmt.Sprint(total)})
	}
	return c
}
