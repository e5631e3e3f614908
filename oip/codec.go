package oip

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"unicode/utf8"
)

// Limits caps what a decoder accepts. A zero field takes its default.
type Limits struct {
	MaxBodyBytes     int64 // whole body; default 64 MiB
	MaxTensors       int   // inputs or outputs in one body; default 64
	MaxDims          int   // rank of a tensor; default 8
	MaxElements      int64 // elements of one numeric tensor; default 1<<28
	MaxBytesElements int64 // elements of one BYTES tensor; default 1<<20
}

// Default limits.
const (
	DefaultMaxBodyBytes     = 64 << 20
	DefaultMaxTensors       = 64
	DefaultMaxDims          = 8
	DefaultMaxElements      = 1 << 28
	DefaultMaxBytesElements = 1 << 20
)

func (l Limits) withDefaults() Limits {
	if l.MaxBodyBytes <= 0 {
		l.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if l.MaxTensors <= 0 {
		l.MaxTensors = DefaultMaxTensors
	}
	if l.MaxDims <= 0 {
		l.MaxDims = DefaultMaxDims
	}
	if l.MaxElements <= 0 {
		l.MaxElements = DefaultMaxElements
	}
	if l.MaxBytesElements <= 0 {
		l.MaxBytesElements = DefaultMaxBytesElements
	}
	return l
}

// Body is an encoded request or response body.
type Body struct {
	Bytes []byte
	// JSONLength is the length of the JSON part; it equals len(Bytes) when
	// no tensor went binary.
	JSONLength int
	// Binary is true when at least one tensor went binary; the body then
	// needs the Inference-Header-Content-Length header.
	Binary bool
}

// SetHeaders sets Content-Type and, for a binary body, the header that gives
// the JSON part's length.
func (b Body) SetHeaders(h http.Header) {
	if b.Binary {
		h.Set("Content-Type", "application/octet-stream")
		h.Set(HeaderJSONLength, strconv.Itoa(b.JSONLength))
		return
	}
	h.Set("Content-Type", "application/json")
}

// wireTensor is a tensor as it appears in the JSON part.
type wireTensor struct {
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   Datatype        `json:"datatype"`
	Parameters Parameters      `json:"parameters,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
}

type wireRequest struct {
	ID         string            `json:"id,omitempty"`
	Parameters Parameters        `json:"parameters,omitempty"`
	Inputs     []wireTensor      `json:"inputs"`
	Outputs    []RequestedOutput `json:"outputs,omitempty"`
}

type wireResponse struct {
	ModelName    string       `json:"model_name"`
	ModelVersion string       `json:"model_version,omitempty"`
	ID           string       `json:"id,omitempty"`
	Parameters   Parameters   `json:"parameters,omitempty"`
	Outputs      []wireTensor `json:"outputs"`
}

// EncodeRequest encodes a request; with binary every input travels in
// binary form, otherwise everything is JSON. Whether outputs come back binary
// is asked per output in r.Outputs.
func EncodeRequest(r *InferRequest, binary bool) (Body, error) {
	ins, tail, err := encodeTensors(r.Inputs, func(*Tensor) bool { return binary })
	if err != nil {
		return Body{}, err
	}
	b := []byte(`{"id":`)
	b, err = appendJSON(b, r.ID)
	if err != nil {
		return Body{}, err
	}
	if len(r.Parameters) > 0 {
		b = append(b, `,"parameters":`...)
		if b, err = appendJSON(b, r.Parameters); err != nil {
			return Body{}, err
		}
	}
	b = append(b, `,"inputs":`...)
	b, err = appendTensors(b, ins)
	if err != nil {
		return Body{}, err
	}
	if len(r.Outputs) > 0 {
		b = append(b, `,"outputs":`...)
		if b, err = appendJSON(b, r.Outputs); err != nil {
			return Body{}, err
		}
	}
	return assemble(append(b, '}'), tail), nil
}

// EncodeResponse encodes a response; binary says which outputs travel in
// binary form (nil: none).
func EncodeResponse(r *InferResponse, binary func(name string) bool) (Body, error) {
	outs, tail, err := encodeTensors(r.Outputs, func(t *Tensor) bool { return binary != nil && binary(t.Name) })
	if err != nil {
		return Body{}, err
	}
	b := []byte(`{"model_name":`)
	b, err = appendJSON(b, r.ModelName)
	if err != nil {
		return Body{}, err
	}
	if r.ModelVersion != "" {
		b = append(b, `,"model_version":`...)
		if b, err = appendJSON(b, r.ModelVersion); err != nil {
			return Body{}, err
		}
	}
	b = append(b, `,"id":`...)
	if b, err = appendJSON(b, r.ID); err != nil {
		return Body{}, err
	}
	if len(r.Parameters) > 0 {
		b = append(b, `,"parameters":`...)
		if b, err = appendJSON(b, r.Parameters); err != nil {
			return Body{}, err
		}
	}
	b = append(b, `,"outputs":`...)
	if b, err = appendTensors(b, outs); err != nil {
		return Body{}, err
	}
	return assemble(append(b, '}'), tail), nil
}

// appendJSON appends v as JSON.
func appendJSON(b []byte, v any) ([]byte, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("error encoding inference body: %w", err)
	}
	return append(b, j...), nil
}

// appendTensors writes the JSON part of tensors by hand: encoding/json
// would copy and re-validate every tensor's data, which for a large BYTES
// tensor in base64 costs more than making it.
func appendTensors(b []byte, ts []wireTensor) ([]byte, error) {
	var err error
	b = append(b, '[')
	for i := range ts {
		t := &ts[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"name":`...)
		if b, err = appendJSON(b, t.Name); err != nil {
			return nil, err
		}
		b = append(b, `,"shape":[`...)
		for j, d := range t.Shape {
			if j > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, d, 10)
		}
		b = append(b, `],"datatype":`...)
		if b, err = appendJSON(b, t.Datatype); err != nil {
			return nil, err
		}
		if len(t.Parameters) > 0 {
			b = append(b, `,"parameters":`...)
			if b, err = appendJSON(b, t.Parameters); err != nil {
				return nil, err
			}
		}
		if t.Data != nil {
			b = append(b, `,"data":`...)
			b = append(b, t.Data...)
		}
		b = append(b, '}')
	}
	return append(b, ']'), nil
}

