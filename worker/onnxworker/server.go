package onnxworker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/deepimageshub/imagehub/oip"
)

// Config configures a Server.
type Config struct {
	Model   string // default "model"
	Version string // default "1"
	// Layout is the metadata's "layout" parameter: LayoutYOLOSeg or
	// LayoutMaskRCNN.
	Layout string
	// Labels is the metadata's "labels" parameter; nil leaves it out.
	Labels []string
	// Capacity bounds the inferences in flight; a request beyond it is
	// answered 503 with Retry-After: 1. 0 is unbounded.
	Capacity     int
	MaxBodyBytes int64 // default 64 MiB
	Logger       *slog.Logger
}

// Server serves one Model over the protocol.
type Server struct {
	cfg   Config
	model *Model
	meta  oip.ModelMetadata
	mux   *http.ServeMux
	log   *slog.Logger

	inFlight atomic.Int64
}

// New makes a Server for m, which stays the caller's to close after the
// server is done.
func New(m *Model, cfg Config) *Server {
	if cfg.Model == "" {
		cfg.Model = "model"
	}
	if cfg.Version == "" {
		cfg.Version = "1"
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = oip.DefaultMaxBodyBytes
	}
	s := &Server{cfg: cfg, model: m, mux: http.NewServeMux(), log: cfg.Logger}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	params := oip.Parameters{ParamLayout: cfg.Layout}
	if cfg.Labels != nil {
		params[ParamLabels] = labelsParam(cfg.Labels)
	}
	s.meta = oip.ModelMetadata{
		Name:     cfg.Model,
		Versions: []string{cfg.Version},
		// Triton's name for a model its onnxruntime backend serves.
		Platform:   "onnxruntime_onnx",
		Inputs:     m.Inputs(),
		Outputs:    m.Outputs(),
		Parameters: params,
	}
	s.routes()
	return s
}

func (s *Server) routes() {
	ok := func(key string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, map[string]bool{key: true}) }
	}
	s.mux.HandleFunc("GET /v2/health/live", ok("live"))
	s.mux.HandleFunc("GET /v2/health/ready", ok("ready"))
	s.mux.HandleFunc("GET /v2", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, oip.ServerMetadata{Name: "imagehub-onnx-worker", Version: RuntimeVersion, Extensions: []string{oip.ExtensionBinaryTensorData}})
	})
	s.mux.HandleFunc("GET /v2/models/{model}", s.modelMetadata)
	s.mux.HandleFunc("GET /v2/models/{model}/versions/{version}", s.modelMetadata)
	s.mux.HandleFunc("GET /v2/models/{model}/ready", s.modelReady)
	s.mux.HandleFunc("GET /v2/models/{model}/versions/{version}/ready", s.modelReady)
	s.mux.HandleFunc("POST /v2/models/{model}/infer", s.infer)
	s.mux.HandleFunc("POST /v2/models/{model}/versions/{version}/infer", s.infer)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no route "+r.Method+" "+r.URL.Path)
	})
}

// ServeHTTP serves the protocol.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Metadata is what GET /v2/models/{model} answers.
func (s *Server) Metadata() oip.ModelMetadata { return s.meta }

// served reports whether the path names the served model (and version).
func (s *Server) served(w http.ResponseWriter, r *http.Request) bool {
	if m := r.PathValue("model"); m != s.cfg.Model {
		writeError(w, http.StatusNotFound, "unknown model "+m+"; this worker serves "+s.cfg.Model)
		return false
	}
	if v := r.PathValue("version"); v != "" && v != s.cfg.Version {
		writeError(w, http.StatusNotFound, "unknown version "+v+" of "+s.cfg.Model+"; this worker serves version "+s.cfg.Version)
		return false
	}
	return true
}

func (s *Server) modelMetadata(w http.ResponseWriter, r *http.Request) {
	if s.served(w, r) {
		writeJSON(w, http.StatusOK, s.meta)
	}
}

func (s *Server) modelReady(w http.ResponseWriter, r *http.Request) {
	if s.served(w, r) {
		writeJSON(w, http.StatusOK, map[string]bool{"ready": true})
	}
}

