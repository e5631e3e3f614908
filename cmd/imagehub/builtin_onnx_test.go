package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/dispatch"
	"github.com/deepimageshub/imagehub/inference"
	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/training"
	"github.com/deepimageshub/imagehub/worker"
	"github.com/deepimageshub/imagehub/worker/onnxworker"
)

// TestBuiltinWorkerServesTrainedONNX: the built-in worker serves a trained
// ONNX artifact of a stock layout so that the registry's check passes (the
// check an admin's enable runs), sends everything else to the segmenter,
// and, when ONNX Runtime cannot be loaded, answers 503 with the reason,
// which the check reports.
func TestBuiltinWorkerServesTrainedONNX(t *testing.T) {
	file, err := os.ReadFile(filepath.Join("..", "..", "testdata", "onnx", "yolo-seg.onnx"))
	require.NoError(t, err)
	labels := []string{"person", "car", "dog"}
	find := func(_ context.Context, name, version string) (training.Trained, error) {
		switch name + "@" + version {
		case "trained@1":
			return training.Trained{Format: training.ArtifactONNX, Layout: "yolo-seg", Labels: labels}, nil
		case "region@1":
			return training.Trained{Format: training.ArtifactRegion}, nil
		}
		return training.Trained{}, fmt.Errorf("no such model: %w", problem.NotFound)
	}
	open := func(context.Context, training.Trained) (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(file)), nil
	}
	ws := worker.New(worker.Config{})
	front := func(lib string) *httptest.Server {
		h := &trainedONNX{next: ws, find: find, open: open, lib: lib, capacity: 2, tmp: t.TempDir(),
			skip: []string{ws.Model()}, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
			formats: map[[2]string]string{}, servers: map[[2]string]*onnxServed{}}
		srv := httptest.NewServer(h)
		t.Cleanup(func() { srv.Close(); h.Close() })
		return srv
	}
	inspect := func(base string) dispatch.Check {
		enabled := true
		spec := dispatch.Spec{Name: "trained", Version: "1", Endpoints: []string{base}, Layout: "yolo-seg", Labels: labels, Enabled: &enabled}
		require.NoError(t, spec.Normalize())
		return dispatch.Inspect(context.Background(), inference.New(nil), spec, 10*time.Second)
	}
	get := func(base, path string) (int, string) {
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(body)
	}

	// No library: said, not hidden. (A process that has loaded ONNX
	// Runtime already refuses a second library, also with the reason.)
	bad := front(filepath.Join(t.TempDir(), "libonnxruntime.so.1"))
	status, body := get(bad.URL, "/v2/models/trained/versions/1")
	require.Equal(t, http.StatusServiceUnavailable, status, body)
	require.Contains(t, body, "cannot serve it")
	check := inspect(bad.URL)
	require.Len(t, check.Unreachable, 1)
	require.Contains(t, check.Unreachable[0], "cannot serve it")

	good := front(onnxworker.Library(os.Getenv))
	check = inspect(good.URL)
	require.Empty(t, check.Problems())
	require.Equal(t, 64, check.Layout.InputSize, "the model's own input size")
	status, body = get(good.URL, "/v2/models/trained/versions/1")
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, `"platform":"onnxruntime_onnx"`)
	require.True(t, strings.Contains(body, `person`), body)

	// The rest is the built-in worker's.
	status, body = get(good.URL, "/v2/models/"+ws.Model()+"/versions/1")
	require.Equal(t, http.StatusOK, status, body)
	require.Contains(t, body, `"platform":"imagehub_go"`)
	status, _ = get(good.URL, "/v2/models/unknown/versions/1")
	require.Equal(t, http.StatusNotFound, status)
	status, _ = get(good.URL, "/v2/models/region/versions/1")
	require.Equal(t, http.StatusNotFound, status, "this worker has no loader: a region model goes to it and is not found there")
}

// TestBuiltinWorkerONNXLoadOutlivesRequest: a trained model whose file
// takes longer to fetch than the first request waits is still loaded, once,
// and serves the next request; a load given up with the request that
// started it would be started again by every request and never finish.
func TestBuiltinWorkerONNXLoadOutlivesRequest(t *testing.T) {
	file, err := os.ReadFile(filepath.Join("..", "..", "testdata", "onnx", "yolo-seg.onnx"))
	require.NoError(t, err)
	find := func(_ context.Context, name, version string) (training.Trained, error) {
		if name+"@"+version == "trained@1" {
			return training.Trained{Format: training.ArtifactONNX, Layout: "yolo-seg", Labels: []string{"person", "car", "dog"}}, nil
		}
		return training.Trained{}, fmt.Errorf("no such model: %w", problem.NotFound)
	}
	var opens atomic.Int32
	fetched := make(chan struct{})
	// As a blob store's read does, the fetch stops when its context ends.
	open := func(ctx context.Context, _ training.Trained) (io.ReadCloser, error) {
		opens.Add(1)
		select {
		case <-fetched:
			return io.NopCloser(bytes.NewReader(file)), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	ws := worker.New(worker.Config{})
	h := &trainedONNX{next: ws, find: find, open: open, lib: onnxworker.Library(os.Getenv), capacity: 1, tmp: t.TempDir(),
		skip: []string{ws.Model()}, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		formats: map[[2]string]string{}, servers: map[[2]string]*onnxServed{}}
	srv := httptest.NewServer(h)
	t.Cleanup(func() { srv.Close(); h.Close() })

	impatient := &http.Client{Timeout: 200 * time.Millisecond}
	_, err = impatient.Get(srv.URL + "/v2/models/trained/versions/1")
	require.Error(t, err, "the fetch is held back: the request gives up")
	close(fetched)
	res, err := http.Get(srv.URL + "/v2/models/trained/versions/1")
	require.NoError(t, err)
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode, string(body))
	require.Contains(t, string(body), `"platform":"onnxruntime_onnx"`)
	require.Equal(t, int32(1), opens.Load(), "loaded once")
}
