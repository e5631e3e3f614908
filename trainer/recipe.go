package trainer

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Param describes one parameter of a recipe, as GET /api/v1/trainings/recipes
// lists it.
type Param struct {
	Name        string  `json:"name"`
	Type        string  `json:"type"` // "int" or "float"
	Default     float64 `json:"default"`
	Min         float64 `json:"min"`
	Max         float64 `json:"max"`
	Description string  `json:"description"`
}

// Progress is what a recipe reports while it trains.
type Progress struct {
	Step  int      `json:"step"`
	Steps int      `json:"steps"`
	Epoch *int     `json:"epoch,omitempty"`
	Loss  *float64 `json:"loss,omitempty"`
	State string   `json:"state,omitempty"` // "running" or "evaluating"
}

// Job is one training as a recipe sees it.
type Job struct {
	Labels     []string
	Params     map[string]float64 // validated, defaults filled in
	Seed       int64
	Train, Val *Split
	Report     func(Progress)
}

// Result is a finished training: the model file, its format (the
// protocol's X-Artifact-Format) and the metrics of the val split.
type Result struct {
	Artifact []byte
	Format   string
	Metrics  map[string]any
}

// Recipe is one way to train a model.
type Recipe struct {
	Name        string  `json:"name"`
	Description string  `json:"description"`
	LabelsMax   int     `json:"labels_max,omitempty"`
	DataFormat  string  `json:"-"` // "coco" or "yolo-seg": what the lease's data must be
	Params      []Param `json:"params"`
	train       func(ctx context.Context, j Job) (*Result, error)
}

// Recipes are the recipes this trainer knows.
func Recipes() []Recipe { return []Recipe{regionClassifier()} }

// Find returns the recipe of that name.
func Find(name string) (Recipe, bool) {
	for _, r := range Recipes() {
		if r.Name == name {
			return r, true
		}
	}
	return Recipe{}, false
}

// ParamError names the parameter that is wrong.
type ParamError struct {
	Param string
	Msg   string
}

func (e *ParamError) Error() string { return "params." + e.Param + ": " + e.Msg }

// Validate checks params against the recipe and fills in the defaults. The
// values are JSON numbers (float64, json.Number or integers); an unknown
// parameter, a value out of range or a fraction where an integer is due
// is a *ParamError.
func (r Recipe) Validate(params map[string]any) (map[string]float64, error) {
	out := map[string]float64{}
	for _, p := range r.Params {
		out[p.Name] = p.Default
	}
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		i := slices.IndexFunc(r.Params, func(p Param) bool { return p.Name == k })
		if i < 0 {
			known := make([]string, len(r.Params))
			for j, p := range r.Params {
				known[j] = p.Name
			}
			return nil, &ParamError{k, fmt.Sprintf("recipe %s has no such parameter; it takes %s", r.Name, strings.Join(known, ", "))}
		}
		p := r.Params[i]
		var v float64
		switch x := params[k].(type) {
		case float64:
			v = x
		case int:
			v = float64(x)
		case int64:
			v = float64(x)
		case json.Number:
			f, err := x.Float64()
			if err != nil {
				return nil, &ParamError{k, "must be a number"}
			}
			v = f
		default:
			return nil, &ParamError{k, "must be a number"}
		}
		if math.IsNaN(v) || v < p.Min || v > p.Max {
			return nil, &ParamError{k, fmt.Sprintf("%v is out of range [%v, %v]", v, p.Min, p.Max)}
		}
		if p.Type == "int" && v != math.Trunc(v) {
			return nil, &ParamError{k, fmt.Sprintf("%v must be a whole number", v)}
		}
		out[k] = v
	}
	return out, nil
}

// Train runs the recipe.
func (r Recipe) Train(ctx context.Context, j Job) (*Result, error) {
	if len(j.Labels) == 0 {
		return nil, fmt.Errorf("error training: the run names no labels")
	}
	if r.LabelsMax > 0 && len(j.Labels) > r.LabelsMax {
		return nil, fmt.Errorf("error training: %d labels; recipe %s takes at most %d", len(j.Labels), r.Name, r.LabelsMax)
	}
	if j.Report == nil {
		j.Report = func(Progress) {}
	}
	return r.train(ctx, j)
}
