package imaging_test

import (
	"image"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/imaging"
	"github.com/deepimageshub/imagehub/imaging/imagingtest"
)

// TestWindowHashesMatchCrops: a crop to 80% at the centre or a corner, as
// ingest hashes it (its grid thumbnail), is within WindowDistance of the
// original's window over the same part, and not of the other windows.
func TestWindowHashesMatchCrops(t *testing.T) {
	t.Parallel()
	for seed := uint64(0); seed < 4; seed++ {
		const pw, ph = 640, 480
		photo := imagingtest.Photo(pw, ph, 900+seed)
		windows := imaging.WindowHashes(imaging.Thumbnail(photo, imaging.GridSize))
		require.Len(t, windows, len(imaging.Windows))
		for i, w := range imaging.Windows {
			r := image.Rect(int(w.X*pw), int(w.Y*ph), int((w.X+w.W)*pw), int((w.Y+w.H)*ph))
			crop := imaging.PHash(imaging.Thumbnail(photo.SubImage(r), imaging.GridSize))
			require.LessOrEqual(t, imaging.Hamming(crop, windows[i]), imaging.WindowDistance, "seed %d, window %d", seed, i)
			require.Greater(t, imaging.Hamming(crop, imaging.PHash(imaging.Thumbnail(photo, imaging.GridSize))), imaging.WindowDistance,
				"seed %d, window %d: a crop is not close to the whole, which is why windows are needed", seed, i)
		}
	}
}

func TestWindowHashesOfOddImages(t *testing.T) {
	t.Parallel()
	for _, img := range []image.Image{
		imagingtest.Photo(10, 10, 1), imagingtest.Photo(1, 1, 1), imagingtest.Photo(5000, 20, 1),
		image.NewGray(image.Rect(0, 0, 300, 300)), image.NewCMYK(image.Rect(0, 0, 600, 600)),
	} {
		require.Len(t, imaging.WindowHashes(img), len(imaging.Windows))
	}
	// An image without SubImage is converted first, to the same hashes.
	photo := imagingtest.Photo(640, 480, 3)
	require.Equal(t, imaging.WindowHashes(photo), imaging.WindowHashes(noSubImage{photo}))
	// An image not at the origin is windowed by its own bounds.
	moved := photo.SubImage(image.Rect(0, 0, 640, 480)).(*image.RGBA)
	moved.Rect = moved.Rect.Add(image.Pt(100, 50))
	require.Equal(t, imaging.WindowHashes(photo), imaging.WindowHashes(moved))
}

type noSubImage struct{ image.Image }
