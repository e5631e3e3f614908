package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/deepimageshub/imagehub/regionmodel"
	"github.com/deepimageshub/imagehub/worker"
	"github.com/deepimageshub/imagehub/worker/onnxworker"
)

// The names a model and its version may have (as the models table allows).
var (
	modelName    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	modelVersion = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
)

// workerCmd: imagehub worker [flags] — the project's own inference worker
// on the Open Inference Protocol until Ctrl-C or SIGTERM: the pure-Go
// segmenter (package worker), or with --onnx an ONNX model file run by ONNX
// Runtime (package onnxworker). It needs neither the database nor the blob
// store.
func workerCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("worker", flag.ContinueOnError)
	fset.SetOutput(stderr)
	// 8000 is the HTTP port of Triton and of KServe's V2 servers, so a hub
	// set up for one finds the other at the same address.
	addr := fset.String("addr", cmp.Or(getenv("WORKER_ADDR"), "127.0.0.1:8000"), "host:port to listen on, else WORKER_ADDR; port 0 picks a free one")
	model := fset.String("model", "imagehub-segmenter", "name of the served model (with --onnx: default the file's name without .onnx)")
	version := fset.String("version", "1", "version of the served model")
	capacity := fset.Int("capacity", 0, "inferences in flight; more are answered 503 (0: unbounded)")
	instances := fset.Int("instances", 0, "inferences executing at once, like a Triton instance group's count; admitted ones beyond wait their turn (0: all admitted)")
	shutdownTimeout := fset.Duration("shutdown-timeout", 30*time.Second, "how long Ctrl-C/SIGTERM waits for inferences in flight")

	onnxPath := fset.String("onnx", "", "serve this ONNX model file with ONNX Runtime (ONNXRUNTIME_LIB, else `make onnxruntime`'s .bin/onnxruntime/) instead of the built-in segmenter")
	layout := fset.String("layout", "", "with --onnx: the model's layout, "+strings.Join(onnxworker.Layouts, " or ")+" (sam: --onnx is the encoder, --onnx-decoder the decoder)")
	decoderPath := fset.String("onnx-decoder", "", "with --layout sam: the SAM prompt decoder's ONNX file (segment-anything's export_onnx_model.py), served as the interactive model beside the encoder's embed model (docs/interactive.md)")
	labelsPath := fset.String("labels", "", "with --onnx: file of class names, one per line in output order (default: the file's Ultralytics names)")
	threads := fset.Int("threads", 0, "with --onnx: ONNX Runtime's intra-op threads (0: one per core)")

	modelFile := fset.String("model-file", "", "serve this model file of the project's own trainer (.ihrm, package regionmodel) instead of the built-in segmenter")
	interactiveModel := fset.String("interactive-model", "imagehub-interactive", "name of the click-to-segment model served beside the segmenter (docs/interactive.md); - serves none. With --layout sam: the decoder's name (default the decoder file's name)")
	dense := fset.Bool("dense-masks", false, "answer MASKS as UINT8 [N, H, W] instead of COCO RLE")
	latency := fset.Duration("simulate-latency", 0, "added to every inference, e.g. 50ms")
	synthetic := fset.Bool("synthetic", false, "answer one synthetic instance per image instead of segmenting (stands in for a GPU model in benchmarks)")
	failRate := fset.Float64("fail-rate", 0, "share of inferences answered 500, in [0, 1]")
	timeoutRate := fset.Float64("timeout-rate", 0, "share of inferences never answered in time, in [0, 1]")
	malformedRate := fset.Float64("malformed-rate", 0, "share of inferences answered against the convention, in [0, 1]")
	hang := fset.Duration("hang", 2*time.Minute, "how long a simulated timeout holds its request before a 504")
	maxBatch := fset.Int("max-batch", 8, "most images in one request (IMAGE [B]); more are refused with a 400")
	failBatches := fset.Bool("fail-batches", false, "answer 500 to every request of more than one image")
	seed := fset.Uint64("seed", 0, "seed of the simulation's draws")
	fset.Usage = func() {
		fmt.Fprintln(stderr, "usage: imagehub worker [flags]")
		fmt.Fprintln(stderr, "       imagehub worker --onnx model.onnx --layout yolo-seg|maskrcnn [--labels labels.txt] [flags]")
		fmt.Fprintln(stderr, "       imagehub worker --onnx encoder.onnx --onnx-decoder decoder.onnx --layout sam [flags]")
		fmt.Fprintln(stderr, "       imagehub worker --model-file model.ihrm [flags]")
		fset.PrintDefaults()
	}
	if err := fset.Parse(args); err != nil {
		return errUsage
	}
	bad := func(format string, a ...any) error {
		fmt.Fprintf(stderr, "imagehub worker: "+format+"\n", a...)
		return errUsage
	}
	set := map[string]bool{}
	fset.Visit(func(f *flag.Flag) { set[f.Name] = true })
	onnxOnly := []string{"layout", "labels", "threads", "onnx-decoder"}
	segmenterOnly := []string{"dense-masks", "simulate-latency", "synthetic", "fail-rate", "timeout-rate", "malformed-rate", "hang", "seed", "instances"}
	if *modelFile != "" && *onnxPath != "" {
		return bad("--model-file and --onnx name two models; give one")
	}
	if *modelFile != "" {
		if !set["model"] {
			*model = strings.TrimSuffix(filepath.Base(*modelFile), filepath.Ext(*modelFile))
			if !modelName.MatchString(*model) {
				return bad("--model is needed: the file's name %q is not a model name (1 to 128 letters, digits, '_', '.' or '-')", *model)
			}
		}
		for _, f := range []string{"synthetic", "fail-rate", "timeout-rate", "malformed-rate"} {
			if set[f] {
				return bad("--%s is for the built-in segmenter, not a trained model", f)
			}
		}
	}
	if *onnxPath == "" {
		for _, f := range onnxOnly {
			if set[f] {
				return bad("--%s needs --onnx", f)
			}
		}
	} else {
		for _, f := range segmenterOnly {
			if set[f] {
				return bad("--%s is for the built-in segmenter, not an ONNX model", f)
			}
		}
		if !set["model"] {
			*model = strings.TrimSuffix(filepath.Base(*onnxPath), filepath.Ext(*onnxPath))
			if !modelName.MatchString(*model) {
				return bad("--model is needed: the file's name %q is not a model name (1 to 128 letters, digits, '_', '.' or '-')", *model)
			}
		}
	}
	switch {
	case fset.NArg() > 0:
		return bad("unexpected argument %q; imagehub worker takes only flags", fset.Arg(0))
	case !modelName.MatchString(*model):
		return bad("--model %q: a model name is 1 to 128 letters, digits, '_', '.' or '-', starting with a letter or digit", *model)
	case !modelVersion.MatchString(*version):
		return bad("--version %q: a version is 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit", *version)
	case *capacity < 0:
		return bad("--capacity %d: must be 0 (unbounded) or more", *capacity)
	case *instances < 0:
		return bad("--instances %d: must be 0 (every admitted inference) or more", *instances)
	case *maxBatch < 1:
		return bad("--max-batch %d: must be at least 1", *maxBatch)
	case *latency < 0:
		return bad("--simulate-latency %v: must not be negative", *latency)
	case *hang <= 0:
		return bad("--hang %v: must be positive", *hang)
	case *shutdownTimeout <= 0:
		return bad("--shutdown-timeout %v: must be positive", *shutdownTimeout)
	case *onnxPath != "" && !slices.Contains(onnxworker.Layouts, *layout):
		return bad("--layout %q: --onnx needs the model's layout, %s", *layout, strings.Join(onnxworker.Layouts, " or "))
	case *layout == onnxworker.LayoutSAM && *decoderPath == "":
		return bad("--layout sam needs --onnx-decoder, the decoder's file (--onnx is the encoder's)")
	case *layout != onnxworker.LayoutSAM && *decoderPath != "":
		return bad("--onnx-decoder is for --layout sam")
	case *layout == onnxworker.LayoutSAM && *labelsPath != "":
		return bad("--labels is for a segmentation layout; a SAM model has no classes")
	case *threads < 0:
		return bad("--threads %d: must be 0 (one per core) or more", *threads)
	}
	for _, r := range []struct {
		flag string
		v    float64
	}{{"fail-rate", *failRate}, {"timeout-rate", *timeoutRate}, {"malformed-rate", *malformedRate}} {
		if !(r.v >= 0 && r.v <= 1) { // also refuses NaN
			return bad("--%s %v: must be between 0 and 1", r.flag, r.v)
		}
	}
	logger, err := workerLogger(getenv, stderr)
	if err != nil {
		return err
	}

	var (
		handler http.Handler
		stats   func() any
		// The answer is written after the inference and, for the
		// segmenter, the simulated latency and hang.
		writeTimeout = 2 * time.Minute
	)
	if *layout == onnxworker.LayoutSAM {
		if !set["interactive-model"] {
			*interactiveModel = strings.TrimSuffix(filepath.Base(*decoderPath), filepath.Ext(*decoderPath))
			if !modelName.MatchString(*interactiveModel) {
				return bad("--interactive-model is needed: the decoder file's name %q is not a model name", *interactiveModel)
			}
		}
		if !modelName.MatchString(*interactiveModel) {
			return bad("--interactive-model %q: a model name is 1 to 128 letters, digits, '_', '.' or '-', starting with a letter or digit", *interactiveModel)
		}
		opts := onnxworker.Options{Library: onnxworker.Library(getenv), Threads: *threads}
		enc, err := onnxworker.Open(*onnxPath, opts)
		if err != nil {
			return err
		}
		defer enc.Close()
		dec, err := onnxworker.Open(*decoderPath, opts)
		if err != nil {
			return err
		}
		defer dec.Close()
		sam, err := onnxworker.NewSAM(enc, dec, onnxworker.SAMConfig{EmbedModel: *model, InteractiveModel: *interactiveModel, Version: *version, Capacity: *capacity, Logger: logger})
		if err != nil {
			return fmt.Errorf("error serving %s and %s as a SAM model: %w", *onnxPath, *decoderPath, err)
		}
		handler = sam
		stats = func() any { return nil }
		logger.Info("loaded the SAM model", "encoder", *onnxPath, "decoder", *decoderPath, "embed_model", *model, "interactive_model", *interactiveModel)
	} else if *onnxPath != "" {
		var labels []string
		if *labelsPath != "" {
			if labels, err = onnxworker.ReadLabels(*labelsPath); err != nil {
				return err
			}
		}
		m, err := onnxworker.Open(*onnxPath, onnxworker.Options{Library: onnxworker.Library(getenv), Threads: *threads})
		if err != nil {
			return err
		}
		defer m.Close()
		if labels == nil {
			names, err := m.Names()
			if err != nil {
				logger.Warn("the model's Ultralytics names cannot be read; serving no labels (give --labels)", "error", err)
			}
			labels = names
		}
		if err := onnxworker.CheckLabels(m, *layout, labels); err != nil {
			return err
		}
		handler = onnxworker.New(m, onnxworker.Config{Model: *model, Version: *version, Layout: *layout, Labels: labels, Capacity: *capacity, Logger: logger})
		stats = func() any { return nil }
		logger.Info("loaded the ONNX model", "file", *onnxPath, "layout", *layout, "labels", len(labels), "inputs", m.Inputs(), "outputs", m.Outputs())
	} else {
		var rm *regionmodel.Model
		if *modelFile != "" {
			f, err := os.Open(*modelFile)
			if err != nil {
				return fmt.Errorf("error opening the model file: %w", err)
			}
			rm, err = regionmodel.Load(f)
			f.Close()
			if err != nil {
				return fmt.Errorf("error loading %s: %w", *modelFile, err)
			}
			logger.Info("loaded the region model", "file", *modelFile, "labels", rm.Labels)
		}
		w := worker.New(worker.Config{
			RegionModel: rm, InteractiveModel: *interactiveModel,
			Model: *model, Version: *version, DenseMasks: *dense, Logger: logger,
			SimulateLatency: *latency, Synthetic: *synthetic, Capacity: *capacity, Instances: *instances, FailRate: *failRate,
			TimeoutRate: *timeoutRate, Hang: *hang, MalformedRate: *malformedRate, Seed: *seed,
			MaxBatch: *maxBatch, FailBatches: *failBatches,
		})
		handler = w
		stats = func() any { return w.Stats() }
		writeTimeout += *latency + *hang
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("error listening on %s: %w", *addr, err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		// A request body may be 64 MiB from a hub on a slow link.
		ReadTimeout:  2 * time.Minute,
		WriteTimeout: writeTimeout,
		IdleTimeout:  2 * time.Minute,
		ErrorLog:     slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if *layout == onnxworker.LayoutSAM {
		fmt.Fprintf(stdout, "imagehub worker: serving models %s (embed) and %s (interactive) version %s on http://%s\n", *model, *interactiveModel, *version, ln.Addr())
	} else {
		fmt.Fprintf(stdout, "imagehub worker: serving model %s version %s on http://%s\n", *model, *version, ln.Addr())
	}

	select {
	case <-ctx.Done():
	case err := <-served:
		return err
	}
	logger.Info("shutting down", "timeout", *shutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), *shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		// Closing the connections tells the clients to retry elsewhere;
		// cancelling the inferences instead would answer them 200 with no body.
		logger.Warn("inferences did not finish in time; closing their connections", "error", err)
		_ = srv.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	if st := stats(); st != nil {
		logger.Info("stopped", "stats", st)
	} else {
		logger.Info("stopped")
	}
	return nil
}

// workerLogger logs to w as LOG_FORMAT and LOG_LEVEL say, like the other
// commands, without reading the rest of the hub's configuration.
func workerLogger(getenv func(string) string, w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cmp.Or(getenv("LOG_LEVEL"), "info"))); err != nil {
		return nil, fmt.Errorf("LOG_LEVEL %q: %w", getenv("LOG_LEVEL"), err)
	}
	opts := &slog.HandlerOptions{Level: level}
	if getenv("LOG_FORMAT") == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}
