package imaging_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"image/png"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/image/webp"

	"github.com/deepimageshub/imagehub/imaging"
	"github.com/deepimageshub/imagehub/imaging/imagingtest"
	"github.com/deepimageshub/imagehub/imaging/turbojpeg"
)

var (
	red   = color.RGBA{230, 0, 0, 255}
	green = color.RGBA{0, 200, 0, 255}
	blue  = color.RGBA{0, 0, 200, 255}
)

// marked is a 300×200 photo, blue, with a red block in its top-left corner
// and a green one in its top-right: no turn or mirror of it looks the same,
// so its orientation can be read back from pixels.
func marked() *image.RGBA {
	img := imagingtest.Solid(300, 200, blue)
	draw.Draw(img, image.Rect(0, 0, 60, 40), &image.Uniform{red}, image.Point{}, draw.Src)
	draw.Draw(img, image.Rect(260, 0, 300, 30), &image.Uniform{green}, image.Point{}, draw.Src)
	return img
}

// near says whether c is within a JPEG's error of want.
func near(c color.Color, want color.RGBA) bool {
	r, g, b, _ := c.RGBA()
	d := func(a uint32, b uint8) bool { return a>>8 >= uint32(b)-min(uint32(b), 40) && a>>8 <= uint32(b)+40 }
	return d(r, want.R) && d(g, want.G) && d(b, want.B)
}

func requireUpright(t *testing.T, img image.Image, msg string) {
	t.Helper()
	require.Equal(t, image.Rect(0, 0, 300, 200), img.Bounds(), msg)
	require.True(t, near(img.At(10, 10), red), "%s: top left is %v", msg, img.At(10, 10))
	require.True(t, near(img.At(290, 10), green), "%s: top right is %v", msg, img.At(290, 10))
	require.True(t, near(img.At(10, 190), blue), "%s: bottom left is %v", msg, img.At(10, 190))
	require.True(t, near(img.At(290, 190), blue), "%s: bottom right is %v", msg, img.At(290, 190))
}

// stored returns the marked photo as a camera with EXIF orientation o
// stores it, in each format.
func stored(format string, o int) []byte {
	// The inverse of orientation o: 6 and 8 undo each other, the other
	// turns and mirrors undo themselves.
	inverse := map[int]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}
	img := imaging.Orient(marked(), inverse[o])
	switch format {
	case "jpeg":
		return imagingtest.WithEXIF(imagingtest.JPEG(img), o)
	case "png":
		return imagingtest.PNGWithEXIF(imagingtest.PNG(img), o)
	default:
		return imagingtest.WebPWithEXIF(img, o)
	}
}

// TestOrientation stores the marked photo as cameras do for each EXIF
// orientation, in each format, and checks that Process turns it upright,
// both the decoded image and the stored bytes.
func TestOrientation(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"jpeg", "png", "webp"} {
		for o := 1; o <= 8; o++ {
			res, err := imaging.Process(stored(format, o))
			require.NoError(t, err, "%s orientation %d", format, o)
			require.Equal(t, o, res.Orientation)
			require.Equal(t, 300, res.Width)
			require.Equal(t, 200, res.Height)
			requireUpright(t, res.Image, format+" decoded")
			// A JPEG that TurboJPEG can turn by moving whole blocks (of
			// this one, 300×200, only orientation 5's transpose) is not
			// encoded anew: TestLosslessTurn checks that path.
			if format != "jpeg" || !turbojpeg.Available || o == 1 {
				require.Equal(t, o != 1, res.Reencoded, "%s orientation %d", format, o)
			}
			dec, f, err := image.Decode(bytes.NewReader(res.Bytes))
			require.NoError(t, err)
			require.Equal(t, res.Format, f)
			requireUpright(t, dec, format+" stored")
		}
	}
}

