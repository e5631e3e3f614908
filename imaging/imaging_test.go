package imaging_test

import (
	"bytes"
	"image"
	"image/color"
	"image/draw"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
	xdraw "golang.org/x/image/draw"

	"github.com/deepimageshub/imagehub/imaging"
	"github.com/deepimageshub/imagehub/imaging/imagingtest"
)

func TestInspectRefusesTheBadCorpus(t *testing.T) {
	t.Parallel()
	files := imagingtest.BadFiles()
	require.GreaterOrEqual(t, len(files), 25)
	for _, f := range files {
		t.Run(f.Name, func(t *testing.T) {
			_, err := imaging.Inspect(bytes.NewReader(f.Data), imaging.Limits{})
			var ref *imaging.Refusal
			require.ErrorAs(t, err, &ref)
			require.Equal(t, f.WantCode, ref.Code, ref.Message)
			require.NotEmpty(t, ref.Message)
		})
	}
}

func TestInspectNamesTheType(t *testing.T) {
	t.Parallel()
	for _, f := range imagingtest.BadFiles() {
		var ref *imaging.Refusal
		_, err := imaging.Inspect(bytes.NewReader(f.Data), imaging.Limits{})
		require.ErrorAs(t, err, &ref)
		switch f.Name {
		case "animation.gif":
			require.Contains(t, ref.Message, "GIF")
		case "evil.svg":
			require.Contains(t, ref.Message, "SVG")
		case "page.jpg":
			require.Contains(t, ref.Message, "HTML")
		case "doc.pdf":
			require.Contains(t, ref.Message, "PDF")
		case "photos.zip":
			require.Contains(t, ref.Message, "ZIP")
		}
	}
}

// TestPixelBombsStayCheap checks that refusing a pixel bomb decodes nothing:
// the heap hardly grows.
func TestPixelBombsStayCheap(t *testing.T) {
	var bombs [][]byte
	for _, f := range imagingtest.BadFiles() {
		if f.WantCode == "too_many_pixels" {
			bombs = append(bombs, f.Data)
		}
	}
	require.Len(t, bombs, 2)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 20 {
		for _, b := range bombs {
			_, err := imaging.Inspect(bytes.NewReader(b), imaging.Limits{})
			require.Error(t, err)
		}
	}
	runtime.ReadMemStats(&after)
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(16<<20), "allocated %d bytes", after.TotalAlloc-before.TotalAlloc)
}

func TestInspectAcceptsPhotos(t *testing.T) {
	t.Parallel()
	photo := imagingtest.Photo(800, 600, 1)
	for name, data := range map[string][]byte{
		"jpeg": imagingtest.JPEG(photo),
		"png":  imagingtest.PNG(photo),
		"exif": imagingtest.WithEXIF(imagingtest.JPEG(photo), 6),
	} {
		h, err := imaging.Inspect(bytes.NewReader(data), imaging.Limits{})
		require.NoError(t, err, name)
		require.Equal(t, 800, h.Width)
		require.Equal(t, 600, h.Height)
	}
	_, err := imaging.Inspect(bytes.NewReader(imagingtest.JPEG(photo)), imaging.Limits{MaxPixels: 400 * 600})
	var ref *imaging.Refusal
	require.ErrorAs(t, err, &ref)
	require.Equal(t, "too_many_pixels", ref.Code)
}

// marked draws a photo with a red block in its top-left corner, so its
// orientation can be read back from pixels.
func marked() *image.RGBA {
	img := imagingtest.Solid(300, 200, color.RGBA{0, 0, 200, 255})
	draw.Draw(img, image.Rect(0, 0, 60, 40), &image.Uniform{color.RGBA{230, 0, 0, 255}}, image.Point{}, draw.Src)
	return img
}

func isRed(c color.Color) bool {
	r, g, b, _ := c.RGBA()
	return r > 0x9000 && g < 0x5000 && b < 0x5000
}

