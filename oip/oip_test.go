package oip_test

import (
	"encoding/binary"
	"math"
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/oip"
)

func sampleRequest() *oip.InferRequest {
	return &oip.InferRequest{
		ID:         "req-1",
		Parameters: oip.Parameters{"priority": 2.0},
		Inputs: []oip.Tensor{
			oip.BytesTensor("IMAGE", []byte("\xff\xd8\xff\x00 not utf-8 \x80")),
			oip.BytesTensor("LABEL_HINTS", []byte("cat"), []byte("dog"), []byte{}),
			oip.FP32Tensor("F", []int64{2, 2}, []float32{0, -1.5, 3.25e-8, float32(math.MaxFloat32)}),
			oip.Int32Tensor("I", []int64{3}, []int32{math.MinInt32, 0, math.MaxInt32}),
			oip.Uint8Tensor("U", []int64{1, 2, 2}, []uint8{0, 1, 255, 7}),
			oip.BoolTensor("B", []int64{3}, []uint8{1, 0, 1}),
			{Name: "I64", Datatype: oip.INT64, Shape: []int64{1}, Raw: binary.LittleEndian.AppendUint64(nil, 1<<62+3)},
			{Name: "U64", Datatype: oip.UINT64, Shape: []int64{1}, Raw: binary.LittleEndian.AppendUint64(nil, math.MaxUint64)},
			{Name: "I8", Datatype: oip.INT8, Shape: []int64{2}, Raw: []byte{0x80, 0x7f}},
			{Name: "F64", Datatype: oip.FP64, Shape: []int64{1}, Raw: binary.LittleEndian.AppendUint64(nil, math.Float64bits(math.Pi))},
			{Name: "EMPTY", Datatype: oip.FP32, Shape: []int64{0, 3}, Raw: []byte{}},
		},
		Outputs: []oip.RequestedOutput{{Name: "MASKS", Parameters: oip.Parameters{oip.ParamBinaryData: true}}, {Name: "SCORES"}},
	}
}

func TestRequestRoundTrip(t *testing.T) {
	t.Parallel()
	for _, bin := range []bool{false, true} {
		t.Run("binary="+strconv.FormatBool(bin), func(t *testing.T) {
			t.Parallel()
			req := sampleRequest()
			body, err := oip.EncodeRequest(req, bin)
			require.NoError(t, err)
			require.Equal(t, bin, body.Binary)
			h := http.Header{}
			body.SetHeaders(h)
			n, err := oip.JSONLength(h, len(body.Bytes))
			require.NoError(t, err)
			require.Equal(t, body.JSONLength, n)

			got, err := oip.DecodeRequest(body.Bytes, n, oip.Limits{})
			require.NoError(t, err)
			require.Equal(t, req.ID, got.ID)
			require.Len(t, got.Inputs, len(req.Inputs))
			for i, want := range req.Inputs {
				g := got.Inputs[i]
				require.Equal(t, want.Name, g.Name)
				require.Equal(t, want.Datatype, g.Datatype)
				require.Equal(t, want.Shape, g.Shape)
				if want.Datatype == oip.BYTES {
					require.Equal(t, want.Elems, g.Elems, want.Name)
				} else {
					require.Equal(t, want.Raw, g.Raw, want.Name)
				}
			}
			require.True(t, got.OutputBinary("MASKS"))
			require.False(t, got.OutputBinary("SCORES"))
			require.False(t, got.OutputBinary("LABELS"))
		})
	}
}

func TestResponseRoundTripMixed(t *testing.T) {
	t.Parallel()
	resp := &oip.InferResponse{
		ModelName: "m", ModelVersion: "1", ID: "x",
		Outputs: []oip.Tensor{
			oip.BytesTensor("MASKS", []byte(`{"size":[2,2],"counts":"04"}`)),
			oip.FP32Tensor("SCORES", []int64{1}, []float32{0.75}),
			oip.BytesTensor("LABELS", []byte("cat")),
		},
	}
	body, err := oip.EncodeResponse(resp, func(name string) bool { return name != "LABELS" })
	require.NoError(t, err)
	require.True(t, body.Binary)
	got, err := oip.DecodeResponse(body.Bytes, body.JSONLength, oip.Limits{})
	require.NoError(t, err)
	require.Equal(t, "x", got.ID)
	s, err := got.Output("SCORES").Float32s()
	require.NoError(t, err)
	require.Equal(t, []float32{0.75}, s)
	require.Equal(t, [][]byte{[]byte("cat")}, got.Output("LABELS").Elems)
	require.Equal(t, resp.Outputs[0].Elems, got.Output("MASKS").Elems)
}