func (s *Server) infer(w http.ResponseWriter, r *http.Request) {
	if !s.served(w, r) {
		return
	}
	req, release, ok := readRequest(w, r, s.cfg.MaxBodyBytes, s.cfg.Capacity, &s.inFlight)
	if !ok {
		return
	}
	defer release()
	ins, err := s.checkInputs(req)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	want, err := s.requested(req)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	outs, err := s.model.Run(ins)
	if err != nil {
		var run *RunError
		if errors.As(err, &run) {
			// The inputs had the declared datatypes and shapes; what the
			// graph still refuses (a dynamic size it cannot take) is the
			// request's doing, and sending it again would fail the same way.
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		s.log.Warn("inference failed", "id", req.ID, "error", err)
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	resp := &oip.InferResponse{ModelName: s.cfg.Model, ModelVersion: s.cfg.Version, ID: req.ID}
	for _, name := range want {
		for _, o := range outs {
			if o.Name == name {
				resp.Outputs = append(resp.Outputs, o)
			}
		}
	}
	out, err := oip.EncodeResponse(resp, req.OutputBinary)
	if err != nil {
		s.log.Warn("error encoding an answer", "id", req.ID, "error", err)
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	// The slot is free before the answer goes out, so that a client that
	// has read it may send its next request at once.
	release()
	out.SetHeaders(w.Header())
	w.Header().Set("Content-Length", strconv.Itoa(len(out.Bytes)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out.Bytes)
}

// checkInputs returns the request's inputs in the model's order after
// checking each against the model's declaration, so that what reaches ONNX
// Runtime has the right datatype, rank and fixed dimensions.
func (s *Server) checkInputs(req *oip.InferRequest) ([]oip.Tensor, error) {
	decl := s.meta.Inputs
	for _, in := range req.Inputs {
		if !slices.ContainsFunc(decl, func(d oip.TensorMetadata) bool { return d.Name == in.Name }) {
			return nil, fmt.Errorf("unexpected input %q: this model takes %s", in.Name, describe(decl))
		}
	}
	out := make([]oip.Tensor, len(decl))
	for i, d := range decl {
		t := req.Input(d.Name)
		if t == nil {
			return nil, fmt.Errorf("input %q is missing: this model takes %s", d.Name, describe(decl))
		}
		if t.Datatype != d.Datatype {
			return nil, fmt.Errorf("input %q must be %s, not %s", d.Name, d.Datatype, t.Datatype)
		}
		if len(t.Shape) != len(d.Shape) {
			return nil, fmt.Errorf("input %q has shape %v; the model takes %s", d.Name, t.Shape, shapeString(d.Shape))
		}
		for j, n := range d.Shape {
			if t.Shape[j] < 1 || (n >= 0 && t.Shape[j] != n) {
				return nil, fmt.Errorf("input %q has shape %v; the model takes %s (-1: any size from 1)", d.Name, t.Shape, shapeString(d.Shape))
			}
		}
		out[i] = *t
	}
	return out, nil
}

// requested lists the outputs to return: those the request names, in its
// order, or all the model's.
func (s *Server) requested(req *oip.InferRequest) ([]string, error) {
	decl := s.meta.Outputs
	if len(req.Outputs) == 0 {
		names := make([]string, len(decl))
		for i, d := range decl {
			names[i] = d.Name
		}
		return names, nil
	}
	var names []string
	for _, o := range req.Outputs {
		if !slices.ContainsFunc(decl, func(d oip.TensorMetadata) bool { return d.Name == o.Name }) {
			return nil, fmt.Errorf("unknown output %q: this model returns %s", o.Name, describe(decl))
		}
		if !slices.Contains(names, o.Name) {
			names = append(names, o.Name)
		}
	}
	return names, nil
}

// describe lists tensors for an error message: images FP32 [-1,3,640,640], ….
func describe(ts []oip.TensorMetadata) string {
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = fmt.Sprintf("%s %s %s", t.Name, t.Datatype, shapeString(t.Shape))
	}
	return strings.Join(parts, ", ")
}

func shapeString(shape []int64) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = strconv.FormatInt(d, 10)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"error encoding the answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, oip.ErrorBody{Error: msg})
}

// readRequest reads and decodes an inference request for either server,
// taking one of capacity's slots in inFlight (0 is unbounded). It answers
// the error itself and reports ok false; otherwise release gives the slot
// back, once however often it is called, so a handler may free it before
// writing a long answer and defer it as well.
func readRequest(w http.ResponseWriter, r *http.Request, maxBody int64, capacity int, inFlight *atomic.Int64) (req *oip.InferRequest, release func(), ok bool) {
	body, err := oip.ReadBody(r.Body, maxBody)
	if err != nil {
		if errors.Is(err, oip.ErrTooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request is larger than %d bytes", maxBody))
			return nil, nil, false
		}
		writeError(w, http.StatusBadRequest, "error reading the request: "+err.Error())
		return nil, nil, false
	}
	if n := inFlight.Add(1); capacity > 0 && n > int64(capacity) {
		inFlight.Add(-1)
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("the worker is at capacity (%d inferences in flight); try again shortly", capacity))
		return nil, nil, false
	}
	var once sync.Once
	release = func() { once.Do(func() { inFlight.Add(-1) }) }
	jsonLen, err := oip.JSONLength(r.Header, len(body))
	if err == nil {
		req, err = oip.DecodeRequest(body, jsonLen, oip.Limits{MaxBodyBytes: maxBody})
	}
	if err != nil {
		release()
		writeError(w, http.StatusBadRequest, err.Error())
		return nil, nil, false
	}
	return req, release, true
}
