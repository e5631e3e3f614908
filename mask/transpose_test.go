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
