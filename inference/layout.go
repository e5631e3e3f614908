package inference

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"image"

	"github.com/deepimageshub/imagehub/layout"
	"github.com/deepimageshub/imagehub/oip"
)

// The tensor names of the stock layouts' outputs.
const (
	yoloPreds  = "output0"
	yoloProtos = "output1"
)

var maskRCNNOutputs = []string{"boxes", "labels", "scores", "masks"}

// segmentLayout sends items to a model of a stock layout (ep.Layout) in one
// request and decodes its outputs into each item's instances. yolo-seg
// takes B images along its batch dimension; maskrcnn has none, so it takes
// exactly one. The images are the canonical stored files, upright; each is
// decoded and must have its Want size. Hints are not sent: no stock model
// takes them.
//
// An answer that does not fit the layout fails the whole request with a
// *Contract; an instance whose label the hub does not know does too, as in
// the convention.
func (c *Client) segmentLayout(ctx context.Context, ep Endpoint, items []Item) ([][]Instance, error) {
	p := ep.Layout.WithDefaults()
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("inference: the model's layout is not valid: %w", err)
	}
	if len(items) == 0 {
		return nil, errors.New("inference: no image to send")
	}
	if p.Kind == layout.MaskRCNN && len(items) > 1 {
		return nil, fmt.Errorf("inference: a maskrcnn model takes one image a request, not %d", len(items))
	}
	imgs := make([]image.Image, len(items))
	for i, it := range items {
		if it.Want.Height <= 0 || it.Want.Width <= 0 {
			return nil, fmt.Errorf("inference: image size %d×%d is not valid", it.Want.Width, it.Want.Height)
		}
		img, err := layout.DecodeImage(it.Image)
		if err != nil {
			return nil, fmt.Errorf("inference: image %d: %w", i, err)
		}
		if b := img.Bounds(); b.Dx() != it.Want.Width || b.Dy() != it.Want.Height {
			return nil, fmt.Errorf("inference: image %d is %d×%d, not the %d×%d expected", i, b.Dx(), b.Dy(), it.Want.Width, it.Want.Height)
		}
		imgs[i] = img
	}
	u, err := modelURL(ep.Base, ep.Model, ep.Version, "/infer")
	if err != nil {
		return nil, err
	}
	req := &oip.InferRequest{ID: rand.Text()}
	var outputs []string
	var boxes []layout.Letterbox
	var resized layout.Resized
	switch p.Kind {
	case layout.YOLOSeg:
		s, n := p.InputSize, layout.YOLOSegInputLen(p.InputSize)
		in := make([]float32, len(imgs)*n)
		for i, img := range imgs {
			boxes = append(boxes, layout.YOLOSegInput(in[i*n:(i+1)*n], img, s))
		}
		req.Inputs = []oip.Tensor{oip.FP32Tensor(p.InputName(), []int64{int64(len(imgs)), 3, int64(s), int64(s)}, in)}
		outputs = []string{yoloPreds, yoloProtos}
	case layout.MaskRCNN:
		in, rs := layout.MaskRCNNInput(imgs[0], p.InputSize)
		resized = rs
		req.Inputs = []oip.Tensor{oip.FP32Tensor(p.InputName(), []int64{3, int64(rs.H), int64(rs.W)}, in)}
		outputs = maskRCNNOutputs
	default:
		return nil, fmt.Errorf("inference: layout %q is not a stock layout", p.Kind)
	}
	req.Outputs = requestOutputs(ep, outputs...)
	ans, status, err := c.infer(ctx, ep, u, req)
	if err != nil {
		return nil, err
	}
	if ans.ID != req.ID {
		return nil, contractf(u, status, "the answer's id is %q, the request's was %q", clip(ans.ID), req.ID)
	}
	var dets [][]layout.Detection
	switch p.Kind {
	case layout.YOLOSeg:
		dets, err = decodeYOLOSeg(ans, p, boxes)
	case layout.MaskRCNN:
		var d []layout.Detection
		d, err = decodeMaskRCNN(ans, p, resized)
		dets = [][]layout.Detection{d}
	}
	if err != nil {
		return nil, contractf(u, status, "%v", err)
	}
	out := make([][]Instance, len(items))
	for i, ds := range dets {
		out[i], err = layoutInstances(ds, p, items[i].Want, c.maxInstances(items[i].Want))
		if err != nil {
			return nil, contractf(u, status, "image %d: %v", i, err)
		}
	}
	return out, nil
}

// output finds a required output of the given datatype and rank.
func output(ans *oip.InferResponse, name string, dt oip.Datatype, rank int) (*oip.Tensor, error) {
	t := ans.Output(name)
	if t == nil {
		return nil, fmt.Errorf("output %s is missing", name)
	}
	if t.Datatype != dt || len(t.Shape) != rank {
		return nil, fmt.Errorf("output %s is %s %s; it must be %s of %d dimensions", name, t.Datatype, shape(t.Shape), dt, rank)
	}
	return t, nil
}

