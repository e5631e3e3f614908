package review

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/mask"
)

// box is a w×h mask on a 20×10 image set on [x0, x1) × [y0, y1).
func box(x0, y0, x1, y1 int) mask.RLE {
	b := mask.NewBitmap(20, 10)
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			b.Set(x, y, true)
		}
	}
	return mask.Encode(b)
}

// TestCommitteeOf measures hand-built proposals whose IoUs are known: the
// figure is the mean over model pairs, a match needs IoU 0.5, and per
// label only the pairs that proposed the label count.
func TestCommitteeOf(t *testing.T) {
	a, b, c := uuid.New(), uuid.New(), uuid.New()

	_, ok, err := CommitteeOf(map[uuid.UUID][]Labelled{a: {{"cat", box(0, 0, 10, 10)}}})
	require.NoError(t, err)
	require.False(t, ok, "one model is no committee")

	// cat: 10×10 against 10×10 shifted by 2 (IoU 80/120 = 2/3); dog: 4×10
	// against 4×10 shifted by 3 (IoU 10/70, below 0.5: no match, 2
	// unmatched); person: only model a (unmatched).
	got, ok, err := CommitteeOf(map[uuid.UUID][]Labelled{
		a: {{"cat", box(0, 0, 10, 10)}, {"dog", box(12, 0, 16, 10)}, {"person", box(18, 0, 20, 2)}},
		b: {{"cat", box(2, 0, 12, 10)}, {"dog", box(15, 0, 19, 10)}},
	})
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, 2, got.Models)
	// One match (2/3) and 1 + 2 unmatched: 2/3 / 4.
	require.InDelta(t, 2.0/3/4, got.Agreement, 1e-9)
	require.InDelta(t, 2.0/3, got.ByLabel["cat"], 1e-9)
	require.InDelta(t, 0, got.ByLabel["dog"], 1e-9)
	require.InDelta(t, 0, got.ByLabel["person"], 1e-9)

	// Three models: a and b agree fully, c found nothing. Pairs: (a,b) 1,
	// (a,c) 0, (b,c) 0.
	got, ok, err = CommitteeOf(map[uuid.UUID][]Labelled{
		a: {{"cat", box(0, 0, 10, 10)}},
		b: {{"cat", box(0, 0, 10, 10)}},
		c: nil,
	})
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, 3, got.Models)
	require.InDelta(t, 1.0/3, got.Agreement, 1e-9)
	require.InDelta(t, 1.0/3, got.ByLabel["cat"], 1e-9)

	// Two models that both found nothing agree.
	got, _, err = CommitteeOf(map[uuid.UUID][]Labelled{a: nil, b: nil})
	require.NoError(t, err)
	require.Equal(t, 1.0, got.Agreement)
	require.Empty(t, got.ByLabel)
}
