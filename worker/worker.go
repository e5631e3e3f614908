// Package worker is the project's own inference server: it speaks the Open
// Inference Protocol (KServe V2 REST, with Triton's binary tensor extension)
// and follows the hub's segmentation convention (PROTOCOL.md), segmenting on
// the CPU in pure Go with package segment. `imagehub worker` and `make run`
// start it so that the whole hub runs on one laptop; tests and benchmarks
// start it with simulated latency, capacity and faults.
//
// Routes (errors are {"error": "…"} with a 4xx or 5xx status):
//
//	GET  /v2/health/live, /v2/health/ready             200 while up
//	GET  /v2                                            server metadata (extensions: binary_tensor_data)
//	GET  /v2/models/{model}[/versions/{v}]              model metadata
//	GET  /v2/models/{model}[/versions/{v}]/ready        200 for the served model
//	POST /v2/models/{model}[/versions/{v}]/infer        one inference, JSON or binary body
//	GET  /v2/sim/stats                                  Stats as JSON
//
// The model takes IMAGE (BYTES [B], encoded JPEG, PNG or WebP files) and the
// optional LABEL_HINTS (BYTES [K]) and returns MASKS (BYTES [N], each a COCO
// compressed RLE JSON object at the image's full size; UINT8 [N, H, W] with
// Config.DenseMasks), SCORES (FP32 [N], saliency in [0, 1]), LABELS (BYTES
// [N]) and, for a batch of more than one image, BATCH_INDEX (INT32 [N]).
// Instances come most salient first.
//
// Label policy: the segmenter does not recognise anything, so labels come
// from the hints. The i-th most salient instance of an image (i from 0) is
// labelled LABEL_HINTS[i mod K]: with one hint every instance gets it, with
// several the most salient gets the first. Without hints every instance is
// labelled "object".
//
// Beside it the worker serves the interactive model imagehub-interactive
// (Config.InteractiveModel; prompt.go and docs/interactive.md): a reviewer's
// clicks and box on IMAGE give one mask, by a graph cut over superpixels
// that are computed once per image and cached by its SHA-256. Prompts take
// no capacity slot and no simulated fault.
//
// With Config.RegionModel the worker serves a model of the project's own
// trainer (package regionmodel) instead: its instances carry the model's
// labels, and LABEL_HINTS are ignored. With Config.Loader it also serves,
// under their own names, the region models the loader finds.
//
// An output travels binary when the request asks for it ("binary_data": true
// on the requested output, or "binary_data_output": true on the request),
// else as JSON with BYTES in base64. The answer's id is the request's.
//
// Simulation (Config): SimulateLatency is added to every inference;
// Capacity bounds the inferences in flight (one counts from when its body
// is read until its answer starts), and a request beyond it is answered 503
// with Retry-After: 1 as soon as its body is read; Instances bounds the
// inferences executing at once, as a Triton model's instance group does,
// and the admitted ones beyond it wait their turn (a server's queue, which
// is what keeps a GPU busy between one client's requests); FailRate answers 500;
// TimeoutRate holds the request without answering until the client gives up
// (or Hang passes, then 504); MalformedRate answers 200 with a body that
// breaks the convention in one of the ways of Malformations.
// The draws come from a PCG generator seeded with Seed, one set of draws per
// request in arrival order, so a run with requests sent one at a time is
// reproducible.
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/deepimageshub/imagehub/oip"
	"github.com/deepimageshub/imagehub/regionmodel"
	"github.com/deepimageshub/imagehub/worker/segment"
)

// Config configures a Server; the zero value serves the real segmenter
// without simulated faults.
type Config struct {
	Model      string // default "imagehub-segmenter"
	Version    string // default "1"
	DenseMasks bool   // answer MASKS as UINT8 [N, H, W] instead of RLE
	Segment    segment.Options

	// InteractiveModel is the name of the interactive model served beside
	// the segmenter (prompt.go, docs/interactive.md); default
	// "imagehub-interactive", "-" serves none.
	InteractiveModel string
	Interactive      segment.InteractiveOptions
	// PreparedImages is how many prepared images the interactive model
	// keeps; default 64.
	PreparedImages int

	MaxBodyBytes int64 // default 64 MiB
	MaxPixels    int64 // per image; default 50 million
	MaxBatch     int   // images in one request; default 8
	Logger       *slog.Logger

	SimulateLatency time.Duration
	// Synthetic answers every image with one instance (its middle half)
	// instead of segmenting it: a stand-in for a GPU model whose work
	// costs this machine nothing, for benchmarks of the hub.
	Synthetic     bool
	Capacity      int           // inferences in flight; 0 is unbounded
	Instances     int           // inferences executing at once; 0: every admitted one
	FailRate      float64       // share of requests answered 500
	TimeoutRate   float64       // share of requests never answered in time
	Hang          time.Duration // how long a timed-out request is held; default 2 minutes
	MalformedRate float64       // share of requests answered against the convention
	Malformations []Malformation
	Seed          uint64
	// FailBatches answers 500 to every request of more than one image (a
	// server whose batched path is broken), so the hub's fallback to one
	// image a request can be seen.
	FailBatches bool

	// RegionModel, when set, is served instead of the segmenter: a model of
	// the project's own trainer, whose instances carry their own labels
	// (LABEL_HINTS are then ignored).
	RegionModel *regionmodel.Model
	// Loader, when set, lets the worker serve models other than Model: a
	// request for model name (and version, "" when the path names none)
	// loads a region model file through it, once, and keeps it. The hub's
	// built-in worker serves trained models from the blob store this way.
	// An error wrapping fs.ErrNotExist answers 404.
	Loader func(ctx context.Context, name, version string) (io.ReadCloser, error)
}

