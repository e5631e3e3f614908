// Package oip holds the wire types and the codec of the Open Inference
// Protocol (the "KServe V2" REST protocol of Triton, KServe, MLServer and
// OpenVINO Model Server), shared by the hub's client (package inference) and
// the project's own worker (package worker).
//
// A tensor's data travels in one of two ways:
//
//   - JSON: "data" is a flat or nested array in row-major order. BYTES
//     elements are written as base64 strings with "parameters":
//     {"content_type": "base64"} (the MLServer convention); when decoding,
//     strings of a tensor without that parameter are taken as they are (what
//     Triton sends).
//   - Binary (Triton's binary_tensor_data extension): the body is the JSON
//     header, whose length is the Inference-Header-Content-Length HTTP header,
//     followed by the raw tensors in the order they appear in the JSON, each
//     sized by its "binary_data_size" parameter. Numbers are little-endian
//     without padding, BOOL is one byte, and a BYTES element is a 4-byte
//     little-endian length followed by its bytes.
//
// In memory a Tensor always holds the binary form: Raw for numbers and BOOL,
// Elems for BYTES. Decoding never trusts what a body declares: the body, the
// number of tensors, their rank and element counts are capped (Limits), and
// a shape must agree exactly with the data that came with it before anything
// is allocated from it. Decoded tensors share memory with the body.
package oip

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
)

// Datatype is a tensor element type as the protocol spells it.
type Datatype string

// The datatypes of the protocol.
const (
	BOOL   Datatype = "BOOL"
	UINT8  Datatype = "UINT8"
	UINT16 Datatype = "UINT16"
	UINT32 Datatype = "UINT32"
	UINT64 Datatype = "UINT64"
	INT8   Datatype = "INT8"
	INT16  Datatype = "INT16"
	INT32  Datatype = "INT32"
	INT64  Datatype = "INT64"
	FP16   Datatype = "FP16"
	FP32   Datatype = "FP32"
	FP64   Datatype = "FP64"
	BYTES  Datatype = "BYTES"
)

// Size is the number of bytes of one element in binary form; 0 for BYTES,
// whose elements vary, and -1 for a datatype the protocol does not have.
func (d Datatype) Size() int {
	switch d {
	case BOOL, UINT8, INT8:
		return 1
	case UINT16, INT16, FP16:
		return 2
	case UINT32, INT32, FP32:
		return 4
	case UINT64, INT64, FP64:
		return 8
	case BYTES:
		return 0
	}
	return -1
}

// Valid reports whether d is one of the protocol's datatypes.
func (d Datatype) Valid() bool { return d.Size() >= 0 }

// Parameter names this package reads or writes.
const (
	ParamBinaryDataSize   = "binary_data_size"   // on a tensor sent binary
	ParamBinaryData       = "binary_data"        // on a requested output: send it binary
	ParamBinaryDataOutput = "binary_data_output" // on a request: send every output binary
	ParamContentType      = "content_type"       // "base64" on a BYTES tensor in JSON
)

// HeaderJSONLength is the HTTP header of the binary extension that gives the
// length of the JSON part of a body.
const HeaderJSONLength = "Inference-Header-Content-Length"

// Parameters are the free-form "parameters" of a request, response or tensor.
// Numbers decode as float64.
type Parameters map[string]any

// Bool reports whether key holds the boolean true.
func (p Parameters) Bool(key string) bool {
	v, _ := p[key].(bool)
	return v
}

// String returns key's value when it is a string, else "".
func (p Parameters) String(key string) string {
	v, _ := p[key].(string)
	return v
}

// Int returns key's value when it is a whole number that fits an int64; ok
// is false when the key is absent and err is set when it holds anything else.
func (p Parameters) Int(key string) (n int64, ok bool, err error) {
	v, present := p[key]
	if !present {
		return 0, false, nil
	}
	switch x := v.(type) {
	case float64:
		if x != math.Trunc(x) || x < math.MinInt64 || x >= math.MaxInt64 {
			return 0, true, fmt.Errorf("parameter %q is %v, not a whole number", key, x)
		}
		return int64(x), true, nil
	case int:
		return int64(x), true, nil
	case int64:
		return x, true, nil
	}
	return 0, true, fmt.Errorf("parameter %q is not a number", key)
}

// clone returns a copy of p that may be changed without touching p.
func (p Parameters) clone() Parameters {
	out := make(Parameters, len(p)+1)
	for k, v := range p {
		out[k] = v
	}
	return out
}

