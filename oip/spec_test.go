package oip_test

import (
	"bytes"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/oip"
)

// fixture reads testdata/name.
func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

// hexFixture reads a testdata .hex file: hex bytes, whitespace and #
// comments ignored.
func hexFixture(t *testing.T, name string) []byte {
	t.Helper()
	var digits strings.Builder
	for _, line := range strings.Split(string(fixture(t, name)), "\n") {
		line, _, _ = strings.Cut(line, "#")
		digits.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(digits.String())
	require.NoError(t, err)
	return b
}

// body is a JSON part followed by its binary part, with the JSON's length.
func body(t *testing.T, jsonName, hexName string) ([]byte, int) {
	t.Helper()
	j := fixture(t, jsonName)
	return append(append([]byte{}, j...), hexFixture(t, hexName)...), len(j)
}

// TestSpecJSONBodies decodes the KServe V2 specification's JSON examples.
func TestSpecJSONBodies(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"kserve_request.json", "kserve_nested.json"} {
		b := fixture(t, name)
		req, err := oip.DecodeRequest(b, len(b), oip.Limits{})
		require.NoError(t, err, name)
		require.Equal(t, "42", req.ID)
		in0 := req.Input("input0")
		require.Equal(t, oip.UINT32, in0.Datatype)
		require.Equal(t, []int64{2, 2}, in0.Shape)
		require.Equal(t, []byte{1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0}, in0.Raw, name)
		in1 := req.Input("input1")
		require.Equal(t, oip.BOOL, in1.Datatype)
		require.Equal(t, []byte{1, 0, 1}, in1.Raw)
		require.Equal(t, []oip.RequestedOutput{{Name: "output0"}}, req.Outputs)
		require.False(t, req.OutputBinary("output0"), "JSON unless asked")
	}

	// The specification's own example gives a [3] BOOL one element.
	b := fixture(t, "kserve_request_short.json")
	_, err := oip.DecodeRequest(b, len(b), oip.Limits{})
	require.ErrorContains(t, err, "shape [3] needs 3 elements, data has 1")

	b = fixture(t, "kserve_response.json")
	resp, err := oip.DecodeResponse(b, len(b), oip.Limits{})
	require.NoError(t, err)
	require.Equal(t, "42", resp.ID)
	out := resp.Output("output0")
	require.Equal(t, []int64{3, 2}, out.Shape)
	f, err := out.Float32s()
	require.NoError(t, err)
	require.Equal(t, []float32{1.0, 1.1, 2.0, 2.1, 3.0, 3.1}, f)
	// FP32 in binary form is the little-endian IEEE single of each value.
	require.Equal(t, hexFixture(t, "triton_response.hex"), out.Raw)
}

// TestSpecBinaryBodies decodes the binary extension's examples and BYTES
// and INT64 tensors in binary form.
func TestSpecBinaryBodies(t *testing.T) {
	t.Parallel()
	b, jl := body(t, "triton_request.json", "triton_request.hex")
	require.Equal(t, 19, len(b)-jl, "the extension's example: 19 bytes of binary data")
	req, err := oip.DecodeRequest(b, jl, oip.Limits{})
	require.NoError(t, err)
	require.Equal(t, []byte{1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0}, req.Input("input0").Raw)
	require.Equal(t, []byte{1, 0, 1}, req.Input("input1").Raw)
	require.True(t, req.OutputBinary("output0"))

	// The header that says where the JSON ends.
	h := http.Header{}
	h.Set("Inference-Header-Content-Length", strconv.Itoa(jl))
	n, err := oip.JSONLength(h, len(b))
	require.NoError(t, err)
	require.Equal(t, jl, n)
	// Without it the whole body is JSON, which the binary tail is not.
	n, err = oip.JSONLength(http.Header{}, len(b))
	require.NoError(t, err)
	_, err = oip.DecodeRequest(b, n, oip.Limits{})
	require.Error(t, err)

	b, jl = body(t, "triton_response.json", "triton_response.hex")
	resp, err := oip.DecodeResponse(b, jl, oip.Limits{})
	require.NoError(t, err)
	f, err := resp.Output("output0").Float32s()
	require.NoError(t, err)
	require.Equal(t, []float32{1.0, 1.1, 2.0, 2.1, 3.0, 3.1}, f)

	b, jl = body(t, "bytes_response.json", "bytes_response.hex")
	resp, err = oip.DecodeResponse(b, jl, oip.Limits{})
	require.NoError(t, err)
	require.Equal(t, "segmenter", resp.ModelName)
	require.Equal(t, "1", resp.ModelVersion)
	require.Equal(t, [][]byte{[]byte("abc"), {}, []byte("é")}, resp.Output("LABELS").Elems)
	require.Equal(t, [][]byte{[]byte("plain"), []byte("YWJj")}, resp.Output("NOTE").Elems,
		"JSON strings without content_type are taken as they are, as Triton sends them")
	ids, err := resp.Output("IDS").Int64s()
	require.NoError(t, err)
	require.Equal(t, []int64{1, -2}, ids)

	// A binary_data_size that disagrees with the bytes is refused.
	bad := bytes.Replace(b, []byte(`"binary_data_size" : 17`), []byte(`"binary_data_size" : 16`), 1)
	_, err = oip.DecodeResponse(bad, jl, oip.Limits{})
	require.Error(t, err)
}

