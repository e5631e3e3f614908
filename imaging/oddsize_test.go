package imaging_test

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/imaging"
	"github.com/deepimageshub/imagehub/imaging/imagingtest"
)

// TestOddSizesDecodeLikeImageJPEG decodes JPEGs of odd and even sizes, and
// their canonical files' re-encoding, and compares every pixel with the
// standard library's decoding of the same bytes. An odd width once made
// TurboJPEG write each luma row one byte past its end (its planes are
// padded to whole MCUs), over the first chroma sample and past the buffer.
func TestOddSizesDecodeLikeImageJPEG(t *testing.T) {
	t.Parallel()
	for _, sz := range [][2]int{{333, 500}, {320, 480}, {334, 501}, {333, 501}, {97, 61}} {
		data := imagingtest.JPEG(imagingtest.Photo(sz[0], sz[1], 4102))
		res, err := imaging.Process(data)
		require.NoError(t, err, sz)
		std, err := jpeg.Decode(bytes.NewReader(res.Bytes))
		require.NoError(t, err, sz)
		require.Equal(t, std.Bounds(), res.Image.Bounds(), sz)
		worst := 0
		b := std.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				a := color.RGBAModel.Convert(res.Image.At(x, y)).(color.RGBA)
				c := color.RGBAModel.Convert(std.At(x, y)).(color.RGBA)
				for _, d := range []int{int(a.R) - int(c.R), int(a.G) - int(c.G), int(a.B) - int(c.B)} {
					worst = max(worst, d, -d)
				}
			}
		}
		// Two IDCTs and two upsamplings of chroma: a few levels apart.
		require.LessOrEqual(t, worst, 4, "%v: a pixel %d levels from image/jpeg's", sz, worst)

		// Encoding planes of an odd width reads no more than they hold.
		if y, ok := res.Image.(*image.YCbCr); ok {
			cp := image.NewYCbCr(y.Rect, y.SubsampleRatio) // unpadded, as Go makes them
			for row := range y.Rect.Dy() {
				copy(cp.Y[row*cp.YStride:row*cp.YStride+y.Rect.Dx()], y.Y[row*y.YStride:])
			}
			copy(cp.Cb, y.Cb)
			copy(cp.Cr, y.Cr)
			out, err := imaging.EncodeJPEG(cp, 90)
			require.NoError(t, err, sz)
			back, err := jpeg.Decode(bytes.NewReader(out))
			require.NoError(t, err, sz)
			require.Equal(t, y.Rect, back.Bounds(), sz)
		}
	}
}