// Tensor is an input or output tensor with its data in binary form.
type Tensor struct {
	Name       string
	Datatype   Datatype
	Shape      []int64
	Parameters Parameters
	// Raw holds the elements of a tensor of any datatype but BYTES:
	// little-endian, row-major, without padding, BOOL as one byte 0 or 1.
	Raw []byte
	// Elems holds the elements of a BYTES tensor.
	Elems [][]byte
}

// Count is the number of elements the shape describes. It fails on a
// negative dimension or a product larger than limit (overflow included).
func Count(shape []int64, limit int64) (int64, error) {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape %v has a negative dimension", shape)
		}
		if d == 0 {
			n = 0
			continue
		}
		if n > limit/d {
			return 0, fmt.Errorf("shape %v has more than %d elements", shape, limit)
		}
		n *= d
	}
	if n > limit {
		return 0, fmt.Errorf("shape %v has more than %d elements", shape, limit)
	}
	return n, nil
}

// Validate checks that the datatype is known and the data agrees with the
// shape.
func (t *Tensor) Validate() error {
	if t.Name == "" {
		return errors.New("a tensor has no name")
	}
	size := t.Datatype.Size()
	if size < 0 {
		return fmt.Errorf("tensor %q: unknown datatype %q", t.Name, t.Datatype)
	}
	n, err := Count(t.Shape, math.MaxInt64)
	if err != nil {
		return fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	if t.Datatype == BYTES {
		if t.Raw != nil {
			return fmt.Errorf("tensor %q: a BYTES tensor keeps its data in Elems", t.Name)
		}
		if int64(len(t.Elems)) != n {
			return fmt.Errorf("tensor %q: shape %v needs %d elements, it has %d", t.Name, t.Shape, n, len(t.Elems))
		}
		for i, e := range t.Elems {
			if uint64(len(e)) > math.MaxUint32 {
				return fmt.Errorf("tensor %q: element %d is longer than 4 GiB", t.Name, i)
			}
		}
		return nil
	}
	if t.Elems != nil {
		return fmt.Errorf("tensor %q: a %s tensor keeps its data in Raw", t.Name, t.Datatype)
	}
	if n > int64(math.MaxInt)/int64(size) || int64(len(t.Raw)) != n*int64(size) {
		return fmt.Errorf("tensor %q: shape %v of %s needs %d bytes, it has %d", t.Name, t.Shape, t.Datatype, n*int64(size), len(t.Raw))
	}
	if t.Datatype == BOOL && !allBits(t.Raw) {
		return fmt.Errorf("tensor %q: a BOOL element is neither 0 nor 1", t.Name)
	}
	return nil
}

// allBits reports whether every byte of b is 0 or 1.
func allBits(b []byte) bool {
	for _, v := range b {
		if v > 1 {
			return false
		}
	}
	return true
}

// BytesTensor is a BYTES tensor of shape [len(elems)].
func BytesTensor(name string, elems ...[]byte) Tensor {
	if elems == nil {
		elems = [][]byte{}
	}
	return Tensor{Name: name, Datatype: BYTES, Shape: []int64{int64(len(elems))}, Elems: elems}
}

// FP32Tensor is an FP32 tensor.
func FP32Tensor(name string, shape []int64, v []float32) Tensor {
	raw := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(f))
	}
	return Tensor{Name: name, Datatype: FP32, Shape: slices.Clone(shape), Raw: raw}
}

// Int32Tensor is an INT32 tensor.
func Int32Tensor(name string, shape []int64, v []int32) Tensor {
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], uint32(x))
	}
	return Tensor{Name: name, Datatype: INT32, Shape: slices.Clone(shape), Raw: raw}
}

// Uint8Tensor is a UINT8 tensor; v is kept, not copied.
func Uint8Tensor(name string, shape []int64, v []uint8) Tensor {
	return Tensor{Name: name, Datatype: UINT8, Shape: slices.Clone(shape), Raw: v}
}

// BoolTensor is a BOOL tensor; v must hold 0s and 1s and is kept, not copied.
func BoolTensor(name string, shape []int64, v []uint8) Tensor {
	return Tensor{Name: name, Datatype: BOOL, Shape: slices.Clone(shape), Raw: v}
}

// Float32s returns the elements of an FP32 tensor.
func (t *Tensor) Float32s() ([]float32, error) {
	if t.Datatype != FP32 {
		return nil, fmt.Errorf("tensor %q is %s, not FP32", t.Name, t.Datatype)
	}
	if len(t.Raw)%4 != 0 {
		return nil, fmt.Errorf("tensor %q: %d bytes is not a whole number of FP32 elements", t.Name, len(t.Raw))
	}
	out := make([]float32, len(t.Raw)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Raw[4*i:]))
	}
	return out, nil
}

