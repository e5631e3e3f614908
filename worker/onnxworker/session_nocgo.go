//go:build !cgo

package onnxworker

import "github.com/deepimageshub/imagehub/oip"

// LoadRuntime fails with ErrNoRuntime: loading ONNX Runtime needs cgo.
func LoadRuntime(lib string) error { return ErrNoRuntime }

// Options configures Open.
type Options struct {
	Library string
	Threads int
}

// Model stands for a loaded model in a build without cgo, where Open always
// fails; its methods are never reached.
type Model struct{}

// Open fails with ErrNoRuntime: loading ONNX Runtime needs cgo.
func Open(path string, opts Options) (*Model, error) { return nil, ErrNoRuntime }

// Inputs is empty.
func (m *Model) Inputs() []oip.TensorMetadata { return nil }

// Outputs is empty.
func (m *Model) Outputs() []oip.TensorMetadata { return nil }

// Names is empty.
func (m *Model) Names() ([]string, error) { return nil, nil }

// Close does nothing.
func (m *Model) Close() error { return nil }

// Run fails with ErrNoRuntime.
func (m *Model) Run(inputs []oip.Tensor) ([]oip.Tensor, error) { return nil, ErrNoRuntime }
