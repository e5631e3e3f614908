package inference

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"math"

	"github.com/deepimageshub/imagehub/layout"
	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/oip"
	"github.com/deepimageshub/imagehub/prompt"
)

// The tensors of the prompt protocol (docs/interactive.md), as package
// prompt, the servers' side of it, names them.
const (
	TensorImage       = prompt.Image
	TensorEmbedding   = prompt.Embedding
	TensorPoints      = prompt.Points
	TensorPointLabels = prompt.PointLabels
	TensorBox         = prompt.Box
	TensorMaskInput   = prompt.MaskInput
	TensorMasks       = prompt.Masks
	TensorScores      = prompt.Scores
)

// Point is one click, in the image's pixels; Object is false for a
// background click.
type Point struct {
	X, Y   float32
	Object bool
}

// Prompt is what a reviewer asks an interactive model: clicks, maybe a box
// (x1 y1 x2 y2) and maybe the instance being refined. Exactly one of Image
// (the encoded file) and Embedding (what the model's embed stage returned
// for it, with its shape) is set. A prompt without points or box is a
// warm-up: the model prepares the image and answers no mask.
type Prompt struct {
	Image          []byte
	Embedding      []float32
	EmbeddingShape []int64
	Points         []Point
	Box            *[4]float32
	Instance       *mask.RLE
}

// Answer is an interactive model's mask for a prompt; Mask is empty (zero
// Size) after a warm-up.
type Answer struct {
	Mask  mask.RLE
	Score float32
}

// Prompt sends p to the interactive model at ep and returns its best mask,
// checked to be at want's size. Errors are classified as Segment's are.
func (c *Client) Prompt(ctx context.Context, ep Endpoint, p Prompt, want Expect) (Answer, error) {
	if (len(p.Image) == 0) == (len(p.Embedding) == 0) {
		return Answer{}, errors.New("inference: a prompt carries either the image or its embedding")
	}
	if want.Height <= 0 || want.Width <= 0 {
		return Answer{}, fmt.Errorf("inference: image size %d×%d is not valid", want.Width, want.Height)
	}
	if ep.Layout.Kind == layout.SAM {
		return c.samPrompt(ctx, ep, p, want)
	}
	u, err := modelURL(ep.Base, ep.Model, ep.Version, "/infer")
	if err != nil {
		return Answer{}, err
	}
	id := rand.Text()
	req := &oip.InferRequest{ID: id}
	if len(p.Image) > 0 {
		req.Inputs = append(req.Inputs, oip.BytesTensor(TensorImage, p.Image))
	} else {
		req.Inputs = append(req.Inputs, oip.FP32Tensor(TensorEmbedding, p.EmbeddingShape, p.Embedding))
	}
	pts := make([]float32, 0, 2*len(p.Points))
	labels := make([]int32, 0, len(p.Points))
	for _, pt := range p.Points {
		pts = append(pts, pt.X, pt.Y)
		l := int32(0)
		if pt.Object {
			l = 1
		}
		labels = append(labels, l)
	}
	req.Inputs = append(req.Inputs,
		oip.FP32Tensor(TensorPoints, []int64{int64(len(p.Points)), 2}, pts),
		oip.Int32Tensor(TensorPointLabels, []int64{int64(len(p.Points))}, labels))
	if p.Box != nil {
		req.Inputs = append(req.Inputs, oip.FP32Tensor(TensorBox, []int64{4}, p.Box[:]))
	}
	if p.Instance != nil {
		b, err := json.Marshal(p.Instance)
		if err != nil {
			return Answer{}, fmt.Errorf("inference: error encoding the instance: %w", err)
		}
		req.Inputs = append(req.Inputs, oip.BytesTensor(TensorMaskInput, b))
	}
	req.Outputs = requestOutputs(ep, TensorMasks, TensorScores)
	ans, status, err := c.infer(ctx, ep, u, req)
	if err != nil {
		return Answer{}, err
	}
	a, msg := promptAnswer(ans, id, want, len(p.Points) == 0 && p.Box == nil)
	if msg != "" {
		return Answer{}, contractf(u, status, "%s", msg)
	}
	return a, nil
}

