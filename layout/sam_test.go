package layout

import (
	"image"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/mask"
)

func TestSAMDecoderInputs(t *testing.T) {
	t.Parallel()
	// 512 × 256 is 1024 × 512 in the 1024 frame: coordinates double.
	in := SAMDecoderInputs(SAMPrompt{W: 512, H: 256, Points: []SAMPoint{{10, 20, true}, {30.5, 40, false}}})
	require.Equal(t, []float32{20, 40, 61, 80, 0, 0}, in.PointCoords, "the padding point ends a prompt without a box")
	require.Equal(t, []float32{1, 0, -1}, in.PointLabels)
	require.Equal(t, 3, in.N())
	require.Equal(t, [2]float32{256, 512}, in.OrigImSize, "height, width")
	require.Zero(t, in.HasMaskInput)
	require.Len(t, in.MaskInput, 256*256)
	for _, v := range in.MaskInput {
		require.Zero(t, v)
	}

	box := [4]float32{1, 2, 3, 4}
	in = SAMDecoderInputs(SAMPrompt{W: 512, H: 256, Box: &box})
	require.Equal(t, []float32{2, 4, 6, 8}, in.PointCoords, "a box is two corners")
	require.Equal(t, []float32{2, 3}, in.PointLabels)

	// The instance: the left half of a 512 × 256 image. Cell (i, j) has
	// its centre at 4j+2, 4i+2 in the frame, i.e. pixel (2j+1, 2i+1);
	// rows 128 and on are the padding below the 1024 × 512 image.
	bm := mask.NewBitmap(512, 256)
	for y := range 256 {
		for x := range 256 {
			bm.Pix[y*512+x] = 1
		}
	}
	in = SAMDecoderInputs(SAMPrompt{W: 512, H: 256, Points: []SAMPoint{{1, 1, true}}, Instance: bm})
	require.Equal(t, float32(1), in.HasMaskInput)
	for _, c := range []struct {
		i, j int
		want float32
	}{{0, 0, 10}, {127, 127, 10}, {0, 128, -10}, {127, 255, -10}, {128, 0, -10}, {255, 255, -10}} {
		require.Equal(t, c.want, in.MaskInput[c.i*256+c.j], "cell %d, %d", c.i, c.j)
	}
}

func TestSAMInputAndResized(t *testing.T) {
	t.Parallel()
	w, h := SAMResized(600, 400)
	require.Equal(t, [2]int{1024, 683}, [2]int{w, h}, "400·1024/600 = 682.67 rounds up")
	img := image.NewRGBA(image.Rect(0, 0, 600, 400))
	for i := range img.Pix {
		img.Pix[i] = 200
	}
	in := SAMInput(img)
	require.Len(t, in, 3*1024*1024)
	// A flat grey photo: (200 − mean) / std in the image, 0 in the padding.
	const plane = 1024 * 1024
	require.InDelta(t, (200-123.675)/58.395, in[0], 1e-5)
	require.InDelta(t, (200-116.28)/57.12, in[plane+682*1024+1023], 1e-5)
	require.InDelta(t, (200-103.53)/57.375, in[2*plane+100*1024+500], 1e-5)
	require.Zero(t, in[683*1024])
	require.Zero(t, in[2*plane+1023*1024+1023])
}

func TestDecodeSAM(t *testing.T) {
	t.Parallel()
	// Two 2 × 3 masks: logits above 0 are on.
	logits := []float32{1, -1, 0, 0.5, -2, 3, -1, -1, -1, -1, -1, 0.1}
	rles, scores, err := DecodeSAM(logits, []int64{1, 2, 2, 3}, []float32{1.2, -0.1}, 2, 3)
	require.NoError(t, err)
	require.Len(t, rles, 2)
	a, _ := rles[0].Area()
	b, _ := rles[1].Area()
	require.Equal(t, []int{3, 1}, []int{a, b})
	require.Equal(t, []float32{1, 0}, scores, "iou_predictions clamped to [0, 1]")
	_, _, err = DecodeSAM(logits, []int64{1, 2, 3, 2}, []float32{1, 1}, 2, 3)
	require.ErrorContains(t, err, "[1, M, 2, 3]")
	_, _, err = DecodeSAM(logits, []int64{1, 2, 2, 3}, []float32{1}, 2, 3)
	require.ErrorContains(t, err, "iou_predictions holds 1 values for 2 masks")
}