// assemble appends the binary chunks to the JSON part.
func assemble(j []byte, tail [][]byte) Body {
	if tail == nil {
		return Body{Bytes: j, JSONLength: len(j)}
	}
	n := len(j)
	for _, c := range tail {
		n += len(c)
	}
	out := make([]byte, 0, n)
	out = append(out, j...)
	for _, c := range tail {
		out = append(out, c...)
	}
	return Body{Bytes: out, JSONLength: len(j), Binary: true}
}

// encodeTensors makes the JSON form of ts and the binary chunks of those
// that go binary, in order; tail is nil when none does.
func encodeTensors(ts []Tensor, binary func(*Tensor) bool) ([]wireTensor, [][]byte, error) {
	wire := make([]wireTensor, len(ts))
	var tail [][]byte
	for i := range ts {
		t := &ts[i]
		if err := t.Validate(); err != nil {
			return nil, nil, err
		}
		w := wireTensor{Name: t.Name, Shape: t.Shape, Datatype: t.Datatype, Parameters: t.Parameters.clone()}
		if w.Shape == nil {
			w.Shape = []int64{}
		}
		delete(w.Parameters, ParamBinaryDataSize)
		if binary(t) {
			chunk := t.Raw
			if t.Datatype == BYTES {
				chunk = packBytes(t.Elems)
				if w.Parameters.String(ParamContentType) == "base64" {
					delete(w.Parameters, ParamContentType)
				}
			}
			w.Parameters[ParamBinaryDataSize] = len(chunk)
			if tail == nil {
				tail = [][]byte{}
			}
			tail = append(tail, chunk)
		} else {
			if t.Datatype == BYTES {
				w.Parameters[ParamContentType] = "base64"
			}
			data, err := jsonData(t)
			if err != nil {
				return nil, nil, err
			}
			w.Data = data
		}
		if len(w.Parameters) == 0 {
			w.Parameters = nil
		}
		wire[i] = w
	}
	return wire, tail, nil
}

