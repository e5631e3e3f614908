package imaging_test

import (
	"image"
	"image/color"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/imaging"
	"github.com/deepimageshub/imagehub/imaging/imagingtest"
)

// blurred returns img box-blurred three times with radius r, close to a
// Gaussian of σ ≈ r: a photo out of focus.
func blurred(img *image.RGBA, r int) *image.RGBA {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	cur := img
	for pass := range 6 {
		next := image.NewRGBA(b)
		horizontal := pass%2 == 0
		for y := range h {
			for x := range w {
				var s [3]int
				n := 0
				for d := -r; d <= r; d++ {
					sx, sy := x, y
					if horizontal {
						sx = min(max(x+d, 0), w-1)
					} else {
						sy = min(max(y+d, 0), h-1)
					}
					p := cur.PixOffset(sx, sy)
					s[0], s[1], s[2] = s[0]+int(cur.Pix[p]), s[1]+int(cur.Pix[p+1]), s[2]+int(cur.Pix[p+2])
					n++
				}
				o := next.PixOffset(x, y)
				next.Pix[o], next.Pix[o+1], next.Pix[o+2], next.Pix[o+3] = uint8(s[0]/n), uint8(s[1]/n), uint8(s[2]/n), 255
			}
		}
		cur = next
	}
	return cur
}

func scaled(img *image.RGBA, f func(v uint8) uint8) *image.RGBA {
	out := image.NewRGBA(img.Bounds())
	for i, v := range img.Pix {
		if i%4 == 3 {
			out.Pix[i] = v
		} else {
			out.Pix[i] = f(v)
		}
	}
	return out
}

func TestQualityVerdicts(t *testing.T) {
	t.Parallel()
	th := imaging.DefaultThresholds
	photo := imagingtest.Photo(1024, 768, 3)
	half := image.NewRGBA(photo.Bounds())
	copy(half.Pix, photo.Pix)
	for i := range len(half.Pix) / 2 {
		if i%4 != 3 {
			half.Pix[i] = 0
		}
	}
	for _, tc := range []struct {
		name    string
		img     image.Image
		verdict string
		reason  string
	}{
		{"sharp photo", photo, imaging.Accepted, ""},
		{"sharp 5 MP photo", imagingtest.Photo(2600, 1950, 3), imaging.Accepted, ""},
		{"sharp small photo", imagingtest.Photo(400, 300, 3), imaging.Accepted, ""},
		{"out of focus", blurred(photo, 3), imaging.Flagged, "blurry"},
		{"badly out of focus", blurred(photo, 6), imaging.Flagged, "blurry"},
		{"at night", scaled(photo, func(v uint8) uint8 { return v / 10 }), imaging.Flagged, "too dark"},
		{"half black", half, imaging.Flagged, "too dark"},
		{"washed out", scaled(photo, func(v uint8) uint8 { return 240 + v/20 }), imaging.Flagged, "washed out"},
		{"fog", scaled(photo, func(v uint8) uint8 { return 110 + v/12 }), imaging.Flagged, "flat"},
		{"blank wall", imagingtest.Solid(800, 600, color.RGBA{120, 120, 120, 255}), imaging.Flagged, "flat"},
		{"tiny", imagingtest.Photo(150, 120, 1), imaging.Rejected, "too small"},
		{"thin", imagingtest.Photo(2000, 150, 1), imaging.Rejected, "too small"},
	} {
		r := imaging.Quality(tc.img)
		verdict, reason := th.Check(r)
		require.Equal(t, tc.verdict, verdict, "%s: %+v", tc.name, r)
		if tc.reason == "" {
			require.Empty(t, reason)
			continue
		}
		require.Contains(t, reason, tc.reason, tc.name)
		require.Regexp(t, `^The photo [a-z].*\.$`, reason, "a sentence")
	}
}

func TestQualityReport(t *testing.T) {
	t.Parallel()
	r := imaging.Quality(imagingtest.Solid(640, 480, color.RGBA{100, 100, 100, 255}))
	require.Equal(t, 480, r.ShortSide)
	require.InDelta(t, 100, r.Brightness, 0.01)
	require.InDelta(t, 0, r.Contrast, 0.01)
	require.InDelta(t, 0, r.Sharpness, 0.01)

	half := imagingtest.Solid(640, 480, color.RGBA{255, 255, 255, 255})
	for i := range len(half.Pix) / 2 {
		if i%4 != 3 {
			half.Pix[i] = 0
		}
	}
	r = imaging.Quality(half)
	require.InDelta(t, 0.5, r.ClippedDark, 0.01)
	require.InDelta(t, 0.5, r.ClippedBright, 0.01)
	require.InDelta(t, 127.5, r.Brightness, 1)

	// The same photo at two sizes measures about the same.
	big := imagingtest.Photo(2048, 1536, 8)
	a, b := imaging.Quality(big), imaging.Quality(imaging.Thumbnail(big, 1024))
	require.InDelta(t, a.Brightness, b.Brightness, 2)
	require.InDelta(t, a.Contrast, b.Contrast, 2)

	// Several problems are named together.
	verdict, reason := imaging.DefaultThresholds.Check(imaging.QualityReport{ShortSide: 800, Brightness: 240, Contrast: 40, Sharpness: 1})
	require.Equal(t, imaging.Flagged, verdict)
	require.Equal(t, "The photo looks washed out and blurry; a person will check whether it is usable.", reason)
	problems, rejected := imaging.DefaultThresholds.Problems(imaging.QualityReport{ShortSide: 100})
	require.True(t, rejected)
	require.Len(t, problems, 1)
}
