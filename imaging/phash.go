package imaging

import (
	"image"
	"image/color"
	"math"
	"math/bits"
	"slices"

	xdraw "golang.org/x/image/draw"
)

// PHash is a 64-bit perceptual hash of img: the image reduced to 32×32 grey
// levels (averaging, whatever its aspect ratio), the 2-D DCT of that, and
// one bit for each of the 64 lowest-frequency coefficients other than the
// constant one, set when the coefficient is above their median.
//
// Why a DCT hash rather than a difference hash (dHash): what survives
// resizing, re-encoding, a change of brightness or contrast, and a few
// percent of cropping is the low-frequency layout of the picture, which is
// exactly what these coefficients describe, and the median makes the hash
// indifferent to global brightness and contrast. dHash compares neighbouring
// cells of a 9×8 thumbnail; in flat regions (sky, walls) those differences
// are near zero and flip with JPEG noise, so re-encoding costs it more bits.
// The median also sets exactly half the bits, so hashes spread over the
// whole space, which keeps the banded index (Bands) selective.
//
// The coefficients are taken by increasing frequency (u+v = 1, 2, … 10)
// and dealt round-robin to the four 16-bit bands, so that each band mixes
// coarse and finer structure rather than one band holding only the most
// stable bits.
func PHash(img image.Image) uint64 {
	const n = 32
	g := lumaCells(img, n, n)
	// Separable DCT-II: rows first, for the horizontal frequencies needed.
	var rows [n][maxFreq + 1]float64
	for y := range n {
		for u := 0; u <= maxFreq; u++ {
			s := 0.0
			for x := range n {
				s += g[y*n+x] * dctCos[u][x]
			}
			rows[y][u] = s
		}
	}
	var vals [64]float64
	for i, f := range hashFreqs {
		s := 0.0
		for y := range n {
			s += rows[y][f.u] * dctCos[f.v][y]
		}
		vals[i] = s
	}
	sorted := vals
	slices.Sort(sorted[:])
	median := (sorted[31] + sorted[32]) / 2
	var h uint64
	for i, v := range vals {
		if v > median {
			h |= 1 << (63 - 16*(i%4) - i/4)
		}
	}
	return h
}

const maxFreq = 10

// hashFreqs are the 64 lowest frequencies (u, v) after the constant term, by
// increasing u+v, then v.
var hashFreqs = func() (f [64]struct{ u, v int }) {
	i := 0
	for s := 1; i < 64; s++ {
		for v := 0; v <= s && i < 64; v++ {
			f[i].u, f[i].v = s-v, v
			i++
		}
	}
	return f
}()

var dctCos = func() (t [maxFreq + 1][32]float64) {
	for u := range t {
		for x := range 32 {
			t[u][x] = math.Cos(float64(2*x+1) * float64(u) * math.Pi / 64)
		}
	}
	return t
}()

// lumaCells averages the luma of img over a cw×ch grid of cells.
func lumaCells(img image.Image, cw, ch int) []float64 {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w < cw || h < ch {
		// Too small to average: stretch it to the grid instead.
		up := image.NewRGBA(image.Rect(0, 0, cw, ch))
		xdraw.BiLinear.Scale(up, up.Bounds(), img, b, xdraw.Src, nil)
		img, b, w, h = up, up.Bounds(), cw, ch
	}
	if !fastLuma(img) && (w > 256 || h > 256) {
		img = Thumbnail(img, 256)
		b = img.Bounds()
		w, h = b.Dx(), b.Dy()
	}
	cell := make([]int, w)
	for x := range cell {
		cell[x] = x * cw / w
	}
	sums := make([]float64, cw*ch)
	row := make([]uint8, w)
	acc := make([]uint32, cw)
	for cy := range ch {
		clear(acc)
		y0, y1 := cy*h/ch, (cy+1)*h/ch
		for y := y0; y < y1; y++ {
			lumaRow(img, b.Min.Y+y, row)
			for x, v := range row {
				acc[cell[x]] += uint32(v)
			}
		}
		for cx := range cw {
			x0, x1 := (cx*w+cw-1)/cw, ((cx+1)*w+cw-1)/cw // the columns x with x*cw/w == cx
			sums[cy*cw+cx] = float64(acc[cx]) / float64((x1-x0)*(y1-y0))
		}
	}
	return sums
}

