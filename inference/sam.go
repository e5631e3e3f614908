package inference

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"

	"github.com/deepimageshub/imagehub/layout"
	"github.com/deepimageshub/imagehub/oip"
)

// A sam pair (layout.SAM) is segment-anything's encoder and decoder served
// with their own tensors, by Triton for instance (docs/interactive.md): the
// hub does here what imagehub worker --layout sam does in front of them,
// with the same code (package layout). The embedding it keeps is the
// prompt protocol's EMBEDDING of such a pair, the image's height and width
// then image_embeddings, so either kind of embed model feeds either kind of
// decoder.

// samEmbedCount is the number of values of a kept SAM embedding.
func samEmbedCount() int {
	n := 1
	for _, d := range layout.SAMEmbeddingShape {
		n *= int(d)
	}
	return layout.SAMHeader + n
}

// samEmbed sends the pre-processed image to a SAM encoder and returns the
// embedding with its header.
func (c *Client) samEmbed(ctx context.Context, ep Endpoint, data []byte) ([]float32, []int64, error) {
	u, err := modelURL(ep.Base, ep.Model, ep.Version, "/infer")
	if err != nil {
		return nil, nil, err
	}
	img, err := layout.DecodeImage(data)
	if err != nil {
		return nil, nil, fmt.Errorf("inference: error decoding the image: %w", err)
	}
	id := rand.Text()
	in := ep.Layout.Input
	if in == "" {
		in = "image"
	}
	req := &oip.InferRequest{ID: id, Inputs: []oip.Tensor{oip.FP32Tensor(in, []int64{1, 3, layout.SAMSide, layout.SAMSide}, layout.SAMInput(img))}, Outputs: requestOutputs(ep, layout.SAMEmbeddings)}
	ans, status, err := c.infer(ctx, ep, u, req)
	if err != nil {
		return nil, nil, err
	}
	if ans.ID != id {
		return nil, nil, contractf(u, status, "the answer's id is %q, the request's was %q", clip(ans.ID), id)
	}
	t := ans.Output(layout.SAMEmbeddings)
	if t == nil {
		return nil, nil, contractf(u, status, "output %s is missing", layout.SAMEmbeddings)
	}
	v, err := t.Float32s()
	if err != nil || !slices.Equal(t.Shape, layout.SAMEmbeddingShape) || len(v) != samEmbedCount()-layout.SAMHeader {
		return nil, nil, contractf(u, status, "output %s is %s %s; a SAM encoder returns FP32 %s", layout.SAMEmbeddings, t.Datatype, shape(t.Shape), shape(layout.SAMEmbeddingShape))
	}
	b := img.Bounds()
	out := make([]float32, 0, samEmbedCount())
	out = append(out, float32(b.Dy()), float32(b.Dx()))
	out = append(out, v...)
	return out, []int64{int64(len(out))}, nil
}

// samPrompt maps p to a SAM decoder's inputs, sends them and returns the
// best-scored of its masks.
func (c *Client) samPrompt(ctx context.Context, ep Endpoint, p Prompt, want Expect) (Answer, error) {
	if len(p.Embedding) != samEmbedCount() {
		return Answer{}, fmt.Errorf("inference: a sam decoder takes the embedding of a sam embed model, %d values; this one has %d", samEmbedCount(), len(p.Embedding))
	}
	if h, w := p.Embedding[0], p.Embedding[1]; h != float32(want.Height) || w != float32(want.Width) {
		return Answer{}, fmt.Errorf("inference: the embedding is of a %v×%v image, this one is %d×%d", w, h, want.Width, want.Height)
	}
	u, err := modelURL(ep.Base, ep.Model, ep.Version, "/infer")
	if err != nil {
		return Answer{}, err
	}
	if len(p.Points) == 0 && p.Box == nil {
		// A warm-up: the embedding is all the per-image work.
		return Answer{}, nil
	}
	sp := layout.SAMPrompt{W: want.Width, H: want.Height, Box: p.Box}
	for _, pt := range p.Points {
		sp.Points = append(sp.Points, layout.SAMPoint{X: pt.X, Y: pt.Y, Object: pt.Object})
	}
	if p.Instance != nil {
		bm, err := p.Instance.Decode()
		if err != nil || bm.W != want.Width || bm.H != want.Height {
			return Answer{}, fmt.Errorf("inference: the instance to refine is not a mask of the image's size")
		}
		sp.Instance = bm
	}
	byName := layout.SAMDecoderTensors(oip.FP32Tensor("", layout.SAMEmbeddingShape, p.Embedding[layout.SAMHeader:]), layout.SAMDecoderInputs(sp))
	id := rand.Text()
	req := &oip.InferRequest{ID: id}
	for _, d := range layout.SAMDecoderRanks {
		req.Inputs = append(req.Inputs, byName[d.Name])
	}
	req.Outputs = requestOutputs(ep, layout.SAMMasks, layout.SAMIoU)
	ans, status, err := c.infer(ctx, ep, u, req)
	if err != nil {
		return Answer{}, err
	}
	if ans.ID != id {
		return Answer{}, contractf(u, status, "the answer's id is %q, the request's was %q", clip(ans.ID), id)
	}
	mt, it := ans.Output(layout.SAMMasks), ans.Output(layout.SAMIoU)
	if mt == nil || it == nil {
		return Answer{}, contractf(u, status, "a SAM decoder's answer must have outputs %s and %s", layout.SAMMasks, layout.SAMIoU)
	}
	logits, err := mt.Float32s()
	if err != nil {
		return Answer{}, contractf(u, status, "output %s is %s; it must be FP32 logits", layout.SAMMasks, mt.Datatype)
	}
	ious, err := it.Float32s()
	if err != nil {
		return Answer{}, contractf(u, status, "output %s is %s; it must be FP32", layout.SAMIoU, it.Datatype)
	}
	rles, scores, err := layout.DecodeSAM(logits, mt.Shape, ious, want.Height, want.Width)
	if err != nil {
		return Answer{}, contractf(u, status, "%v", err)
	}
	if len(rles) == 0 {
		return Answer{}, contractf(u, status, "the answer has no mask for the prompt")
	}
	best := 0
	for i, s := range scores {
		if s > scores[best] {
			best = i
		}
	}
	return Answer{Mask: rles[best], Score: scores[best]}, nil
}