// packBytes writes BYTES elements in binary form.
func packBytes(elems [][]byte) []byte {
	n := 0
	for _, e := range elems {
		n += 4 + len(e)
	}
	out := make([]byte, 0, n)
	for _, e := range elems {
		out = binary.LittleEndian.AppendUint32(out, uint32(len(e)))
		out = append(out, e...)
	}
	return out
}

// jsonData writes a tensor's elements as a flat JSON array.
func jsonData(t *Tensor) (json.RawMessage, error) {
	if t.Datatype == FP16 {
		return nil, fmt.Errorf("tensor %q: FP16 has no JSON form; send it binary", t.Name)
	}
	var b []byte
	if t.Datatype == BYTES {
		n := 2
		for _, e := range t.Elems {
			n += base64.StdEncoding.EncodedLen(len(e)) + 3
		}
		b = make([]byte, 0, n)
	} else {
		b = make([]byte, 0, 2+len(t.Raw)*3)
	}
	b = append(b, '[')
	size := t.Datatype.Size()
	count := len(t.Elems)
	if t.Datatype != BYTES {
		count = len(t.Raw) / size
	}
	for i := range count {
		if i > 0 {
			b = append(b, ',')
		}
		if t.Datatype == BYTES {
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, t.Elems[i])
			b = append(b, '"')
			continue
		}
		e := t.Raw[i*size : (i+1)*size]
		switch t.Datatype {
		case BOOL:
			b = strconv.AppendBool(b, e[0] != 0)
		case UINT8:
			b = strconv.AppendUint(b, uint64(e[0]), 10)
		case UINT16:
			b = strconv.AppendUint(b, uint64(binary.LittleEndian.Uint16(e)), 10)
		case UINT32:
			b = strconv.AppendUint(b, uint64(binary.LittleEndian.Uint32(e)), 10)
		case UINT64:
			b = strconv.AppendUint(b, binary.LittleEndian.Uint64(e), 10)
		case INT8:
			b = strconv.AppendInt(b, int64(int8(e[0])), 10)
		case INT16:
			b = strconv.AppendInt(b, int64(int16(binary.LittleEndian.Uint16(e))), 10)
		case INT32:
			b = strconv.AppendInt(b, int64(int32(binary.LittleEndian.Uint32(e))), 10)
		case INT64:
			b = strconv.AppendInt(b, int64(binary.LittleEndian.Uint64(e)), 10)
		case FP32:
			f := math.Float32frombits(binary.LittleEndian.Uint32(e))
			if math.IsNaN(float64(f)) || math.IsInf(float64(f), 0) {
				return nil, fmt.Errorf("tensor %q: element %d is %v, which JSON cannot hold; send it binary", t.Name, i, f)
			}
			b = strconv.AppendFloat(b, float64(f), 'g', -1, 32)
		case FP64:
			f := math.Float64frombits(binary.LittleEndian.Uint64(e))
			if math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, fmt.Errorf("tensor %q: element %d is %v, which JSON cannot hold; send it binary", t.Name, i, f)
			}
			b = strconv.AppendFloat(b, f, 'g', -1, 64)
		}
	}
	return append(b, ']'), nil
}

// ErrTooLarge is returned (wrapped) for a body over its cap.
var ErrTooLarge = errors.New("body too large")

// ReadBody reads at most max bytes of r; more is ErrTooLarge.
func ReadBody(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
	}
	return b, nil
}

