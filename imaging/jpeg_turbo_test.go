//go:build cgo && !nojpegturbo

package imaging_test

import (
	"bytes"
	"image"
	"image/jpeg"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/imaging"
	"github.com/deepimageshub/imagehub/imaging/imagingtest"
)

// TestLosslessTurn: a sideways JPEG whose size is whole 16-pixel blocks
// (as a 4032×3024 phone photo is) is turned by moving its DCT blocks, not
// encoded anew, so the canonical file decodes to the upload's own pixels
// turned; the EXIF goes, the ICC profile stays.
func TestLosslessTurn(t *testing.T) {
	t.Parallel()
	photo := imagingtest.Photo(320, 240, 9)
	inverse := map[int]int{2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}
	for o := 2; o <= 8; o++ {
		plain := imagingtest.JPEG(imaging.Orient(photo, inverse[o]))
		res, err := imaging.Process(imagingtest.WithICC(imagingtest.WithEXIF(plain, o)))
		require.NoError(t, err, "orientation %d", o)
		require.False(t, res.Reencoded, "orientation %d", o)
		require.Equal(t, 320, res.Width)
		require.Equal(t, 240, res.Height)
		require.NotContains(t, string(res.Bytes), "Exif\x00\x00")
		require.Contains(t, string(res.Bytes), "ICC_PROFILE\x00\x01\x01"+string(imagingtest.ICCProfile))

		stored, err := jpeg.Decode(bytes.NewReader(plain))
		require.NoError(t, err)
		got, err := jpeg.Decode(bytes.NewReader(res.Bytes))
		require.NoError(t, err)
		require.LessOrEqual(t, maxPlaneDiff(t, imaging.Orient(stored, o), got), 2, "orientation %d", o)
		require.LessOrEqual(t, maxPlaneDiff(t, got, res.Image), 2, "orientation %d: Image is the canonical file's pixels", o)
	}
}

// TestReducedDecode: with ReduceTo, a large JPEG is decoded at the
// smallest of 1/2, 1/4, 1/8 that keeps its long side at least that long,
// while the Result reports the full size; Derive makes the same
// derivatives from it, and the memory estimate shrinks with it.
func TestReducedDecode(t *testing.T) {
	t.Parallel()
	// Turned (orientation 6), with sides of whole blocks: losslessly.
	data := imagingtest.WithEXIF(imagingtest.JPEG(imagingtest.Photo(1696, 1008, 4)), 6)
	full, err := imaging.Options{}.Prepare(data)
	require.NoError(t, err)
	for _, tc := range []struct {
		reduceTo int
		decoded  image.Rectangle
	}{
		{800, image.Rect(0, 0, 504, 848)},
		{400, image.Rect(0, 0, 252, 424)},
		{100, image.Rect(0, 0, 126, 212)},
		{849, image.Rect(0, 0, 1008, 1696)},
	} {
		p, err := imaging.Options{ReduceTo: tc.reduceTo}.Prepare(data)
		require.NoError(t, err)
		res, err := p.Decode()
		require.NoError(t, err)
		require.Equal(t, tc.decoded, res.Image.Bounds(), "reduced to %d", tc.reduceTo)
		require.Equal(t, 1008, res.Width)
		require.Equal(t, 1696, res.Height)
		require.False(t, res.Reencoded)
		require.Equal(t, int64(len(res.Image.(*image.YCbCr).Y)*3/2), p.DecodedBytes())
		if tc.decoded.Dx() < 1008 {
			require.Less(t, p.Memory(), full.Memory(), "reduced to %d", tc.reduceTo)
		}
	}

	// Ingest's reduction: a photo twice the review size is decoded at
	// half size, and the derivatives are the same sizes as from a full
	// decode.
	big, err := imaging.EncodeJPEG(imagingtest.Solid(3400, 2000, blue), 90)
	require.NoError(t, err)
	res, err := imaging.Options{ReduceTo: imaging.ReviewSize}.Process(big)
	require.NoError(t, err)
	require.Equal(t, image.Rect(0, 0, 1700, 1000), res.Image.Bounds())
	d, err := imaging.Derive(res)
	require.NoError(t, err)
	require.Equal(t, 2000, d.Quality.ShortSide)
	r, err := jpeg.Decode(bytes.NewReader(d.Review))
	require.NoError(t, err)
	require.Equal(t, image.Rect(0, 0, 1600, 941), r.Bounds())
	g, err := jpeg.Decode(bytes.NewReader(d.Grid))
	require.NoError(t, err)
	require.Equal(t, image.Rect(0, 0, 320, 188), g.Bounds())
}
