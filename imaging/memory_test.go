package imaging_test

import (
	"image"
	"image/color"
	"image/draw"
	"runtime"
	"sync"
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
	// Just over the 1600 px derivative, so every path scales down.
	const w, h = 1650, 300
	photo := imagingtest.Photo(w, h, 3)
	conv := func(dst draw.Image) image.Image {
		draw.Draw(dst, dst.Bounds(), photo, image.Point{}, draw.Src)
		return dst
	}
	rect := photo.Bounds()
	pal := image.NewPaletted(rect, color.Palette{color.Black, color.White, color.RGBA{200, 30, 30, 255}})
	draw.Draw(pal, rect, photo, image.Point{}, draw.Src)
	cases := []struct {
		name    string
		encode  func() []byte
		decoded float64 // bytes per pixel
		data    []byte
	}{
		{name: "jpeg 4:2:0", encode: func() []byte { return imagingtest.JPEG(photo) }, decoded: 1.5},
		{name: "jpeg turned", encode: func() []byte { return imagingtest.WithEXIF(imagingtest.JPEG(photo), 6) }, decoded: 1.5},
		{name: "jpeg grey", encode: func() []byte { return imagingtest.JPEG(conv(image.NewGray(rect))) }, decoded: 1},
		{name: "png rgb", encode: func() []byte { return imagingtest.PNG(photo) }, decoded: 4},
		{name: "png rgba 16-bit", encode: func() []byte { return imagingtest.PNG(conv(image.NewNRGBA64(rect))) }, decoded: 8},
		{name: "png rgb 16-bit turned", encode: func() []byte {
			return imagingtest.PNGWithEXIF(imagingtest.PNG(conv(image.NewRGBA64(rect))), 8)
		}, decoded: 8},
		{name: "png grey 16-bit", encode: func() []byte { return imagingtest.PNG(conv(image.NewGray16(rect))) }, decoded: 2},
		{name: "png paletted", encode: func() []byte { return imagingtest.PNG(pal) }, decoded: 1},
		{name: "webp lossless", encode: func() []byte { return imagingtest.WebP(photo) }, decoded: 8},
	}
	// The files are made on every core before anything is measured: the
	// encoders, not the decoding, are most of this test's time.
	var wg sync.WaitGroup
	for i := range cases {
		wg.Go(func() { cases[i].data = cases[i].encode() })
	}
	wg.Wait()
	for _, tc := range cases {
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