// Int32s returns the elements of an INT32 tensor.
func (t *Tensor) Int32s() ([]int32, error) {
	if t.Datatype != INT32 {
		return nil, fmt.Errorf("tensor %q is %s, not INT32", t.Name, t.Datatype)
	}
	if len(t.Raw)%4 != 0 {
		return nil, fmt.Errorf("tensor %q: %d bytes is not a whole number of INT32 elements", t.Name, len(t.Raw))
	}
	out := make([]int32, len(t.Raw)/4)
	for i := range out {
		out[i] = int32(binary.LittleEndian.Uint32(t.Raw[4*i:]))
	}
	return out, nil
}

// Int64s returns the elements of an INT64 tensor.
func (t *Tensor) Int64s() ([]int64, error) {
	if t.Datatype != INT64 {
		return nil, fmt.Errorf("tensor %q is %s, not INT64", t.Name, t.Datatype)
	}
	if len(t.Raw)%8 != 0 {
		return nil, fmt.Errorf("tensor %q: %d bytes is not a whole number of INT64 elements", t.Name, len(t.Raw))
	}
	out := make([]int64, len(t.Raw)/8)
	for i := range out {
		out[i] = int64(binary.LittleEndian.Uint64(t.Raw[8*i:]))
	}
	return out, nil
}

// RequestedOutput names an output the client wants, with its parameters
// ("binary_data": true to get it in binary form).
type RequestedOutput struct {
	Name       string     `json:"name"`
	Parameters Parameters `json:"parameters,omitempty"`
}

// InferRequest is the body of POST /v2/models/{model}/infer.
type InferRequest struct {
	ID         string
	Parameters Parameters
	Inputs     []Tensor
	// Outputs, when not empty, lists the outputs to return and how.
	Outputs []RequestedOutput
}

// Input returns the input called name, or nil.
func (r *InferRequest) Input(name string) *Tensor { return find(r.Inputs, name) }

// OutputBinary reports whether the client asked for output name in binary
// form: the output's own "binary_data" when it has one, which overrides the
// request's "binary_data_output" (as the extension says), else the latter.
func (r *InferRequest) OutputBinary(name string) bool {
	for _, o := range r.Outputs {
		if o.Name == name {
			if _, ok := o.Parameters[ParamBinaryData]; ok {
				return o.Parameters.Bool(ParamBinaryData)
			}
			break
		}
	}
	return r.Parameters.Bool(ParamBinaryDataOutput)
}

// InferResponse is the body of a successful inference.
type InferResponse struct {
	ModelName    string
	ModelVersion string
	ID           string
	Parameters   Parameters
	Outputs      []Tensor
}

// Output returns the output called name, or nil.
func (r *InferResponse) Output(name string) *Tensor { return find(r.Outputs, name) }

func find(ts []Tensor, name string) *Tensor {
	for i := range ts {
		if ts[i].Name == name {
			return &ts[i]
		}
	}
	return nil
}

// ServerMetadata is the body of GET /v2.
type ServerMetadata struct {
	Name       string   `json:"name"`
	Version    string   `json:"version"`
	Extensions []string `json:"extensions"`
}

// HasExtension reports whether the server lists extension x (for example
// "binary_tensor_data").
func (m *ServerMetadata) HasExtension(x string) bool { return slices.Contains(m.Extensions, x) }

// ExtensionBinaryTensorData is the extension name of the binary form.
const ExtensionBinaryTensorData = "binary_tensor_data"

// TensorMetadata describes one input or output of a model; -1 in a shape is
// a dimension of any size.
type TensorMetadata struct {
	Name     string   `json:"name"`
	Datatype Datatype `json:"datatype"`
	Shape    []int64  `json:"shape"`
}

// ModelMetadata is the body of GET /v2/models/{model}[/versions/{v}].
type ModelMetadata struct {
	Name     string           `json:"name"`
	Versions []string         `json:"versions,omitempty"`
	Platform string           `json:"platform"`
	Inputs   []TensorMetadata `json:"inputs"`
	Outputs  []TensorMetadata `json:"outputs"`
	// Parameters are free-form; the project's ONNX worker puts the
	// model's "layout" and "labels" here (package onnxworker).
	Parameters Parameters `json:"parameters,omitempty"`
}

// ErrorBody is the body of a 4xx or 5xx answer.
type ErrorBody struct {
	Error string `json:"error"`
}
