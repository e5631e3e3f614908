package training

import (
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/layout"
	"github.com/deepimageshub/imagehub/problem"
)

// withoutProps drops the metadata_props (field 14) of an ONNX file, as a
// non-Ultralytics exporter leaves them out. The fixtures' top-level fields
// are all varints or length-delimited.
func withoutProps(t *testing.T, data []byte) []byte {
	t.Helper()
	var out []byte
	for i := 0; i < len(data); {
		tag, n := binary.Uvarint(data[i:])
		require.Positive(t, n)
		end := i + n
		switch tag & 7 {
		case 0:
			_, m := binary.Uvarint(data[end:])
			end += m
		case 2:
			l, m := binary.Uvarint(data[end:])
			end += m + int(l)
		default:
			t.Fatalf("wire type %d", tag&7)
		}
		if tag>>3 != 14 {
			out = append(out, data[i:end]...)
		}
		i = end
	}
	return out
}

// TestCheckONNX checks trained ONNX files against the layout their trainer
// names, with the fixtures of testdata/onnx: yolo-seg.onnx knows 3 classes
// (person, car, dog, in its metadata), maskrcnn.onnx returns class numbers.
func TestCheckONNX(t *testing.T) {
	t.Parallel()
	read := func(name string) []byte {
		data, err := os.ReadFile(filepath.Join("..", "testdata", "onnx", name))
		require.NoError(t, err)
		return data
	}
	yolo, mrcnn := read("yolo-seg.onnx"), read("maskrcnn.onnx")
	three := []string{"person", "car", "dog"}

	labels, err := checkONNX(yolo, layout.YOLOSeg, three)
	require.NoError(t, err)
	require.Equal(t, three, labels, "the labels come from the file's names")
	labels, err = checkONNX(withoutProps(t, yolo), layout.YOLOSeg, three)
	require.NoError(t, err)
	require.Nil(t, labels, "without names, the run's labels")
	labels, err = checkONNX(mrcnn, layout.MaskRCNN, []string{"dog"})
	require.NoError(t, err)
	require.Nil(t, labels)

	for _, c := range []struct {
		name   string
		data   []byte
		kind   layout.Kind
		labels []string
		want   string
	}{
		{"maskrcnn file said yolo-seg", mrcnn, layout.YOLOSeg, three, "no output output0"},
		{"yolo-seg file said maskrcnn", yolo, layout.MaskRCNN, three, "no output boxes"},
		{"classes unlike the labels", withoutProps(t, yolo), layout.YOLOSeg, []string{"dog"}, "knows 3 classes"},
		{"truncated", yolo[:len(yolo)/2], layout.YOLOSeg, three, "not an ONNX model"},
		{"text", []byte("hello world, I am not a model"), layout.YOLOSeg, three, "not an ONNX model"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := checkONNX(c.data, c.kind, c.labels)
			require.ErrorContains(t, err, c.want)
		})
	}
}

func TestResolveParams(t *testing.T) {
	t.Parallel()
	r := Recipe{Name: "r", Params: map[string]Param{
		"epochs": {Type: "int", Min: 1, Max: 10, Default: 3},
		"lr":     {Type: "float", Min: 0.001, Max: 1, Default: 0.1},
	}}
	raw := func(s string) map[string]json.RawMessage {
		var m map[string]json.RawMessage
		require.NoError(t, json.Unmarshal([]byte(s), &m))
		return m
	}
	got, err := r.resolveParams(raw(`{"epochs": 5}`))
	require.NoError(t, err)
	require.Equal(t, map[string]float64{"epochs": 5, "lr": 0.1}, got, "defaults fill what is left out")
	got, err = r.resolveParams(nil)
	require.NoError(t, err)
	require.Equal(t, map[string]float64{"epochs": 3, "lr": 0.1}, got)
	for body, field := range map[string]string{
		`{"epochs": 0}`:   "params.epochs",
		`{"epochs": 11}`:  "params.epochs",
		`{"epochs": 2.5}`: "params.epochs",
		`{"epochs": "5"}`: "params.epochs",
		`{"lr": 2}`:       "params.lr",
		`{"momentum": 1}`: "params.momentum",
		`{"lr": 0.0001}`:  "params.lr",
	} {
		_, err := r.resolveParams(raw(body))
		e, ok := problem.As(err)
		require.True(t, ok, body)
		require.Equal(t, 400, e.Status, body)
		require.Equal(t, field, e.Field, body)
	}
}