// TestOrientKeepsPixelTypes turns each common pixel layout, and checks it
// keeps its type and turns as an RGBA64 copy does.
func TestOrientKeepsPixelTypes(t *testing.T) {
	t.Parallel()
	src := marked()
	r := src.Bounds()
	images := []image.Image{src, image.NewNRGBA(r), image.NewGray(r), image.NewGray16(r), image.NewRGBA64(r), image.NewNRGBA64(r),
		image.NewCMYK(r), image.NewPaletted(r, color.Palette{blue, red, green})}
	for _, img := range images[1:] {
		draw.Draw(img.(draw.Image), r, src, image.Point{}, draw.Src)
	}
	for _, ratio := range []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422,
		image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411} {
		y := image.NewYCbCr(r, ratio)
		for py := range 200 {
			for px := range 300 {
				c := src.RGBAAt(px, py)
				yy, cb, cr := color.RGBToYCbCr(c.R, c.G, c.B)
				y.Y[y.YOffset(px, py)] = yy
				y.Cb[y.COffset(px, py)], y.Cr[y.COffset(px, py)] = cb, cr
			}
		}
		images = append(images, y)
	}
	for _, img := range images {
		ref := image.NewRGBA64(r)
		draw.Draw(ref, r, img, image.Point{}, draw.Src)
		for o := 1; o <= 8; o++ {
			got, want := imaging.Orient(img, o), imaging.Orient(ref, o)
			if ycc, ok := img.(*image.YCbCr); !ok || ycc.SubsampleRatio != image.YCbCrSubsampleRatio411 {
				require.IsType(t, img, got, "%T keeps its type", img)
			}
			require.Equal(t, want.Bounds(), got.Bounds())
			for y := 0; y < want.Bounds().Dy(); y += 7 {
				for x := 0; x < want.Bounds().Dx(); x += 7 {
					r1, g1, b1, _ := got.At(x, y).RGBA()
					r2, g2, b2, _ := want.At(x, y).RGBA()
					require.InDelta(t, r2>>8, r1>>8, 1, "%T, orientation %d, (%d, %d)", img, o, x, y)
					require.InDelta(t, g2>>8, g1>>8, 1, "%T, orientation %d, (%d, %d)", img, o, x, y)
					require.InDelta(t, b2>>8, b1>>8, 1, "%T, orientation %d, (%d, %d)", img, o, x, y)
				}
			}
		}
	}
	inverse := map[int]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}
	for o := 1; o <= 8; o++ {
		requireUpright(t, imaging.Orient(imaging.Orient(src, o), inverse[o]), "round trip")
	}
	// A sub-image is turned from its own origin.
	sub := src.SubImage(image.Rect(0, 0, 100, 50))
	require.True(t, near(imaging.Orient(sub, 3).At(99, 49), red))
}

// TestMetadataIsRemoved checks that GPS, EXIF, XMP, comments, text chunks
// and trailers are gone from the canonical bytes of every format, whether
// cleaned in place or encoded anew.
func TestMetadataIsRemoved(t *testing.T) {
	t.Parallel()
	photo := imagingtest.Photo(400, 300, 5)
	for _, o := range []int{1, 6} {
		for format, data := range map[string][]byte{
			"jpeg": imagingtest.WithEXIF(imagingtest.JPEG(photo), o),
			"png":  imagingtest.PNGWithEXIF(imagingtest.PNG(photo), o),
			"webp": imagingtest.WebPWithEXIF(photo, o),
		} {
			require.Contains(t, string(data), imagingtest.GPSMarker)
			res, err := imaging.Process(data)
			require.NoError(t, err, format)
			for _, s := range []string{imagingtest.GPSMarker, "Exif\x00\x00", "TestCam", "http://ns.adobe.com/xap", "xmpmeta",
				"eXIf", "tEXt", "iTXt", "tIME", "EXIF", "XMP ", "trailer"} {
				require.NotContains(t, string(res.Bytes), s, "%s, orientation %d", format, o)
			}
			dec, _, err := image.Decode(bytes.NewReader(res.Bytes))
			require.NoError(t, err)
			require.Equal(t, res.Image.Bounds().Size(), dec.Bounds().Size())
		}
	}
}

