package inference

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"

	"github.com/deepimageshub/imagehub/labelstudio"
	"github.com/deepimageshub/imagehub/layout"
	"github.com/deepimageshub/imagehub/mask"
)

// A Label Studio ML backend (layout label-studio) is not an OIP server:
// GET {base}/health answers 200 when it is up, POST {base}/setup takes the
// project's labeling config, and POST {base}/predict takes tasks whose
// data.image is a URL it downloads, answering with regions (package
// labelstudio). Failures are classified as for OIP: 429/503 busy, 5xx and
// transport errors retryable, other 4xx and answers that do not parse or
// fit the image contract errors.

// LabelStudioProject is the project id the hub gives a model in /setup and
// /predict: one per registered model version, so that a backend caching
// per project keeps them apart.
func LabelStudioProject(ep Endpoint) string { return "imagehub:" + ep.Model + ":" + ep.Version }

// LabelStudioConfig is the labeling config of ep's model.
func LabelStudioConfig(ep Endpoint) string {
	p := ep.Layout.WithDefaults()
	return labelstudio.LabelConfig(p.LabelTag, p.Labels)
}

// LabelStudioHealth reports nil when the backend at ep.Base answers 200 to
// GET /health; only the status counts.
func (c *Client) LabelStudioHealth(ctx context.Context, ep Endpoint) error {
	u, err := serverURL(ep.Base, "/health")
	if err != nil {
		return err
	}
	_, err = c.get(ctx, ep, u, nil)
	return err
}

// LabelStudioSetup sends the model's labeling config to POST /setup, as
// Label Studio does when a backend joins a project, and returns the
// model_version the backend answers with ("" when none).
func (c *Client) LabelStudioSetup(ctx context.Context, ep Endpoint) (string, error) {
	u, err := serverURL(ep.Base, "/setup")
	if err != nil {
		return "", err
	}
	body := labelstudio.SetupRequest{Project: LabelStudioProject(ep), Schema: LabelStudioConfig(ep)}
	data, status, err := c.postJSON(ctx, ep, u, body, maxMetadataBytes)
	if err != nil {
		return "", err
	}
	var ans struct {
		ModelVersion any `json:"model_version"`
	}
	if err := json.Unmarshal(data, &ans); err != nil {
		return "", contractf(u, status, "the answer to /setup is not JSON: %v", err)
	}
	if ans.ModelVersion == nil {
		return "", nil
	}
	return clip(fmt.Sprint(ans.ModelVersion)), nil
}

// postJSON posts v to u and returns a 200 answer's body and status.
func (c *Client) postJSON(ctx context.Context, ep Endpoint, u string, v any, maxBody int64) ([]byte, int, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, 0, fmt.Errorf("inference: error encoding the request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return nil, 0, fmt.Errorf("inference: error making the request: %w", err)
	}
	ep.Headers.apply(req)
	req.Header.Set("Content-Type", "application/json")
	resp, data, err := c.do(ctx, req, maxBody)
	if err != nil {
		return nil, 0, ep.Headers.scrub(err)
	}
	return data, resp.StatusCode, nil
}

// segmentLabelStudio sends items to a Label Studio ML backend in one
// /predict, a task per item (in order, as the backend answers), and reads
// each task's prediction into instances. Labels must be the hub's, mapped
// by Want.KnownLabel; at most the cap of instances, the best first; empty
// masks propose nothing.
func (c *Client) segmentLabelStudio(ctx context.Context, ep Endpoint, items []Item) ([][]Instance, error) {
	p := ep.Layout.WithDefaults()
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("inference: the model's layout is not valid: %w", err)
	}
	if len(items) == 0 {
		return nil, errors.New("inference: no image to send")
	}
	u, err := serverURL(ep.Base, "/predict")
	if err != nil {
		return nil, err
	}
	req := labelstudio.PredictRequest{LabelConfig: LabelStudioConfig(ep), Project: LabelStudioProject(ep)}
	first := rand.Int64N(1 << 52)
	for i, it := range items {
		if it.URL == "" {
			return nil, fmt.Errorf("inference: image %d has no URL for the backend to fetch", i)
		}
		if it.Want.Height <= 0 || it.Want.Width <= 0 {
			return nil, fmt.Errorf("inference: image %d: size %d×%d is not valid", i, it.Want.Width, it.Want.Height)
		}
		req.Tasks = append(req.Tasks, labelstudio.Task{ID: first + int64(i), Data: labelstudio.TaskData{Image: it.URL}})
	}
	data, status, err := c.postJSON(ctx, ep, u, req, c.maxResponse())
	if err != nil {
		return nil, err
	}
	preds, err := labelstudio.ParsePredictions(data)
	if err != nil {
		return nil, contractf(u, status, "%v", err)
	}
	if len(preds) != len(items) {
		return nil, contractf(u, status, "the answer has %d predictions for %d tasks; a backend answers one per task, in order", len(preds), len(items))
	}
	out := make([][]Instance, len(items))
	for i, pr := range preds {
		out[i], err = labelStudioInstances(pr, p, items[i].Want, c.maxInstances(items[i].Want))
		if err != nil {
			return nil, contractf(u, status, "%s: %v", which(i, len(items)), err)
		}
	}
	return out, nil
}

func labelStudioInstances(pr labelstudio.Prediction, p layout.Params, want Expect, maxN int) ([]Instance, error) {
	found, err := pr.Instances(want.Width, want.Height, float64(p.MaskThreshold))
	if err != nil {
		return nil, err
	}
	out := make([]Instance, 0, len(found))
	for _, f := range found {
		label := f.Label
		if want.KnownLabel != nil {
			name, ok := want.KnownLabel(label)
			if !ok {
				return nil, fmt.Errorf("a region's label is %q, a label the hub does not know", clip(label))
			}
			label = name
		}
		if f.Score <= p.ScoreThreshold {
			continue
		}
		rle := mask.Encode(f.Mask)
		area := f.Mask.Area()
		if area == 0 {
			continue
		}
		out = append(out, Instance{Label: label, Score: f.Score, Mask: rle, BBox: f.Mask.BBox(), Area: area, ModelVersion: pr.ModelVersion})
	}
	if len(out) > p.MaxInstances || len(out) > maxN {
		// The best, in the backend's order among equals.
		sortByScore(out)
		out = out[:min(p.MaxInstances, maxN)]
	}
	return out, nil
}

// sortByScore orders instances best first, keeping the order of equals.
func sortByScore(in []Instance) {
	slices.SortStableFunc(in, func(a, b Instance) int { return cmp.Compare(b.Score, a.Score) })
}
