package imaging_test

import (
	"image"
	"image/color"
	"image/draw"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
	xdraw "golang.org/x/image/draw"

	"github.com/deepimageshub/imagehub/imaging"
	"github.com/deepimageshub/imagehub/imaging/imagingtest"
)

func TestThumbnailSizes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ w, h, max, tw, th int }{
		{1024, 768, 320, 320, 240},
		{600, 3000, 320, 64, 320},
		{4000, 3000, 1600, 1600, 1200},
		{1000, 1000, 320, 320, 320},
		{1280, 960, 320, 320, 240}, // a whole factor: the box alone
		{2000, 1000, 1600, 1600, 800},
		{5000, 10, 320, 320, 1},
	} {
		got := imaging.Thumbnail(imagingtest.Solid(tc.w, tc.h, color.RGBA{90, 120, 150, 255}), tc.max)
		require.Equal(t, image.Rect(0, 0, tc.tw, tc.th), got.Bounds(), "%d×%d to %d", tc.w, tc.h, tc.max)
		r, g, b, a := got.At(tc.tw/2, tc.th/2).RGBA()
		require.Equal(t, []uint32{90, 120, 150, 255}, []uint32{r >> 8, g >> 8, b >> 8, a >> 8}, "a flat colour stays exactly")
	}
	photo := imagingtest.Photo(1024, 768, 1)
	require.Same(t, photo, imaging.Thumbnail(photo, 2000), "never upscales")
	sub := photo.SubImage(image.Rect(100, 100, 900, 700))
	require.Equal(t, image.Rect(0, 0, 320, 240), imaging.Thumbnail(sub, 320).Bounds())
}

// stripes is a w×h image of black and white columns, the white ones every
// period pixels: any reduction that samples rather than averages turns it
// into moiré.
func stripes(w, h, period int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := range w {
		v := uint8(255 * ((x + 1) % period / (period - 1)))
		copy(img.Pix[4*x:], []uint8{v, v, v, 255})
	}
	for y := 1; y < h; y++ {
		copy(img.Pix[y*img.Stride:(y+1)*img.Stride], img.Pix[:img.Stride])
	}
	return img
}

// greyStats is the mean and standard deviation of an image's green
// channel.
func greyStats(img image.Image) (mean, sd float64) {
	b := img.Bounds()
	var s, sq float64
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			_, g, _, _ := img.At(x, y).RGBA()
			v := float64(g >> 8)
			s += v
			sq += v * v
		}
	}
	n := float64(b.Dx() * b.Dy())
	return s / n, math.Sqrt(sq/n - (s/n)*(s/n))
}

// TestThumbnailDoesNotAlias reduces the finest stripes by whole and
// fractional factors, with even and odd box stages, from RGBA and from a
// JPEG's YCbCr: the result must be an even grey, where bilinear sampling
// gives stripes of every shade. (Coarser stripes just above the thumbnail's
// resolution, 3 pixels apart for a 3× reduction, do leave a faint moiré: a
// kernel wide enough to remove it costs four times as much, and photos
// hardly have such patterns.)
func TestThumbnailDoesNotAlias(t *testing.T) {
	t.Parallel()
	ycc := image.NewYCbCr(image.Rect(0, 0, 1000, 750), image.YCbCrSubsampleRatio420)
	for i := range ycc.Cb {
		ycc.Cb[i], ycc.Cr[i] = 128, 128
	}
	for y := range 750 {
		for x := range 1000 {
			ycc.Y[ycc.YOffset(x, y)] = uint8(255 * (x % 2))
		}
	}
	for _, tc := range []struct {
		src  image.Image
		mean float64
	}{
		{stripes(1000, 750, 2), 127.5}, {ycc, 127.5}, {stripes(500, 400, 2), 127.5},
		{stripes(1500, 1125, 2), 127.5}, {stripes(4000, 3000, 2), 127.5}, {stripes(4000, 3000, 3), 85},
	} {
		for _, side := range []int{320, 300, 250} {
			mean, sd := greyStats(imaging.Thumbnail(tc.src, side))
			require.InDelta(t, tc.mean, mean, 3, "%v to %d", tc.src.Bounds(), side)
			require.Less(t, sd, 8.0, "%v to %d: uneven grey", tc.src.Bounds(), side)
		}
	}
	// What the test guards against.
	naive := image.NewRGBA(image.Rect(0, 0, 320, 240))
	xdraw.ApproxBiLinear.Scale(naive, naive.Bounds(), stripes(1000, 750, 2), image.Rect(0, 0, 1000, 750), xdraw.Src, nil)
	_, sd := greyStats(naive)
	require.Greater(t, sd, 30.0)
}