// TestLosslessPath checks that an upright upload keeps its pixels exactly
// and its format, with only metadata gone.
func TestLosslessPath(t *testing.T) {
	t.Parallel()
	photo := imagingtest.Photo(400, 300, 6)

	plain := imagingtest.JPEG(photo)
	res, err := imaging.Process(imagingtest.WithEXIF(plain, 1))
	require.NoError(t, err)
	require.False(t, res.Reencoded)
	require.Equal(t, "jpeg", res.Format)
	require.Equal(t, plain, res.Bytes, "a JPEG without its metadata is the same file")
	a, err := jpeg.Decode(bytes.NewReader(plain))
	require.NoError(t, err)
	// TurboJPEG's inverse DCT rounds a little differently from the
	// standard library's.
	require.LessOrEqual(t, maxPlaneDiff(t, a, res.Image), 2)

	pngData := imagingtest.PNG(photo)
	res, err = imaging.Process(imagingtest.PNGWithEXIF(pngData, 1))
	require.NoError(t, err)
	require.False(t, res.Reencoded)
	require.Equal(t, pngData, res.Bytes)

	res, err = imaging.Process(imagingtest.WebPWithEXIF(photo, 1))
	require.NoError(t, err)
	require.Equal(t, "webp", res.Format)
	require.Equal(t, "image/webp", res.ContentType)
	require.Equal(t, uint32(len(res.Bytes)-8), binary.LittleEndian.Uint32(res.Bytes[4:]), "RIFF length")
	require.Equal(t, "VP8X", string(res.Bytes[12:16]))
	require.Zero(t, res.Bytes[20]&(0x08|0x04), "EXIF and XMP flags cleared")
	dec, err := webp.Decode(bytes.NewReader(res.Bytes))
	require.NoError(t, err)
	want, err := webp.Decode(bytes.NewReader(imagingtest.WebP(photo)))
	require.NoError(t, err)
	require.Equal(t, want, dec)
}

// TestRenderingMetadataIsKept checks that an ICC profile survives both
// paths, and that a JFIF header stays without its thumbnail.
func TestRenderingMetadataIsKept(t *testing.T) {
	t.Parallel()
	photo := imagingtest.JPEG(imagingtest.Photo(400, 300, 7))
	for _, o := range []int{1, 6} {
		res, err := imaging.Process(imagingtest.WithICC(imagingtest.WithEXIF(photo, o)))
		require.NoError(t, err)
		require.Contains(t, string(res.Bytes), "ICC_PROFILE\x00\x01\x01"+string(imagingtest.ICCProfile), "orientation %d", o)
	}

	// JFIF with a 2×2 thumbnail.
	jfif := []byte("JFIF\x00\x01\x02\x01\x00\x48\x00\x48\x02\x02")
	jfif = append(jfif, bytes.Repeat([]byte{200, 10, 10}, 4)...)
	seg := append([]byte{0xFF, 0xE0, 0, byte(len(jfif) + 2)}, jfif...)
	data := append(append([]byte{0xFF, 0xD8}, seg...), photo[2:]...)
	res, err := imaging.Process(data)
	require.NoError(t, err)
	require.Equal(t, []byte("\xff\xe0\x00\x10JFIF\x00\x01\x02\x01\x00\x48\x00\x48\x00\x00"), res.Bytes[2:20])
	require.Equal(t, photo[2:], res.Bytes[20:])
}

// TestTransparentWebPTurnsIntoPNG: without a WebP encoder, a turned WebP
// with transparency becomes a PNG, keeping its alpha.
func TestTransparentWebPTurnsIntoPNG(t *testing.T) {
	t.Parallel()
	img := image.NewNRGBA(image.Rect(0, 0, 300, 200))
	draw.Draw(img, img.Bounds(), marked(), image.Point{}, draw.Src)
	img.Pix[3] = 0 // the top-left pixel is transparent
	res, err := imaging.Process(imagingtest.WebPWithEXIF(imaging.Orient(img, 3), 3))
	require.NoError(t, err)
	require.Equal(t, "png", res.Format)
	require.Equal(t, "image/png", res.ContentType)
	dec, err := png.Decode(bytes.NewReader(res.Bytes))
	require.NoError(t, err)
	require.Equal(t, img, dec)

	res, err = imaging.Process(imagingtest.WebPWithEXIF(imaging.Orient(marked(), 3), 3))
	require.NoError(t, err)
	require.Equal(t, "jpeg", res.Format, "an opaque one becomes a JPEG")
}

