package onnxmeta_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/onnxmeta"
	"github.com/deepimageshub/imagehub/worker/onnxworker"
)

const testdata = "../testdata/onnx"

// TestReadAgreesWithONNXRuntime reads every test model both ways: the
// protobuf walk must give the signature ONNX Runtime gives.
func TestReadAgreesWithONNXRuntime(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join(testdata, "*.onnx"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			require.NoError(t, err)
			m, err := onnxmeta.Read(data)
			require.NoError(t, err)
			ort, err := onnxworker.Open(f, onnxworker.Options{Threads: 1})
			require.NoError(t, err)
			defer ort.Close()
			require.Equal(t, ort.Inputs(), m.Inputs)
			// ONNX Runtime may settle an output dimension the file leaves
			// symbolic (its shape inference); the file's -1 is then less
			// precise, never wrong.
			require.Len(t, m.Outputs, len(ort.Outputs()))
			for i, o := range ort.Outputs() {
				got := m.Outputs[i]
				require.Equal(t, o.Name, got.Name)
				require.Equal(t, o.Datatype, got.Datatype)
				require.Len(t, got.Shape, len(o.Shape), o.Name)
				for j, d := range got.Shape {
					if d != -1 {
						require.Equal(t, o.Shape[j], d, "%s dimension %d", o.Name, j)
					}
				}
			}
			names, err := ort.Names()
			require.NoError(t, err)
			if names != nil {
				got, err := onnxworker.ParseUltralyticsNames(m.Props["names"])
				require.NoError(t, err)
				require.Equal(t, names, got)
			}
		})
	}
}

// field is one protobuf length-delimited field (short ones only).
func field(num int, data []byte) []byte {
	return append([]byte{byte(num<<3 | 2), byte(len(data))}, data...)
}

func TestReadRefuses(t *testing.T) {
	t.Parallel()
	irVersion := []byte{0x08, 0x08} // field 1, varint 8
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	// A tensor type: elem_type 1 (float), shape [3].
	tensor := field(2, field(1, cat([]byte{0x08, 0x01}, field(2, field(1, []byte{0x08, 0x03})))))
	in := field(11, cat(field(1, []byte("x")), tensor))
	out := field(12, cat(field(1, []byte("y")), tensor))
	m, err := onnxmeta.Read(cat(irVersion, field(7, cat(in, out))))
	require.NoError(t, err)
	require.Equal(t, "x", m.Inputs[0].Name)
	require.Equal(t, []int64{3}, m.Inputs[0].Shape)

	for name, data := range map[string][]byte{
		"no graph":      cat(irVersion, field(2, []byte("producer"))),
		"no inputs":     cat(irVersion, field(7, field(1, []byte("node")))),
		"truncated":     cat(irVersion, field(7, cat(in, out))[:10]),
		"not protobuf":  []byte("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"),
		"field zero":    {0x02, 0x00},
		"text":          []byte("hello world, I am not a model"),
		"a zip":         []byte("PK\x03\x04 a zip, not a model"),
		"not a tensor":  cat(irVersion, field(7, cat(field(11, field(1, []byte("x"))), out))),
		"complex input": cat(irVersion, field(7, cat(field(11, cat(field(1, []byte("x")), field(2, field(1, []byte{0x08, 14})))), out))),
	} {
		_, err := onnxmeta.Read(data)
		require.Error(t, err, name)
	}
}
