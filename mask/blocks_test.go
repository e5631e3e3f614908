package mask

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// naiveRuns is pycocotools' rleEncode: the runs, a pixel at a time down
// the columns.
func naiveRuns(b *Bitmap) []uint32 {
	var runs []uint32
	var run uint32
	on := false
	for x := range b.W {
		for y := range b.H {
			if (b.Pix[y*b.W+x] != 0) != on {
				runs = append(runs, run)
				run, on = 0, !on
			}
			run++
		}
	}
	return append(runs, run)
}

// TestEncodeBothWays checks both ways Encode finds the runs, from the
// changes between rows (sparse masks) and from 8×8 blocks of bits (noise),
// against the runs taken a pixel at a time, on masks from empty to noise
// and sizes from 1×1 to wider than a strip of blocks.
func TestEncodeBothWays(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(7, 8))
	for i := range 100 {
		w, h := 1+rng.IntN(300), 1+rng.IntN(150)
		if i%10 == 0 {
			w, h = 1+rng.IntN(3), 1+rng.IntN(3)
		}
		b := randomBitmap(rng, w, h)
		for j := range b.Pix {
			if b.Pix[j] != 0 && rng.IntN(4) == 0 {
				b.Pix[j] = uint8(1 + rng.IntN(255))
			}
		}
		want := FromRuns(h, w, naiveRuns(b))

		var cw countWriter
		if last, ok := encodeChanges(&cw, b, new(scratch)); ok {
			cw.put(int64(h*w - last))
			require.Equal(t, want.Counts, cw.sb.String(), "changes, %dx%d", w, h)
		}
		cw = countWriter{}
		last := encodeBlocks(&cw, b)
		cw.put(int64(h*w - last))
		require.Equal(t, want.Counts, cw.sb.String(), "blocks, %dx%d", w, h)
		require.Equal(t, want, Encode(b))
	}
}

// TestDecodeInto checks that DecodeInto overwrites what the bitmap held,
// refuses a bitmap of another size, and leaves the bitmap as it was when
// the mask is bad.
func TestDecodeInto(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(9, 10))
	into := NewBitmap(37, 23)
	for range 50 {
		want := randomBitmap(rng, 37, 23)
		require.NoError(t, Encode(want).DecodeInto(into))
		require.Equal(t, want, into)
	}
	before := append([]uint8(nil), into.Pix...)
	require.Error(t, Encode(NewBitmap(23, 37)).DecodeInto(into))
	require.ErrorIs(t, RLE{Size: [2]int{23, 37}, Counts: "0"}.DecodeInto(into), ErrInvalid)
	require.Equal(t, before, into.Pix)
}

// TestEncodeAnyNonZero checks that Encode takes any non-zero byte as 1, in
// the 8×8 blocks and at the edges, as the old byte-at-a-time loop did.
func TestEncodeAnyNonZero(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(5, 6))
	values := []uint8{1, 2, 0x7f, 0x80, 0x81, 0xfe, 0xff}
	for range 300 {
		w, h := 1+rng.IntN(300), 1+rng.IntN(150)
		ones := randomBitmap(rng, w, h)
		any := NewBitmap(w, h)
		for i, v := range ones.Pix {
			if v != 0 {
				any.Pix[i] = values[rng.IntN(len(values))]
			}
		}
		require.Equal(t, Encode(ones), Encode(any), "%dx%d", w, h)
		back, err := Encode(any).Decode()
		require.NoError(t, err)
		require.Equal(t, ones, back)
	}
}

// TestDecodeBox checks decoding on masks whose pixels sit in a box away
// from the edges, wide enough for the XOR pass's 32- and 8-byte steps:
// decoding keeps to the box around the pixels, so one off by one there
// loses a row or column, or leaves a run's end uncancelled below it.
func TestDecodeBox(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(11, 12))
	into := NewBitmap(200, 150)
	for i := range into.Pix {
		into.Pix[i] = 1 // DecodeInto must clear what was there
	}
	for range 300 {
		want := NewBitmap(200, 150)
		for range 1 + rng.IntN(3) {
			x0, y0 := rng.IntN(200), rng.IntN(150)
			x1, y1 := x0+1+rng.IntN(200-x0), y0+1+rng.IntN(150-y0)
			for y := y0; y < y1; y++ {
				for x := x0; x < x1; x++ {
					if rng.IntN(8) != 0 { // holes, so runs also end inside the box
						want.Set(x, y, true)
					}
				}
			}
		}
		r := Encode(want)
		got, err := r.Decode()
		require.NoError(t, err)
		require.Equal(t, want, got)
		require.NoError(t, r.DecodeInto(into))
		require.Equal(t, want, into)
	}
	for _, p := range [][2]int{{0, 0}, {199, 0}, {0, 149}, {199, 149}, {100, 75}} {
		want := NewBitmap(200, 150)
		want.Set(p[0], p[1], true)
		got, err := Encode(want).Decode()
		require.NoError(t, err)
		require.Equal(t, want, got, "one pixel at %v", p)
	}
}