// TestProcessRefuses: Process refuses what Inspect refuses (but for size,
// which the quality verdict handles), and damaged image data that only
// decoding finds.
func TestProcessRefuses(t *testing.T) {
	t.Parallel()
	// Ingest's options (a reduced decode) refuse the same files for the
	// same reasons as a full decode.
	for _, o := range []imaging.Options{{}, {ReduceTo: imaging.ReviewSize}, {ReduceTo: 8}} {
		for _, f := range imagingtest.BadFiles() {
			res, err := o.Process(f.Data)
			if f.WantCode == "too_small" {
				require.NoError(t, err, f.Name)
				require.Less(t, min(res.Width, res.Height), 200)
				continue
			}
			require.Equal(t, f.WantCode, refusal(t, err).Code, f.Name)
		}
		for _, f := range imagingtest.DamagedFiles() {
			_, err := imaging.Inspect(bytes.NewReader(f.Data), imaging.Limits{})
			require.NoError(t, err, "%s passes upload", f.Name)
			_, err = o.Process(f.Data)
			require.Equal(t, f.WantCode, refusal(t, err).Code, "%s, reduced to %d", f.Name, o.ReduceTo)
		}
	}
	_, err := imaging.Options{Limits: imaging.Limits{MaxPixels: 1000}}.Process(imagingtest.JPEG(imagingtest.Photo(100, 100, 1)))
	require.Equal(t, "too_many_pixels", refusal(t, err).Code)
}

func TestDerive(t *testing.T) {
	t.Parallel()
	res, err := imaging.Process(imagingtest.JPEG(imagingtest.Photo(1024, 768, 2)))
	require.NoError(t, err)
	d, err := imaging.Derive(res)
	require.NoError(t, err)
	g, f, err := image.Decode(bytes.NewReader(d.Grid))
	require.NoError(t, err)
	require.Equal(t, "jpeg", f)
	require.Equal(t, image.Rect(0, 0, 320, 240), g.Bounds())
	require.Nil(t, d.Review, "a small JPEG is its own review image")
	require.Equal(t, 768, d.Quality.ShortSide)
	verdict, reason := imaging.DefaultThresholds.Check(d.Quality)
	require.Equal(t, imaging.Accepted, verdict, reason)
	require.LessOrEqual(t, imaging.Hamming(d.PHash, imaging.PHash(res.Image)), 4)

	for _, tc := range []struct {
		data       []byte
		grid, view image.Rectangle
	}{
		{imagingtest.PNG(imagingtest.Solid(2000, 1000, blue)), image.Rect(0, 0, 320, 160), image.Rect(0, 0, 1600, 800)},
		{imagingtest.PNG(imagingtest.Solid(600, 800, blue)), image.Rect(0, 0, 240, 320), image.Rect(0, 0, 600, 800)},
		{imagingtest.JPEG(imagingtest.Solid(1700, 3400, blue)), image.Rect(0, 0, 160, 320), image.Rect(0, 0, 800, 1600)},
	} {
		res, err := imaging.Process(tc.data)
		require.NoError(t, err)
		d, err := imaging.Derive(res)
		require.NoError(t, err)
		g, err := jpeg.Decode(bytes.NewReader(d.Grid))
		require.NoError(t, err)
		require.Equal(t, tc.grid, g.Bounds())
		r, err := jpeg.Decode(bytes.NewReader(d.Review))
		require.NoError(t, err)
		require.Equal(t, tc.view, r.Bounds())
	}
}

// FuzzProcess: whatever the bytes, Process does not panic, and what it
// accepts it returns as a file that decodes to the size it reports,
// without EXIF.
func FuzzProcess(f *testing.F) {
	for _, b := range imagingtest.BadFiles() {
		if len(b.Data) < 4<<10 {
			f.Add(b.Data)
		}
	}
	for o := 1; o <= 8; o += 5 {
		f.Add(imagingtest.WithEXIF(imagingtest.JPEG(imagingtest.Photo(16, 16, 1)), o))
		f.Add(imagingtest.PNGWithEXIF(imagingtest.PNG(imagingtest.Photo(16, 16, 1)), o))
		f.Add(imagingtest.WebPWithEXIF(imagingtest.Photo(16, 16, 1), o))
	}
	// A full decode, and ingest's reduced one (here to 8 pixels, so that
	// small inputs are reduced too): the same refusals, the same file.
	full := imaging.Options{Limits: imaging.Limits{MaxPixels: 1 << 20}}
	reduced := full
	reduced.ReduceTo = 8
	f.Fuzz(func(t *testing.T, data []byte) {
		var code string
		for _, opts := range []imaging.Options{full, reduced} {
			c := fuzzProcess(t, opts, data)
			if opts.ReduceTo > 0 {
				require.Equal(t, code, c, "a reduced decode refuses what a full one refuses")
			}
			code = c
		}
	})
}