// fastLuma says whether lumaRow reads img without converting pixels one by
// one through the color.Color interface.
func fastLuma(img image.Image) bool {
	switch img.(type) {
	case *image.YCbCr, *image.RGBA, *image.NRGBA, *image.Gray:
		return true
	}
	return false
}

// lumaRow fills row with the luma (0–255, JFIF's weights, as image/color's
// grey model) of row y of img.
func lumaRow(img image.Image, y int, row []uint8) {
	b := img.Bounds()
	switch m := img.(type) {
	case *image.YCbCr:
		// The Y plane is the luma.
		copy(row, m.Y[m.YOffset(b.Min.X, y):])
	case *image.Gray:
		copy(row, m.Pix[m.PixOffset(b.Min.X, y):])
	case *image.RGBA:
		p := m.Pix[m.PixOffset(b.Min.X, y):]
		for x := range row {
			row[x] = luma8(p[4*x], p[4*x+1], p[4*x+2])
		}
	case *image.NRGBA:
		p := m.Pix[m.PixOffset(b.Min.X, y):]
		for x := range row {
			row[x] = luma8(p[4*x], p[4*x+1], p[4*x+2])
		}
	default:
		for x := range row {
			row[x] = color.GrayModel.Convert(img.At(b.Min.X+x, y)).(color.Gray).Y
		}
	}
}

func luma8(r, g, b uint8) uint8 {
	return uint8((19595*uint32(r) + 38470*uint32(g) + 7471*uint32(b) + 1<<15) >> 16)
}

// Hamming is the number of bits in which two hashes differ.
func Hamming(a, b uint64) int { return bits.OnesCount64(a ^ b) }

// Bands splits a hash into the four 16-bit bands that the near-duplicate
// index stores in four indexed columns: bits 63–48, 47–32, 31–16, 15–0.
func Bands(h uint64) [4]uint16 {
	return [4]uint16{uint16(h >> 48), uint16(h >> 32), uint16(h >> 16), uint16(h)}
}

// Probes returns, for each band of h, the band values that a stored hash
// within maxDist bits of h may have there for a lookup to find it.
//
// The lookup is a multi-index search. Split 64 bits into four 16-bit bands:
// if two hashes differ in at most maxDist bits, then by the pigeonhole
// principle at least one band differs in at most ⌊maxDist/4⌋ bits (were all
// four to differ in more, the total would exceed maxDist). So every hash
// within maxDist has, in some band i, a value within ⌊maxDist/4⌋ bit flips of
// h's band i, and the query
//
//	WHERE b0 = ANY($1) OR b1 = ANY($2) OR b2 = ANY($3) OR b3 = ANY($4)
//
// with the four lists returned here, each an index lookup, finds all of
// them; an exact Hamming filter then drops the candidates that are further
// away. For maxDist ≤ 3 each list is the band itself; for 4 ≤ maxDist ≤ 7 it
// is the band and its 16 one-bit neighbours; each further step of 4 adds the
// next ring of neighbours (137 values at 2 flips, 697 at 3), so the search
// stays cheap only for small distances, which is what near-duplicates are.
func Probes(h uint64, maxDist int) [4][]uint16 {
	flips := min(max(maxDist, 0)/4, 16)
	var out [4][]uint16
	for i, b := range Bands(h) {
		vals := []uint16{b}
		out[i] = appendFlips(vals, b, 0, flips)
	}
	return out
}

// appendFlips appends v with every set of 1 to flips bits at positions ≥
// from flipped.
func appendFlips(vals []uint16, v uint16, from, flips int) []uint16 {
	if flips == 0 {
		return vals
	}
	for bit := from; bit < 16; bit++ {
		f := v ^ 1<<bit
		vals = append(vals, f)
		vals = appendFlips(vals, f, bit+1, flips-1)
	}
	return vals
}
