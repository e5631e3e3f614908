package worker_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"io/fs"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/oip"
	"github.com/deepimageshub/imagehub/regionmodel"
	"github.com/deepimageshub/imagehub/worker"
	"github.com/deepimageshub/imagehub/worker/segment"
)

// redModel is a hand-made region model that calls red regions "red" and
// everything else background.
func redModel() *regionmodel.Model {
	m := &regionmodel.Model{
		Labels:         []string{"red"},
		Weights:        make([][regionmodel.NumFeatures + 1]float64, 2),
		SegmentOptions: segment.Options{K: 150, Sigma: 0.8, WorkSize: 256},
		MinProb:        0.5, MinArea: 0.002,
	}
	for i := range regionmodel.NumFeatures {
		m.Scale[i] = 1
	}
	m.Weights[0][regionmodel.NumFeatures] = 2
	m.Weights[1][2] = 20 // mean b* / 100: red is yellowish, blue far from it
	return m
}

// twoSquares is a PNG of a red and a blue square on grey.
func twoSquares(t *testing.T) []byte {
	img := image.NewRGBA(image.Rect(0, 0, 80, 60))
	for y := range 60 {
		for x := range 80 {
			c := color.RGBA{128, 128, 128, 255}
			switch {
			case x >= 10 && x < 30 && y >= 10 && y < 30:
				c = color.RGBA{220, 30, 30, 255}
			case x >= 45 && x < 70 && y >= 20 && y < 50:
				c = color.RGBA{30, 40, 220, 255}
			}
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, img))
	return b.Bytes()
}

func labelsOf(t *testing.T, ans *oip.InferResponse) []string {
	t.Helper()
	var out []string
	for _, e := range ans.Output("LABELS").Elems {
		out = append(out, string(e))
	}
	return out
}

func TestServesRegionModel(t *testing.T) {
	t.Parallel()
	b := setup(t, worker.Config{Model: "shapes", RegionModel: redModel()})
	req := imageRequest("r1", twoSquares(t))
	req.Inputs = append(req.Inputs, oip.BytesTensor("LABEL_HINTS", []byte("ignored")))
	status, ans, msg := b.infer(t, "/v2/models/shapes/infer", req, true)
	require.Equal(t, 200, status, msg)
	require.Equal(t, []string{"red"}, labelsOf(t, ans), "the model's labels, not the hints; the blue square is background")
	require.Len(t, ans.Output("MASKS").Elems, 1)
}

func TestServesModelsFromLoader(t *testing.T) {
	t.Parallel()
	good, err := redModel().Bytes()
	require.NoError(t, err)
	var calls atomic.Int32
	loader := func(ctx context.Context, name, version string) (io.ReadCloser, error) {
		calls.Add(1)
		switch name + "@" + version {
		case "trained-7@2":
			return io.NopCloser(bytes.NewReader(good)), nil
		case "broken@1":
			return io.NopCloser(bytes.NewReader(good[:20])), nil
		}
		return nil, fmt.Errorf("no model %s version %s: %w", name, version, fs.ErrNotExist)
	}
	b := setup(t, worker.Config{Loader: loader})
	img := twoSquares(t)
	for range 2 {
		status, ans, msg := b.infer(t, "/v2/models/trained-7/versions/2/infer", imageRequest("x", img), false)
		require.Equal(t, 200, status, msg)
		require.Equal(t, "trained-7", ans.ModelName)
		require.Equal(t, "2", ans.ModelVersion)
		require.Equal(t, []string{"red"}, labelsOf(t, ans))
	}
	require.EqualValues(t, 1, calls.Load(), "a loaded model is kept")

	status, _, msg := b.infer(t, "/v2/models/nope/versions/1/infer", imageRequest("x", img), false)
	require.Equal(t, 404, status)
	require.Contains(t, msg, "unknown model nope")
	status, _, msg = b.infer(t, "/v2/models/broken/versions/1/infer", imageRequest("x", img), false)
	require.Equal(t, 500, status)
	require.Contains(t, msg, "not a valid imagehub region model")

	// The built-in segmenter is still served under its own name.
	status, ans, msg := b.infer(t, inferPath, imageRequest("x", img), false)
	require.Equal(t, 200, status, msg)
	require.NotEmpty(t, labelsOf(t, ans))
	require.Equal(t, "object", labelsOf(t, ans)[0])
}