// TestSpecBinaryDataOutput: the request-wide parameter asks for every
// output binary, and an output's own binary_data overrides it.
func TestSpecBinaryDataOutput(t *testing.T) {
	t.Parallel()
	b := fixture(t, "binary_data_output.json")
	req, err := oip.DecodeRequest(b, len(b), oip.Limits{})
	require.NoError(t, err)
	require.True(t, req.OutputBinary("a"))
	require.False(t, req.OutputBinary("b"), `"binary_data": false overrides binary_data_output`)
	require.True(t, req.OutputBinary("c"))
	require.True(t, req.OutputBinary("unlisted"))
}

// TestSpecEncoding: what the codec writes for the extension's examples,
// byte for byte, and its headers.
func TestSpecEncoding(t *testing.T) {
	t.Parallel()
	req := &oip.InferRequest{
		ID: "42",
		Inputs: []oip.Tensor{
			oip.Int32Tensor("input0", []int64{2, 2}, []int32{1, 2, 3, 4}),
			oip.BoolTensor("input1", []int64{3}, []uint8{1, 0, 1}),
		},
		Outputs: []oip.RequestedOutput{{Name: "output0", Parameters: oip.Parameters{oip.ParamBinaryData: true}}},
	}
	req.Inputs[0].Datatype = oip.UINT32
	enc, err := oip.EncodeRequest(req, true)
	require.NoError(t, err)
	want, jl := body(t, "encoded_request.json", "encoded_request.hex")
	require.Equal(t, string(want[:jl]), string(enc.Bytes[:enc.JSONLength]))
	require.Equal(t, want, enc.Bytes)
	h := http.Header{}
	enc.SetHeaders(h)
	require.Equal(t, strconv.Itoa(jl), h.Get("Inference-Header-Content-Length"))
	require.Equal(t, "application/octet-stream", h.Get("Content-Type"))

	resp := &oip.InferResponse{
		ModelName: "mymodel", ID: "42",
		Outputs: []oip.Tensor{
			oip.FP32Tensor("output0", []int64{3, 2}, []float32{1.0, 1.1, 2.0, 2.1, 3.0, 3.1}),
			oip.BytesTensor("label", []byte("cat"), []byte("dog")),
		},
	}
	enc, err = oip.EncodeResponse(resp, func(string) bool { return true })
	require.NoError(t, err)
	want, jl = body(t, "encoded_response.json", "encoded_response.hex")
	require.Equal(t, string(want[:jl]), string(enc.Bytes[:enc.JSONLength]))
	require.Equal(t, want, enc.Bytes)

	// In JSON, BYTES go as base64 with the MLServer content_type.
	enc, err = oip.EncodeResponse(&oip.InferResponse{ModelName: "m", ID: "1", Outputs: []oip.Tensor{oip.BytesTensor("l", []byte("cat"))}}, nil)
	require.NoError(t, err)
	require.Equal(t, `{"model_name":"m","id":"1","outputs":[{"name":"l","shape":[1],"datatype":"BYTES","parameters":{"content_type":"base64"},"data":["Y2F0"]}]}`, string(enc.Bytes))
	require.False(t, enc.Binary)
	h = http.Header{}
	enc.SetHeaders(h)
	require.Empty(t, h.Get("Inference-Header-Content-Length"))
	require.Equal(t, "application/json", h.Get("Content-Type"))
}