// maxLoaded bounds the models a Loader keeps in memory; the oldest goes.
const maxLoaded = 32

// Server is the worker's HTTP handler.
type Server struct {
	cfg Config
	mux *http.ServeMux
	log *slog.Logger

	mu  sync.Mutex // guards rng
	rng *rand.Rand

	cache *prepCache

	loadMu sync.Mutex
	loaded map[[2]string]*regionmodel.Model
	order  [][2]string

	inFlight, peak                              atomic.Int64
	prompts                                     atomic.Int64
	requests, succeeded, busy, failed, timedOut atomic.Int64
	malformed, badRequests                      atomic.Int64
	images, largestBatch                        atomic.Int64
	busyNanos                                   atomic.Int64
	// instances holds a token per inference executing, when bounded.
	instances chan struct{}
}

// New makes a Server.
func New(cfg Config) *Server {
	if cfg.Model == "" {
		cfg.Model = "imagehub-segmenter"
	}
	if cfg.Version == "" {
		cfg.Version = "1"
	}
	if cfg.InteractiveModel == "" {
		cfg.InteractiveModel = "imagehub-interactive"
	}
	if cfg.PreparedImages <= 0 {
		cfg.PreparedImages = 64
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = oip.DefaultMaxBodyBytes
	}
	if cfg.MaxPixels <= 0 {
		cfg.MaxPixels = 50_000_000
	}
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 8
	}
	if cfg.Hang <= 0 {
		cfg.Hang = 2 * time.Minute
	}
	if len(cfg.Malformations) == 0 {
		cfg.Malformations = AllMalformations
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), log: cfg.Logger, rng: rand.New(rand.NewPCG(cfg.Seed, 0x1a9e)),
		cache: newPrepCache(cfg.PreparedImages), loaded: map[[2]string]*regionmodel.Model{}}
	if cfg.Instances > 0 {
		s.instances = make(chan struct{}, cfg.Instances)
	}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
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
	s.mux.HandleFunc("GET /v2", s.serverMetadata)
	s.mux.HandleFunc("GET /v2/models/{model}", s.modelMetadata)
	s.mux.HandleFunc("GET /v2/models/{model}/versions/{version}", s.modelMetadata)
	s.mux.HandleFunc("GET /v2/models/{model}/ready", s.modelReady)
	s.mux.HandleFunc("GET /v2/models/{model}/versions/{version}/ready", s.modelReady)
	s.mux.HandleFunc("POST /v2/models/{model}/infer", s.infer)
	s.mux.HandleFunc("POST /v2/models/{model}/versions/{version}/infer", s.infer)
	s.mux.HandleFunc("GET /v2/sim/stats", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.Stats()) })
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no route "+r.Method+" "+r.URL.Path)
	})
}

// ServeHTTP serves the protocol.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Model is the served model's name.
func (s *Server) Model() string { return s.cfg.Model }

// Metadata is what GET /v2/models/{model} answers.
func (s *Server) Metadata() oip.ModelMetadata {
	masks := oip.TensorMetadata{Name: "MASKS", Datatype: oip.BYTES, Shape: []int64{-1}}
	if s.cfg.DenseMasks {
		masks = oip.TensorMetadata{Name: "MASKS", Datatype: oip.UINT8, Shape: []int64{-1, -1, -1}}
	}
	return oip.ModelMetadata{
		Name:     s.cfg.Model,
		Versions: []string{s.cfg.Version},
		Platform: "imagehub_go",
		Inputs: []oip.TensorMetadata{
			{Name: "IMAGE", Datatype: oip.BYTES, Shape: []int64{-1}},
			{Name: "LABEL_HINTS", Datatype: oip.BYTES, Shape: []int64{-1}},
		},
		Outputs: []oip.TensorMetadata{
			masks,
			{Name: "SCORES", Datatype: oip.FP32, Shape: []int64{-1}},
			{Name: "LABELS", Datatype: oip.BYTES, Shape: []int64{-1}},
			{Name: "BATCH_INDEX", Datatype: oip.INT32, Shape: []int64{-1}},
		},
	}
}

func (s *Server) serverMetadata(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, oip.ServerMetadata{Name: "imagehub-worker", Version: "1", Extensions: []string{oip.ExtensionBinaryTensorData}})
}

// interactive reports whether the path names the interactive model.
func (s *Server) interactive(r *http.Request) bool {
	return s.cfg.InteractiveModel != "-" && r.PathValue("model") == s.cfg.InteractiveModel
}