// promptAnswer checks an interactive model's answer: MASKS BYTES [N] of
// COCO RLE at the image's size and SCORES FP32 [N], N ≥ 1 (0 for a
// warm-up), and returns the best-scored mask.
func promptAnswer(ans *oip.InferResponse, id string, want Expect, warmup bool) (Answer, string) {
	if ans.ID != id {
		return Answer{}, fmt.Sprintf("the answer's id is %q, the request's was %q", clip(ans.ID), id)
	}
	masks, scores := ans.Output(TensorMasks), ans.Output(TensorScores)
	if masks == nil || scores == nil {
		return Answer{}, "an interactive model's answer must have outputs MASKS and SCORES"
	}
	sc, err := scores.Float32s()
	if err != nil || len(scores.Shape) != 1 {
		return Answer{}, fmt.Sprintf("output SCORES is %s %s; it must be FP32 [N]", scores.Datatype, shape(scores.Shape))
	}
	if masks.Datatype != oip.BYTES || len(masks.Shape) != 1 || len(masks.Elems) != len(sc) {
		return Answer{}, fmt.Sprintf("output MASKS is %s %s; it must be BYTES [%d] of COCO RLE, one per score", masks.Datatype, shape(masks.Shape), len(sc))
	}
	if len(sc) == 0 {
		if warmup {
			return Answer{}, ""
		}
		return Answer{}, "the answer has no mask for the prompt"
	}
	best := 0
	for i, s := range sc {
		if math.IsNaN(float64(s)) || s < 0 || s > 1 {
			return Answer{}, fmt.Sprintf("SCORES element %d is %v; a score must be a number in [0, 1]", i, s)
		}
		if s > sc[best] {
			best = i
		}
	}
	var rle mask.RLE
	if err := json.Unmarshal(masks.Elems[best], &rle); err != nil {
		return Answer{}, fmt.Sprintf("MASKS element %d is not a COCO RLE JSON object: %v", best, err)
	}
	if rle.Size != [2]int{want.Height, want.Width} {
		return Answer{}, fmt.Sprintf("MASKS element %d has size %v but the image is [%d, %d] ([height, width])", best, rle.Size, want.Height, want.Width)
	}
	if _, err := rle.Area(); err != nil {
		return Answer{}, fmt.Sprintf("MASKS element %d is not a valid mask: %v", best, err)
	}
	return Answer{Mask: rle, Score: sc[best]}, ""
}

// CheckInteractive lists what in a model's metadata does not fit the prompt
// protocol: input IMAGE BYTES or EMBEDDING FP32, POINTS FP32 [K, 2],
// POINT_LABELS INT32 [K], optionally BOX FP32 [4] and MASK_INPUT BYTES;
// outputs MASKS BYTES [N] and SCORES FP32 [N].
func CheckInteractive(meta *oip.ModelMetadata) []Problem {
	var ps []Problem
	add := func(tensor, format string, args ...any) {
		ps = append(ps, Problem{Tensor: tensor, Message: fmt.Sprintf(format, args...)})
	}
	if meta == nil {
		add("", "the server sent no model metadata")
		return ps
	}
	ins, outs := index(meta.Inputs), index(meta.Outputs)
	img, hasImg := ins[TensorImage]
	emb, hasEmb := ins[TensorEmbedding]
	switch {
	case !hasImg && !hasEmb:
		add(TensorImage, "an interactive model takes the image as IMAGE (BYTES [1]) or its embedding as EMBEDDING (FP32)")
	case hasImg && (img.Datatype != oip.BYTES || !vector(img.Shape)):
		add(TensorImage, "input IMAGE is %s %s; it must be BYTES [1], the encoded image file", img.Datatype, shape(img.Shape))
	case hasEmb && emb.Datatype != oip.FP32:
		add(TensorEmbedding, "input EMBEDDING is %s; it must be FP32, what the model's embed stage returns", emb.Datatype)
	}
	if t, ok := ins[TensorPoints]; !ok || t.Datatype != oip.FP32 || len(t.Shape) != 2 || (t.Shape[1] != 2 && t.Shape[1] != -1) {
		add(TensorPoints, "an interactive model takes POINTS, FP32 [K, 2], the clicks in image pixels")
	}
	if t, ok := ins[TensorPointLabels]; !ok || t.Datatype != oip.INT32 || !vector(t.Shape) {
		add(TensorPointLabels, "an interactive model takes POINT_LABELS, INT32 [K], 1 for an object click and 0 for a background one")
	}
	if t, ok := ins[TensorBox]; ok && (t.Datatype != oip.FP32 || !vector(t.Shape)) {
		add(TensorBox, "input BOX is %s %s; it must be FP32 [4], x1 y1 x2 y2", t.Datatype, shape(t.Shape))
	}
	if t, ok := ins[TensorMaskInput]; ok && (t.Datatype != oip.BYTES || !vector(t.Shape)) {
		add(TensorMaskInput, "input MASK_INPUT is %s %s; it must be BYTES [1], the instance as COCO RLE JSON", t.Datatype, shape(t.Shape))
	}
	for _, t := range meta.Inputs {
		switch t.Name {
		case TensorImage, TensorEmbedding, TensorPoints, TensorPointLabels, TensorBox, TensorMaskInput:
		default:
			add(t.Name, "the model needs input %q, which the hub never sends in a prompt", t.Name)
		}
	}
	if t, ok := outs[TensorMasks]; !ok || t.Datatype != oip.BYTES || !vector(t.Shape) {
		add(TensorMasks, "an interactive model returns MASKS, BYTES [N] of COCO RLE JSON at the image's size")
	}
	if t, ok := outs[TensorScores]; !ok || t.Datatype != oip.FP32 || !vector(t.Shape) {
		add(TensorScores, "an interactive model returns SCORES, FP32 [N], one per mask")
	}
	return ps
}

