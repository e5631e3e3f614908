// Package segmenttest draws test photos with known objects: a few coloured,
// shaded shapes on a textured background, so that tests can check proposed
// masks against the truth.
package segmenttest

import (
	"bytes"
	"image"
	"image/jpeg"
	"math"
	"math/rand/v2"

	"github.com/deepimageshub/imagehub/mask"
)

// Shape is one drawn object and the pixels it ends up covering (later shapes
// hide earlier ones).
type Shape struct {
	Name string
	Mask *mask.Bitmap
}

// Photo is a generated photo.
type Photo struct {
	Image  *image.RGBA
	JPEG   []byte
	Shapes []Shape
}

// NewPhoto draws a w×h photo from seed: a textured background (a soft
// gradient, a woven pattern and noise) and three shapes (a red disc, a blue
// rectangle and a yellow ellipse), each shaded and noisy, then encodes it as
// JPEG at quality.
func NewPhoto(w, h int, seed uint64, quality int) *Photo {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	base := [3]float64{150 + 30*rng.Float64(), 140 + 30*rng.Float64(), 120 + 30*rng.Float64()}
	u := float64(min(w, h))
	sx, sy, shade := make([]float64, w), make([]float64, h), make([]float64, w)
	for x := range sx {
		sx[x] = math.Sin(float64(x) / u * 90)
		shade[x] = 0.1 * math.Sin((float64(x)+0.5)/u*20)
	}
	for y := range sy {
		sy[y] = math.Sin(float64(y) / u * 90)
	}
	for y := range h {
		for x := range w {
			gx, gy := float64(x)/float64(w), float64(y)/float64(h)
			weave := 10 * sx[x] * sy[y]
			var c [3]float64
			for i := range c {
				c[i] = base[i] - 25*gy + 15*gx + weave + rng.NormFloat64()*8
			}
			set(img, x, y, c)
		}
	}
	type draw struct {
		name   string
		colour [3]float64
		inside func(x, y float64) bool
	}
	cx := func(f float64) float64 { return f * float64(w) }
	cy := func(f float64) float64 { return f * float64(h) }
	jit := func() float64 { return (rng.Float64() - 0.5) * 0.06 }
	dx, dy, r := cx(0.28+jit()), cy(0.35+jit()), 0.16*u
	rx0, ry0, rx1, ry1 := cx(0.55+jit()), cy(0.18+jit()), cx(0.85+jit()), cy(0.48+jit())
	ex, ey, ea, eb := cx(0.58+jit()), cy(0.74+jit()), 0.22*float64(w), 0.13*float64(h)
	shapes := []draw{
		{"disc", [3]float64{200, 40, 35}, func(x, y float64) bool { return (x-dx)*(x-dx)+(y-dy)*(y-dy) <= r*r }},
		{"rectangle", [3]float64{35, 70, 190}, func(x, y float64) bool { return x >= rx0 && x < rx1 && y >= ry0 && y < ry1 }},
		{"ellipse", [3]float64{230, 200, 40}, func(x, y float64) bool {
			a, b := (x-ex)/ea, (y-ey)/eb
			return a*a+b*b <= 1
		}},
	}
	p := &Photo{Image: img}
	for _, s := range shapes {
		m := mask.NewBitmap(w, h)
		for y := range h {
			for x := range w {
				fx, fy := float64(x)+0.5, float64(y)+0.5
				if !s.inside(fx, fy) {
					continue
				}
				f := 1 - 0.25*float64(y)/float64(h) + shade[x]
				var c [3]float64
				for i := range c {
					c[i] = s.colour[i]*f + rng.NormFloat64()*6
				}
				set(img, x, y, c)
				m.Pix[y*w+x] = 1
				for _, o := range p.Shapes {
					o.Mask.Pix[y*w+x] = 0
				}
			}
		}
		p.Shapes = append(p.Shapes, Shape{Name: s.name, Mask: m})
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
		panic(err) // encoding to memory cannot fail
	}
	p.JPEG = buf.Bytes()
	return p
}

func set(img *image.RGBA, x, y int, c [3]float64) {
	i := img.PixOffset(x, y)
	img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = clamp(c[0]), clamp(c[1]), clamp(c[2]), 255
}

func clamp(v float64) uint8 { return uint8(min(255, max(0, math.Round(v)))) }

// IoU is the intersection over union of two bitmaps of one size.
func IoU(a, b *mask.Bitmap) float64 {
	var in, un int
	for i := range a.Pix {
		x, y := a.Pix[i] != 0, b.Pix[i] != 0
		if x && y {
			in++
		}
		if x || y {
			un++
		}
	}
	if un == 0 {
		return 0
	}
	return float64(in) / float64(un)
}