func TestDecodeAcceptsOtherServersForms(t *testing.T) {
	t.Parallel()
	// Triton's JSON: BYTES as plain strings, nested data, integers written
	// as floats.
	body := []byte(`{"model_name":"m","id":"1","outputs":[
		{"name":"LABELS","datatype":"BYTES","shape":[2],"data":["cat","d\u00f6g"]},
		{"name":"M","datatype":"UINT8","shape":[2,2],"data":[[0,1],[1.0,0]]},
		{"name":"B","datatype":"BOOL","shape":[2],"data":[true,false]}]}`)
	got, err := oip.DecodeResponse(body, len(body), oip.Limits{})
	require.NoError(t, err)
	require.Equal(t, [][]byte{[]byte("cat"), []byte("dög")}, got.Output("LABELS").Elems)
	require.Equal(t, []byte{0, 1, 1, 0}, got.Output("M").Raw)
	require.Equal(t, []byte{1, 0}, got.Output("B").Raw)
}

func binaryBody(t *testing.T, header string, tail ...byte) ([]byte, int) {
	t.Helper()
	return append([]byte(header), tail...), len(header)
}

func TestDecodeRefusesHostileBodies(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, body string
		tail       []byte
		want       string
	}{
		{"not json", `<html>`, nil, "not valid JSON"},
		{"unknown datatype", `{"outputs":[{"name":"a","datatype":"FP8","shape":[1],"data":[1]}]}`, nil, "unknown datatype"},
		{"no shape", `{"outputs":[{"name":"a","datatype":"FP32","data":[1]}]}`, nil, "no shape"},
		{"negative dim", `{"outputs":[{"name":"a","datatype":"FP32","shape":[-1],"data":[1]}]}`, nil, "negative"},
		{"shape overflow", `{"outputs":[{"name":"a","datatype":"FP32","shape":[4294967296,4294967296,4294967296],"data":[1]}]}`, nil, "more than"},
		{"huge shape little data", `{"outputs":[{"name":"a","datatype":"FP64","shape":[100000000],"data":[1]}]}`, nil, "too short"},
		{"too many dims", `{"outputs":[{"name":"a","datatype":"FP32","shape":[1,1,1,1,1,1,1,1,1],"data":[1]}]}`, nil, "dimensions"},
		{"count mismatch", `{"outputs":[{"name":"a","datatype":"FP32","shape":[3],"data":[1,2]}]}`, nil, "needs 3 elements, data has 2"},
		{"too many elements", `{"outputs":[{"name":"a","datatype":"FP32","shape":[1],"data":[1,2]}]}`, nil, "more than the 1"},
		{"uint8 range", `{"outputs":[{"name":"a","datatype":"UINT8","shape":[1],"data":[256]}]}`, nil, "not a UINT8"},
		{"int8 fraction", `{"outputs":[{"name":"a","datatype":"INT8","shape":[1],"data":[1.5]}]}`, nil, "not an INT8"},
		{"fp32 overflow", `{"outputs":[{"name":"a","datatype":"FP32","shape":[1],"data":[1e39]}]}`, nil, "not an FP32"},
		{"string as number", `{"outputs":[{"name":"a","datatype":"FP32","shape":[1],"data":["1"]}]}`, nil, "not an FP32"},
		{"null", `{"outputs":[{"name":"a","datatype":"FP32","shape":[1],"data":[null]}]}`, nil, "not an FP32"},
		{"object in data", `{"outputs":[{"name":"a","datatype":"FP32","shape":[1],"data":[{"x":1}]}]}`, nil, "object"},
		{"number as bytes", `{"outputs":[{"name":"a","datatype":"BYTES","shape":[1],"data":[1]}]}`, nil, "not a string"},
		{"bad base64", `{"outputs":[{"name":"a","datatype":"BYTES","shape":[1],"parameters":{"content_type":"base64"},"data":["!!"]}]}`, nil, "base64"},
		{"fp16 json", `{"outputs":[{"name":"a","datatype":"FP16","shape":[1],"data":[1]}]}`, nil, "FP16"},
		{"no data", `{"outputs":[{"name":"a","datatype":"FP32","shape":[1]}]}`, nil, "no data"},
		{"duplicate", `{"outputs":[{"name":"a","datatype":"FP32","shape":[0],"data":[]},{"name":"a","datatype":"FP32","shape":[0],"data":[]}]}`, nil, "two outputs"},
		{"nameless", `{"outputs":[{"datatype":"FP32","shape":[0],"data":[]}]}`, nil, "no name"},
		{"deep", `{"outputs":[{"name":"a","datatype":"FP32","shape":[1],"data":[[[[[[[[[[1]]]]]]]]]]}]}`, nil, "nested deeper"},
		{"binary size too big", `{"outputs":[{"name":"a","datatype":"FP32","shape":[1],"parameters":{"binary_data_size":8}}]}`, []byte{0, 0, 0, 0}, "only 4 bytes"},
		{"binary size negative", `{"outputs":[{"name":"a","datatype":"FP32","shape":[1],"parameters":{"binary_data_size":-4}}]}`, []byte{0, 0, 0, 0}, "binary_data_size -4"},
		{"binary size fraction", `{"outputs":[{"name":"a","datatype":"FP32","shape":[1],"parameters":{"binary_data_size":4.5}}]}`, []byte{0, 0, 0, 0}, "whole number"},
		{"binary size string", `{"outputs":[{"name":"a","datatype":"FP32","shape":[1],"parameters":{"binary_data_size":"4"}}]}`, []byte{0, 0, 0, 0}, "not a number"},
		{"binary shape mismatch", `{"outputs":[{"name":"a","datatype":"FP32","shape":[2],"parameters":{"binary_data_size":4}}]}`, []byte{0, 0, 0, 0}, "needs 8 bytes"},
		{"binary trailing", `{"outputs":[{"name":"a","datatype":"FP32","shape":[1],"parameters":{"binary_data_size":4}}]}`, []byte{0, 0, 0, 0, 9}, "follow the last tensor"},
		{"binary and data", `{"outputs":[{"name":"a","datatype":"FP32","shape":[1],"data":[1],"parameters":{"binary_data_size":4}}]}`, []byte{0, 0, 0, 0}, "both"},
		{"bytes element too long", `{"outputs":[{"name":"a","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":6}}]}`, []byte{255, 255, 255, 255, 1, 2}, "claims"},
		{"bytes too many", `{"outputs":[{"name":"a","datatype":"BYTES","shape":[1000],"parameters":{"binary_data_size":4}}]}`, []byte{0, 0, 0, 0}, "cannot fit"},
		{"bytes leftover", `{"outputs":[{"name":"a","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":6}}]}`, []byte{1, 0, 0, 0, 1, 2}, "left after"},
		{"bytes cut", `{"outputs":[{"name":"a","datatype":"BYTES","shape":[2],"parameters":{"binary_data_size":8}}]}`, []byte{1, 0, 0, 0, 1, 2, 0, 0}, "ends before"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			body, n := binaryBody(t, c.body, c.tail...)
			_, err := oip.DecodeResponse(body, n, oip.Limits{})
			require.ErrorContains(t, err, c.want)
		})
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	body := []byte(`{"outputs":[{"name":"a","datatype":"BYTES","shape":[3],"data":["a","b","c"]}]}`)
	_, err := oip.DecodeResponse(body, len(body), oip.Limits{MaxBytesElements: 2})
	require.ErrorContains(t, err, "more than 2 elements")
	_, err = oip.DecodeResponse(body, len(body), oip.Limits{MaxBodyBytes: 10})
	require.ErrorIs(t, err, oip.ErrTooLarge)
	_, err = oip.DecodeResponse(body, len(body), oip.Limits{MaxTensors: 1})
	require.NoError(t, err)
	_, err = oip.DecodeResponse(body, 0, oip.Limits{})
	require.ErrorContains(t, err, "does not fit")

	h := http.Header{}
	h.Set(oip.HeaderJSONLength, "999")
	_, err = oip.JSONLength(h, 10)
	require.ErrorContains(t, err, "Inference-Header-Content-Length")
	h.Set(oip.HeaderJSONLength, "-1")
	_, err = oip.JSONLength(h, 10)
	require.Error(t, err)
}

