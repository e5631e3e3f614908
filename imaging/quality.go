package imaging

import (
	"fmt"
	"image"
	"math"
	"strings"
)

// QualityReport measures what makes a photo useless for training.
type QualityReport struct {
	ShortSide     int     `json:"short_side"`     // pixels, upright
	Sharpness     float64 `json:"sharpness"`      // variance of the Laplacian of the luma at the working scale (see Quality)
	Brightness    float64 `json:"brightness"`     // mean luma, 0–255
	Contrast      float64 `json:"contrast"`       // standard deviation of the luma
	ClippedDark   float64 `json:"clipped_dark"`   // share of pixels at pure black (luma ≤ 3)
	ClippedBright float64 `json:"clipped_bright"` // share of pixels at pure white (luma ≥ 252)
}

// qualityScale is the smallest long side Quality works at: it averages
// whole k×k blocks down to between qualityScale and twice that.
const qualityScale = 512

// Quality measures img on a grey copy reduced by a whole factor to a long
// side of 512 to 1023 pixels (images smaller than that as they are). The
// reduction makes the sharpness measure mean the same for a 1 and a 12
// megapixel photo, and costs one pass over the luma; a JPEG's luma is its Y
// plane, read as it is.
func Quality(img image.Image) QualityReport {
	b := img.Bounds()
	r := QualityReport{ShortSide: min(b.Dx(), b.Dy())}
	if b.Empty() {
		return r
	}
	k := max(1, max(b.Dx(), b.Dy())/qualityScale)
	if !fastLuma(img) {
		img = toRGBA(img)
	}
	g, w, h := lumaShrink(img, k)

	var sum, sq float64
	dark, bright := 0, 0
	for _, v := range g {
		sum += float64(v)
		sq += float64(v) * float64(v)
		switch {
		case v <= 3.5:
			dark++
		case v >= 251.5:
			bright++
		}
	}
	n := float64(len(g))
	r.Brightness = sum / n
	r.Contrast = math.Sqrt(max(sq/n-r.Brightness*r.Brightness, 0))
	r.ClippedDark, r.ClippedBright = float64(dark)/n, float64(bright)/n

	if w >= 3 && h >= 3 {
		var ls, lsq float64
		for y := 1; y < h-1; y++ {
			for x := 1; x < w-1; x++ {
				i := y*w + x
				l := float64(g[i-w] + g[i+w] + g[i-1] + g[i+1] - 4*g[i])
				ls += l
				lsq += l * l
			}
		}
		m := float64((w - 2) * (h - 2))
		mean := ls / m
		r.Sharpness = lsq/m - mean*mean
	}
	return r
}

// lumaShrink averages the luma of k×k blocks of img.
func lumaShrink(img image.Image, k int) ([]float32, int, int) {
	b := img.Bounds()
	w, h := b.Dx()/k, b.Dy()/k
	out := make([]float32, w*h)
	row := make([]uint8, b.Dx())
	col := make([]uint32, b.Dx()) // sums down each column of a block row
	inv := 1 / float32(k*k)
	for y := range h {
		clear(col)
		for sy := y * k; sy < y*k+k; sy++ {
			lumaRow(img, b.Min.Y+sy, row)
			for x, v := range row {
				col[x] += uint32(v)
			}
		}
		o := out[y*w : y*w+w]
		for x := range o {
			var s uint32
			for _, v := range col[x*k : x*k+k] {
				s += v
			}
			o[x] = float32(s) * inv
		}
	}
	return out, w, h
}

// Thresholds decide a QualityReport's verdict.
type Thresholds struct {
	MinShortSide  int     // below: rejected as too small
	MinSharpness  float64 // below: flagged as blurry
	MinBrightness float64 // below: flagged as too dark
	MaxBrightness float64 // above: flagged as washed out
	MinContrast   float64 // below: flagged as flat
	MaxClipped    float64 // a larger share of pure black (too dark) or pure white (washed out): flagged
}

// DefaultThresholds suit ordinary photos. They flag for a person to look;
// only a photo too small to learn from is rejected outright.
var DefaultThresholds = Thresholds{
	MinShortSide:  200,
	MinSharpness:  40,
	MinBrightness: 40,
	MaxBrightness: 220,
	MinContrast:   16,
	MaxClipped:    0.25,
}

// Verdicts of Check.
const (
	Accepted = "accepted"
	Flagged  = "flagged"
	Rejected = "rejected"
)

// Problems lists what is wrong with a photo, in words a contributor
// understands ("too dark", "blurry"), and whether it is rejected rather
// than flagged for a person to decide.
func (t Thresholds) Problems(r QualityReport) (problems []string, rejected bool) {
	if r.ShortSide < t.MinShortSide {
		return []string{fmt.Sprintf("too small (%d pixels on its short side; we need at least %d)", r.ShortSide, t.MinShortSide)}, true
	}
	dark := r.Brightness < t.MinBrightness || r.ClippedDark > t.MaxClipped
	washed := r.Brightness > t.MaxBrightness || r.ClippedBright > t.MaxClipped
	flat := r.Contrast < t.MinContrast
	switch {
	case dark:
		problems = append(problems, "too dark")
	case washed:
		problems = append(problems, "washed out")
	case flat:
		problems = append(problems, "flat, with almost no contrast")
	}
	// A dark or flat photo has few sharp edges whatever its focus, so
	// blur is judged only on a well exposed one.
	if !dark && !flat && r.Sharpness < t.MinSharpness {
		problems = append(problems, "blurry")
	}
	return problems, false
}

// Check turns a report into a verdict and, unless accepted, a reason a
// contributor can act on.
func (t Thresholds) Check(r QualityReport) (verdict, reason string) {
	problems, rejected := t.Problems(r)
	switch {
	case rejected:
		return Rejected, "The photo is " + problems[0] + "."
	case len(problems) > 0:
		return Flagged, "The photo looks " + strings.Join(problems, " and ") + "; a person will check whether it is usable."
	}
	return Accepted, ""
}
