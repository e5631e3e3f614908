package training

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"

	"github.com/deepimageshub/imagehub/problem"
)

// Data formats a recipe may ask its data in (docs/training.md).
const (
	FormatCOCO    = "coco"
	FormatYOLOSeg = "yolo-seg"
)

// Param is one parameter a recipe takes: a number within [Min, Max]
// (whole for "int"), Default when left out.
type Param struct {
	Type        string  `json:"type"` // "int" or "float"
	Min         float64 `json:"min"`
	Max         float64 `json:"max"`
	Default     float64 `json:"default"`
	Description string  `json:"description,omitempty"`
}

// Recipe is a way to train that some trainer implements: the hub only
// checks a run's params against it and hands the data in its format.
type Recipe struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	// LabelsMax bounds the labels of one run; 0 is no bound.
	LabelsMax int              `json:"labels_max,omitempty"`
	Params    map[string]Param `json:"params"`
	// Format is the data the trainer downloads: coco or yolo-seg.
	Format string `json:"format"`
}

// DefaultRecipes is the recipe a GPU trainer around Ultralytics can take
// (docs/training.md). No trainer of this project implements it (the CPU
// trainer's recipes are trainer.Recipes()): its runs need an external one. The hub's list is static (Options.Recipes): it is what
// users may ask for, whether or not a trainer is connected right now, so a
// run waits queued until one that declares its recipe leases it.
var DefaultRecipes = []Recipe{{
	Name:        "yolo-seg",
	Description: "Ultralytics YOLO instance segmentation (yolov8n-seg fine-tuned). This project ships no trainer for it: a run waits queued until an external GPU trainer (for example one around Ultralytics, written to docs/training.md) leases it, and that trainer uploads an ONNX export in the yolo-seg layout (X-Artifact-Format: onnx, X-Artifact-Layout: yolo-seg) whose classes are the run's labels, in order.",
	Format:      FormatYOLOSeg,
	Params: map[string]Param{
		"epochs": {Type: "int", Min: 1, Max: 1000, Default: 50, Description: "passes over the train split"},
		"imgsz":  {Type: "int", Min: 160, Max: 1280, Default: 640, Description: "input side in pixels"},
		"lr0":    {Type: "float", Min: 1e-6, Max: 1, Default: 0.01, Description: "initial learning rate"},
	},
}}

// resolveParams fills defaults and checks each param against the recipe,
// naming the one at fault as params.<name>.
func (r Recipe) resolveParams(in map[string]json.RawMessage) (map[string]float64, error) {
	out := make(map[string]float64, len(r.Params))
	names := make([]string, 0, len(in))
	for k := range in {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		p, ok := r.Params[k]
		if !ok {
			return nil, problem.BadInput("unknown_param", "params."+k, fmt.Sprintf("Recipe %s takes no param %q.", r.Name, k))
		}
		var v float64
		if err := json.Unmarshal(in[k], &v); err != nil {
			return nil, problem.BadInput("invalid_param", "params."+k, fmt.Sprintf("%s is a number.", k))
		}
		if math.IsNaN(v) || v < p.Min || v > p.Max || (p.Type == "int" && v != math.Trunc(v)) {
			kind := "a number"
			if p.Type == "int" {
				kind = "a whole number"
			}
			return nil, problem.BadInput("param_out_of_range", "params."+k,
				fmt.Sprintf("%s is %s from %g to %g.", k, kind, p.Min, p.Max))
		}
		out[k] = v
	}
	for k, p := range r.Params {
		if _, ok := out[k]; !ok {
			out[k] = p.Default
		}
	}
	return out, nil
}