// JSONLength returns the length of the JSON part of a body of bodyLen bytes
// from the Inference-Header-Content-Length header: all of it when the header
// is absent.
func JSONLength(h http.Header, bodyLen int) (int, error) {
	v := h.Get(HeaderJSONLength)
	if v == "" {
		return bodyLen, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || n > bodyLen {
		return 0, fmt.Errorf("header %s is %q; it must be a length between 1 and the body's %d bytes", HeaderJSONLength, v, bodyLen)
	}
	return n, nil
}

// DecodeRequest decodes a request body whose first jsonLen bytes are JSON.
func DecodeRequest(body []byte, jsonLen int, lim Limits) (*InferRequest, error) {
	lim = lim.withDefaults()
	head, bin, err := split(body, jsonLen, lim)
	if err != nil {
		return nil, err
	}
	var w wireRequest
	if err := json.Unmarshal(head, &w); err != nil {
		return nil, fmt.Errorf("request is not valid JSON: %w", err)
	}
	if len(w.Outputs) > lim.MaxTensors {
		return nil, fmt.Errorf("request asks for %d outputs, more than %d", len(w.Outputs), lim.MaxTensors)
	}
	for i, o := range w.Outputs {
		if o.Name == "" {
			return nil, fmt.Errorf("requested output %d has no name", i)
		}
	}
	ins, err := decodeTensors(w.Inputs, bin, lim, "input")
	if err != nil {
		return nil, err
	}
	return &InferRequest{ID: w.ID, Parameters: w.Parameters, Inputs: ins, Outputs: w.Outputs}, nil
}

// DecodeResponse decodes a response body whose first jsonLen bytes are JSON.
func DecodeResponse(body []byte, jsonLen int, lim Limits) (*InferResponse, error) {
	lim = lim.withDefaults()
	head, bin, err := split(body, jsonLen, lim)
	if err != nil {
		return nil, err
	}
	var w wireResponse
	if err := json.Unmarshal(head, &w); err != nil {
		return nil, fmt.Errorf("response is not valid JSON: %w", err)
	}
	outs, err := decodeTensors(w.Outputs, bin, lim, "output")
	if err != nil {
		return nil, err
	}
	return &InferResponse{ModelName: w.ModelName, ModelVersion: w.ModelVersion, ID: w.ID, Parameters: w.Parameters, Outputs: outs}, nil
}

func split(body []byte, jsonLen int, lim Limits) (head, bin []byte, err error) {
	if int64(len(body)) > lim.MaxBodyBytes {
		return nil, nil, fmt.Errorf("%w: %d bytes, more than %d", ErrTooLarge, len(body), lim.MaxBodyBytes)
	}
	if jsonLen <= 0 || jsonLen > len(body) {
		return nil, nil, fmt.Errorf("JSON part of %d bytes does not fit a body of %d", jsonLen, len(body))
	}
	return body[:jsonLen], body[jsonLen:], nil
}

// decodeTensors checks every wire tensor and takes its data from JSON or
// from the binary part, which must be used up exactly.
func decodeTensors(wts []wireTensor, bin []byte, lim Limits, what string) ([]Tensor, error) {
	if len(wts) > lim.MaxTensors {
		return nil, fmt.Errorf("%d %ss, more than %d", len(wts), what, lim.MaxTensors)
	}
	out := make([]Tensor, len(wts))
	seen := make(map[string]bool, len(wts))
	for i := range wts {
		w := &wts[i]
		if w.Name == "" {
			return nil, fmt.Errorf("%s %d has no name", what, i)
		}
		if seen[w.Name] {
			return nil, fmt.Errorf("two %ss are called %q", what, w.Name)
		}
		seen[w.Name] = true
		t, rest, err := decodeTensor(w, bin, lim)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", what, w.Name, err)
		}
		bin = rest
		out[i] = t
	}
	if len(bin) > 0 {
		return nil, fmt.Errorf("%d bytes of binary data follow the last tensor", len(bin))
	}
	return out, nil
}

