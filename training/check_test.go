package training

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/problem"
)

// field is one protobuf length-delimited field.
func field(num int, data []byte) []byte {
	out := []byte{byte(num<<3 | 2), byte(len(data))}
	return append(out, data...)
}

func TestCheckONNX(t *testing.T) {
	t.Parallel()
	irVersion := []byte{0x08, 0x08} // field 1, varint 8
	graph := field(7, field(1, []byte("node")))
	for _, c := range []struct {
		name string
		data []byte
		ok   bool
	}{
		{"model with a graph", append(append([]byte{}, irVersion...), graph...), true},
		{"no graph", append(append([]byte{}, irVersion...), field(2, []byte("producer"))...), false},
		{"truncated", append(append([]byte{}, irVersion...), graph[:len(graph)-2]...), false},
		{"not protobuf", []byte("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"), false},
		{"field zero", []byte{0x02, 0x00}, false},
		{"text", []byte("hello world, I am not a model"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := checkONNX(c.data)
			if c.ok {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
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
