package imaging_test

import (
	"image"
	"image/color"
	"image/draw"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/imaging"
	"github.com/deepimageshub/imagehub/imaging/imagingtest"
)

// TestMemoryCoversDecoding checks the estimate ingest reserves memory by
// against what Decode and Derive really allocate, for each decoded layout:
// never below it (all that is allocated is at most what is held at the
// peak plus garbage, so this errs on the safe side), and not wildly above.
// Not parallel: it reads the process's allocation counter.
func TestMemoryCoversDecoding(t *testing.T) {
	const w, h = 1700, 1200
	photo := imagingtest.Photo(w, h, 3)
	conv := func(dst draw.Image) image.Image {
		draw.Draw(dst, dst.Bounds(), photo, image.Point{}, draw.Src)
		return dst
	}
	rect := photo.Bounds()
	pal := image.NewPaletted(rect, color.Palette{color.Black, color.White, color.RGBA{200, 30, 30, 255}})
	draw.Draw(pal, rect, photo, image.Point{}, draw.Src)
	for _, tc := range []struct {
		name    string
		data    []byte
		decoded float64 // bytes per pixel
	}{
		{"jpeg 4:2:0", imagingtest.JPEG(photo), 1.5},
		{"jpeg turned", imagingtest.WithEXIF(imagingtest.JPEG(photo), 6), 1.5},
		{"jpeg grey", imagingtest.JPEG(conv(image.NewGray(rect))), 1},
		{"png rgb", imagingtest.PNG(photo), 4},
		{"png rgba 16-bit", imagingtest.PNG(conv(image.NewNRGBA64(rect))), 8},
		{"png rgb 16-bit turned", imagingtest.PNGWithEXIF(imagingtest.PNG(conv(image.NewRGBA64(rect))), 8), 8},
		{"png grey 16-bit", imagingtest.PNG(conv(image.NewGray16(rect))), 2},
		{"png paletted", imagingtest.PNG(pal), 1},
		{"webp lossless", imagingtest.WebP(photo), 8},
	} {
		p, err := imaging.Options{}.Prepare(tc.data)
		require.NoError(t, err, tc.name)
		require.Equal(t, int64(tc.decoded*w*h), p.DecodedBytes(), tc.name)

		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		res, err := p.Decode()
		require.NoError(t, err, tc.name)
		_, err = imaging.Derive(res)
		require.NoError(t, err, tc.name)
		runtime.ReadMemStats(&after)
		allocated := int64(after.TotalAlloc - before.TotalAlloc)
		allocated += int64(2 * len(tc.data)) // the upload and its cleaned copy, allocated before
		t.Logf("%s: estimate %d MB, allocated %d MB", tc.name, p.Memory()>>20, allocated>>20)
		require.GreaterOrEqual(t, p.Memory(), allocated, tc.name)
		require.Less(t, p.Memory(), 3*allocated+32<<20, tc.name)
	}
}