func decodeTensor(w *wireTensor, bin []byte, lim Limits) (Tensor, []byte, error) {
	t := Tensor{Name: w.Name, Datatype: w.Datatype, Shape: w.Shape, Parameters: w.Parameters}
	size := w.Datatype.Size()
	if size < 0 {
		return t, nil, fmt.Errorf("unknown datatype %q", w.Datatype)
	}
	if w.Shape == nil {
		return t, nil, errors.New("no shape")
	}
	if len(w.Shape) > lim.MaxDims {
		return t, nil, fmt.Errorf("shape has %d dimensions, more than %d", len(w.Shape), lim.MaxDims)
	}
	limit := lim.MaxElements
	if w.Datatype == BYTES {
		limit = lim.MaxBytesElements
	}
	n, err := Count(w.Shape, limit)
	if err != nil {
		return t, nil, err
	}
	binSize, isBinary, err := w.Parameters.Int(ParamBinaryDataSize)
	if err != nil {
		return t, nil, err
	}
	if isBinary {
		if w.Data != nil {
			return t, nil, errors.New("has both JSON data and binary_data_size")
		}
		if binSize < 0 || binSize > int64(len(bin)) {
			return t, nil, fmt.Errorf("binary_data_size %d but only %d bytes of binary data are left", binSize, len(bin))
		}
		chunk, rest := bin[:binSize], bin[binSize:]
		if w.Datatype == BYTES {
			t.Elems, err = unpackBytes(chunk, n)
		} else if int64(len(chunk)) != n*int64(size) {
			err = fmt.Errorf("shape %v of %s needs %d bytes, binary_data_size is %d", w.Shape, w.Datatype, n*int64(size), binSize)
		} else if w.Datatype == BOOL && !allBits(chunk) {
			err = errors.New("a BOOL element is neither 0 nor 1")
		} else {
			t.Raw = chunk
		}
		return t, rest, err
	}
	if w.Data == nil {
		return t, nil, errors.New("no data")
	}
	if w.Datatype == FP16 {
		return t, nil, errors.New("FP16 has no JSON form; it must come binary")
	}
	// A JSON element takes at least one byte and a separator, so a shape
	// asking for more elements than that is refused before any allocation.
	if n > int64(len(w.Data)+1)/2 {
		return t, nil, fmt.Errorf("shape %v needs %d elements, the data is too short to hold them", w.Shape, n)
	}
	if w.Datatype == BYTES {
		t.Elems = make([][]byte, 0, n)
	} else {
		t.Raw = make([]byte, 0, n*int64(size))
	}
	b64 := w.Parameters.String(ParamContentType) == "base64"
	var got int64
	err = scanData(w.Data, lim.MaxDims, func(tok []byte) error {
		if got == n {
			return fmt.Errorf("data has more than the %d elements of shape %v", n, w.Shape)
		}
		got++
		if w.Datatype == BYTES {
			e, err := bytesElement(tok, b64)
			if err != nil {
				return fmt.Errorf("element %d: %w", got-1, err)
			}
			t.Elems = append(t.Elems, e)
			return nil
		}
		var err error
		t.Raw, err = appendNumber(t.Raw, w.Datatype, tok)
		if err != nil {
			return fmt.Errorf("element %d: %w", got-1, err)
		}
		return nil
	})
	if err != nil {
		return t, nil, err
	}
	if got != n {
		return t, nil, fmt.Errorf("shape %v needs %d elements, data has %d", w.Shape, n, got)
	}
	return t, bin, nil
}

// unpackBytes reads exactly n length-prefixed elements filling chunk.
func unpackBytes(chunk []byte, n int64) ([][]byte, error) {
	if n > int64(len(chunk))/4 {
		return nil, fmt.Errorf("%d BYTES elements cannot fit in %d bytes", n, len(chunk))
	}
	elems := make([][]byte, n)
	for i := range elems {
		if len(chunk) < 4 {
			return nil, fmt.Errorf("binary data ends before BYTES element %d", i)
		}
		l := binary.LittleEndian.Uint32(chunk)
		chunk = chunk[4:]
		if uint64(l) > uint64(len(chunk)) {
			return nil, fmt.Errorf("BYTES element %d claims %d bytes, only %d are left", i, l, len(chunk))
		}
		elems[i] = chunk[:l:l]
		chunk = chunk[l:]
	}
	if len(chunk) > 0 {
		return nil, fmt.Errorf("%d bytes are left after the %d BYTES elements", len(chunk), n)
	}
	return elems, nil
}

