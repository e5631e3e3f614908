package imagingtest_test

import (
	"bytes"
	"image"
	"image/color"
	"image/draw"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/image/webp"

	"github.com/deepimageshub/imagehub/imaging"
	"github.com/deepimageshub/imagehub/imaging/imagingtest"
)

// TestWebPRoundTrip decodes what WebP encodes, opaque and transparent.
func TestWebPRoundTrip(t *testing.T) {
	t.Parallel()
	photo := imagingtest.Photo(97, 61, 1)
	got, err := webp.Decode(bytes.NewReader(imagingtest.WebP(photo)))
	require.NoError(t, err)
	want := image.NewNRGBA(photo.Bounds())
	draw.Draw(want, want.Bounds(), photo, image.Point{}, draw.Src)
	require.Equal(t, want, got)

	transparent := image.NewNRGBA(image.Rect(0, 0, 40, 30))
	draw.Draw(transparent, transparent.Bounds(), photo, image.Point{}, draw.Src)
	transparent.SetNRGBA(3, 4, color.NRGBA{10, 20, 30, 0})
	transparent.SetNRGBA(5, 6, color.NRGBA{10, 20, 30, 128})
	for _, data := range [][]byte{imagingtest.WebP(transparent), imagingtest.WebPWithEXIF(transparent, 1)} {
		got, err = webp.Decode(bytes.NewReader(data))
		require.NoError(t, err)
		require.Equal(t, transparent, got)
	}
}

func TestGoodPhotosPass(t *testing.T) {
	t.Parallel()
	for _, f := range imagingtest.GoodPhotos(3) {
		_, err := imaging.Inspect(bytes.NewReader(f.Data), imaging.Limits{})
		require.NoError(t, err, f.Name)
		res, err := imaging.Process(f.Data)
		require.NoError(t, err)
		d, err := imaging.Derive(res)
		require.NoError(t, err)
		verdict, reason := imaging.DefaultThresholds.Check(d.Quality)
		require.Equal(t, imaging.Accepted, verdict, reason)
	}
}

// TestMetadataHelpersCarryTheMarker: the With… helpers put GPSMarker where
// the tests look for its removal, and keep the files valid.
func TestMetadataHelpersCarryTheMarker(t *testing.T) {
	t.Parallel()
	photo := imagingtest.Photo(300, 200, 1)
	for name, data := range map[string][]byte{
		"jpeg": imagingtest.WithEXIF(imagingtest.JPEG(photo), 6),
		"png":  imagingtest.PNGWithEXIF(imagingtest.PNG(photo), 6),
		"webp": imagingtest.WebPWithEXIF(photo, 6),
	} {
		require.Contains(t, string(data), imagingtest.GPSMarker, name)
		_, format, err := image.Decode(bytes.NewReader(data))
		require.NoError(t, err, name)
		require.Equal(t, name, format)
	}
	require.Contains(t, string(imagingtest.EXIF(6)), imagingtest.GPSMarker)
}