func TestEncodeRefusesWhatJSONCannotHold(t *testing.T) {
	t.Parallel()
	nan := &oip.InferResponse{Outputs: []oip.Tensor{oip.FP32Tensor("S", []int64{1}, []float32{float32(math.NaN())})}}
	_, err := oip.EncodeResponse(nan, nil)
	require.ErrorContains(t, err, "JSON cannot hold")
	// The same NaN travels binary.
	b, err := oip.EncodeResponse(nan, func(string) bool { return true })
	require.NoError(t, err)
	got, err := oip.DecodeResponse(b.Bytes, b.JSONLength, oip.Limits{})
	require.NoError(t, err)
	f, err := got.Outputs[0].Float32s()
	require.NoError(t, err)
	require.True(t, math.IsNaN(float64(f[0])))

	bad := &oip.InferResponse{Outputs: []oip.Tensor{{Name: "S", Datatype: oip.FP32, Shape: []int64{2}, Raw: []byte{1, 2, 3, 4}}}}
	_, err = oip.EncodeResponse(bad, nil)
	require.ErrorContains(t, err, "needs 8 bytes")
}

// FuzzDecodeResponse feeds arbitrary bodies to the decoder: it must never
// panic, and whatever it accepts must encode and decode to the same tensors.
func FuzzDecodeResponse(f *testing.F) {
	seed := func(body oip.Body, err error) {
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body.Bytes, uint16(body.JSONLength))
	}
	req := sampleRequest()
	seed(oip.EncodeResponse(&oip.InferResponse{ID: "a", Outputs: req.Inputs}, nil))
	seed(oip.EncodeResponse(&oip.InferResponse{ID: "a", Outputs: req.Inputs}, func(string) bool { return true }))
	seed(oip.EncodeResponse(&oip.InferResponse{ID: "a", Outputs: req.Inputs[:3]}, func(n string) bool { return n == "LABEL_HINTS" }))
	// A segmentation answer as PROTOCOL.md has it, in both encodings, and
	// Triton's JSON forms.
	seg := &oip.InferResponse{ModelName: "seg", ModelVersion: "1", ID: "7", Outputs: []oip.Tensor{
		oip.BytesTensor("MASKS", []byte(`{"size":[4,6],"counts":"52203"}`), []byte(`{"size":[4,6],"counts":"0c0"}`)),
		oip.FP32Tensor("SCORES", []int64{2}, []float32{0.9, 0.25}),
		oip.BytesTensor("LABELS", []byte("cat"), []byte("object")),
		oip.Uint8Tensor("DENSE", []int64{1, 2, 3}, []uint8{0, 1, 1, 0, 0, 1}),
	}}
	seed(oip.EncodeResponse(seg, nil))
	seed(oip.EncodeResponse(seg, func(n string) bool { return n != "LABELS" }))
	f.Add([]byte(`{"model_name":"m","id":"1","outputs":[
		{"name":"LABELS","datatype":"BYTES","shape":[2],"data":["cat","d\u00f6g"]},
		{"name":"M","datatype":"UINT8","shape":[2,2],"data":[[0,1],[1.0,0]]},
		{"name":"B","datatype":"BOOL","shape":[2],"data":[true,false]}]}`), uint16(0))
	f.Add([]byte(`{"outputs":[{"name":"a","datatype":"UINT8","shape":[2,2],"data":[[0,1],[1,0]]}]}`), uint16(0))
	f.Add([]byte(`{"outputs":[{"name":"a","datatype":"BYTES","shape":[1],"parameters":{"binary_data_size":6}}]}`+"\x02\x00\x00\x00hi"), uint16(87))
	f.Fuzz(func(t *testing.T, body []byte, jsonLen uint16) {
		n := int(jsonLen)
		if n == 0 || n > len(body) {
			n = len(body)
		}
		lim := oip.Limits{MaxBodyBytes: 1 << 20, MaxElements: 1 << 16, MaxBytesElements: 1 << 12}
		resp, err := oip.DecodeResponse(body, n, lim)
		if err != nil {
			return
		}
		for _, bin := range []bool{false, true} {
			enc, err := oip.EncodeResponse(resp, func(string) bool { return bin })
			if err != nil {
				// FP16, NaN and infinities have no JSON form; all else must encode.
				require.False(t, bin, "binary encoding failed: %v", err)
				continue
			}
			again, err := oip.DecodeResponse(enc.Bytes, enc.JSONLength, oip.Limits{})
			require.NoError(t, err)
			require.Len(t, again.Outputs, len(resp.Outputs))
			for i := range resp.Outputs {
				a, b := resp.Outputs[i], again.Outputs[i]
				require.Equal(t, a.Shape, b.Shape)
				require.Equal(t, len(a.Raw), len(b.Raw))
				require.Equal(t, len(a.Elems), len(b.Elems))
				require.Equal(t, a.Raw, b.Raw)
				for j := range a.Elems {
					require.Equal(t, string(a.Elems[j]), string(b.Elems[j]))
				}
			}
		}
	})
}