// TestOrientation stores the marked photo as a camera would for each EXIF
// orientation and checks the red corner comes back top-left after Process.
func TestOrientation(t *testing.T) {
	t.Parallel()
	upright := marked()
	// inverse[o] turns an upright image into what a camera with orientation o stores.
	inverse := map[int]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}
	for o := 1; o <= 8; o++ {
		stored := imaging.Orient(upright, inverse[o])
		data := imagingtest.WithEXIF(imagingtest.JPEG(stored), o)
		res, err := imaging.Process(data)
		require.NoError(t, err, "orientation %d", o)
		require.Equal(t, 300, res.Width, "orientation %d", o)
		require.Equal(t, 200, res.Height, "orientation %d", o)
		require.True(t, isRed(res.Image.At(10, 10)), "orientation %d: red corner not top-left", o)
		require.False(t, isRed(res.Image.At(290, 190)), "orientation %d", o)
		// And the stored bytes decode to the upright image too.
		dec, _, err := image.Decode(bytes.NewReader(res.Bytes))
		require.NoError(t, err)
		require.True(t, isRed(dec.At(10, 10)), "orientation %d: stored bytes not upright", o)
	}
}

func TestMetadataIsRemoved(t *testing.T) {
	t.Parallel()
	photo := imagingtest.Photo(400, 300, 5)
	for name, data := range map[string][]byte{
		"jpeg lossless": imagingtest.WithEXIF(imagingtest.JPEG(photo), 1),
		"jpeg rotated":  imagingtest.WithEXIF(imagingtest.JPEG(photo), 6),
		"png":           imagingtest.PNGWithText(imagingtest.PNG(photo)),
	} {
		t.Run(name, func(t *testing.T) {
			require.Contains(t, string(data), imagingtest.GPSMarker)
			res, err := imaging.Process(data)
			require.NoError(t, err)
			require.NotContains(t, string(res.Bytes), imagingtest.GPSMarker)
			require.NotContains(t, string(res.Bytes), "Exif\x00\x00")
			_, _, err = image.Decode(bytes.NewReader(res.Bytes))
			require.NoError(t, err)
		})
	}
	// The lossless path leaves the pixels exactly as they were.
	plain := imagingtest.JPEG(photo)
	res, err := imaging.Process(imagingtest.WithEXIF(plain, 1))
	require.NoError(t, err)
	require.False(t, res.Reencoded)
	a, _, _ := image.Decode(bytes.NewReader(plain))
	b, _, _ := image.Decode(bytes.NewReader(res.Bytes))
	require.Equal(t, a.(*image.YCbCr).Y, b.(*image.YCbCr).Y)
	require.Equal(t, plain, res.Bytes, "a JPEG without metadata keeps its bytes")
}

func TestPHash(t *testing.T) {
	t.Parallel()
	photo := imagingtest.Photo(1024, 768, 9)
	h := imaging.PHash(photo)

	small := imaging.Thumbnail(photo, 500)
	require.LessOrEqual(t, imaging.Hamming(h, imaging.PHash(small)), 4, "resized")
	recompressed, _, err := image.Decode(bytes.NewReader(imagingtest.JPEG(photo)))
	require.NoError(t, err)
	require.LessOrEqual(t, imaging.Hamming(h, imaging.PHash(recompressed)), 4, "re-encoded")

	for seed := uint64(10); seed < 20; seed++ {
		other := imaging.PHash(imagingtest.Photo(1024, 768, seed))
		require.GreaterOrEqual(t, imaging.Hamming(h, other), 12, "different photos (seed %d)", seed)
	}
}

// TestProbesFindEveryNearHash checks the pigeonhole promise of Probes: every
// hash within maxDist shares a band value with a probe.
func TestProbesFindEveryNearHash(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for maxDist := 0; maxDist <= 7; maxDist++ {
		for range 2000 {
			h := rng.Uint64()
			near := h
			for _, bit := range rng.Perm(64)[:rng.IntN(maxDist+1)] {
				near ^= 1 << bit
			}
			probes := imaging.Probes(h, maxDist)
			bands := imaging.Bands(near)
			found := false
			for i := range 4 {
				for _, p := range probes[i] {
					found = found || p == bands[i]
				}
			}
			require.True(t, found, "maxDist %d: %016x not found from %016x", maxDist, near, h)
		}
	}
}

