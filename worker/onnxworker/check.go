package onnxworker

import (
	"context"
	"fmt"
	"os"
	"strings"
)

// CheckLoads returns a check of an uploaded ONNX file (a
// training.Checker) that loads it into an ONNX Runtime session with the
// library at lib and frees it again: a file whose graph signature reads
// well but whose weights or nodes ONNX Runtime refuses is turned down at
// upload, not when the worker first serves it. It returns no labels, so
// the caller keeps the ones read from the file. Where this process cannot
// load ONNX Runtime the check passes: the hub then says at registration
// that it cannot serve the file.
func CheckLoads(lib, tmpDir string) func(ctx context.Context, data []byte) ([]string, error) {
	return func(_ context.Context, data []byte) ([]string, error) {
		if LoadRuntime(lib) != nil {
			return nil, nil
		}
		f, err := os.CreateTemp(tmpDir, "upload-*.onnx")
		if err != nil {
			return nil, fmt.Errorf("error making a file to load the upload from: %w", err)
		}
		defer os.Remove(f.Name())
		_, err = f.Write(data)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("error writing the upload to %s: %w", f.Name(), err)
		}
		// One thread: a check, not a server.
		m, err := Open(f.Name(), Options{Library: lib, Threads: 1})
		if err != nil {
			// The temporary name means nothing to the trainer.
			msg := strings.ReplaceAll(err.Error(), f.Name(), "the file")
			return nil, fmt.Errorf("ONNX Runtime cannot load it: %s", msg)
		}
		return nil, m.Close()
	}
}