// FuzzDecodeRequest does the same for requests, the side the worker faces:
// what it accepts is valid, and encodes (in binary always, in JSON unless a
// value has no JSON form) and decodes back to the same request.
func FuzzDecodeRequest(f *testing.F) {
	hub := &oip.InferRequest{ID: "img-1", Inputs: []oip.Tensor{
		oip.BytesTensor("IMAGE", []byte("\xff\xd8\xff\xe0 a jpeg")),
		oip.BytesTensor("LABEL_HINTS", []byte("cat"), []byte("dog")),
	}, Outputs: []oip.RequestedOutput{{Name: "MASKS"}, {Name: "SCORES"}, {Name: "LABELS"}}}
	for _, r := range []*oip.InferRequest{sampleRequest(), hub} {
		for _, bin := range []bool{false, true} {
			b, err := oip.EncodeRequest(r, bin)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b.Bytes, uint16(b.JSONLength))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, jsonLen uint16) {
		n := int(jsonLen)
		if n == 0 || n > len(body) {
			n = len(body)
		}
		req, err := oip.DecodeRequest(body, n, oip.Limits{MaxBodyBytes: 1 << 20, MaxElements: 1 << 16, MaxBytesElements: 1 << 12})
		if err != nil {
			return
		}
		for i := range req.Inputs {
			require.NoError(t, req.Inputs[i].Validate())
		}
		for _, bin := range []bool{false, true} {
			enc, err := oip.EncodeRequest(req, bin)
			if err != nil {
				require.False(t, bin, "binary encoding failed: %v", err)
				continue
			}
			again, err := oip.DecodeRequest(enc.Bytes, enc.JSONLength, oip.Limits{})
			require.NoError(t, err)
			require.Equal(t, req.ID, again.ID)
			require.Len(t, again.Inputs, len(req.Inputs))
			for i := range req.Inputs {
				a, b := req.Inputs[i], again.Inputs[i]
				require.Equal(t, a.Name, b.Name)
				require.Equal(t, a.Datatype, b.Datatype)
				require.Equal(t, a.Shape, b.Shape)
				require.Equal(t, a.Raw, b.Raw)
				require.Equal(t, len(a.Elems), len(b.Elems))
				for j := range a.Elems {
					require.Equal(t, string(a.Elems[j]), string(b.Elems[j]))
				}
			}
			require.Len(t, again.Outputs, len(req.Outputs))
			for i := range req.Outputs {
				require.Equal(t, req.Outputs[i].Name, again.Outputs[i].Name)
				require.Equal(t, req.OutputBinary(req.Outputs[i].Name), again.OutputBinary(req.Outputs[i].Name))
			}
		}
	})
}

// BenchmarkCodec encodes and decodes a request carrying a 1 MB image, the
// protocol's share of a round trip.
func BenchmarkCodec(b *testing.B) {
	img := make([]byte, 1<<20)
	for i := range img {
		img[i] = byte(i * 7919 >> 3)
	}
	req := &oip.InferRequest{ID: "x", Inputs: []oip.Tensor{oip.BytesTensor("IMAGE", img)}}
	for _, bin := range []bool{false, true} {
		b.Run("binary="+strconv.FormatBool(bin), func(b *testing.B) {
			b.SetBytes(int64(len(img)))
			b.ReportAllocs()
			for b.Loop() {
				body, err := oip.EncodeRequest(req, bin)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := oip.DecodeRequest(body.Bytes, body.JSONLength, oip.Limits{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
