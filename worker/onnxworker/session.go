//go:build cgo

package onnxworker

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/deepimageshub/imagehub/oip"
)

// ONNX Runtime has one environment per process (onnxruntime_go keeps it in a
// package variable): the first Open loads the library and later ones share it.
var env struct {
	sync.Mutex
	lib string // the library loaded, once loaded
}

func loadRuntime(lib string) error {
	env.Lock()
	defer env.Unlock()
	if env.lib != "" {
		if env.lib != lib {
			return fmt.Errorf("ONNX Runtime is already loaded from %s in this process; cannot load %s too", env.lib, lib)
		}
		return nil
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return fmt.Errorf("error loading ONNX Runtime %s from %s (run `make onnxruntime`, or set %s to libonnxruntime.so.1 of that release): %w", RuntimeVersion, lib, EnvLibrary, err)
	}
	env.lib = lib
	return nil
}

// LoadRuntime loads the ONNX Runtime library at lib ("" is
// Library(os.Getenv)) unless this process has it already, and says why it
// cannot: a caller that serves ONNX files only now and then (the hub's
// built-in worker) asks before promising to.
func LoadRuntime(lib string) error {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		return fmt.Errorf("serving ONNX models is only built for amd64 and arm64, not %s", runtime.GOARCH)
	}
	if lib == "" {
		lib = Library(getenv)
	}
	return loadRuntime(lib)
}

// Options configures Open.
type Options struct {
	// Library is the path of the ONNX Runtime shared library; "" is
	// Library(os.Getenv).
	Library string
	// Threads is the number of intra-op threads of the session; 0 is one
	// per core.
	Threads int
}

// Model is an ONNX model file loaded into an ONNX Runtime session. Run may
// be called from several goroutines at once.
type Model struct {
	sess            *ort.DynamicAdvancedSession
	inputs, outputs []oip.TensorMetadata
	inTypes         []ort.TensorElementDataType
	names           []string
	namesErr        error
}

// datatypes maps ONNX element types to the protocol's. FP16 is left out:
// onnxruntime_go v1.27.0 copies only one byte per element of a 16-bit
// output it has no Go type for.
var datatypes = map[ort.TensorElementDataType]oip.Datatype{
	ort.TensorElementDataTypeFloat:  oip.FP32,
	ort.TensorElementDataTypeDouble: oip.FP64,
	ort.TensorElementDataTypeUint8:  oip.UINT8,
	ort.TensorElementDataTypeUint16: oip.UINT16,
	ort.TensorElementDataTypeUint32: oip.UINT32,
	ort.TensorElementDataTypeUint64: oip.UINT64,
	ort.TensorElementDataTypeInt8:   oip.INT8,
	ort.TensorElementDataTypeInt16:  oip.INT16,
	ort.TensorElementDataTypeInt32:  oip.INT32,
	ort.TensorElementDataTypeInt64:  oip.INT64,
	ort.TensorElementDataTypeBool:   oip.BOOL,
}

// Open loads the ONNX file at path. Its inputs and outputs must all be
// tensors of a datatype in the protocol (FP32, INT64, …; not strings or
// FP16).
func Open(path string, opts Options) (*Model, error) {
	// The tensors travel as little-endian bytes and are handed to ONNX
	// Runtime as they are.
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		return nil, fmt.Errorf("serving ONNX models is only built for amd64 and arm64, not %s", runtime.GOARCH)
	}
	lib := opts.Library
	if lib == "" {
		lib = Library(getenv)
	}
	if err := loadRuntime(lib); err != nil {
		return nil, err
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("error making session options: %w", err)
	}
	defer so.Destroy()
	threads := opts.Threads
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	// Intra-op threads split one operator across cores; inter-op
	// parallelism only helps graphs with independent branches and would
	// fight the intra-op pool for the same cores.
	if err := so.SetIntraOpNumThreads(threads); err != nil {
		return nil, fmt.Errorf("error setting %d threads: %w", threads, err)
	}
	if err := so.SetInterOpNumThreads(1); err != nil {
		return nil, fmt.Errorf("error setting the inter-op threads: %w", err)
	}
	ins, outs, err := ort.GetInputOutputInfoWithOptions(path, so)
	if err != nil {
		return nil, fmt.Errorf("error loading %s: %w", path, err)
	}
	m := &Model{}
	var inNames, outNames []string
	for _, in := range ins {
		md, err := tensorMetadata(in, "input")
		if err != nil {
			return nil, fmt.Errorf("error loading %s: %w", path, err)
		}
		m.inputs = append(m.inputs, md)
		m.inTypes = append(m.inTypes, in.DataType)
		inNames = append(inNames, in.Name)
	}
	for _, out := range outs {
		md, err := tensorMetadata(out, "output")
		if err != nil {
			return nil, fmt.Errorf("error loading %s: %w", path, err)
		}
		m.outputs = append(m.outputs, md)
		outNames = append(outNames, out.Name)
	}
	if len(inNames) == 0 || len(outNames) == 0 {
		return nil, fmt.Errorf("error loading %s: the model has %d inputs and %d outputs; it needs at least one of each", path, len(inNames), len(outNames))
	}
	m.sess, err = ort.NewDynamicAdvancedSession(path, inNames, outNames, so)
	if err != nil {
		return nil, fmt.Errorf("error loading %s: %w", path, err)
	}
	md, err := m.sess.GetModelMetadata()
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("error reading the metadata of %s: %w", path, err)
	}
	defer md.Destroy()
	if v, ok, err := md.LookupCustomMetadataMap("names"); err == nil && ok {
		m.names, m.namesErr = ParseUltralyticsNames(v)
	}
	return m, nil
}

