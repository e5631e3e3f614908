package worker_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/inference"
	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/worker"
	"github.com/deepimageshub/imagehub/worker/segment/segmenttest"
)

// TestInteractiveModel serves imagehub-interactive beside the segmenter and
// prompts it with the hub's client, in JSON and binary: its metadata fits
// the prompt convention, a warm-up answers no mask, a click answers the
// clicked shape, and bad prompts are refused with a 400.
func TestInteractiveModel(t *testing.T) {
	t.Parallel()
	b := setup(t, worker.Config{})
	c := inference.New(nil)
	ctx := context.Background()
	p := segmenttest.NewPhoto(640, 480, 9, 90)
	want := inference.Expect{Height: 480, Width: 640}
	for _, binary := range []bool{false, true} {
		ep := inference.Endpoint{Base: b.srv.URL, Model: b.worker.InteractiveModel(), Binary: binary}
		meta, err := c.ModelMetadata(ctx, ep)
		require.NoError(t, err)
		require.Empty(t, inference.CheckInteractive(meta))
		require.False(t, inference.TakesEmbedding(meta))

		warm, err := c.Prompt(ctx, ep, inference.Prompt{Image: p.JPEG}, want)
		require.NoError(t, err)
		require.Zero(t, warm.Mask.Size, "a warm-up answers no mask")

		box := p.Shapes[1].Mask.BBox()
		x, y := float32(box[0]+box[2]/2), float32(box[1]+box[3]/2)
		ans, err := c.Prompt(ctx, ep, inference.Prompt{Image: p.JPEG, Points: []inference.Point{{X: x, Y: y, Object: true}}}, want)
		require.NoError(t, err)
		bm, err := ans.Mask.Decode()
		require.NoError(t, err)
		require.GreaterOrEqual(t, segmenttest.IoU(bm, p.Shapes[1].Mask), 0.9)

		// Refining the answer with a background click on it empties it of
		// that region; the instance travels as MASK_INPUT.
		inst := mask.Encode(bm)
		_, err = c.Prompt(ctx, ep, inference.Prompt{Image: p.JPEG, Instance: &inst,
			Points: []inference.Point{{X: x, Y: y, Object: false}}}, want)
		require.NoError(t, err)

		_, err = c.Prompt(ctx, ep, inference.Prompt{Image: p.JPEG, Points: []inference.Point{{X: x, Y: y, Object: false}}}, want)
		var ce *inference.Contract
		require.True(t, errors.As(err, &ce), "%v", err)
		require.Equal(t, http.StatusBadRequest, ce.Status)
		require.Contains(t, err.Error(), "nothing says what to segment")

		_, err = c.Prompt(ctx, ep, inference.Prompt{Image: []byte("not an image"), Points: []inference.Point{{X: 1, Y: 1, Object: true}}}, want)
		require.True(t, errors.As(err, &ce), "%v", err)
		require.Equal(t, http.StatusBadRequest, ce.Status)
	}
	require.EqualValues(t, 10, b.worker.Stats().Prompts)
	require.Zero(t, b.worker.Stats().Requests, "prompts are not segmentation requests")
}

// TestPreparedImagesAreCached: the first prompt on an image prepares it,
// later ones only cut, so they are much faster.
func TestPreparedImagesAreCached(t *testing.T) {
	t.Parallel()
	b := setup(t, worker.Config{})
	c := inference.New(nil)
	ctx := context.Background()
	p := segmenttest.NewPhoto(1155, 866, 4, 90)
	want := inference.Expect{Height: 866, Width: 1155}
	ep := inference.Endpoint{Base: b.srv.URL, Model: b.worker.InteractiveModel(), Binary: true}
	box := p.Shapes[0].Mask.BBox()
	prompt := inference.Prompt{Image: p.JPEG, Points: []inference.Point{{X: float32(box[0] + box[2]/2), Y: float32(box[1] + box[3]/2), Object: true}}}
	start := time.Now()
	first, err := c.Prompt(ctx, ep, prompt, want)
	require.NoError(t, err)
	cold := time.Since(start)
	var warm time.Duration
	for range 5 {
		start := time.Now()
		again, err := c.Prompt(ctx, ep, prompt, want)
		require.NoError(t, err)
		warm = max(warm, time.Since(start))
		require.Equal(t, first, again, "deterministic")
	}
	t.Logf("first prompt %v, later ones at most %v", cold, warm)
	require.Less(t, warm, cold, "later prompts skip the preparation")
}
