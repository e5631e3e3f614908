// Package onnxmeta reads what a caller needs to know about an ONNX model
// file before serving it — its graph's inputs and outputs (names, element
// types, shapes) and its metadata_props — straight from the protobuf, with
// no ONNX Runtime and no generated code. The hub checks trained artifacts
// with it, in a binary that need not load the ONNX Runtime library.
//
// Only the fields needed are decoded (onnx.proto: ModelProto.graph 7 and
// metadata_props 14; GraphProto.input 11, output 12, initializer 5;
// ValueInfoProto; TypeProto.tensor_type; TensorShapeProto); the rest is
// skipped by wire type. Every length is checked against what is left, so a
// truncated or hostile file is an error, never a panic.
package onnxmeta

import (
	"errors"
	"fmt"

	"github.com/deepimageshub/imagehub/oip"
)

// Model is what Read found in a file.
type Model struct {
	// Inputs are the graph's inputs that the caller feeds, in the file's
	// order: an input that an initializer of the same name fills (older
	// exporters list weights as inputs) is left out, as ONNX Runtime does.
	Inputs []oip.TensorMetadata
	// Outputs are the graph's outputs, in the file's order.
	Outputs []oip.TensorMetadata
	// Props are the file's metadata_props (Ultralytics puts "names",
	// "imgsz", "task" there).
	Props map[string]string
}

// Metadata is m's signature as a server's model metadata would give it.
func (m *Model) Metadata(name string) *oip.ModelMetadata {
	return &oip.ModelMetadata{Name: name, Platform: "onnxruntime_onnx", Inputs: m.Inputs, Outputs: m.Outputs}
}

// datatypes maps TensorProto.DataType to the protocol's; the others
// (complex, bfloat16, float8, …) have no protocol type.
var datatypes = map[uint64]oip.Datatype{
	1: oip.FP32, 2: oip.UINT8, 3: oip.INT8, 4: oip.UINT16, 5: oip.INT16, 6: oip.INT32, 7: oip.INT64,
	8: oip.BYTES, 9: oip.BOOL, 10: oip.FP16, 11: oip.FP64, 12: oip.UINT32, 13: oip.UINT64,
}

