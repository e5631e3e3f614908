package trainer_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/regionmodel"
	"github.com/deepimageshub/imagehub/trainer"
	"github.com/deepimageshub/imagehub/trainer/trainertest"
)

func openShapes(t testing.TB, split string, n, firstID int, seed uint64) *trainer.Split {
	t.Helper()
	s := openShapesSized(t, split, n, 96, firstID, seed)
	require.Len(t, s.Images, n)
	return s
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

func train(t testing.TB, train, val *trainer.Split, seed int64) *trainer.Result {
	t.Helper()
	r, ok := trainer.Find("region-classifier")
	require.True(t, ok)
	params, err := r.Validate(map[string]any{"epochs": 30.0})
	require.NoError(t, err)
	res, err := r.Train(context.Background(), trainer.Job{Labels: trainertest.Labels, Params: params, Seed: seed, Train: train, Val: val})
	require.NoError(t, err)
	return res
}

// TestRegionClassifierLearns trains on 300 generated images and checks, on
// 100 others, that the model beats the untrained segmenter clearly, and
// that the same seed gives the same model bytes and metrics.
func TestRegionClassifierLearns(t *testing.T) {
	t.Parallel()
	tr := openShapes(t, "train", 150, 1, 7)
	val := openShapes(t, "val", 50, 10001, 8)
	res := train(t, tr, val, 42)
	t.Logf("metrics: %v", res.Metrics)
	ap, base := res.Metrics["AP50"].(float64), res.Metrics["baseline_AP50"].(float64)
	require.Greater(t, ap, base+0.2, "the trained model must beat the segmenter clearly")
	require.Greater(t, ap, 0.5)

	labels, err := regionmodel.Check(context.Background(), res.Artifact)
	require.NoError(t, err)
	require.Equal(t, trainertest.Labels, labels)

	again := train(t, tr, val, 42)
	require.Equal(t, res.Artifact, again.Artifact, "same inputs and seed must give the same model bytes")
	require.Equal(t, res.Metrics, again.Metrics)
	other := train(t, tr, val, 43)
	require.NotEqual(t, res.Artifact, other.Artifact, "the seed must matter")
}