// TestThumbnailMatchesReference compares with x/image's Catmull-Rom over
// the whole reduction, the slow reference.
func TestThumbnailMatchesReference(t *testing.T) {
	t.Parallel()
	photo := imagingtest.Photo(1024, 768, 4)
	ref := image.NewRGBA(image.Rect(0, 0, 320, 240))
	xdraw.CatmullRom.Scale(ref, ref.Bounds(), photo, photo.Bounds(), xdraw.Src, nil)
	got := imaging.Thumbnail(photo, 320).(*image.RGBA)
	var diff float64
	for i := range ref.Pix {
		diff += math.Abs(float64(ref.Pix[i]) - float64(got.Pix[i]))
	}
	require.Less(t, diff/float64(len(ref.Pix)), 3.0, "mean difference per channel")
}

// TestThumbnailTransparency: colours of transparent pixels must not bleed.
func TestThumbnailTransparency(t *testing.T) {
	t.Parallel()
	img := image.NewNRGBA(image.Rect(0, 0, 900, 600))
	for y := range 600 {
		for x := range 900 {
			if x%2 == 0 {
				img.SetNRGBA(x, y, color.NRGBA{0, 0, 255, 255})
			} else {
				img.SetNRGBA(x, y, color.NRGBA{255, 0, 0, 0}) // invisible red
			}
		}
	}
	for _, side := range []int{300, 280} {
		th := imaging.Thumbnail(img, side)
		r, _, b, a := th.At(side/2, side/4).RGBA()
		require.InDelta(t, 127, a>>8, 4, "half the pixels are opaque")
		require.LessOrEqual(t, r>>8, uint32(2), "no red: it was transparent")
		require.InDelta(t, a>>8, b>>8, 2, "blue, premultiplied")
	}
}

func TestThumbnailOfOtherPixelTypes(t *testing.T) {
	t.Parallel()
	src := imagingtest.Photo(1000, 800, 3)
	ref := imaging.Thumbnail(src, 250)
	for _, img := range []image.Image{image.NewNRGBA(src.Bounds()), image.NewGray(src.Bounds()), image.NewCMYK(src.Bounds())} {
		draw.Draw(img.(draw.Image), img.Bounds(), src, image.Point{}, draw.Src)
		got := imaging.Thumbnail(img, 250)
		require.Equal(t, ref.Bounds(), got.Bounds(), "%T", img)
	}
}

// TestThumbnailOfPlanes: a decoded JPEG's thumbnail stays in planes, with
// the chroma at half the thumbnail's resolution where the source had it
// subsampled, and shows the same picture as the thumbnail of its RGB
// pixels, for each subsampling and odd sizes.
func TestThumbnailOfPlanes(t *testing.T) {
	t.Parallel()
	photo := imagingtest.Photo(1001, 751, 5)
	want := map[image.YCbCrSubsampleRatio]image.YCbCrSubsampleRatio{
		image.YCbCrSubsampleRatio444: image.YCbCrSubsampleRatio444,
		image.YCbCrSubsampleRatio422: image.YCbCrSubsampleRatio422,
		image.YCbCrSubsampleRatio420: image.YCbCrSubsampleRatio420,
		image.YCbCrSubsampleRatio440: image.YCbCrSubsampleRatio440,
		image.YCbCrSubsampleRatio411: image.YCbCrSubsampleRatio422,
		image.YCbCrSubsampleRatio410: image.YCbCrSubsampleRatio420,
	}
	for ratio, out := range want {
		src := image.NewYCbCr(photo.Bounds(), ratio)
		b := src.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				c := photo.RGBAAt(x, y)
				yy, cb, cr := color.RGBToYCbCr(c.R, c.G, c.B)
				src.Y[src.YOffset(x, y)] = yy
				src.Cb[src.COffset(x, y)], src.Cr[src.COffset(x, y)] = cb, cr
			}
		}
		got, ok := imaging.Thumbnail(src, 321).(*image.YCbCr)
		require.True(t, ok, "%v: planes in, planes out", ratio)
		require.Equal(t, out, got.SubsampleRatio, "%v", ratio)
		require.Equal(t, image.Rect(0, 0, 321, 241), got.Rect, "%v", ratio)
		rgb := image.NewRGBA(src.Bounds())
		draw.Draw(rgb, rgb.Bounds(), src, image.Point{}, draw.Src)
		ref := imaging.Thumbnail(rgb, 321)
		var diff float64
		for y := range 241 {
			for x := range 321 {
				r0, g0, b0, _ := ref.At(x, y).RGBA()
				r1, g1, b1, _ := got.At(x, y).RGBA()
				diff += math.Abs(float64(r0>>8)-float64(r1>>8)) + math.Abs(float64(g0>>8)-float64(g1>>8)) + math.Abs(float64(b0>>8)-float64(b1>>8))
			}
		}
		require.Less(t, diff/(3*321*241), 4.0, "%v: mean difference per channel", ratio)
	}
}