// CheckSAMEncoder lists what in a model's metadata does not fit a SAM
// encoder served with its own tensors: one input (any name) FP32
// [1, 3, 1024, 1024], the pre-processed image, and output image_embeddings
// FP32 [1, 256, 64, 64]. It returns p with Input, the input's name.
func CheckSAMEncoder(meta *oip.ModelMetadata, p layout.Params) (layout.Params, []Problem) {
	if meta == nil {
		return p, []Problem{noMetadata}
	}
	var ps problems
	want := []int64{1, 3, layout.SAMSide, layout.SAMSide}
	if len(meta.Inputs) != 1 {
		ps.add("", "the model takes %d inputs; a sam encoder takes one, the pre-processed image FP32 %s", len(meta.Inputs), shape(want))
	} else if in := meta.Inputs[0]; in.Datatype != oip.FP32 || !fits(in.Shape, want) {
		ps.add(in.Name, "input %s is %s %s; a sam encoder takes the pre-processed image FP32 %s", in.Name, in.Datatype, shape(in.Shape), shape(want))
	} else {
		p.Input = in.Name
	}
	if t, ok := index(meta.Outputs)[layout.SAMEmbeddings]; !ok || t.Datatype != oip.FP32 || !fits(t.Shape, layout.SAMEmbeddingShape) {
		ps.add(layout.SAMEmbeddings, "a sam encoder returns %s, FP32 %s", layout.SAMEmbeddings, shape(layout.SAMEmbeddingShape))
	}
	return p, ps
}

// CheckSAMDecoder lists what in a model's metadata does not fit a SAM
// decoder served with its own tensors (segment-anything's
// export_onnx_model.py): exactly the inputs image_embeddings FP32
// [1, 256, 64, 64], point_coords [1, N, 2], point_labels [1, N],
// mask_input [1, 1, 256, 256], has_mask_input [1] and orig_im_size [2], all
// FP32; outputs masks FP32 [1, M, H, W] and iou_predictions FP32 [1, M].
func CheckSAMDecoder(meta *oip.ModelMetadata) []Problem {
	if meta == nil {
		return []Problem{noMetadata}
	}
	var ps problems
	shapes := map[string][]int64{
		layout.SAMEmbeddings:   layout.SAMEmbeddingShape,
		layout.SAMPointCoords:  {1, -1, 2},
		layout.SAMPointLabels:  {1, -1},
		layout.SAMMaskInput:    {1, 1, layout.SAMMaskSide, layout.SAMMaskSide},
		layout.SAMHasMaskInput: {1},
		layout.SAMOrigImSize:   {2},
	}
	ins := index(meta.Inputs)
	for _, d := range layout.SAMDecoderRanks {
		t, ok := ins[d.Name]
		switch {
		case !ok:
			ps.add(d.Name, "the model has no input %s: a sam decoder takes %s FP32 %s", d.Name, d.Name, shape(shapes[d.Name]))
		case t.Datatype != oip.FP32 || !fits(t.Shape, shapes[d.Name]):
			ps.add(d.Name, "input %s is %s %s; a sam decoder takes FP32 %s", d.Name, t.Datatype, shape(t.Shape), shape(shapes[d.Name]))
		}
	}
	for _, t := range meta.Inputs {
		if _, ok := shapes[t.Name]; !ok {
			ps.add(t.Name, "the model needs input %q, which a sam decoder does not take", t.Name)
		}
	}
	outs := index(meta.Outputs)
	if t, ok := outs[layout.SAMMasks]; !ok || t.Datatype != oip.FP32 || len(t.Shape) != 4 {
		ps.add(layout.SAMMasks, "a sam decoder returns %s, FP32 [1, M, H, W] logits at the image's size", layout.SAMMasks)
	}
	if t, ok := outs[layout.SAMIoU]; !ok || t.Datatype != oip.FP32 || len(t.Shape) != 2 {
		ps.add(layout.SAMIoU, "a sam decoder returns %s, FP32 [1, M], one per mask", layout.SAMIoU)
	}
	return ps
}

// fits reports whether a declared shape takes want: the same rank, each
// dimension want's or variable (-1); a -1 in want takes any.
func fits(got, want []int64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] && got[i] != -1 && want[i] != -1 {
			return false
		}
	}
	return true
}

// problems collects the findings of a check.
type problems []Problem

func (ps *problems) add(tensor, format string, args ...any) {
	*ps = append(*ps, Problem{Tensor: tensor, Message: fmt.Sprintf(format, args...)})
}

var noMetadata = Problem{Message: "the server sent no model metadata"}
