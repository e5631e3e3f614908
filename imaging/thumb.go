package imaging

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"

	"golang.org/x/image/draw"
)

// Thumbnail sizes: the longest side, in pixels.
const (
	GridSize   = 320
	ReviewSize = 1600
)

// Thumbnail scales img so that its longer side is at most maxSide, keeping
// its aspect ratio; a smaller image is returned as it is. Large reductions
// first halve with a box filter (cheap, and it averages away aliasing) and
// finish with bilinear filtering, which is several times faster than
// Catmull-Rom for a result that looks the same at thumbnail size.
func Thumbnail(img image.Image, maxSide int) image.Image {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= maxSide && h <= maxSide {
		return img
	}
	tw, th := maxSide, h*maxSide/w
	if h > w {
		tw, th = w*maxSide/h, maxSide
	}
	tw, th = max(tw, 1), max(th, 1)
	src := img
	for src.Bounds().Dx() >= 4*tw && src.Bounds().Dy() >= 4*th {
		src = halve(src)
	}
	dst := image.NewRGBA(image.Rect(0, 0, tw, th))
	draw.ApproxBiLinear.Scale(dst, dst.Bounds(), src, src.Bounds(), draw.Src, nil)
	return dst
}

// halve averages 2×2 blocks.
func halve(img image.Image) *image.RGBA {
	src := toRGBA(img)
	w, h := src.Bounds().Dx()/2, src.Bounds().Dy()/2
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		r0 := src.Pix[2*y*src.Stride:]
		r1 := src.Pix[(2*y+1)*src.Stride:]
		d := dst.Pix[y*dst.Stride:]
		for x := 0; x < w; x++ {
			i := 8 * x
			for c := 0; c < 4; c++ {
				d[4*x+c] = uint8((uint16(r0[i+c]) + uint16(r0[i+4+c]) + uint16(r1[i+c]) + uint16(r1[i+4+c]) + 2) / 4)
			}
		}
	}
	return dst
}

// toRGBA converts any image to RGBA at origin (0, 0), fast for YCbCr.
func toRGBA(img image.Image) *image.RGBA {
	if r, ok := img.(*image.RGBA); ok && r.Bounds().Min == (image.Point{}) {
		return r
	}
	b := img.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(dst, dst.Bounds(), img, b.Min, draw.Src)
	return dst
}

// EncodeJPEG encodes a thumbnail.
func EncodeJPEG(img image.Image, quality int) ([]byte, error) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
		return nil, fmt.Errorf("error encoding JPEG: %w", err)
	}
	return buf.Bytes(), nil
}
