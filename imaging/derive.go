package imaging

import "image"

// Derived is what ingest computes from an image besides its canonical bytes.
type Derived struct {
	Grid   []byte // JPEG, longest side GridSize
	Review []byte // JPEG, longest side ReviewSize; nil when the canonical file is a JPEG no larger, which then serves as it is
	PHash  uint64
	// Windows are the hashes of parts of the picture (WindowHashes), so
	// that crops of it are found too.
	Windows []uint64
	Quality QualityReport
}

// Derive makes the thumbnails, perceptual hash and quality report of a
// processed image. Each step works from the smallest image that serves it:
// the review image comes from the decoded one (the full image, or one
// decoded reduced to no less than ReviewSize, see Options.ReduceTo), the grid thumbnail from the
// review image, the hash from the grid thumbnail, and the quality measures
// from the review image (Quality reduces it further), while the report keeps
// the full image's size. This keeps ingest's cost per image close to the
// cost of decoding it.
func Derive(res *Result) (*Derived, error) {
	review := Thumbnail(res.Image, ReviewSize)
	grid := Thumbnail(review, GridSize)
	gridJPEG, err := EncodeJPEG(grid, 82)
	if err != nil {
		return nil, err
	}
	full := res.size()
	d := &Derived{Grid: gridJPEG, PHash: PHash(grid), Windows: WindowHashes(grid), Quality: qualityOf(review, full)}
	if res.Format != "jpeg" || review.Bounds().Size() != full {
		if d.Review, err = EncodeJPEG(review, 85); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// qualityOf measures a reduced copy but reports the original's size.
func qualityOf(small image.Image, orig image.Point) QualityReport {
	q := Quality(small)
	q.ShortSide = min(orig.X, orig.Y)
	return q
}
