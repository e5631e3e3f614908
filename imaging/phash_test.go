package imaging_test

import (
	"bytes"
	"image"
	"image/draw"
	"image/jpeg"
	"math/bits"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/imaging"
	"github.com/deepimageshub/imagehub/imaging/imagingtest"
)

func recompress(t *testing.T, img image.Image, q int) image.Image {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}))
	out, err := jpeg.Decode(&buf)
	require.NoError(t, err)
	return out
}

func cropped(img *image.RGBA, frac float64) image.Image {
	b := img.Bounds()
	dx, dy := int(float64(b.Dx())*frac), int(float64(b.Dy())*frac)
	return img.SubImage(image.Rect(dx, dy, b.Dx()-dx, b.Dy()-dy))
}

// nearest resizes by picking pixels, the crudest resize there is.
func nearest(img image.Image, w, h int) *image.RGBA {
	b := img.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			out.Set(x, y, img.At(x*b.Dx()/w, y*b.Dy()/h))
		}
	}
	return out
}

func TestPHashIsStable(t *testing.T) {
	t.Parallel()
	for seed := uint64(0); seed < 3; seed++ {
		photo := imagingtest.Photo(1024, 768, seed)
		h := imaging.PHash(photo)
		require.Equal(t, 32, bits.OnesCount64(h), "half the bits are set")
		brighter := image.NewRGBA(photo.Bounds())
		for i, v := range photo.Pix {
			brighter.Pix[i] = uint8(min(255, int(v)+15))
		}
		for name, tc := range map[string]struct {
			img  image.Image
			dist int
		}{
			"resized to 500":        {imaging.Thumbnail(photo, 500), 4},
			"resized to 200":        {imaging.Thumbnail(photo, 200), 4},
			"resized crudely":       {nearest(photo, 800, 600), 4},
			"re-encoded at 90":      {recompress(t, photo, 90), 4},
			"re-encoded at 50":      {recompress(t, photo, 50), 4},
			"smaller and at 60":     {recompress(t, nearest(photo, 800, 600), 60), 4},
			"brighter":              {brighter, 4},
			"cropped 2% each side":  {cropped(photo, 0.02), 8},
			"stretched to a square": {nearest(photo, 700, 700), 4},
		} {
			require.LessOrEqual(t, imaging.Hamming(h, imaging.PHash(tc.img)), tc.dist, "seed %d: %s", seed, name)
		}
	}
}

func TestPHashTellsPhotosApart(t *testing.T) {
	t.Parallel()
	var hashes []uint64
	for seed := uint64(100); seed < 116; seed++ {
		hashes = append(hashes, imaging.PHash(imagingtest.Photo(640, 480, seed)))
	}
	for i := range hashes {
		for j := i + 1; j < len(hashes); j++ {
			require.GreaterOrEqual(t, imaging.Hamming(hashes[i], hashes[j]), 20, "photos %d and %d", i, j)
		}
	}
	// A photo and its mirror image are different pictures to the hash.
	photo := imagingtest.Photo(640, 480, 1)
	require.GreaterOrEqual(t, imaging.Hamming(imaging.PHash(photo), imaging.PHash(imaging.Orient(photo, 2))), 20)
}

func TestPHashOfOddImages(t *testing.T) {
	t.Parallel()
	for _, img := range []image.Image{
		imagingtest.Photo(10, 10, 1), imagingtest.Photo(1, 1, 1), imagingtest.Photo(5000, 20, 1),
		image.NewGray(image.Rect(0, 0, 300, 300)), image.NewCMYK(image.Rect(0, 0, 600, 600)),
	} {
		imaging.PHash(img) // no panic, whatever the size or type
	}
	photo := imagingtest.Photo(640, 480, 2)
	gray := image.NewGray(photo.Bounds())
	draw.Draw(gray, gray.Bounds(), photo, image.Point{}, draw.Src)
	require.LessOrEqual(t, imaging.Hamming(imaging.PHash(photo), imaging.PHash(gray)), 2, "colour does not matter, luma does")
}

func TestBands(t *testing.T) {
	t.Parallel()
	h := uint64(0x0123_4567_89AB_CDEF)
	require.Equal(t, [4]uint16{0x0123, 0x4567, 0x89AB, 0xCDEF}, imaging.Bands(h))
	require.Equal(t, 3, imaging.Hamming(0b1011, 0b0110))
}

// TestProbesFindEveryNearHash checks the pigeonhole promise of Probes on
// random hashes: every hash within maxDist shares a band value with a
// probe. It also checks the probe lists stay the size the index expects.
func TestProbesFindEveryNearHash(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for maxDist := 0; maxDist <= 11; maxDist++ {
		sizes := map[int]int{0: 1, 1: 17, 2: 137}
		for range 3000 {
			h := rng.Uint64()
			near := h
			// Mostly exactly maxDist flips, the hardest case, spread or
			// bunched into one band.
			n := maxDist
			if rng.IntN(4) == 0 {
				n = rng.IntN(maxDist + 1)
			}
			perm := rng.Perm(64)
			if rng.IntN(2) == 0 {
				perm = rng.Perm(16)
				for i := range perm {
					perm[i] += 16 * rng.IntN(4)
				}
			}
			flipped := map[int]bool{}
			for _, bit := range perm {
				if len(flipped) == n {
					break
				}
				if !flipped[bit] {
					flipped[bit] = true
					near ^= 1 << bit
				}
			}
			probes := imaging.Probes(h, maxDist)
			bands := imaging.Bands(near)
			found := false
			for i := range 4 {
				require.Len(t, probes[i], sizes[maxDist/4])
				for _, p := range probes[i] {
					found = found || p == bands[i]
				}
			}
			require.True(t, found, "maxDist %d: %016x not found from %016x", maxDist, near, h)
		}
	}
}

// TestProbesAreDistinct: no band value is probed twice.
func TestProbesAreDistinct(t *testing.T) {
	t.Parallel()
	for _, d := range []int{0, 4, 7, 8, 12} {
		for _, list := range imaging.Probes(0xDEADBEEFCAFEF00D, d) {
			seen := map[uint16]bool{}
			for _, v := range list {
				require.False(t, seen[v], "maxDist %d: %04x twice", d, v)
				seen[v] = true
			}
		}
	}
	require.Len(t, imaging.Probes(0, 12)[0], 1+16+120+560)
	require.Len(t, imaging.Probes(0, -1)[0], 1)
}
