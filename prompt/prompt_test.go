package prompt

import (
	"encoding/json"
	"errors"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/oip"
)

func points(xy ...float32) oip.Tensor {
	return oip.FP32Tensor(Points, []int64{int64(len(xy) / 2), 2}, xy)
}

func labels(l ...int32) oip.Tensor { return oip.Int32Tensor(PointLabels, []int64{int64(len(l))}, l) }

func rle(t *testing.T, w, h int) oip.Tensor {
	bm := mask.NewBitmap(w, h)
	bm.Pix[0] = 1
	b, err := json.Marshal(mask.Encode(bm))
	require.NoError(t, err)
	return oip.BytesTensor(MaskInput, b)
}

// TestDecode: a full prompt read as sent, a warm-up, and every way a
// request breaks the protocol refused with an *Error naming the tensor.
func TestDecode(t *testing.T) {
	img := oip.BytesTensor(Image, []byte("a photo"))
	emb := oip.FP32Tensor(Embedding, []int64{3}, []float32{1, 2, 3})
	req := &oip.InferRequest{Inputs: []oip.Tensor{img, points(10, 20, 30, 40), labels(1, 0),
		oip.FP32Tensor(Box, []int64{4}, []float32{1, 2, 50, 60}), rle(t, 8, 6)}}
	p, err := Decode(req, Image, 4)
	require.NoError(t, err)
	require.Equal(t, []byte("a photo"), p.Image)
	require.Nil(t, p.Embedding)
	require.Equal(t, []Point{{10, 20, true}, {30, 40, false}}, p.Points)
	require.Equal(t, &[4]float32{1, 2, 50, 60}, p.Box)
	require.False(t, p.WarmUp())
	bm, err := p.InstanceMask(6, 8)
	require.NoError(t, err)
	require.Equal(t, 1, bm.Area())
	_, err = p.InstanceMask(8, 6)
	require.ErrorContains(t, err, "MASK_INPUT has size")

	p, err = Decode(&oip.InferRequest{Inputs: []oip.Tensor{emb}}, Embedding, 4)
	require.NoError(t, err)
	require.True(t, p.WarmUp())
	require.Equal(t, Embedding, p.Embedding.Name)
	bm, err = p.InstanceMask(6, 8)
	require.NoError(t, err)
	require.Nil(t, bm)

	nan := float32(math.NaN())
	for name, c := range map[string]struct {
		source string
		inputs []oip.Tensor
		want   string
	}{
		"no image":         {Image, []oip.Tensor{points(1, 1), labels(1)}, "input IMAGE must be BYTES [1]"},
		"image as FP32":    {Image, []oip.Tensor{oip.FP32Tensor(Image, []int64{1}, []float32{1})}, "IMAGE must be BYTES"},
		"no embedding":     {Embedding, []oip.Tensor{points(1, 1), labels(1)}, "EMBEDDING is missing"},
		"image to decoder": {Embedding, []oip.Tensor{emb, img}, `unexpected input "IMAGE"`},
		"points shape":     {Image, []oip.Tensor{img, oip.FP32Tensor(Points, []int64{3}, []float32{1, 2, 3}), labels(1)}, "POINTS must be FP32 [K, 2]"},
		"too many":         {Image, []oip.Tensor{img, points(1, 1, 2, 2, 3, 3, 4, 4, 5, 5), labels(1, 1, 1, 1, 1)}, "at most 4"},
		"no labels":        {Image, []oip.Tensor{img, points(1, 1)}, "POINT_LABELS is missing"},
		"labels short":     {Image, []oip.Tensor{img, points(1, 1, 2, 2), labels(1)}, "POINT_LABELS must be INT32 [2]"},
		"labels alone":     {Image, []oip.Tensor{img, labels(1)}, "POINT_LABELS came without POINTS"},
		"label 2":          {Image, []oip.Tensor{img, points(1, 1), labels(2)}, "element 0 is 2"},
		"NaN point":        {Image, []oip.Tensor{img, points(nan, 1), labels(1)}, "not a pair of numbers"},
		"box size":         {Image, []oip.Tensor{img, oip.FP32Tensor(Box, []int64{3}, []float32{1, 2, 3})}, "BOX must be FP32 [4]"},
		"NaN box":          {Image, []oip.Tensor{img, oip.FP32Tensor(Box, []int64{4}, []float32{1, 2, nan, 4})}, "BOX must be FP32 [4]"},
		"box upside down":  {Image, []oip.Tensor{img, oip.FP32Tensor(Box, []int64{4}, []float32{5, 2, 3, 4})}, "x1 < x2"},
		"mask not JSON":    {Image, []oip.Tensor{img, points(1, 1), labels(1), oip.BytesTensor(MaskInput, []byte("{"))}, "not a COCO RLE JSON"},
		"background only":  {Image, []oip.Tensor{img, points(1, 1), labels(0)}, "nothing says what to segment"},
	} {
		_, err := Decode(&oip.InferRequest{Inputs: c.inputs}, c.source, 4)
		var pe *Error
		require.True(t, errors.As(err, &pe), "%s: %v", name, err)
		require.ErrorContains(t, err, c.want, name)
	}
	// A background click with a box or an instance is a prompt.
	for _, extra := range []oip.Tensor{oip.FP32Tensor(Box, []int64{4}, []float32{0, 0, 5, 5}), rle(t, 8, 6)} {
		_, err := Decode(&oip.InferRequest{Inputs: []oip.Tensor{img, points(1, 1), labels(0), extra}}, Image, 4)
		require.NoError(t, err, extra.Name)
	}
}
