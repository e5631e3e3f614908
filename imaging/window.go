package imaging

import "image"

// Window is a part of a picture, in fractions of its width and height.
type Window struct{ X, Y, W, H float64 }

// Windows are the parts of a picture hashed besides the whole of it: a
// 3×3 grid of windows of 80% of each side, at the corners, the middle of
// each edge and the centre. See WindowHashes.
var Windows = func() []Window {
	var ws []Window
	for _, y := range []float64{0, 0.1, 0.2} {
		for _, x := range []float64{0, 0.1, 0.2} {
			ws = append(ws, Window{x, y, 0.8, 0.8})
		}
	}
	return ws
}()

// WindowDistance is the largest Hamming distance between a whole hash and a
// window hash (WindowHashes) at which two images are near-duplicates, one a
// crop of the other. It is smaller than the distance between whole hashes
// (NEAR_DUPLICATE_DISTANCE, 6 by default) because each image brings ten
// hashes to compare rather than one, and because measured on generated
// photos (TestNearDuplicatesSurviveCrops, BenchmarkNearDuplicateQuality)
// crops to 80% at the corners and the centre land within 4 bits of their
// window, even re-encoded, while different photos of one scene came no
// closer than 6 to any window of each other. Hashes have 32 bits set, so
// distances are even: 4 and 5 are the same threshold.
const WindowDistance = 4

// WindowProbeDistance is the distance the window lookups probe the banded
// index for (see Probes): 3, so one value a band. Probing the full
// WindowDistance would take 17 values a band against ten times as many
// rows, too slow at a million images. A pair 4 bits apart is then found
// when one of the four bands holds none of the 4 differing bits, about 9
// times in 10 for bits spread at random; pairs closer than 4 always are.
const WindowProbeDistance = 3

// WindowHashes is the PHash of each of Windows of img, in that order.
//
// Why: a crop keeps only part of the picture, so its hash describes a
// different layout than the whole one and lands far from it (a crop to 80%
// of each side moves about 20 of the 64 bits). The same crop is, though,
// close to the window of the original that covers the same part. Storing
// the hashes of these windows lets a crop be found by its whole hash among
// them, and an original that arrives after its crop be found by its window
// hashes among the whole ones; crops in between the grid's offsets land
// within 5% of a side of one window.
func WindowHashes(img image.Image) []uint64 {
	type subImager interface {
		SubImage(image.Rectangle) image.Image
	}
	si, ok := img.(subImager)
	if !ok {
		rgba := toRGBA(img)
		si, img = rgba, rgba
	}
	b := img.Bounds()
	out := make([]uint64, len(Windows))
	for i, w := range Windows {
		r := image.Rect(
			b.Min.X+int(w.X*float64(b.Dx())+0.5), b.Min.Y+int(w.Y*float64(b.Dy())+0.5),
			b.Min.X+int((w.X+w.W)*float64(b.Dx())+0.5), b.Min.Y+int((w.Y+w.H)*float64(b.Dy())+0.5),
		).Intersect(b)
		if r.Empty() {
			r = b
		}
		out[i] = PHash(si.SubImage(r))
	}
	return out
}
