package inference

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/layout"
	"github.com/deepimageshub/imagehub/oip"
)

// samEncoderMeta and samDecoderMeta are the metadata Triton gives for
// docs/triton/sam_encoder and sam_decoder.
func samEncoderMeta() *oip.ModelMetadata {
	return &oip.ModelMetadata{
		Inputs:  []oip.TensorMetadata{{Name: "image", Datatype: oip.FP32, Shape: []int64{1, 3, 1024, 1024}}},
		Outputs: []oip.TensorMetadata{{Name: "image_embeddings", Datatype: oip.FP32, Shape: []int64{1, 256, 64, 64}}},
	}
}

func samDecoderMeta() *oip.ModelMetadata {
	return &oip.ModelMetadata{
		Inputs: []oip.TensorMetadata{
			{Name: "image_embeddings", Datatype: oip.FP32, Shape: []int64{1, 256, 64, 64}},
			{Name: "point_coords", Datatype: oip.FP32, Shape: []int64{1, -1, 2}},
			{Name: "point_labels", Datatype: oip.FP32, Shape: []int64{1, -1}},
			{Name: "mask_input", Datatype: oip.FP32, Shape: []int64{1, 1, 256, 256}},
			{Name: "has_mask_input", Datatype: oip.FP32, Shape: []int64{1}},
			{Name: "orig_im_size", Datatype: oip.FP32, Shape: []int64{2}},
		},
		Outputs: []oip.TensorMetadata{
			{Name: "masks", Datatype: oip.FP32, Shape: []int64{-1, -1, -1, -1}},
			{Name: "iou_predictions", Datatype: oip.FP32, Shape: []int64{-1, 4}},
			{Name: "low_res_masks", Datatype: oip.FP32, Shape: []int64{-1, -1, -1, -1}},
		},
	}
}

func tensors(ps []Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Tensor)
	}
	return out
}

func TestCheckSAMSignature(t *testing.T) {
	t.Parallel()
	p, ps := CheckSAMEncoder(samEncoderMeta(), layout.Params{Kind: layout.SAM})
	require.Empty(t, ps)
	require.Equal(t, "image", p.Input, "the encoder's input keeps its name")
	require.Empty(t, CheckSAMDecoder(samDecoderMeta()))

	for name, c := range map[string]struct {
		mutate func(*oip.ModelMetadata)
		tensor string
	}{
		"raw photo input": {func(m *oip.ModelMetadata) { m.Inputs[0].Shape = []int64{-1, -1, 3} }, "image"},
		"UINT8 input":     {func(m *oip.ModelMetadata) { m.Inputs[0].Datatype = oip.UINT8 }, "image"},
		"two inputs":      {func(m *oip.ModelMetadata) { m.Inputs = append(m.Inputs, m.Inputs[0]) }, ""},
		"other output":    {func(m *oip.ModelMetadata) { m.Outputs[0].Name = "features" }, "image_embeddings"},
		"small embedding": {func(m *oip.ModelMetadata) { m.Outputs[0].Shape = []int64{1, 256, 32, 32} }, "image_embeddings"},
		"prompt protocol": {func(m *oip.ModelMetadata) {
			m.Inputs = []oip.TensorMetadata{{Name: "IMAGE", Datatype: oip.BYTES, Shape: []int64{1}}}
		}, "IMAGE"},
	} {
		m := samEncoderMeta()
		c.mutate(m)
		_, ps := CheckSAMEncoder(m, layout.Params{Kind: layout.SAM})
		require.Equal(t, []string{c.tensor}, tensors(ps), name)
	}
	for name, c := range map[string]struct {
		mutate func(*oip.ModelMetadata)
		want   []string
	}{
		"no orig_im_size": {func(m *oip.ModelMetadata) { m.Inputs = m.Inputs[:5] }, []string{"orig_im_size"}},
		"INT64 labels":    {func(m *oip.ModelMetadata) { m.Inputs[2].Datatype = oip.INT64 }, []string{"point_labels"}},
		"mask_input 64":   {func(m *oip.ModelMetadata) { m.Inputs[3].Shape = []int64{1, 1, 64, 64} }, []string{"mask_input"}},
		"coords rank 2":   {func(m *oip.ModelMetadata) { m.Inputs[1].Shape = []int64{-1, 2} }, []string{"point_coords"}},
		"extra input": {func(m *oip.ModelMetadata) {
			m.Inputs = append(m.Inputs, oip.TensorMetadata{Name: "POINTS", Datatype: oip.FP32, Shape: []int64{-1, 2}})
		}, []string{"POINTS"}},
		"no iou_predictions": {func(m *oip.ModelMetadata) { m.Outputs = m.Outputs[:1] }, []string{"iou_predictions"}},
		"MASKS as RLE": {func(m *oip.ModelMetadata) {
			m.Outputs[0] = oip.TensorMetadata{Name: "MASKS", Datatype: oip.BYTES, Shape: []int64{-1}}
		}, []string{"masks"}},
	} {
		m := samDecoderMeta()
		c.mutate(m)
		require.Equal(t, c.want, tensors(CheckSAMDecoder(m)), name)
	}
	require.NotEmpty(t, CheckSAMDecoder(nil))
	_, ps = CheckSAMEncoder(nil, layout.Params{Kind: layout.SAM})
	require.NotEmpty(t, ps)
}