func decodeYOLOSeg(ans *oip.InferResponse, p layout.Params, boxes []layout.Letterbox) ([][]layout.Detection, error) {
	b := int64(len(boxes))
	preds, err := output(ans, yoloPreds, oip.FP32, 3)
	if err != nil {
		return nil, err
	}
	protos, err := output(ans, yoloProtos, oip.FP32, 4)
	if err != nil {
		return nil, err
	}
	ch := int64(4 + len(p.Labels) + layout.YOLOMaskDim)
	if preds.Shape[0] != b || preds.Shape[1] != ch || preds.Shape[2] < 1 {
		return nil, fmt.Errorf("output %s is %s; for %d images and %d labels it must be [%d, %d, A]", yoloPreds, shape(preds.Shape), b, len(p.Labels), b, ch)
	}
	if protos.Shape[0] != b || protos.Shape[1] != layout.YOLOMaskDim || protos.Shape[2] < 1 || protos.Shape[3] < 1 {
		return nil, fmt.Errorf("output %s is %s; it must be [%d, %d, MH, MW]", yoloProtos, shape(protos.Shape), b, layout.YOLOMaskDim)
	}
	pv, err := preds.Float32s()
	if err != nil {
		return nil, err
	}
	qv, err := protos.Float32s()
	if err != nil {
		return nil, err
	}
	a, mh, mw := int(preds.Shape[2]), int(protos.Shape[2]), int(protos.Shape[3])
	pn, qn := int(ch)*a, layout.YOLOMaskDim*mh*mw
	out := make([][]layout.Detection, len(boxes))
	for i, lb := range boxes {
		out[i], err = layout.DecodeYOLOSeg(layout.YOLOSegOutput{
			Preds: pv[i*pn : (i+1)*pn], Anchors: a, Protos: qv[i*qn : (i+1)*qn], MH: mh, MW: mw,
		}, lb, p)
		if err != nil {
			return nil, fmt.Errorf("image %d: %w", i, err)
		}
	}
	return out, nil
}

func decodeMaskRCNN(ans *oip.InferResponse, p layout.Params, rs layout.Resized) ([]layout.Detection, error) {
	boxes, err := output(ans, "boxes", oip.FP32, 2)
	if err != nil {
		return nil, err
	}
	labels, err := output(ans, "labels", oip.INT64, 1)
	if err != nil {
		return nil, err
	}
	scores, err := output(ans, "scores", oip.FP32, 1)
	if err != nil {
		return nil, err
	}
	masks, err := output(ans, "masks", oip.FP32, 4)
	if err != nil {
		return nil, err
	}
	n := scores.Shape[0]
	if boxes.Shape[0] != n || boxes.Shape[1] != 4 || labels.Shape[0] != n || masks.Shape[0] != n || masks.Shape[1] != 1 {
		return nil, fmt.Errorf("outputs boxes %s, labels %s, scores %s and masks %s do not agree: they must be [N, 4], [N], [N] and [N, 1, H, W]",
			shape(boxes.Shape), shape(labels.Shape), shape(scores.Shape), shape(masks.Shape))
	}
	o := layout.MaskRCNNOutput{N: int(n), MH: int(masks.Shape[2]), MW: int(masks.Shape[3])}
	if o.Boxes, err = boxes.Float32s(); err != nil {
		return nil, err
	}
	if o.Labels, err = labels.Int64s(); err != nil {
		return nil, err
	}
	if o.Scores, err = scores.Float32s(); err != nil {
		return nil, err
	}
	o.Masks = masks.Raw
	return layout.DecodeMaskRCNN(o, rs, p)
}

// layoutInstances names the detections of one image and measures their
// masks; empty masks propose nothing and are left out, and at most maxN
// are kept (the best, as the layout orders them).
func layoutInstances(dets []layout.Detection, p layout.Params, want Expect, maxN int) ([]Instance, error) {
	out := make([]Instance, 0, len(dets))
	for _, d := range dets {
		if len(out) == maxN {
			break
		}
		area, err := d.Mask.Area()
		if err != nil {
			return nil, fmt.Errorf("a decoded mask is not valid: %w", err)
		}
		if area == 0 {
			continue
		}
		box, err := d.Mask.BBox()
		if err != nil {
			return nil, fmt.Errorf("a decoded mask is not valid: %w", err)
		}
		label := p.Labels[d.Class]
		if want.KnownLabel != nil {
			name, ok := want.KnownLabel(label)
			if !ok {
				return nil, fmt.Errorf("class %d is %q (from the registration's labels), a label the hub does not know", d.Class, clip(label))
			}
			label = name
		}
		out = append(out, Instance{Label: label, Score: d.Score, Mask: d.Mask, BBox: box, Area: area})
	}
	return out, nil
}
