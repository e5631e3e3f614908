// Package labelstudio speaks the protocol of Label Studio's ML backends
// (label-studio-ml-backend: a small HTTP server with GET /health, POST
// /setup and POST /predict) as far as the hub uses them as models of the
// "label-studio" layout (docs/layouts.md): the labeling config the hub
// generates, the bodies it sends, and the answers read back into masks.
// The HTTP calls are package inference's; everything here is pure.
package labelstudio

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/deepimageshub/imagehub/mask"
)

// The controls a generated labeling config may use: the region type a
// backend answers with follows from it.
const (
	Brush   = "BrushLabels"
	Polygon = "PolygonLabels"
)

// The names the generated config gives its tags: backends read them back
// from the config, and answer with them in from_name and to_name.
const (
	FromName = "tag"
	ToName   = "image"
)

// LabelConfig is the labeling config of a project whose images are labeled
// with tag (Brush or Polygon) and labels:
// <View><Image name="image" value="$image"/><BrushLabels name="tag"
// toName="image"><Label value="…"/>…</BrushLabels></View>.
func LabelConfig(tag string, labels []string) string {
	var b strings.Builder
	b.WriteString(`<View><Image name="` + ToName + `" value="$image"/><` + tag + ` name="` + FromName + `" toName="` + ToName + `">`)
	for _, l := range labels {
		b.WriteString(`<Label value="`)
		_ = xml.EscapeText(&b, []byte(l)) // a strings.Builder does not fail
		b.WriteString(`"/>`)
	}
	b.WriteString(`</` + tag + `></View>`)
	return b.String()
}

// SetupRequest is the body of POST /setup, as Label Studio sends it when a
// backend is connected to a project.
type SetupRequest struct {
	Project string `json:"project"`
	Schema  string `json:"schema"`
	// Hostname is where the backend may fetch files; the hub's task URLs
	// are absolute, so it is informative only.
	Hostname    string `json:"hostname,omitempty"`
	AccessToken string `json:"access_token"`
}

// PredictRequest is the body of POST /predict.
type PredictRequest struct {
	Tasks       []Task `json:"tasks"`
	LabelConfig string `json:"label_config"`
	Project     string `json:"project"`
}

// Task is one image to label: Data.Image is a URL the backend downloads.
type Task struct {
	ID   int64    `json:"id"`
	Data TaskData `json:"data"`
}

// TaskData is a task's data, keyed as the config's $image says.
type TaskData struct {
	Image string `json:"image"`
}

// Prediction is one task's answer: its regions, the prediction's score and
// the version of the model that made it.
type Prediction struct {
	Result       []Region `json:"result"`
	Score        *float64 `json:"score"`
	ModelVersion string   `json:"-"`
}

// Region is one item of a prediction's result.
type Region struct {
	ID             string   `json:"id"`
	FromName       string   `json:"from_name"`
	ToName         string   `json:"to_name"`
	Type           string   `json:"type"`
	OriginalWidth  int      `json:"original_width"`
	OriginalHeight int      `json:"original_height"`
	Score          *float64 `json:"score"`
	Value          Value    `json:"value"`
}

// Value is a region's value: a brush's RLE or a polygon's points (in
// percent of the image's width and height), and its labels.
type Value struct {
	Format        string      `json:"format"`
	RLE           []int       `json:"rle"`
	BrushLabels   []string    `json:"brushlabels"`
	Points        [][]float64 `json:"points"`
	PolygonLabels []string    `json:"polygonlabels"`
}

// ParsePredictions reads the answer to POST /predict: the current SDK's
// {"results": [prediction…], "model_version": "…"} or, from older
// backends, a bare list of predictions. A prediction's model_version
// (a string or a number) falls back to the answer's.
func ParsePredictions(body []byte) ([]Prediction, error) {
	body = bytes.TrimSpace(body)
	var raw []json.RawMessage
	top := ""
	switch {
	case len(body) > 0 && body[0] == '[':
		if err := json.Unmarshal(body, &raw); err != nil {
			return nil, fmt.Errorf("the answer is not a list of predictions: %v", err)
		}
	case len(body) > 0 && body[0] == '{':
		var env struct {
			Results      json.RawMessage `json:"results"`
			ModelVersion json.RawMessage `json:"model_version"`
		}
		if err := json.Unmarshal(body, &env); err != nil {
			return nil, fmt.Errorf("the answer is not a predict response: %v", err)
		}
		if len(env.Results) == 0 || string(env.Results) == "null" {
			return nil, errors.New(`the answer has no "results" list`)
		}
		if err := json.Unmarshal(env.Results, &raw); err != nil {
			return nil, errors.New(`the answer's "results" is not a list of predictions`)
		}
		top = versionString(env.ModelVersion)
	default:
		return nil, errors.New(`the answer is not JSON: a predict response is {"results": [...]} or a list of predictions`)
	}
	out := make([]Prediction, len(raw))
	for i, r := range raw {
		var p struct {
			Prediction
			ModelVersion json.RawMessage `json:"model_version"`
		}
		if err := json.Unmarshal(r, &p); err != nil {
			return nil, fmt.Errorf("prediction %d is not {\"result\": [...], \"score\", \"model_version\"}: %v", i, err)
		}
		out[i] = p.Prediction
		out[i].ModelVersion = versionString(p.ModelVersion)
		if out[i].ModelVersion == "" {
			out[i].ModelVersion = top
		}
	}
	return out, nil
}

