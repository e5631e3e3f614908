package inference_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/inference"
	"github.com/deepimageshub/imagehub/layout"
	"github.com/deepimageshub/imagehub/oip"
	"github.com/deepimageshub/imagehub/worker"
)

// TestSegmentBatch: a batch of images of different sizes in one request
// gives each image what it gives alone, split by BATCH_INDEX, whichever
// encoding the tensors travel in.
func TestSegmentBatch(t *testing.T) {
	t.Parallel()
	for _, bin := range []bool{false, true} {
		t.Run(fmt.Sprintf("binary=%v", bin), func(t *testing.T) {
			t.Parallel()
			b := setup(t, worker.Config{})
			b.ep.Binary = bin
			big, small := testPhoto(), smallPhoto()
			items := []inference.Item{
				{Image: big.JPEG, Want: expect()},
				{Image: small.JPEG, Want: smallExpect()},
				{Image: big.JPEG, Want: expect()},
			}
			got, err := b.client.SegmentBatch(context.Background(), b.ep, items)
			require.NoError(t, err)
			require.Len(t, got, 3)
			require.Equal(t, int64(1), b.worker.Stats().Requests, "one request for the batch")
			for i, it := range items {
				alone, err := b.client.Segment(context.Background(), b.ep, it.Image, nil, it.Want)
				require.NoError(t, err)
				require.NotEmpty(t, alone)
				require.Equal(t, alone, got[i], "image %d", i)
				for _, in := range got[i] {
					require.Equal(t, [2]int{it.Want.Height, it.Want.Width}, in.Mask.Size)
				}
			}
		})
	}
}

// TestSegmentBatchChecksEachImage: an image's rules are its own: a wrong
// size expected for one image of the batch fails the batch and names it.
func TestSegmentBatchChecksEachImage(t *testing.T) {
	t.Parallel()
	b := setup(t, worker.Config{})
	wrong := smallExpect()
	wrong.Height++
	_, err := b.client.SegmentBatch(context.Background(), b.ep, []inference.Item{
		{Image: testPhoto().JPEG, Want: expect()},
		{Image: smallPhoto().JPEG, Want: wrong},
	})
	var c *inference.Contract
	require.ErrorAs(t, err, &c)
	require.Contains(t, c.Message, "but image 1 is [151, 200]")

	// Hints are one list per request: items with different ones are refused
	// before anything is sent, unless the model takes none.
	before := b.worker.Stats().Requests
	_, err = b.client.SegmentBatch(context.Background(), b.ep, []inference.Item{
		{Image: smallPhoto().JPEG, Hints: []string{"cat"}, Want: smallExpect()},
		{Image: smallPhoto().JPEG, Hints: []string{"dog"}, Want: smallExpect()},
	})
	require.ErrorContains(t, err, "must share their label hints")
	require.Equal(t, before, b.worker.Stats().Requests)
	b.ep.SkipHints = true
	got, err := b.client.SegmentBatch(context.Background(), b.ep, []inference.Item{
		{Image: smallPhoto().JPEG, Hints: []string{"cat"}, Want: smallExpect()},
		{Image: smallPhoto().JPEG, Hints: []string{"dog"}, Want: smallExpect()},
	})
	require.NoError(t, err)
	require.Equal(t, "object", got[1][0].Label)
}

// TestSegmentBatchHints: items sharing hints send them once; the worker
// labels every image's instances from them.
func TestSegmentBatchHints(t *testing.T) {
	t.Parallel()
	b := setup(t, worker.Config{})
	got, err := b.client.SegmentBatch(context.Background(), b.ep, []inference.Item{
		{Image: smallPhoto().JPEG, Hints: []string{"cat"}, Want: smallExpect()},
		{Image: testPhoto().JPEG, Hints: []string{"cat"}, Want: expect()},
	})
	require.NoError(t, err)
	for i := range got {
		require.NotEmpty(t, got[i])
		for _, in := range got[i] {
			require.Equal(t, "cat", in.Label)
		}
	}
}

func TestCheckBatch(t *testing.T) {
	t.Parallel()
	meta := func(shape ...int64) *oip.ModelMetadata {
		return &oip.ModelMetadata{Inputs: []oip.TensorMetadata{{Name: "IMAGE", Datatype: oip.BYTES, Shape: shape}}}
	}
	require.Empty(t, inference.CheckBatch(meta(-1), layout.Params{}, 8))
	require.Empty(t, inference.CheckBatch(meta(1), layout.Params{}, 1), "max_batch 1 needs no batch dimension")
	ps := inference.CheckBatch(meta(1), layout.Params{}, 8)
	require.Len(t, ps, 1)
	require.Equal(t, "IMAGE", ps[0].Tensor)
	require.Contains(t, ps[0].Message, "max_batch is 8, but input IMAGE has shape [1]: to take a batch it must be BYTES [-1]")

	yolo := func(b int64) *oip.ModelMetadata {
		return &oip.ModelMetadata{Inputs: []oip.TensorMetadata{{Name: "images", Datatype: oip.FP32, Shape: []int64{b, 3, 640, 640}}}}
	}
	p := layout.Params{Kind: layout.YOLOSeg, Input: "images"}
	require.Empty(t, inference.CheckBatch(yolo(-1), p, 8))
	ps = inference.CheckBatch(yolo(1), p, 8)
	require.Len(t, ps, 1)
	require.Contains(t, ps[0].Message, "input images has shape [1, 3, 640, 640]: to take a batch its leading dimension must be variable (-1)")

	ps = inference.CheckBatch(meta(-1), layout.Params{Kind: layout.MaskRCNN}, 2)
	require.Len(t, ps, 1)
	require.Contains(t, ps[0].Message, "a maskrcnn model has no batch dimension")
}
