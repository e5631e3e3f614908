//go:build !cgo || nojpegturbo

package imaging

import (
	"bytes"
	"image"
	"image/jpeg"
)

// Without cgo (or with the nojpegturbo tag) JPEGs are decoded and encoded
// by the standard library, at full size: the static binary of the
// container image, and any build without libjpeg-turbo.

// jpegPlan is empty: the standard decoder has no choices to make.
type jpegPlan struct{}

func (p *Prepared) planJPEG() jpegPlan { return jpegPlan{} }

func (p *Prepared) decodeJPEG() (*Result, error) { return p.decodeStd() }

func (p *Prepared) jpegDecodedBytes() (int64, bool) { return 0, false }

func (p *Prepared) jpegMemory() (int64, bool) { return 0, false }

func encodeJPEG(img image.Image, q int) ([]byte, error) {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
