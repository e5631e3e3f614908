package imaging

import "image"

// Derived is what ingest computes from an image besides its canonical bytes.
type Derived struct {
	Grid    []byte // JPEG thumbnail, longest side GridSize
	Review  []byte // JPEG, longest side ReviewSize; nil when the canonical file already is a JPEG that small
	PHash   uint64
	Quality QualityReport
}

// Derive makes the thumbnails, perceptual hash and quality report of a
// processed image. The grid thumbnail is made first and the hash and quality
// measures work from it: they need no more detail, and this keeps ingest's
// cost per image close to the cost of decoding it.
func Derive(res *Result) (*Derived, error) {
	grid := Thumbnail(res.Image, GridSize)
	gridJPEG, err := EncodeJPEG(grid, 82)
	if err != nil {
		return nil, err
	}
	d := &Derived{Grid: gridJPEG, PHash: PHash(grid), Quality: qualityOf(grid, res.Image.Bounds())}
	if res.Format != "jpeg" || res.Width > ReviewSize || res.Height > ReviewSize {
		if d.Review, err = EncodeJPEG(Thumbnail(res.Image, ReviewSize), 85); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// qualityOf measures a downscaled copy but reports the original's size.
func qualityOf(small image.Image, orig image.Rectangle) QualityReport {
	q := Quality(small)
	q.ShortSide = min(orig.Dx(), orig.Dy())
	return q
}