// TakesEmbedding reports whether an interactive model takes EMBEDDING
// rather than IMAGE: a two-stage model's decoder.
func TakesEmbedding(meta *oip.ModelMetadata) bool {
	ins := index(meta.Inputs)
	_, emb := ins[TensorEmbedding]
	_, img := ins[TensorImage]
	return emb && !img
}

// CheckEmbed lists what in a model's metadata does not fit an embed model:
// input IMAGE BYTES [1], output EMBEDDING FP32.
func CheckEmbed(meta *oip.ModelMetadata) []Problem {
	var ps []Problem
	if meta == nil {
		return []Problem{{Message: "the server sent no model metadata"}}
	}
	if t, ok := index(meta.Inputs)[TensorImage]; !ok || t.Datatype != oip.BYTES || !vector(t.Shape) || len(meta.Inputs) != 1 {
		ps = append(ps, Problem{Tensor: TensorImage, Message: "an embed model takes only IMAGE, BYTES [1], the encoded image file"})
	}
	if t, ok := index(meta.Outputs)[TensorEmbedding]; !ok || t.Datatype != oip.FP32 {
		ps = append(ps, Problem{Tensor: TensorEmbedding, Message: "an embed model returns EMBEDDING, FP32 of any shape"})
	}
	return ps
}

// Embed sends an image to the embed model at ep and returns its embedding
// and the embedding's shape. For a sam encoder (ep.Layout) the hub makes
// the encoder's input itself and prefixes its answer with the image's
// height and width, as imagehub worker --layout sam does.
func (c *Client) Embed(ctx context.Context, ep Endpoint, image []byte) ([]float32, []int64, error) {
	if ep.Layout.Kind == layout.SAM {
		return c.samEmbed(ctx, ep, image)
	}
	u, err := modelURL(ep.Base, ep.Model, ep.Version, "/infer")
	if err != nil {
		return nil, nil, err
	}
	id := rand.Text()
	req := &oip.InferRequest{ID: id, Inputs: []oip.Tensor{oip.BytesTensor(TensorImage, image)}, Outputs: requestOutputs(ep, TensorEmbedding)}
	ans, status, err := c.infer(ctx, ep, u, req)
	if err != nil {
		return nil, nil, err
	}
	if ans.ID != id {
		return nil, nil, contractf(u, status, "the answer's id is %q, the request's was %q", clip(ans.ID), id)
	}
	t := ans.Output(TensorEmbedding)
	if t == nil {
		return nil, nil, contractf(u, status, "output EMBEDDING is missing")
	}
	v, err := t.Float32s()
	if err != nil || len(v) == 0 {
		return nil, nil, contractf(u, status, "output EMBEDDING is %s %s; it must be FP32 with at least one value", t.Datatype, shape(t.Shape))
	}
	return v, t.Shape, nil
}
