package imagingtest

import (
	"bytes"
	"image"
	"image/jpeg"

	xdraw "golang.org/x/image/draw"
)

// Variant is an edited copy of one of a NearDuplicateSet's originals.
type Variant struct {
	Name  string // what was done: "jpeg q45", "crop 80% top left", …
	Of    int    // the index of the original
	Crop  bool   // whether it is a crop
	Image image.Image
}

// NearDuplicateSet makes n w×h photos (n even) and their near-duplicates:
// each re-encoded as JPEG at quality 45, resized to 60%, cropped to 80% of
// each side at the centre and at each corner, brightened and darkened by
// 40 levels, and with its contrast raised and lowered by 30%.
//
// Half the photos are Photo's, each of its own; the other half come in
// pairs of different photos of the same scene (Scene: the same background,
// the objects elsewhere), returned in similar, which a near-duplicate check
// must not confuse.
func NearDuplicateSet(n, w, h int) (originals []*image.RGBA, variants []Variant, similar [][2]int) {
	for i := range n / 2 {
		originals = append(originals, Photo(w, h, uint64(5000+i)))
	}
	for s := range n / 4 {
		similar = append(similar, [2]int{len(originals), len(originals) + 1})
		originals = append(originals, Scene(w, h, uint64(s), 1), Scene(w, h, uint64(s), 2))
	}
	for i, o := range originals {
		add := func(name string, crop bool, img image.Image) {
			variants = append(variants, Variant{name, i, crop, img})
		}
		add("jpeg q45", false, reencode(o, 45))
		small := image.NewRGBA(image.Rect(0, 0, w*6/10, h*6/10))
		xdraw.CatmullRom.Scale(small, small.Bounds(), o, o.Bounds(), xdraw.Src, nil)
		add("resized to 60%", false, small)
		cw, ch := w*8/10, h*8/10
		for _, c := range []struct {
			name string
			x, y int
		}{
			{"crop 80% centre", (w - cw) / 2, (h - ch) / 2},
			{"crop 80% top left", 0, 0},
			{"crop 80% top right", w - cw, 0},
			{"crop 80% bottom left", 0, h - ch},
			{"crop 80% bottom right", w - cw, h - ch},
		} {
			add(c.name, true, o.SubImage(image.Rect(c.x, c.y, c.x+cw, c.y+ch)))
		}
		add("brighter", false, levels(o, func(v float64) float64 { return v + 40 }))
		add("darker", false, levels(o, func(v float64) float64 { return v - 40 }))
		add("more contrast", false, levels(o, func(v float64) float64 { return (v-128)*1.3 + 128 }))
		add("less contrast", false, levels(o, func(v float64) float64 { return (v-128)*0.7 + 128 }))
	}
	return originals, variants, similar
}

func reencode(img image.Image, quality int) image.Image {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
		panic(err)
	}
	out, err := jpeg.Decode(&buf)
	if err != nil {
		panic(err)
	}
	return out
}

// levels maps each colour value of img through f.
func levels(img *image.RGBA, f func(float64) float64) *image.RGBA {
	out := image.NewRGBA(img.Bounds())
	for i, v := range img.Pix {
		if i%4 == 3 {
			out.Pix[i] = v
			continue
		}
		out.Pix[i] = clamp(f(float64(v)))
	}
	return out
}