// served resolves the model (and version) the path names: the configured
// segmenter or interactive model, or one the Loader finds. m is nil for the
// built-in segmenter; ok is false when an error was answered.
func (s *Server) served(w http.ResponseWriter, r *http.Request) (name, version string, m *regionmodel.Model, ok bool) {
	name, version = r.PathValue("model"), r.PathValue("version")
	if (name == s.cfg.Model || s.interactive(r)) && (version == "" || version == s.cfg.Version) {
		return name, s.cfg.Version, s.cfg.RegionModel, true
	}
	if s.cfg.Loader == nil {
		if name != s.cfg.Model {
			writeError(w, http.StatusNotFound, "unknown model "+name+"; this worker serves "+s.cfg.Model)
		} else {
			writeError(w, http.StatusNotFound, "unknown version "+version+" of "+s.cfg.Model+"; this worker serves version "+s.cfg.Version)
		}
		return "", "", nil, false
	}
	m, err := s.load(r.Context(), name, version)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			writeError(w, http.StatusNotFound, fmt.Sprintf("unknown model %s version %q: %v", name, version, err))
		} else {
			s.log.Warn("error loading a model", "model", name, "version", version, "error", err)
			writeError(w, http.StatusInternalServerError, fmt.Sprintf("error loading model %s version %q: %v", name, version, err))
		}
		return "", "", nil, false
	}
	return name, version, m, true
}

// load returns a model from the Loader, loading it on first use.
func (s *Server) load(ctx context.Context, name, version string) (*regionmodel.Model, error) {
	key := [2]string{name, version}
	s.loadMu.Lock()
	defer s.loadMu.Unlock()
	if m := s.loaded[key]; m != nil {
		return m, nil
	}
	rc, err := s.cfg.Loader(ctx, name, version)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	m, err := regionmodel.Load(rc)
	if err != nil {
		return nil, err
	}
	if len(s.order) >= maxLoaded {
		delete(s.loaded, s.order[0])
		s.order = s.order[1:]
	}
	s.loaded[key] = m
	s.order = append(s.order, key)
	return m, nil
}

func (s *Server) modelMetadata(w http.ResponseWriter, r *http.Request) {
	name, version, _, ok := s.served(w, r)
	if !ok {
		return
	}
	if s.interactive(r) {
		writeJSON(w, http.StatusOK, s.InteractiveMetadata())
		return
	}
	md := s.Metadata()
	md.Name, md.Versions = name, []string{version}
	if version == "" {
		md.Versions = nil
	}
	writeJSON(w, http.StatusOK, md)
}

func (s *Server) modelReady(w http.ResponseWriter, r *http.Request) {
	if _, _, _, ok := s.served(w, r); ok {
		writeJSON(w, http.StatusOK, map[string]bool{"ready": true})
	}
}

// Stats counts what the worker did since it started.
type Stats struct {
	Requests     int64 `json:"requests"`       // inference requests for the served model
	Prompts      int64 `json:"prompts"`        // requests for the interactive model
	Succeeded    int64 `json:"succeeded"`      // answered 200 by the rules
	Busy         int64 `json:"busy"`           // refused with 503, over capacity
	Failed       int64 `json:"failed"`         // simulated 500s
	TimedOut     int64 `json:"timed_out"`      // simulated hangs
	Malformed    int64 `json:"malformed"`      // simulated broken answers
	BadRequests  int64 `json:"bad_requests"`   // refused with a 4xx
	InFlight     int64 `json:"in_flight"`      // inferences being served now
	PeakInFlight int64 `json:"peak_in_flight"` // most inferences ever served at once
	Images       int64 `json:"images"`         // images in the requests that were decoded
	LargestBatch int64 `json:"largest_batch"`  // most images in one request
	// BusyMS sums, over admitted inference requests, the time from the
	// start of execution (admission, or with Instances the moment one is
	// free) to the first byte of the answer: a benchmark divides it by its
	// wall time to tell the worker's own service time from the hub's
	// hand-over between requests.
	BusyMS float64 `json:"busy_ms"`
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	return Stats{
		Requests: s.requests.Load(), Prompts: s.prompts.Load(), Succeeded: s.succeeded.Load(), Busy: s.busy.Load(),
		Failed: s.failed.Load(), TimedOut: s.timedOut.Load(), Malformed: s.malformed.Load(),
		BadRequests: s.badRequests.Load(), InFlight: s.inFlight.Load(), PeakInFlight: s.peak.Load(),
		Images: s.images.Load(), LargestBatch: s.largestBatch.Load(),
		BusyMS: float64(s.busyNanos.Load()) / 1e6,
	}
}

// admit takes a slot for one inference, or reports that all are taken.
func (s *Server) admit() bool {
	for {
		cur := s.inFlight.Load()
		if s.cfg.Capacity > 0 && cur >= int64(s.cfg.Capacity) {
			return false
		}
		if s.inFlight.CompareAndSwap(cur, cur+1) {
			for {
				p := s.peak.Load()
				if cur+1 <= p || s.peak.CompareAndSwap(p, cur+1) {
					return true
				}
			}
		}
	}
}

func (s *Server) release() { s.inFlight.Add(-1) }

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