// Read decodes data, an ONNX ModelProto. It fails when data is not one
// (bad protobuf, no graph), when the graph has no input or no output, or
// when one is not a tensor of a protocol datatype.
func Read(data []byte) (*Model, error) {
	m := &Model{Props: map[string]string{}}
	var graph []byte
	err := walk(data, func(f field) error {
		switch {
		case f.num == 7 && f.wire == 2:
			graph = f.data
		case f.num == 14 && f.wire == 2:
			var k, v string
			if err := walk(f.data, func(e field) error {
				if e.wire == 2 && e.num == 1 {
					k = string(e.data)
				} else if e.wire == 2 && e.num == 2 {
					v = string(e.data)
				}
				return nil
			}); err != nil {
				return fmt.Errorf("metadata_props: %w", err)
			}
			m.Props[k] = v
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("it is not an ONNX model (%w)", err)
	}
	if graph == nil {
		return nil, errors.New("the ONNX model has no graph")
	}
	var ins, outs [][]byte
	weights := map[string]bool{}
	err = walk(graph, func(f field) error {
		if f.wire != 2 {
			return nil
		}
		switch f.num {
		case 11:
			ins = append(ins, f.data)
		case 12:
			outs = append(outs, f.data)
		case 5: // initializer: a TensorProto, whose name is field 8
			return walk(f.data, func(t field) error {
				if t.num == 8 && t.wire == 2 {
					weights[string(t.data)] = true
				}
				return nil
			})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("it is not an ONNX model (graph: %w)", err)
	}
	for _, raw := range ins {
		t, err := valueInfo(raw, "input")
		if err != nil {
			return nil, err
		}
		if !weights[t.Name] {
			m.Inputs = append(m.Inputs, t)
		}
	}
	for _, raw := range outs {
		t, err := valueInfo(raw, "output")
		if err != nil {
			return nil, err
		}
		m.Outputs = append(m.Outputs, t)
	}
	if len(m.Inputs) == 0 || len(m.Outputs) == 0 {
		return nil, fmt.Errorf("the ONNX model has %d inputs and %d outputs; it needs at least one of each", len(m.Inputs), len(m.Outputs))
	}
	return m, nil
}

// valueInfo decodes a ValueInfoProto that must be a tensor: name 1, type 2
// (TypeProto; tensor_type 1: elem_type 1, shape 2 of dims 1, each
// dim_value 1 or dim_param 2). A symbolic or unknown dimension is -1.
func valueInfo(raw []byte, what string) (oip.TensorMetadata, error) {
	var t oip.TensorMetadata
	var typ []byte
	if err := walk(raw, func(f field) error {
		if f.wire == 2 && f.num == 1 {
			t.Name = string(f.data)
		} else if f.wire == 2 && f.num == 2 {
			typ = f.data
		}
		return nil
	}); err != nil {
		return t, fmt.Errorf("it is not an ONNX model (%s: %w)", what, err)
	}
	var tensor []byte
	if err := walk(typ, func(f field) error {
		if f.wire == 2 && f.num == 1 {
			tensor = f.data
		}
		return nil
	}); err != nil {
		return t, fmt.Errorf("it is not an ONNX model (%s %q: %w)", what, t.Name, err)
	}
	if tensor == nil {
		return t, fmt.Errorf("%s %q is not a tensor", what, t.Name)
	}
	var elem uint64
	var shape []byte
	hasShape := false
	err := walk(tensor, func(f field) error {
		switch {
		case f.num == 1 && f.wire == 0:
			elem = f.varint
		case f.num == 2 && f.wire == 2:
			shape, hasShape = f.data, true
		}
		return nil
	})
	if err == nil && hasShape {
		t.Shape = []int64{}
		err = walk(shape, func(f field) error {
			if f.num != 1 || f.wire != 2 {
				return nil
			}
			d := int64(-1)
			if err := walk(f.data, func(g field) error {
				if g.num == 1 && g.wire == 0 && int64(g.varint) > 0 {
					d = int64(g.varint)
				}
				return nil
			}); err != nil {
				return err
			}
			t.Shape = append(t.Shape, d)
			return nil
		})
	}
	if err != nil {
		return t, fmt.Errorf("it is not an ONNX model (%s %q: %w)", what, t.Name, err)
	}
	dt, ok := datatypes[elem]
	if !ok {
		return t, fmt.Errorf("%s %q has ONNX element type %d, which has no inference protocol datatype", what, t.Name, elem)
	}
	t.Datatype = dt
	return t, nil
}

// field is one protobuf field: its number, wire type and value (varint
// for wire type 0, data for 2).
type field struct {
	num    uint64
	wire   uint64
	varint uint64
	data   []byte
}

// walk calls fn for each top-level field of msg.
func walk(msg []byte, fn func(field) error) error {
	for i := 0; i < len(msg); {
		tag, n := uvarint(msg[i:])
		if n <= 0 {
			return errors.New("bad protobuf tag")
		}
		i += n
		f := field{num: tag >> 3, wire: tag & 7}
		if f.num == 0 {
			return errors.New("field 0")
		}
		switch f.wire {
		case 0:
			v, n := uvarint(msg[i:])
			if n <= 0 {
				return errors.New("bad varint")
			}
			f.varint = v
			i += n
		case 2:
			l, n := uvarint(msg[i:])
			if n <= 0 || l > uint64(len(msg)-i-n) {
				return errors.New("truncated")
			}
			f.data = msg[i+n : i+n+int(l)]
			i += n + int(l)
		case 1:
			i += 8
		case 5:
			i += 4
		default:
			return errors.New("bad wire type")
		}
		if i > len(msg) {
			return errors.New("truncated")
		}
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

func uvarint(b []byte) (uint64, int) {
	var x uint64
	for i := 0; i < len(b) && i < 10; i++ {
		x |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return x, i + 1
		}
	}
	return 0, 0
}
