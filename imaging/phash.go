package imaging

import (
	"image"
	"math"
	"math/bits"
	"sort"
)

// PHash is a 64-bit perceptual hash: the image reduced to 32×32 grey, its 2-D
// DCT, and one bit per coefficient of the 8×8 lowest frequencies (without
// the DC term's row and column bias) telling whether it is above their
// median. It changes little when an image is resized, re-encoded, slightly
// cropped or its colours shift, unlike a difference hash, which is more
// sensitive to small crops — hence the DCT.
func PHash(img image.Image) uint64 {
	const n = 32
	g := grayResize(img, n, n)
	var dct [8][8]float64
	// Separable DCT-II, only the 8 lowest frequencies in each direction.
	var rows [n][8]float64
	for y := 0; y < n; y++ {
		for u := 0; u < 8; u++ {
			s := 0.0
			for x := 0; x < n; x++ {
				s += g[y*n+x] * cosTable[u][x]
			}
			rows[y][u] = s
		}
	}
	for v := 0; v < 8; v++ {
		for u := 0; u < 8; u++ {
			s := 0.0
			for y := 0; y < n; y++ {
				s += rows[y][u] * cosTable[v][y]
			}
			dct[v][u] = s
		}
	}
	vals := make([]float64, 0, 64)
	for v := 0; v < 8; v++ {
		for u := 0; u < 8; u++ {
			vals = append(vals, dct[v][u])
		}
	}
	// The median skips the DC coefficient, which only says how bright the
	// image is overall.
	sorted := append([]float64(nil), vals[1:]...)
	sort.Float64s(sorted)
	median := (sorted[31] + sorted[32]) / 2
	var h uint64
	for i, v := range vals {
		if v > median {
			h |= 1 << uint(63-i)
		}
	}
	return h
}

var cosTable = func() (t [8][32]float64) {
	for u := 0; u < 8; u++ {
		for x := 0; x < 32; x++ {
			t[u][x] = math.Cos(float64(2*x+1) * float64(u) * math.Pi / 64)
		}
	}
	return t
}()

// grayResize averages img into a w×h grid of luma values (box filter).
func grayResize(img image.Image, w, h int) []float64 {
	src := toRGBA(Thumbnail(img, max(w, h)*4))
	sb := src.Bounds()
	sw, sh := sb.Dx(), sb.Dy()
	out := make([]float64, w*h)
	for y := 0; y < h; y++ {
		y0, y1 := y*sh/h, max((y+1)*sh/h, y*sh/h+1)
		for x := 0; x < w; x++ {
			x0, x1 := x*sw/w, max((x+1)*sw/w, x*sw/w+1)
			s, c := 0.0, 0
			for yy := y0; yy < y1 && yy < sh; yy++ {
				p := src.Pix[yy*src.Stride:]
				for xx := x0; xx < x1 && xx < sw; xx++ {
					s += luma(p[4*xx], p[4*xx+1], p[4*xx+2])
					c++
				}
			}
			if c > 0 {
				out[y*w+x] = s / float64(c)
			}
		}
	}
	return out
}

func luma(r, g, b uint8) float64 { return 0.299*float64(r) + 0.587*float64(g) + 0.114*float64(b) }

// Hamming is the number of bits in which two hashes differ.
func Hamming(a, b uint64) int { return bits.OnesCount64(a ^ b) }

// Bands splits a hash into the four 16-bit bands that the near-duplicate
// index stores in separate indexed columns.
func Bands(h uint64) [4]uint16 {
	return [4]uint16{uint16(h >> 48), uint16(h >> 32), uint16(h >> 16), uint16(h)}
}

// Probes returns, for each band of h, the values a hash within maxDist bits
// of h may have in that band for the lookup to find it. By the pigeonhole
// principle, if two hashes differ in at most maxDist bits, at least one of
// the four bands differs in at most maxDist/4 bits; so probing each band with
// every value within maxDist/4 flips of h's band finds every such hash
// (maxDist ≤ 7: at most 1 flip, 17 values per band). An exact Hamming test
// then removes the false candidates.
func Probes(h uint64, maxDist int) [4][]uint16 {
	flips := max(maxDist, 0) / 4
	var out [4][]uint16
	for i, b := range Bands(h) {
		vals := []uint16{b}
		if flips >= 1 {
			for bit := 0; bit < 16; bit++ {
				vals = append(vals, b^(1<<bit))
			}
		}
		if flips >= 2 {
			for i := 0; i < 16; i++ {
				for j := i + 1; j < 16; j++ {
					vals = append(vals, b^(1<<i)^(1<<j))
				}
			}
		}
		out[i] = vals
	}
	return out
}