func TestQuality(t *testing.T) {
	t.Parallel()
	th := imaging.DefaultThresholds
	verdict, _ := th.Check(imaging.Quality(imagingtest.Photo(1024, 768, 3)))
	require.Equal(t, imaging.Accepted, verdict)

	// Blur: scale down to 48 px and back up smoothly.
	small := imaging.Thumbnail(imagingtest.Photo(1024, 768, 3), 48)
	up := image.NewRGBA(image.Rect(0, 0, 1024, 768))
	xdraw.CatmullRom.Scale(up, up.Bounds(), small, small.Bounds(), xdraw.Src, nil)
	verdict, reason := th.Check(imaging.Quality(up))
	require.Equal(t, imaging.Flagged, verdict)
	require.Contains(t, reason, "blurry")

	dark := imagingtest.Photo(800, 600, 4)
	for i := 0; i < len(dark.Pix); i += 4 {
		dark.Pix[i], dark.Pix[i+1], dark.Pix[i+2] = dark.Pix[i]/10, dark.Pix[i+1]/10, dark.Pix[i+2]/10
	}
	verdict, reason = th.Check(imaging.Quality(dark))
	require.Equal(t, imaging.Flagged, verdict)
	require.Contains(t, reason, "dark")

	washed := imagingtest.Photo(800, 600, 4)
	for i := 0; i < len(washed.Pix); i += 4 {
		for c := 0; c < 3; c++ {
			washed.Pix[i+c] = 240 + washed.Pix[i+c]/20
		}
	}
	verdict, reason = th.Check(imaging.Quality(washed))
	require.Equal(t, imaging.Flagged, verdict)
	require.Contains(t, reason, "washed out")

	verdict, reason = th.Check(imaging.Quality(imagingtest.Photo(150, 120, 1)))
	require.Equal(t, imaging.Rejected, verdict)
	require.Contains(t, reason, "too small")
}

func TestDerive(t *testing.T) {
	t.Parallel()
	res, err := imaging.Process(imagingtest.JPEG(imagingtest.Photo(1024, 768, 2)))
	require.NoError(t, err)
	d, err := imaging.Derive(res)
	require.NoError(t, err)
	g, _, err := image.Decode(bytes.NewReader(d.Grid))
	require.NoError(t, err)
	require.Equal(t, image.Rect(0, 0, 320, 240), g.Bounds())
	require.Nil(t, d.Review, "a small JPEG is its own review image")
	require.Equal(t, 768, d.Quality.ShortSide)
	verdict, reason := imaging.DefaultThresholds.Check(d.Quality)
	require.Equal(t, imaging.Accepted, verdict, reason)
	require.LessOrEqual(t, imaging.Hamming(d.PHash, imaging.PHash(res.Image)), 4)

	big, err := imaging.Process(imagingtest.PNG(imagingtest.Photo(2000, 1000, 2)))
	require.NoError(t, err)
	d, err = imaging.Derive(big)
	require.NoError(t, err)
	r, _, err := image.Decode(bytes.NewReader(d.Review))
	require.NoError(t, err)
	require.Equal(t, image.Rect(0, 0, 1600, 800), r.Bounds())
}

func TestThumbnail(t *testing.T) {
	t.Parallel()
	photo := imagingtest.Photo(1024, 768, 1)
	g := imaging.Thumbnail(photo, imaging.GridSize)
	require.Equal(t, image.Rect(0, 0, 320, 240), g.Bounds())
	tall := imaging.Thumbnail(imagingtest.Photo(600, 3000, 1), imaging.GridSize)
	require.Equal(t, image.Rect(0, 0, 64, 320), tall.Bounds())
	require.Equal(t, photo, imaging.Thumbnail(photo, 2000), "never upscales")
}

// BenchmarkIngestWork is the per-image CPU cost of ingest for a 1024×768 JPEG:
// decode and canonicalise, two thumbnails encoded, perceptual hash, quality.
func BenchmarkIngestWork(b *testing.B) {
	data := imagingtest.WithEXIF(imagingtest.JPEG(imagingtest.Photo(1024, 768, 1)), 1)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		res, err := imaging.Process(data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := imaging.Derive(res); err != nil {
			b.Fatal(err)
		}
	}
}