// fuzzProcess checks FuzzProcess's promises for one input and options,
// and returns the refusal's code ("" when accepted).
func fuzzProcess(t *testing.T, opts imaging.Options, data []byte) string {
	prep, err := opts.Prepare(data)
	if err != nil {
		return refusal(t, err).Code
	}
	res, err := prep.Decode()
	if err != nil {
		return refusal(t, err).Code
	}
	// The memory ingest reserves covers the decoded pixels (JPEG and
	// WebP decoders round the size up to whole 16-pixel blocks).
	h := prep.Header()
	pad := 1.0
	if h.Format != "png" {
		pad = float64((h.Width+15)*(h.Height+15)) / float64(h.Width*h.Height)
	}
	require.GreaterOrEqual(t, float64(prep.DecodedBytes())*pad+4096, float64(pixBytes(res.Image)),
		"%s %dx%d decoded as %T", h.Format, h.Width, h.Height, res.Image)
	require.GreaterOrEqual(t, prep.Memory(), prep.DecodedBytes())
	require.NotContains(t, string(res.Bytes), "Exif\x00\x00")
	cfg, format, err := image.DecodeConfig(bytes.NewReader(res.Bytes))
	require.NoError(t, err)
	require.Equal(t, res.Format, format)
	require.Equal(t, res.Width, cfg.Width)
	require.Equal(t, res.Height, cfg.Height)
	b := res.Image.Bounds()
	require.LessOrEqual(t, b.Dx(), res.Width)
	require.LessOrEqual(t, b.Dy(), res.Height)
	require.GreaterOrEqual(t, max(b.Dx(), b.Dy()), min(opts.ReduceTo, max(res.Width, res.Height)))
	_, err = imaging.Derive(res)
	require.NoError(t, err)
	return ""
}

// pixBytes is what an image's pixels take in memory.
func pixBytes(img image.Image) int {
	switch m := img.(type) {
	case *image.RGBA:
		return len(m.Pix)
	case *image.NRGBA:
		return len(m.Pix)
	case *image.RGBA64:
		return len(m.Pix)
	case *image.NRGBA64:
		return len(m.Pix)
	case *image.Gray:
		return len(m.Pix)
	case *image.Gray16:
		return len(m.Pix)
	case *image.CMYK:
		return len(m.Pix)
	case *image.Paletted:
		return len(m.Pix)
	case *image.NYCbCrA:
		return len(m.Y) + len(m.Cb) + len(m.Cr) + len(m.A)
	case *image.YCbCr:
		return len(m.Y) + len(m.Cb) + len(m.Cr)
	}
	panic(fmt.Sprintf("pixBytes: %T", img))
}

// maxPlaneDiff is the largest difference between two decodings of one
// JPEG, plane by plane.
func maxPlaneDiff(t *testing.T, a, b image.Image) int {
	t.Helper()
	ya, ok1 := a.(*image.YCbCr)
	yb, ok2 := b.(*image.YCbCr)
	require.True(t, ok1 && ok2, "%T and %T", a, b)
	require.Equal(t, ya.Rect, yb.Rect)
	require.Equal(t, ya.SubsampleRatio, yb.SubsampleRatio)
	d := 0
	for y := ya.Rect.Min.Y; y < ya.Rect.Max.Y; y++ {
		for x := ya.Rect.Min.X; x < ya.Rect.Max.X; x++ {
			i, j := ya.YOffset(x, y), yb.YOffset(x, y)
			d = max(d, abs(int(ya.Y[i])-int(yb.Y[j])))
			i, j = ya.COffset(x, y), yb.COffset(x, y)
			d = max(d, abs(int(ya.Cb[i])-int(yb.Cb[j])), abs(int(ya.Cr[i])-int(yb.Cr[j])))
		}
	}
	return d
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
