package insight

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func f(v float64) *float64 { return &v }

func TestRank(t *testing.T) {
	t.Parallel()
	got := Rank([]Class{
		{Label: "cat", Instances: 100, AP: f(0.9), MeanIoU: f(0.8), Acceptance: f(0.7)},
		{Label: "dog", Instances: 25, AP: f(0.4)},
		{Label: "bird", Instances: 100},
		{Label: "cow", Instances: 50, AP: f(-1)}, // no ground truth in the evaluated split
	})
	labels := []string{}
	for _, r := range got {
		labels = append(labels, r.Label)
	}
	// dog: scarcity 1 - 25/100 = .75, weakness .6 → .675
	// cow: scarcity 1 - 50/100 = .5 (AP -1 is no signal) → .5
	// cat: scarcity 0 (median of 25, 100, 50 is 50), .1, .2, .3 → .15
	// bird: scarcity 0 (median of 100, 25, 50 is 50) → 0
	require.Equal(t, []string{"dog", "cow", "cat", "bird"}, labels)
	require.InDelta(t, 0.675, got[0].Priority, 1e-12)
	require.Equal(t, 75, got[0].SuggestedTarget)
	require.InDelta(t, 0.5, got[1].Priority, 1e-12)
	require.Equal(t, 50, got[1].SuggestedTarget)
	require.InDelta(t, 0.15, got[2].Priority, 1e-12)
	require.Equal(t, 1, got[2].SuggestedTarget, "at the median already: at least 1")
	require.Equal(t, 0.0, got[3].Priority)
	require.Contains(t, got[0].Reason, "scarcity (25 instances, median of the others 100): 0.75")
	require.Contains(t, got[0].Reason, "weakness (AP 0.400): 0.60")
	require.Contains(t, got[2].Reason, "corrections (70% accepted): 0.30")

	require.Empty(t, Rank(nil))
	one := Rank([]Class{{Label: "x", Instances: 3}})
	require.Equal(t, 0.0, one[0].Priority)
}
