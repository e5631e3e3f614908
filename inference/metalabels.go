package inference

import (
	"encoding/json"
	"fmt"

	"github.com/deepimageshub/imagehub/oip"
)

// ParamLabels is the model metadata parameter that names a stock model's
// classes: a string holding a JSON array of names in the model's output
// order, as the project's ONNX worker (package onnxworker) publishes them.
const ParamLabels = "labels"

// MetadataLabels reads the class names a server published in the model's
// metadata parameters. ok is false when there are none; a parameter that is
// there but is not a JSON array of strings is an error.
func MetadataLabels(meta *oip.ModelMetadata) (labels []string, ok bool, err error) {
	if meta == nil {
		return nil, false, nil
	}
	v, present := meta.Parameters[ParamLabels]
	if !present {
		return nil, false, nil
	}
	s, isString := v.(string)
	if !isString {
		return nil, false, fmt.Errorf("the metadata parameter %q is a %T; it must be a string holding a JSON array of class names", ParamLabels, v)
	}
	if err := json.Unmarshal([]byte(s), &labels); err != nil {
		return nil, false, fmt.Errorf("the metadata parameter %q is not a JSON array of class names: %v", ParamLabels, err)
	}
	return labels, len(labels) > 0, nil
}
