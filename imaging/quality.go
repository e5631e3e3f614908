package imaging

import (
	"fmt"
	"image"
	"math"
)

// QualityReport measures what makes a photo useless for training.
type QualityReport struct {
	ShortSide  int     `json:"short_side"`
	Sharpness  float64 `json:"sharpness"`  // variance of the Laplacian on a grey copy at most 512 px wide
	Brightness float64 `json:"brightness"` // mean luma, 0–255
	Contrast   float64 `json:"contrast"`   // standard deviation of luma
	Clipped    float64 `json:"clipped"`    // share of pixels at pure black or white
}

// Quality measures img.
func Quality(img image.Image) QualityReport {
	b := img.Bounds()
	r := QualityReport{ShortSide: min(b.Dx(), b.Dy())}
	small := toRGBA(Thumbnail(img, 512))
	w, h := small.Bounds().Dx(), small.Bounds().Dy()
	g := make([]float64, w*h)
	var sum, sq float64
	clipped := 0
	for y := 0; y < h; y++ {
		p := small.Pix[y*small.Stride:]
		for x := 0; x < w; x++ {
			v := luma(p[4*x], p[4*x+1], p[4*x+2])
			g[y*w+x] = v
			sum += v
			sq += v * v
			if v <= 2 || v >= 253 {
				clipped++
			}
		}
	}
	n := float64(w * h)
	r.Brightness = sum / n
	r.Contrast = math.Sqrt(max(sq/n-r.Brightness*r.Brightness, 0))
	r.Clipped = float64(clipped) / n
	if w >= 3 && h >= 3 {
		var ls, lsq float64
		m := 0
		for y := 1; y < h-1; y++ {
			for x := 1; x < w-1; x++ {
				i := y*w + x
				l := g[i-w] + g[i+w] + g[i-1] + g[i+1] - 4*g[i]
				ls += l
				lsq += l * l
				m++
			}
		}
		mean := ls / float64(m)
		r.Sharpness = lsq/float64(m) - mean*mean
	}
	return r
}

// Thresholds decide a QualityReport's verdict.
type Thresholds struct {
	MinShortSide  int     // below: rejected
	MinSharpness  float64 // below: flagged as blurry
	MinBrightness float64 // below: flagged as too dark
	MaxBrightness float64 // above: flagged as washed out
	MinContrast   float64 // below: flagged as washed out / flat
}

// DefaultThresholds suit ordinary photos.
var DefaultThresholds = Thresholds{MinShortSide: 200, MinSharpness: 15, MinBrightness: 30, MaxBrightness: 230, MinContrast: 12}

// Verdicts of Check.
const (
	Accepted = "accepted"
	Flagged  = "flagged"
	Rejected = "rejected"
)

// Check turns a report into a verdict and, unless accepted, a reason a
// contributor can act on.
func (t Thresholds) Check(r QualityReport) (verdict, reason string) {
	switch {
	case r.ShortSide < t.MinShortSide:
		return Rejected, fmt.Sprintf("The photo is too small (%d px on its short side); we need at least %d px.", r.ShortSide, t.MinShortSide)
	case r.Brightness < t.MinBrightness:
		return Flagged, "The photo looks too dark; a person will check whether it is usable."
	case r.Brightness > t.MaxBrightness || r.Contrast < t.MinContrast:
		return Flagged, "The photo looks washed out; a person will check whether it is usable."
	case r.Sharpness < t.MinSharpness:
		// Checked last: a dark or flat photo also has few sharp edges.
		return Flagged, "The photo looks blurry; a person will check whether it is usable."
	}
	return Accepted, ""
}