func tensorMetadata(info ort.InputOutputInfo, what string) (oip.TensorMetadata, error) {
	if info.OrtValueType != ort.ONNXTypeTensor {
		return oip.TensorMetadata{}, fmt.Errorf("%s %q is a %s, not a tensor", what, info.Name, info.OrtValueType)
	}
	dt, ok := datatypes[info.DataType]
	if !ok {
		return oip.TensorMetadata{}, fmt.Errorf("%s %q has element type %s, which this worker does not serve", what, info.Name, info.DataType)
	}
	shape := make([]int64, len(info.Dimensions))
	for i, d := range info.Dimensions {
		// A symbolic dimension ("batch", "height") reads -1, or 0 in
		// some exporters' files: both mean any size.
		if d <= 0 {
			d = -1
		}
		shape[i] = d
	}
	return oip.TensorMetadata{Name: info.Name, Datatype: dt, Shape: shape}, nil
}

// Inputs are the model's inputs, in the file's order.
func (m *Model) Inputs() []oip.TensorMetadata { return m.inputs }

// Outputs are the model's outputs, in the file's order.
func (m *Model) Outputs() []oip.TensorMetadata { return m.outputs }

// Names are the class names of the file's Ultralytics metadata ("names"),
// nil when it has none; err says why an entry that is there could not be
// read.
func (m *Model) Names() ([]string, error) { return m.names, m.namesErr }

// Close frees the session.
func (m *Model) Close() error {
	if m.sess == nil {
		return nil
	}
	err := m.sess.Destroy()
	m.sess = nil
	return err
}

// Run runs the model on one tensor per input, in Inputs' order, already
// checked against Inputs (datatype, shape, data size), and returns every
// output in Outputs' order.
func (m *Model) Run(inputs []oip.Tensor) ([]oip.Tensor, error) {
	if len(inputs) != len(m.inputs) {
		return nil, fmt.Errorf("the model takes %d inputs, got %d", len(m.inputs), len(inputs))
	}
	vals := make([]ort.Value, len(inputs))
	defer func() {
		for _, v := range vals {
			if v != nil {
				_ = v.Destroy()
			}
		}
	}()
	for i := range inputs {
		raw := inputs[i].Raw
		// A tensor decoded from a binary body starts wherever it fell in
		// the body; ONNX Runtime's kernels read their inputs in place,
		// so give them memory aligned as an allocation is.
		if uintptr(unsafe.Pointer(unsafe.SliceData(raw)))%16 != 0 {
			raw = append(make([]byte, 0, len(raw)), raw...)
		}
		v, err := ort.NewCustomDataTensor(ort.NewShape(inputs[i].Shape...), raw, m.inTypes[i])
		if err != nil {
			return nil, fmt.Errorf("error making input %q: %w", inputs[i].Name, err)
		}
		vals[i] = v
	}
	outs := make([]ort.Value, len(m.outputs))
	defer func() {
		for _, v := range outs {
			if v != nil {
				_ = v.Destroy()
			}
		}
	}()
	if err := m.sess.Run(vals, outs); err != nil {
		return nil, &RunError{err}
	}
	res := make([]oip.Tensor, len(outs))
	for i, v := range outs {
		raw, err := rawData(v)
		if err != nil {
			return nil, fmt.Errorf("output %q: %w", m.outputs[i].Name, err)
		}
		res[i] = oip.Tensor{Name: m.outputs[i].Name, Datatype: m.outputs[i].Datatype, Shape: v.GetShape(), Raw: raw}
	}
	return res, nil
}

// rawData returns the elements of an output as little-endian bytes. The
// slices onnxruntime_go returns are Go memory (copied out of ONNX Runtime's)
// and stay valid after the value is destroyed.
func rawData(v ort.Value) ([]byte, error) {
	switch t := v.(type) {
	case *ort.Tensor[float32]:
		return asBytes(t.GetData()), nil
	case *ort.Tensor[float64]:
		return asBytes(t.GetData()), nil
	case *ort.Tensor[uint8]:
		return t.GetData(), nil
	case *ort.Tensor[uint16]:
		return asBytes(t.GetData()), nil
	case *ort.Tensor[uint32]:
		return asBytes(t.GetData()), nil
	case *ort.Tensor[uint64]:
		return asBytes(t.GetData()), nil
	case *ort.Tensor[int8]:
		return asBytes(t.GetData()), nil
	case *ort.Tensor[int16]:
		return asBytes(t.GetData()), nil
	case *ort.Tensor[int32]:
		return asBytes(t.GetData()), nil
	case *ort.Tensor[int64]:
		return asBytes(t.GetData()), nil
	case *ort.Tensor[bool]:
		return asBytes(t.GetData()), nil // a Go bool is one byte, 0 or 1
	}
	return nil, errors.New("the model returned a value this worker cannot send")
}

func asBytes[T any](s []T) []byte {
	if len(s) == 0 {
		return []byte{}
	}
	var zero T
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), len(s)*int(unsafe.Sizeof(zero)))
}