// versionString reads a model_version given as a string or a number.
func versionString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return clip(s, 128)
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Instance is one region read back: a label of the config, a score in
// [0, 1] and the mask at the image's size.
type Instance struct {
	Label string
	Score float32
	Mask  *mask.Bitmap
}

// Instances reads a prediction for an image of w×h pixels. A brushlabels
// region's pixel is on when its alpha is above threshold·255; a
// polygonlabels region is rasterised by the COCO API's rule (mask's
// FromPolygons) after its points are scaled from percent to pixels.
// Regions of other types (a rectangle, a choice) are left out. A region's
// own score is taken, else the prediction's; one with neither, a size
// other than the image's, labels missing, an RLE that does not decode or
// points that are not numbers is an error, for the caller's contract
// error. A region with several labels gives one instance per label.
func (p Prediction) Instances(w, h int, threshold float64) ([]Instance, error) {
	var out []Instance
	for i, r := range p.Result {
		var labels []string
		var m *mask.Bitmap
		switch r.Type {
		case "brushlabels":
			labels = r.Value.BrushLabels
		case "polygonlabels":
			labels = r.Value.PolygonLabels
		default:
			continue
		}
		if (r.OriginalWidth != 0 || r.OriginalHeight != 0) && (r.OriginalWidth != w || r.OriginalHeight != h) {
			return nil, fmt.Errorf("region %d is for an image of %d×%d, but the image is %d×%d", i, r.OriginalWidth, r.OriginalHeight, w, h)
		}
		if len(labels) == 0 {
			return nil, fmt.Errorf("region %d (%s) names no label", i, r.Type)
		}
		score := r.Score
		if score == nil {
			score = p.Score
		}
		if score == nil || math.IsNaN(*score) || *score < 0 || *score > 1 {
			return nil, fmt.Errorf("region %d has no score in [0, 1] (neither its own nor the prediction's)", i)
		}
		var err error
		if r.Type == "brushlabels" {
			m, err = brushMask(r.Value, w, h, threshold)
		} else {
			m, err = polygonMask(r.Value.Points, w, h)
		}
		if err != nil {
			return nil, fmt.Errorf("region %d (%s): %v", i, r.Type, err)
		}
		for _, l := range labels {
			out = append(out, Instance{Label: l, Score: float32(*score), Mask: m})
		}
	}
	return out, nil
}

func brushMask(v Value, w, h int, threshold float64) (*mask.Bitmap, error) {
	if v.Format != "rle" {
		return nil, fmt.Errorf("value.format is %q; a brush is read in Label Studio's \"rle\"", v.Format)
	}
	data := make([]byte, len(v.RLE))
	for i, b := range v.RLE {
		if b < 0 || b > 255 {
			return nil, fmt.Errorf("value.rle[%d] is %d, not a byte", i, b)
		}
		data[i] = byte(b)
	}
	vals, err := DecodeRLE(data, 4*w*h)
	if err != nil {
		return nil, err
	}
	m := mask.NewBitmap(w, h)
	cut := threshold * 255
	for i := range m.Pix {
		if float64(vals[4*i+3]) > cut {
			m.Pix[i] = 1
		}
	}
	return m, nil
}

func polygonMask(points [][]float64, w, h int) (*mask.Bitmap, error) {
	if len(points) < 3 {
		return nil, fmt.Errorf("a polygon has %d points; it needs at least 3", len(points))
	}
	poly := make(mask.Polygon, 0, 2*len(points))
	for i, pt := range points {
		if len(pt) != 2 || math.IsNaN(pt[0]) || math.IsInf(pt[0], 0) || math.IsNaN(pt[1]) || math.IsInf(pt[1], 0) {
			return nil, fmt.Errorf("point %d is not [x, y] in percent", i)
		}
		poly = append(poly, pt[0]*float64(w)/100, pt[1]*float64(h)/100)
	}
	return mask.FromPolygons([]mask.Polygon{poly}, h, w), nil
}
