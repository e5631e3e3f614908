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

// TestRegionClassifierLearns trains on 150 generated images and checks, on
// 50 others, that the model beats the untrained segmenter clearly, and, on
// a smaller set (three trainings under the race detector are this
// package's time), that the same seed gives the same model bytes and
// metrics and another seed another model.
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

	tr, val = openShapes(t, "train", 40, 1, 7), openShapes(t, "val", 15, 10001, 8)
	first, again := train(t, tr, val, 42), train(t, tr, val, 42)
	require.Equal(t, first.Artifact, again.Artifact, "same inputs and seed must give the same model bytes")
	require.Equal(t, first.Metrics, again.Metrics)
	other := train(t, tr, val, 43)
	require.NotEqual(t, first.Artifact, other.Artifact, "the seed must matter")
}