// scanData calls fn with each scalar of a JSON value made of (nested)
// arrays of scalars, in row-major order. data is valid JSON: encoding/json
// checked it.
func scanData(data []byte, maxDepth int, fn func(tok []byte) error) error {
	depth := 0
	for i := 0; i < len(data); {
		switch c := data[i]; c {
		case ' ', '\t', '\r', '\n', ',':
			i++
		case '[':
			depth++
			if depth > maxDepth {
				return fmt.Errorf("data is nested deeper than %d", maxDepth)
			}
			i++
		case ']':
			depth--
			i++
		case '{':
			return errors.New("data holds an object; only arrays of numbers, booleans or strings are allowed")
		case '"':
			j := i + 1
			for j < len(data) && data[j] != '"' {
				if data[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(data) {
				return errors.New("data has an unterminated string")
			}
			if err := fn(data[i : j+1]); err != nil {
				return err
			}
			i = j + 1
		default:
			j := i
			for j < len(data) && !isDelim(data[j]) {
				j++
			}
			if err := fn(data[i:j]); err != nil {
				return err
			}
			i = j
		}
	}
	return nil
}

func isDelim(c byte) bool {
	switch c {
	case ' ', '\t', '\r', '\n', ',', ']':
		return true
	}
	return false
}

// bytesElement decodes a JSON string into a BYTES element.
func bytesElement(tok []byte, b64 bool) ([]byte, error) {
	if len(tok) < 2 || tok[0] != '"' {
		return nil, fmt.Errorf("%s is not a string", clip(tok))
	}
	s := tok[1 : len(tok)-1]
	if bytes.IndexByte(s, '\\') >= 0 {
		var str string
		if err := json.Unmarshal(tok, &str); err != nil {
			return nil, err
		}
		s = []byte(str)
	}
	if !b64 {
		return s, nil
	}
	out, err := base64.StdEncoding.AppendDecode(make([]byte, 0, base64.StdEncoding.DecodedLen(len(s))), s)
	if err != nil {
		return nil, fmt.Errorf("content_type is base64 but the string is not: %w", err)
	}
	return out, nil
}

// appendNumber converts one JSON scalar to datatype d's binary form.
func appendNumber(raw []byte, d Datatype, tok []byte) ([]byte, error) {
	s := string(tok)
	switch d {
	case BOOL:
		switch s {
		case "true", "1":
			return append(raw, 1), nil
		case "false", "0":
			return append(raw, 0), nil
		}
		return nil, fmt.Errorf("%s is not a BOOL", clip(tok))
	case FP32, FP64:
		bits := 32
		if d == FP64 {
			bits = 64
		}
		f, err := strconv.ParseFloat(s, bits)
		if err != nil {
			return nil, fmt.Errorf("%s is not an %s", clip(tok), d)
		}
		if d == FP32 {
			return binary.LittleEndian.AppendUint32(raw, math.Float32bits(float32(f))), nil
		}
		return binary.LittleEndian.AppendUint64(raw, math.Float64bits(f)), nil
	}
	bits := d.Size() * 8
	signed := d == INT8 || d == INT16 || d == INT32 || d == INT64
	var u uint64
	if signed {
		v, err := strconv.ParseInt(s, 10, bits)
		if err != nil {
			f, ferr := strconv.ParseFloat(s, 64)
			if ferr != nil || f != math.Trunc(f) || f < -math.Ldexp(1, bits-1) || f >= math.Ldexp(1, bits-1) {
				return nil, fmt.Errorf("%s is not an %s", clip(tok), d)
			}
			v = int64(f)
		}
		u = uint64(v)
	} else {
		v, err := strconv.ParseUint(s, 10, bits)
		if err != nil {
			f, ferr := strconv.ParseFloat(s, 64)
			if ferr != nil || f != math.Trunc(f) || f < 0 || f >= math.Ldexp(1, bits) {
				return nil, fmt.Errorf("%s is not a %s", clip(tok), d)
			}
			v = uint64(f)
		}
		u = v
	}
	switch bits {
	case 8:
		return append(raw, byte(u)), nil
	case 16:
		return binary.LittleEndian.AppendUint16(raw, uint16(u)), nil
	case 32:
		return binary.LittleEndian.AppendUint32(raw, uint32(u)), nil
	}
	return binary.LittleEndian.AppendUint64(raw, u), nil
}

// clip shortens a token for an error message.
func clip(tok []byte) string {
	if len(tok) > 24 {
		tok = tok[:24]
	}
	if !utf8.Valid(tok) {
		return strconv.Quote(string(tok))
	}
	return string(tok)
}
