package segment_test

import (
	"bytes"
	"image"
	"image/color"
	"image/draw"
	"image/jpeg"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/worker/segment"
	"github.com/deepimageshub/imagehub/worker/segment/segmenttest"
)

func decode(t testing.TB, b []byte) image.Image {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(b))
	require.NoError(t, err)
	return img
}

func TestFindsTheDrawnShapes(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed <= 3; seed++ {
		p := segmenttest.NewPhoto(640, 480, seed, 90)
		ins := segment.Segment(decode(t, p.JPEG), segment.Options{})
		require.Len(t, ins, len(p.Shapes), "seed %d", seed)
		for i, in := range ins {
			require.Equal(t, 640, in.Mask.W)
			require.Equal(t, 480, in.Mask.H)
			require.True(t, in.Score >= 0 && in.Score <= 1, "score %v", in.Score)
			if i > 0 {
				require.LessOrEqual(t, in.Score, ins[i-1].Score, "most salient first")
			}
		}
		for _, s := range p.Shapes {
			best := 0.0
			for _, in := range ins {
				best = max(best, segmenttest.IoU(in.Mask, s.Mask))
			}
			require.Greater(t, best, 0.8, "seed %d: %s", seed, s.Name)
		}
	}
}

func TestIsDeterministic(t *testing.T) {
	t.Parallel()
	img := decode(t, segmenttest.NewPhoto(400, 300, 7, 85).JPEG)
	a := segment.Segment(img, segment.Options{})
	b := segment.Segment(img, segment.Options{})
	require.Equal(t, a, b)
}

func TestPlainPhotoHasNoObjects(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	img := image.NewRGBA(image.Rect(0, 0, 320, 240))
	for i := 0; i < len(img.Pix); i += 4 {
		v := uint8(120 + rng.IntN(16))
		img.Pix[i], img.Pix[i+1], img.Pix[i+2], img.Pix[i+3] = v, v, v+10, 255
	}
	require.Empty(t, segment.Segment(img, segment.Options{}))
}

func TestEveryImageKindAndSize(t *testing.T) {
	t.Parallel()
	src := segmenttest.NewPhoto(300, 200, 3, 90).Image
	want := segment.Segment(src, segment.Options{})
	require.Len(t, want, 3)

	nrgba := image.NewNRGBA(src.Bounds())
	draw.Draw(nrgba, nrgba.Bounds(), src, image.Point{}, draw.Src)
	paletted := image.NewPaletted(src.Bounds(), color.Palette{color.Black, color.White, color.RGBA{200, 40, 35, 255}, color.RGBA{35, 70, 190, 255}, color.RGBA{230, 200, 40, 255}, color.RGBA{150, 140, 120, 255}})
	draw.Draw(paletted, paletted.Bounds(), src, image.Point{}, draw.Src)
	// A sub-image whose bounds do not start at the origin.
	offset := image.NewRGBA(image.Rect(0, 0, 310, 210))
	draw.Draw(offset, image.Rect(10, 10, 310, 210), src, image.Point{}, draw.Src)
	for name, img := range map[string]image.Image{"nrgba": nrgba, "paletted": paletted, "offset": offset.SubImage(image.Rect(10, 10, 310, 210))} {
		got := segment.Segment(img, segment.Options{})
		require.Len(t, got, 3, name)
		for _, w := range want {
			best := 0.0
			for _, g := range got {
				best = max(best, segmenttest.IoU(g.Mask, w.Mask))
			}
			require.Greater(t, best, 0.85, name)
		}
	}
	gray := image.NewGray(src.Bounds())
	draw.Draw(gray, gray.Bounds(), src, image.Point{}, draw.Src)
	require.NotPanics(t, func() { segment.Segment(gray, segment.Options{}) })

	for _, r := range []image.Rectangle{image.Rect(0, 0, 1, 1), image.Rect(0, 0, 2, 2), image.Rect(0, 0, 3, 900), image.Rect(0, 0, 2000, 2)} {
		img := image.NewRGBA(r)
		draw.Draw(img, image.Rect(0, 0, 1, 1), image.NewUniform(color.White), image.Point{}, draw.Src)
		require.NotPanics(t, func() { segment.Segment(img, segment.Options{}) }, "%v", r)
	}
}

// BenchmarkSegment1MP segments a 1152×864 photo as JPEG decoding gives it
// (YCbCr 4:2:0).
func BenchmarkSegment1MP(b *testing.B) {
	img := decode(b, segmenttest.NewPhoto(1152, 864, 1, 90).JPEG)
	b.ReportAllocs()
	for b.Loop() {
		segment.Segment(img, segment.Options{})
	}
}

// BenchmarkDecodeAndSegment1MP adds the JPEG decoding the worker does.
func BenchmarkDecodeAndSegment1MP(b *testing.B) {
	data := segmenttest.NewPhoto(1152, 864, 1, 90).JPEG
	b.ReportAllocs()
	for b.Loop() {
		segment.Segment(decode(b, data), segment.Options{})
	}
}
