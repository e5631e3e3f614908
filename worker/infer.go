package worker

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // IMAGE may be JPEG,
	_ "image/png"  // PNG
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	_ "golang.org/x/image/webp" // or WebP.

	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/oip"
	"github.com/deepimageshub/imagehub/regionmodel"
	"github.com/deepimageshub/imagehub/worker/segment"
)

// The tensors of the convention.
const (
	inImage      = "IMAGE"
	inHints      = "LABEL_HINTS"
	outMasks     = "MASKS"
	outScores    = "SCORES"
	outLabels    = "LABELS"
	outBatch     = "BATCH_INDEX"
	defaultLabel = "object"
)

// badRequest is a request the worker refuses with a 400.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

func refuse(format string, args ...any) error { return &badRequest{fmt.Sprintf(format, args...)} }

// result is what the segmenter found in one image of a request.
type result struct {
	w, h   int
	ins    []segment.Instance
	labels []string
}

func (s *Server) infer(w http.ResponseWriter, r *http.Request) {
	name, version, model, ok := s.served(w, r)
	if !ok {
		return
	}
	if s.interactive(r) {
		s.prompt(w, r)
		return
	}
	s.requests.Add(1)
	body, err := oip.ReadBody(r.Body, s.cfg.MaxBodyBytes)
	if err != nil {
		s.badRequests.Add(1)
		if errors.Is(err, oip.ErrTooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request is larger than %d bytes", s.cfg.MaxBodyBytes))
			return
		}
		writeError(w, http.StatusBadRequest, "error reading the request: "+err.Error())
		return
	}
	if !s.admit() {
		s.busy.Add(1)
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("the worker is at capacity (%d inferences in flight); try again shortly", s.cfg.Capacity))
		return
	}
	// The slot is given back before the first byte of the answer goes out:
	// a client that has read the whole answer may send its next request at
	// once, before this handler returns, and must find the slot free. The
	// defer covers the paths that answer nothing (the client went away).
	// Busy time counts from when the inference starts executing: at
	// admission, or once an instance is free.
	started := time.Now()
	executing := false
	release := sync.OnceFunc(func() {
		s.busyNanos.Add(int64(time.Since(started)))
		if executing {
			<-s.instances
		}
		s.release()
	})
	defer release()
	w = &releasingWriter{ResponseWriter: w, release: release}

	jsonLen, err := oip.JSONLength(r.Header, len(body))
	if err != nil {
		s.badRequests.Add(1)
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	req, err := oip.DecodeRequest(body, jsonLen, oip.Limits{MaxBodyBytes: s.cfg.MaxBodyBytes})
	if err != nil {
		s.badRequests.Add(1)
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}

	batch := 0
	if img := req.Input(inImage); img != nil {
		batch = len(img.Elems)
	}
	s.images.Add(int64(batch))
	for {
		l := s.largestBatch.Load()
		if int64(batch) <= l || s.largestBatch.CompareAndSwap(l, int64(batch)) {
			break
		}
	}

	ctx := r.Context()
	if s.instances != nil {
		select {
		case s.instances <- struct{}{}:
			executing, started = true, time.Now()
		case <-ctx.Done():
			return
		}
	}
	f := s.draw()
	if !sleep(ctx, s.cfg.SimulateLatency) {
		return
	}
	switch {
	case f.timeout:
		s.timedOut.Add(1)
		s.log.Debug("simulating a timeout", "id", req.ID)
		if sleep(ctx, s.cfg.Hang) {
			writeError(w, http.StatusGatewayTimeout, "simulated timeout")
		}
		return
	case f.fail:
		s.failed.Add(1)
		writeError(w, http.StatusInternalServerError, "simulated failure")
		return
	case s.cfg.FailBatches && batch > 1:
		s.failed.Add(1)
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("simulated failure of a batch of %d images", batch))
		return
	}

	results, err := s.segment(req, model)
	if err != nil {
		var bad *badRequest
		if errors.As(err, &bad) {
			s.badRequests.Add(1)
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		s.log.Warn("inference failed", "id", req.ID, "error", err)
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if f.malformed {
		ensureInstance(results)
	}
	resp, err := s.respond(req, name, version, results)
	if err != nil {
		s.badRequests.Add(1)
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	binary := map[string]bool{}
	for _, t := range resp.Outputs {
		binary[t.Name] = req.OutputBinary(t.Name)
	}
	if f.malformed {
		s.malformed.Add(1)
		s.log.Debug("simulating a malformed answer", "id", req.ID, "kind", f.kind)
		if f.kind == NotJSON {
			w.Header().Set("Content-Type", "text/html")
			_, _ = w.Write([]byte("<html><body>502 Bad Gateway</body></html>"))
			return
		}
		malform(resp, f.kind, results, binary)
	}
	out, err := oip.EncodeResponse(resp, func(name string) bool { return binary[name] })
	if err != nil {
		s.log.Warn("error encoding an answer", "id", req.ID, "error", err)
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if !f.malformed {
		s.succeeded.Add(1)
	}
	out.SetHeaders(w.Header())
	w.Header().Set("Content-Length", strconv.Itoa(len(out.Bytes)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out.Bytes)
}

// releasingWriter calls release before the first status or byte of the
// answer is written.
type releasingWriter struct {
	http.ResponseWriter
	release func()
}

func (w *releasingWriter) WriteHeader(status int) {
	w.release()
	w.ResponseWriter.WriteHeader(status)
}

func (w *releasingWriter) Write(b []byte) (int, error) {
	w.release()
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *releasingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// sleep waits d, or less when ctx ends first; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// segment checks the inputs, decodes each image and segments it, with the
// region model m when there is one.
func (s *Server) segment(req *oip.InferRequest, m *regionmodel.Model) ([]result, error) {
	for _, in := range req.Inputs {
		if in.Name != inImage && in.Name != inHints {
			return nil, refuse("unexpected input %q: this model takes IMAGE and LABEL_HINTS", in.Name)
		}
	}
	img := req.Input(inImage)
	if img == nil {
		return nil, refuse("input IMAGE is missing")
	}
	if img.Datatype != oip.BYTES || len(img.Shape) != 1 {
		return nil, refuse("input IMAGE must be BYTES of shape [B], not %s %v", img.Datatype, img.Shape)
	}
	if len(img.Elems) == 0 || len(img.Elems) > s.cfg.MaxBatch {
		return nil, refuse("input IMAGE holds %d images; send 1 to %d", len(img.Elems), s.cfg.MaxBatch)
	}
	var hints []string
	if h := req.Input(inHints); h != nil {
		if h.Datatype != oip.BYTES || len(h.Shape) != 1 {
			return nil, refuse("input LABEL_HINTS must be BYTES of shape [K], not %s %v", h.Datatype, h.Shape)
		}
		if len(h.Elems) > 1000 {
			return nil, refuse("input LABEL_HINTS holds %d labels, more than 1000", len(h.Elems))
		}
		for i, e := range h.Elems {
			if len(e) == 0 || len(e) > 256 || !utf8.Valid(e) {
				return nil, refuse("LABEL_HINTS element %d must be 1 to 256 bytes of UTF-8", i)
			}
			hints = append(hints, string(e))
		}
	}
	out := make([]result, len(img.Elems))
	for i, data := range img.Elems {
		cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
		if err != nil {
			return nil, refuse("IMAGE element %d is not a JPEG, PNG or WebP image", i)
		}
		if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > mask.MaxSide || cfg.Height > mask.MaxSide || int64(cfg.Width)*int64(cfg.Height) > s.cfg.MaxPixels {
			return nil, refuse("IMAGE element %d is %d×%d pixels; at most %d pixels and %d on a side", i, cfg.Width, cfg.Height, s.cfg.MaxPixels, mask.MaxSide)
		}
		if s.cfg.Synthetic {
			out[i] = result{w: cfg.Width, h: cfg.Height, ins: []segment.Instance{synthetic(cfg.Width, cfg.Height)}, labels: []string{defaultLabel}}
			if len(hints) > 0 {
				out[i].labels[0] = hints[0]
			}
			continue
		}
		pix, _, err := image.Decode(bytes.NewReader(data))
		if err != nil {
			return nil, refuse("IMAGE element %d cannot be decoded: %v", i, err)
		}
		if m != nil {
			found := m.Segment(pix)
			r := result{w: pix.Bounds().Dx(), h: pix.Bounds().Dy()}
			for _, in := range found {
				r.ins = append(r.ins, segment.Instance{Mask: in.Mask, Score: in.Score})
				r.labels = append(r.labels, in.Label)
			}
			out[i] = r
			continue
		}
		ins := segment.Segment(pix, s.cfg.Segment)
		labels := make([]string, len(ins))
		for j := range labels {
			labels[j] = defaultLabel
			if len(hints) > 0 {
				labels[j] = hints[j%len(hints)]
			}
		}
		out[i] = result{w: pix.Bounds().Dx(), h: pix.Bounds().Dy(), ins: ins, labels: labels}
	}
	return out, nil
}

// respond builds the outputs the request asked for (all by default).
func (s *Server) respond(req *oip.InferRequest, name, version string, results []result) (*oip.InferResponse, error) {
	var n int
	for _, r := range results {
		n += len(r.ins)
	}
	scores := make([]float32, 0, n)
	labels := make([][]byte, 0, n)
	batch := make([]int32, 0, n)
	for b, r := range results {
		for j, in := range r.ins {
			scores = append(scores, in.Score)
			labels = append(labels, []byte(r.labels[j]))
			batch = append(batch, int32(b))
		}
	}
	var masks oip.Tensor
	if s.cfg.DenseMasks {
		w, h := results[0].w, results[0].h
		raw := make([]byte, 0, n*w*h)
		for _, r := range results {
			if r.w != w || r.h != h {
				return nil, refuse("dense masks need every image of a batch to have one size")
			}
			for _, in := range r.ins {
				raw = append(raw, in.Mask.Pix...)
			}
		}
		masks = oip.Uint8Tensor(outMasks, []int64{int64(n), int64(h), int64(w)}, raw)
	} else {
		elems := make([][]byte, 0, n)
		for _, r := range results {
			for _, in := range r.ins {
				b, err := json.Marshal(mask.Encode(in.Mask))
				if err != nil {
					return nil, err
				}
				elems = append(elems, b)
			}
		}
		masks = oip.BytesTensor(outMasks, elems...)
	}
	all := []oip.Tensor{
		masks,
		oip.FP32Tensor(outScores, []int64{int64(n)}, scores),
		oip.BytesTensor(outLabels, labels...),
		oip.Int32Tensor(outBatch, []int64{int64(n)}, batch),
	}
	resp := &oip.InferResponse{ModelName: name, ModelVersion: version, ID: req.ID}
	if len(req.Outputs) == 0 {
		resp.Outputs = all[:3]
		if len(results) > 1 {
			resp.Outputs = all
		}
		return resp, nil
	}
	for _, o := range req.Outputs {
		i := 0
		for i < len(all) && all[i].Name != o.Name {
			i++
		}
		if i == len(all) {
			return nil, refuse("unknown output %q: this model returns MASKS, SCORES, LABELS and BATCH_INDEX", o.Name)
		}
		if resp.Output(o.Name) == nil {
			resp.Outputs = append(resp.Outputs, all[i])
		}
	}
	return resp, nil
}

// synthetic is the one instance a synthetic worker proposes: the middle
// half of the image. It stands for a model whose computing happens
// elsewhere (a GPU), so that benchmarks of the hub measure the hub.
func synthetic(w, h int) segment.Instance {
	b := mask.NewBitmap(w, h)
	for y := h / 4; y < h-h/4; y++ {
		for x := w / 4; x < w-w/4; x++ {
			b.Set(x, y, true)
		}
	}
	if b.Area() == 0 {
		b.Set(0, 0, true)
	}
	return segment.Instance{Mask: b, Score: 0.5}
}
