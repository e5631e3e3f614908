// Package trainertest generates COCO dataset zips, in the layout package
// dataset exports, of coloured shapes on textured backgrounds: data that a
// trainer can learn from in seconds and that the untrained segmenter does
// not label right, for the trainer's tests and benchmark.
package trainertest

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"

	"github.com/deepimageshub/imagehub/dataset"
	"github.com/deepimageshub/imagehub/mask"
)

// Labels are the annotated classes: reddish discs and bluish squares.
// Greenish triangles appear too but are never annotated, so a model must
// learn to leave them out.
var Labels = []string{"disc", "square"}

// pngEncoder writes at zlib's fastest level: the tests that seed hundreds
// of these images run under the race detector, where deflate's default
// level was most of their time, and the pixels are the same.
var pngEncoder = png.Encoder{CompressionLevel: png.BestSpeed}

// Shapes returns a zip of n images of size×size pixels for split (their
// ids from firstID), the same bytes for the same arguments.
func Shapes(split string, n, size int, firstID int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, uint64(firstID)))
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	file := dataset.COCOFile{Categories: []dataset.COCOCategory{{ID: 1, Name: Labels[0]}, {ID: 2, Name: Labels[1]}}}
	annID := 1
	for k := range n {
		id := firstID + k
		img, masks, cats := draw(rng, size)
		name := fmt.Sprintf("%06d.png", id)
		w, _ := zw.Create("images/" + name)
		if err := pngEncoder.Encode(w, img); err != nil {
			panic(err)
		}
		file.Images = append(file.Images, dataset.COCOImage{ID: id, FileName: name, Width: size, Height: size, Split: split})
		for i, m := range masks {
			if m.Area() == 0 {
				continue
			}
			r := mask.Encode(m)
			bb := m.BBox()
			file.Annotations = append(file.Annotations, dataset.COCOAnnotation{
				ID: annID, ImageID: id, CategoryID: cats[i], Segmentation: dataset.COCOSegmentation{RLE: &r},
				Area: m.Area(), BBox: [4]float64{float64(bb[0]), float64(bb[1]), float64(bb[2]), float64(bb[3])},
			})
			annID++
		}
	}
	w, _ := zw.Create("annotations/instances_" + split + ".json")
	if err := json.NewEncoder(w).Encode(file); err != nil {
		panic(err)
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// draw paints one image: a textured background, then two to four shapes;
// a later shape hides what it covers of an earlier one.
func draw(rng *rand.Rand, size int) (*image.RGBA, []*mask.Bitmap, []int) {
	img := image.NewRGBA(image.Rect(0, 0, size, size))
	base := [3]float64{90 + 60*rng.Float64(), 80 + 60*rng.Float64(), 70 + 60*rng.Float64()}
	period := 4 + rng.Float64()*8
	angle := rng.Float64() * math.Pi
	owner := make([]int, size*size) // 0: background, else shape index + 1
	for y := range size {
		for x := range size {
			t := math.Sin((float64(x)*math.Cos(angle) + float64(y)*math.Sin(angle)) * 2 * math.Pi / period)
			v := 18*t + 14*(rng.Float64()-0.5)
			img.Set(x, y, rgb(base[0]+v, base[1]+v, base[2]+v))
		}
	}
	nshapes := 2 + rng.IntN(3)
	var cats []int
	for s := range nshapes {
		kind := rng.IntN(3) // 0 disc, 1 square, 2 triangle (never annotated)
		r := float64(size) * (0.08 + 0.1*rng.Float64())
		cx := r + rng.Float64()*(float64(size)-2*r)
		cy := r + rng.Float64()*(float64(size)-2*r)
		var col [3]float64
		switch kind {
		case 0:
			col = [3]float64{190 + 50*rng.Float64(), 30 + 40*rng.Float64(), 30 + 40*rng.Float64()}
		case 1:
			col = [3]float64{30 + 40*rng.Float64(), 50 + 40*rng.Float64(), 180 + 60*rng.Float64()}
		default:
			col = [3]float64{40 + 40*rng.Float64(), 170 + 60*rng.Float64(), 40 + 40*rng.Float64()}
		}
		for y := range size {
			for x := range size {
				dx, dy := float64(x)+0.5-cx, float64(y)+0.5-cy
				var in bool
				switch kind {
				case 0:
					in = dx*dx+dy*dy <= r*r
				case 1:
					in = math.Abs(dx) <= r*0.85 && math.Abs(dy) <= r*0.85
				default:
					in = dy <= r*0.8 && dy >= -r && math.Abs(dx) <= (dy+r)*0.6
				}
				if in {
					v := 10 * (rng.Float64() - 0.5)
					img.Set(x, y, rgb(col[0]+v, col[1]+v, col[2]+v))
					owner[y*size+x] = s + 1
				}
			}
		}
		cats = append(cats, kind)
	}
	var masks []*mask.Bitmap
	var out []int
	for s, kind := range cats {
		if kind == 2 {
			continue
		}
		m := mask.NewBitmap(size, size)
		for p, o := range owner {
			if o == s+1 {
				m.Pix[p] = 1
			}
		}
		masks = append(masks, m)
		out = append(out, kind+1)
	}
	return img, masks, out
}

func rgb(r, g, b float64) color.RGBA {
	c := func(v float64) uint8 { return uint8(min(255, max(0, math.Round(v)))) }
	return color.RGBA{c(r), c(g), c(b), 255}
}

// Instance is one annotated shape of a Sample.
type Instance struct {
	Label string
	Mask  *mask.Bitmap
}

// Sample is one generated image, PNG-encoded, with its annotated shapes.
type Sample struct {
	PNG       []byte
	Size      int
	Instances []Instance
}

// Samples draws n images of size×size pixels as Shapes does (the same
// images for the same firstID and seed), for tests that store them in a
// hub themselves rather than read a zip.
func Samples(n, size, firstID int, seed uint64) []Sample {
	rng := rand.New(rand.NewPCG(seed, uint64(firstID)))
	out := make([]Sample, 0, n)
	for range n {
		img, masks, cats := draw(rng, size)
		var buf bytes.Buffer
		if err := pngEncoder.Encode(&buf, img); err != nil {
			panic(err)
		}
		s := Sample{PNG: buf.Bytes(), Size: size}
		for i, m := range masks {
			if m.Area() > 0 {
				s.Instances = append(s.Instances, Instance{Label: Labels[cats[i]-1], Mask: m})
			}
		}
		out = append(out, s)
	}
	return out
}
