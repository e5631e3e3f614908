package mask

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestTransposeBytes(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(3, 4))
	for range 100 {
		var a, want [8]uint64
		for k := range a {
			a[k] = rng.Uint64()
		}
		for k := range 8 {
			for j := range 8 {
				want[j] |= (a[k] >> (8 * j) & 0xff) << (8 * k)
			}
		}
		transposeBytes(&a)
		require.Equal(t, want, a)
	}
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
