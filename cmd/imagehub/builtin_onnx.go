package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/training"
	"github.com/deepimageshub/imagehub/worker/onnxworker"
)

// trainedONNX serves, in front of the built-in worker, the ONNX artifacts
// trainings registered on it: a request for such a model version loads the
// file from the blob store into an ONNX Runtime session once (as
// `imagehub worker --onnx` does) and is answered by an onnxworker.Server;
// every other request goes to next. When ONNX Runtime cannot be loaded the
// answer is 503 with the reason, so the registry's check and the models
// page say why the model is not served.
type trainedONNX struct {
	next http.Handler
	// find looks a model version up; an error wrapping problem.NotFound
	// means no training made it.
	find     func(ctx context.Context, name, version string) (training.Trained, error)
	open     func(ctx context.Context, t training.Trained) (io.ReadCloser, error)
	lib      string
	capacity int
	tmp      string
	skip     []string // models of next itself: never looked up
	log      *slog.Logger

	mu      sync.Mutex
	formats map[[2]string]string // artifacts found, by name and version: immutable once registered
	servers map[[2]string]*onnxServed
	closed  bool // by Close: a model that finishes loading after is closed at once
}

// onnxServed is one loaded model; ready closes once it is loaded or failed.
type onnxServed struct {
	ready chan struct{}
	srv   *onnxworker.Server
	model *onnxworker.Model
	err   error
}

func newTrainedONNX(next http.Handler, store *training.Store, lib string, capacity int, skip []string, log *slog.Logger) *trainedONNX {
	return &trainedONNX{next: next, find: store.Find, open: store.Open, lib: lib, capacity: capacity, skip: skip, log: log,
		formats: map[[2]string]string{}, servers: map[[2]string]*onnxServed{}}
}

// Available says why this process cannot serve ONNX files, nil when it can
// (training.Options.ServeONNX). It loads ONNX Runtime on first use.
func (h *trainedONNX) Available() error { return onnxworker.LoadRuntime(h.lib) }

func (h *trainedONNX) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, version, ok := modelPath(r.URL.Path)
	if !ok || version == "" || slices.Contains(h.skip, name) {
		h.next.ServeHTTP(w, r)
		return
	}
	s, err := h.served(r.Context(), name, version)
	switch {
	case errors.Is(err, errNotONNX):
		h.next.ServeHTTP(w, r)
	case err != nil:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
	default:
		s.srv.ServeHTTP(w, r)
	}
}

var errNotONNX = errors.New("not a trained ONNX model")

// served returns the loaded model for name and version, loading it once;
// errNotONNX sends the request on to the built-in worker. The load runs on
// its own, not under the request that asked first: a large file can take
// longer to fetch and load than one request may wait, and a load given up
// with that request would be started again by the next one, and so never
// finish. Every request waits for it as long as its own context lets it.
func (h *trainedONNX) served(ctx context.Context, name, version string) (*onnxServed, error) {
	key := [2]string{name, version}
	h.mu.Lock()
	format, known := h.formats[key]
	h.mu.Unlock()
	var t training.Trained
	if !known {
		var err error
		t, err = h.find(ctx, name, version)
		if errors.Is(err, problem.NotFound) {
			return nil, errNotONNX
		}
		if err != nil {
			return nil, err
		}
		format = t.Format
		h.mu.Lock()
		h.formats[key] = format
		h.mu.Unlock()
	}
	if format != training.ArtifactONNX {
		return nil, errNotONNX
	}
	h.mu.Lock()
	s, loading := h.servers[key]
	if !loading {
		s = &onnxServed{ready: make(chan struct{})}
		h.servers[key] = s
		go h.fill(context.WithoutCancel(ctx), key, s, t)
	}
	h.mu.Unlock()
	select {
	case <-s.ready:
		return s, s.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// fill loads s, the model of key (t, when its format was just looked up),
// and closes s.ready.
func (h *trainedONNX) fill(ctx context.Context, key [2]string, s *onnxServed, t training.Trained) {
	name, version := key[0], key[1]
	if t.Format == "" { // the format was known: look the rest up again
		t, s.err = h.find(ctx, name, version)
	}
	if s.err == nil {
		s.err = h.load(ctx, s, t, name, version)
	}
	h.mu.Lock()
	if s.err == nil && h.closed {
		// Shut down while it loaded: nothing will serve it.
		_ = s.model.Close()
		s.srv, s.model, s.err = nil, nil, errors.New("the built-in worker is shutting down")
	}
	if s.err != nil && h.servers[key] == s {
		// Not kept: the next request tries again (the library may be
		// installed by then, or the blob store back).
		delete(h.servers, key)
	}
	// Under the lock, so that Close sees either a loading model or a ready one.
	close(s.ready)
	h.mu.Unlock()
	if s.err != nil {
		h.log.Warn("cannot serve a trained ONNX model", "model", name, "version", version, "error", s.err)
	}
}

// load writes the artifact to a temporary file, which ONNX Runtime reads
// whole into its session, and serves it with its layout and labels.
func (h *trainedONNX) load(ctx context.Context, s *onnxServed, t training.Trained, name, version string) error {
	if err := h.Available(); err != nil {
		return fmt.Errorf("model %s version %s is an ONNX model, and this hub's built-in worker cannot serve it: %w", name, version, err)
	}
	rc, err := h.open(ctx, t)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.CreateTemp(h.tmp, "trained-*.onnx")
	if err != nil {
		return fmt.Errorf("error making a file for model %s version %s: %w", name, version, err)
	}
	defer os.Remove(f.Name())
	_, err = io.Copy(f, rc)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("error writing model %s version %s to %s: %w", name, version, f.Name(), err)
	}
	m, err := onnxworker.Open(f.Name(), onnxworker.Options{Library: h.lib})
	if err != nil {
		return fmt.Errorf("error loading model %s version %s: %w", name, version, err)
	}
	s.model = m
	s.srv = onnxworker.New(m, onnxworker.Config{Model: name, Version: version, Layout: t.Layout, Labels: t.Labels,
		Capacity: h.capacity, Logger: h.log})
	h.log.Info("serving a trained ONNX model", "model", name, "version", version, "layout", t.Layout, "labels", len(t.Labels))
	return nil
}

// Close frees the loaded sessions, once the server in front is shut down.
func (h *trainedONNX) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for key, s := range h.servers {
		select {
		case <-s.ready:
			if s.model != nil {
				_ = s.model.Close()
			}
		default:
		}
		delete(h.servers, key)
	}
}

// modelPath reads the model and version of /v2/models/{model}[/versions/{v}][/…].
func modelPath(path string) (name, version string, ok bool) {
	rest, ok := strings.CutPrefix(path, "/v2/models/")
	if !ok {
		return "", "", false
	}
	parts := strings.Split(rest, "/")
	if parts[0] == "" {
		return "", "", false
	}
	if len(parts) >= 3 && parts[1] == "versions" {
		return parts[0], parts[2], true
	}
	return parts[0], "", true
}
