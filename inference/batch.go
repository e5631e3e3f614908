package inference

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"

	"github.com/deepimageshub/imagehub/layout"
	"github.com/deepimageshub/imagehub/oip"
)

// SegmentBatch sends items to ep in one request and returns each item's
// instances, in the items' order (docs/batching.md). For the convention
// the request carries IMAGE BYTES [B], one encoded file per item, and the
// answer's instances are split by BATCH_INDEX (required when B > 1); every
// rule of the convention is checked for each image against its own Want.
// LABEL_HINTS is one list for the whole request, so the items of a batch
// must share their hints (SameHints) unless ep.SkipHints; the caller
// groups them. A stock layout (ep.Layout) goes to segmentLayout.
//
// Errors are classified as Segment's; any one makes the whole batch fail,
// and nothing of the answer is returned.
func (c *Client) SegmentBatch(ctx context.Context, ep Endpoint, items []Item) ([][]Instance, error) {
	if ep.Layout.Kind == layout.LabelStudio {
		return c.segmentLabelStudio(ctx, ep, items)
	}
	if ep.Layout.Stock() {
		return c.segmentLayout(ctx, ep, items)
	}
	if len(items) == 0 {
		return nil, errors.New("inference: no image to send")
	}
	for i, it := range items {
		if len(it.Image) == 0 {
			return nil, fmt.Errorf("inference: image %d: no image to send", i)
		}
		if it.Want.Height <= 0 || it.Want.Width <= 0 {
			return nil, fmt.Errorf("inference: image %d: size %d×%d is not valid", i, it.Want.Width, it.Want.Height)
		}
	}
	hints := items[0].Hints
	if ep.SkipHints {
		hints = nil
	} else if !SameHints(items) {
		return nil, errors.New("inference: the images of a batch must share their label hints: LABEL_HINTS is one list for the whole request")
	}
	u, err := modelURL(ep.Base, ep.Model, ep.Version, "/infer")
	if err != nil {
		return nil, err
	}
	id := rand.Text()
	images := make([][]byte, len(items))
	for i, it := range items {
		images[i] = it.Image
	}
	req := &oip.InferRequest{ID: id, Inputs: []oip.Tensor{oip.BytesTensor("IMAGE", images...)}}
	if len(hints) > 0 {
		elems := make([][]byte, len(hints))
		for i, h := range hints {
			elems[i] = []byte(h)
		}
		req.Inputs = append(req.Inputs, oip.BytesTensor("LABEL_HINTS", elems...))
	}
	names := []string{"MASKS", "SCORES", "LABELS"}
	if len(items) > 1 {
		names = append(names, "BATCH_INDEX")
	}
	req.Outputs = requestOutputs(ep, names...)
	ans, status, err := c.infer(ctx, ep, u, req)
	if err != nil {
		return nil, err
	}
	wants := make([]Expect, len(items))
	maxN := make([]int, len(items))
	for i, it := range items {
		wants[i], maxN[i] = it.Want, c.maxInstances(it.Want)
	}
	out, msg := instances(ans, id, wants, maxN)
	if msg != "" {
		return nil, contractf(u, status, "%s", msg)
	}
	return out, nil
}

// SameHints reports whether every item has the same label hints, in the
// same order: only such items may share a request that carries LABEL_HINTS.
func SameHints(items []Item) bool {
	for _, it := range items[1:] {
		if !slices.Equal(it.Hints, items[0].Hints) {
			return false
		}
	}
	return true
}

// CheckBatch lists what in a model's metadata (already checked with
// CheckLayout, which returned p) forbids sending it maxBatch images in one
// request: the image input must have a variable (-1) leading batch
// dimension (IMAGE BYTES [-1] for the convention, [-1, 3, S, S] for
// yolo-seg), and maskrcnn, which has no batch dimension, takes one image
// a request. Every Problem names the tensor and says what to change.
func CheckBatch(meta *oip.ModelMetadata, p layout.Params, maxBatch int) []Problem {
	if maxBatch <= 1 || meta == nil {
		return nil
	}
	var ps []Problem
	add := func(tensor, format string, args ...any) {
		ps = append(ps, Problem{Tensor: tensor, Message: fmt.Sprintf(format, args...)})
	}
	p = p.WithDefaults()
	switch p.Kind {
	case layout.MaskRCNN:
		add(p.InputName(), "max_batch is %d, but a maskrcnn model has no batch dimension and takes one image a request: register it with max_batch 1", maxBatch)
		return ps
	case layout.YOLOSeg:
		name := p.Input
		if name == "" {
			name = p.InputName()
		}
		t, ok := index(meta.Inputs)[name]
		if ok && (len(t.Shape) == 0 || t.Shape[0] != -1) {
			add(name, "max_batch is %d, but input %s has shape %s: to take a batch its leading dimension must be variable (-1); export the model with a dynamic batch axis or register it with max_batch 1", maxBatch, name, shape(t.Shape))
		}
		return ps
	}
	if t, ok := index(meta.Inputs)["IMAGE"]; ok && (len(t.Shape) != 1 || t.Shape[0] != -1) {
		add("IMAGE", "max_batch is %d, but input IMAGE has shape %s: to take a batch it must be BYTES [-1] (a variable leading batch dimension, one encoded file per image) and answer with BATCH_INDEX; or register the model with max_batch 1", maxBatch, shape(t.Shape))
	}
	return ps
}
