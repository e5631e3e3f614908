package augment

import (
	"image"
	"image/color"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/problem"
)

// blob is a w×h mask of an irregular shape (no symmetry a wrong mapping
// could hide behind), and an image whose red channel is 255 exactly there
// and whose green and blue channels encode each pixel's position.
func blob(w, h int) (*mask.Bitmap, *image.NRGBA) {
	b := mask.NewBitmap(w, h)
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			on := (x*x+3*y)%7 < 3 && x > w/5
			b.Set(x, y, on)
			r := uint8(0)
			if on {
				r = 255
			}
			img.SetNRGBA(x, y, color.NRGBA{r, uint8(x), uint8(y), 255})
		}
	}
	return b, img
}

func fieldOf(t *testing.T, err error) string {
	t.Helper()
	p, ok := problem.As(err)
	require.True(t, ok, "%v", err)
	require.Equal(t, 400, p.Status)
	return p.Field
}

func TestParse(t *testing.T) {
	s, err := Parse("flip_h,rot90,crop:0.8,scale:0.5-1.5,brightness:0.2,contrast:0.2", "3", "7")
	require.NoError(t, err)
	require.Equal(t, Spec{FlipH: true, Rot90: true, Crop: 0.8, ScaleMin: 0.5, ScaleMax: 1.5, Brightness: 0.2, Contrast: 0.2, Copies: 3, Seed: 7}, s)
	require.Equal(t, "augment=flip_h,rot90,crop:0.8,scale:0.5-1.5,brightness:0.2,contrast:0.2&copies=3&augment_seed=7", s.String())
	// Order does not matter; the canonical form is the order they apply.
	s2, err := Parse("contrast:0.2,scale:0.5-1.5,flip_h,brightness:0.2,crop:0.8,rot90", "3", "7")
	require.NoError(t, err)
	require.Equal(t, s, s2)
	s, err = Parse("scale:2", "", "")
	require.NoError(t, err)
	require.Equal(t, Spec{ScaleMin: 2, ScaleMax: 2, Copies: 1}, s)
	s, err = Parse("", "", "")
	require.NoError(t, err)
	require.False(t, s.Enabled())

	for _, c := range []struct{ augment, copies, seed, field string }{
		{"flip_v", "", "", "augment"},
		{"flip_h,flip_h", "", "", "augment"},
		{"flip_h:1", "", "", "augment"},
		{"crop", "", "", "augment"},
		{"crop:0", "", "", "augment"},
		{"crop:1.5", "", "", "augment"},
		{"scale:2-1", "", "", "augment"},
		{"scale:0.01-1", "", "", "augment"},
		{"scale:1-9", "", "", "augment"},
		{"brightness:x", "", "", "augment"},
		{"flip_h", "0", "", "copies"},
		{"flip_h", "11", "", "copies"},
		{"flip_h", "two", "", "copies"},
		{"flip_h", "", "-1", "augment_seed"},
		{"", "3", "", "copies"},
		{"", "", "7", "augment_seed"},
	} {
		_, err := Parse(c.augment, c.copies, c.seed)
		require.Error(t, err, "%+v", c)
		require.Equal(t, c.field, fieldOf(t, err), "%+v", c)
	}
}

// TestFlippedMaskIsFlippedPixels: a flipped mask is exactly the flipped
// image's pixels, and each pixel lands where a flip puts it.
func TestFlippedMaskIsFlippedPixels(t *testing.T) {
	b, img := blob(37, 23)
	p := Params{FlipH: true, Scale: 1, W: 37, H: 23}
	m, out := p.Mask(b), p.Image(img)
	for y := range 23 {
		for x := range 37 {
			require.Equal(t, b.At(36-x, y), m.At(x, y))
			require.Equal(t, img.NRGBAAt(36-x, y), out.NRGBAAt(x, y))
		}
	}
}

// TestRot90MapsCoordinates: a quarter turn clockwise takes (x, y) of a
// w×h image to (h−1−y, x) of an h×w one; two and three turns compose.
func TestRot90MapsCoordinates(t *testing.T) {
	const w, h = 37, 23
	b, img := blob(w, h)
	for turns := range 4 {
		dw, dh := w, h
		if turns%2 == 1 {
			dw, dh = h, w
		}
		p := Params{Turns: turns, Scale: 1, W: dw, H: dh}
		m, out := p.Mask(b), p.Image(img)
		require.Equal(t, [2]int{dw, dh}, [2]int{m.W, m.H})
		for y := range h {
			for x := range w {
				tx, ty := p.Point(x, y, w, h)
				require.Equal(t, b.At(x, y), m.At(tx, ty), "turns %d (%d,%d)", turns, x, y)
				require.Equal(t, img.NRGBAAt(x, y), out.NRGBAAt(tx, ty), "turns %d", turns)
			}
		}
	}
	tx, ty := Params{Turns: 1}.Point(0, 0, w, h)
	require.Equal(t, [2]int{h - 1, 0}, [2]int{tx, ty}, "the top-left corner goes to the top-right")
}

// TestDrawnCopiesMatchTheirMasks: for every draw of every transform, the
// copy's mask is the copy's red channel, pixel for pixel, and the draws
// are the same for the same seed, image and copy.
func TestDrawnCopiesMatchTheirMasks(t *testing.T) {
	spec, err := Parse("flip_h,rot90,crop:0.6,scale:0.5-1.7", "5", "7")
	require.NoError(t, err)
	const w, h = 41, 29
	b, img := blob(w, h)
	seen := map[string]bool{}
	for copy := 1; copy <= 40; copy++ {
		p := spec.Draw([]byte("sha"), copy, w, h)
		require.Equal(t, p, spec.Draw([]byte("sha"), copy, w, h), "deterministic")
		seen[p.String()] = true
		m, out := p.Mask(b), p.Image(img)
		require.Equal(t, [2]int{p.W, p.H}, [2]int{m.W, m.H})
		require.Equal(t, image.Rect(0, 0, m.W, m.H), out.Bounds())
		for y := range p.H {
			for x := range p.W {
				require.Equal(t, out.NRGBAAt(x, y).R == 255, m.At(x, y), "copy %d %s (%d,%d)", copy, p, x, y)
			}
		}
	}
	require.Greater(t, len(seen), 30, "the draws differ between copies")
	other, _ := Parse("flip_h,rot90,crop:0.6,scale:0.5-1.7", "5", "8")
	differ := false
	for copy := 1; copy <= 10; copy++ {
		differ = differ || other.Draw([]byte("sha"), copy, w, h) != spec.Draw([]byte("sha"), copy, w, h)
	}
	require.True(t, differ, "another seed, other draws")
}

// TestBrightnessContrast: the photometric transforms change the image's
// colour channels only, as their formula says, and never its masks.
func TestBrightnessContrast(t *testing.T) {
	b, img := blob(10, 10)
	p := Params{Scale: 1, W: 10, H: 10, Brightness: 0.1, Contrast: -0.5}
	out := p.Image(img)
	require.Equal(t, b.Pix, p.Mask(b).Pix)
	c := img.NRGBAAt(3, 4)
	want := func(v uint8) uint8 { return uint8(min(255, max(0, (float64(v)-128)*0.5+128+25.5+0.5))) }
	require.Equal(t, color.NRGBA{want(c.R), want(c.G), want(c.B), 255}, out.NRGBAAt(3, 4))
}
