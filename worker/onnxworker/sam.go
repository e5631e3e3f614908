package onnxworker

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"

	_ "image/jpeg" // IMAGE may be a JPEG,
	_ "image/png"  // a PNG

	_ "golang.org/x/image/webp" // or a WebP.

	"github.com/deepimageshub/imagehub/layout"
	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/oip"
	"github.com/deepimageshub/imagehub/prompt"
)

// LayoutSAM is a two-stage Segment Anything model: an image encoder and a
// prompt decoder, two ONNX files, served as two models that speak the hub's
// prompt protocol (docs/interactive.md) rather than their own tensors: an
// embed model (IMAGE → EMBEDDING) and an interactive model (EMBEDDING and a
// prompt → MASKS and SCORES). The worker does what segment-anything's
// SamPredictor does around the two networks:
//
//   - the encoder takes the pre-processed image, `image` (any name) FP32
//     [1, 3, 1024, 1024]: the photo resized so that its long side is 1024
//     (ResizeLongestSide: each side times 1024/long side, rounded), bilinear,
//     normalised with SAM's pixel mean and standard deviation (of 0–255 RGB),
//     zero-padded at the right and bottom; it returns `image_embeddings` FP32
//     [1, 256, 64, 64];
//   - the decoder is the file segment-anything's scripts/export_onnx_model.py
//     writes: image_embeddings, point_coords [1, N, 2] in the resized frame,
//     point_labels [1, N] (1 object, 0 background, 2 and 3 the box's corners,
//     -1 a padding point when there is no box), mask_input [1, 1, 256, 256]
//     logits with has_mask_input [1], orig_im_size [2] (height, width); it
//     returns masks [1, M, H, W] logits at the original size and
//     iou_predictions [1, M] (M = 1 with --return-single-mask, else 4).
//
// EMBEDDING is FP32 [2 + 256·64·64]: the original height and width, then the
// encoder's image_embeddings in row-major order. The decoder needs the
// original size (orig_im_size, and the scale of the clicks), and the hub
// keeps and sends EMBEDDING as it is, so the size travels in it.
const LayoutSAM = string(layout.SAM)

// The conventions and tensor names of segment-anything's exports, as
// package layout (which holds the tensor code the hub shares) spells them.
const (
	samSide     = layout.SAMSide
	samMaskSide = layout.SAMMaskSide
	samHeader   = layout.SAMHeader

	samEmbeddings   = layout.SAMEmbeddings
	samPointCoords  = layout.SAMPointCoords
	samPointLabels  = layout.SAMPointLabels
	samMaskInput    = layout.SAMMaskInput
	samHasMaskInput = layout.SAMHasMaskInput
	samOrigImSize   = layout.SAMOrigImSize
	samMasks        = layout.SAMMasks
	samIoU          = layout.SAMIoU
)

// The prompt protocol's tensors (docs/interactive.md, package prompt).
const (
	tImage       = prompt.Image
	tEmbedding   = prompt.Embedding
	tPoints      = prompt.Points
	tPointLabels = prompt.PointLabels
	tBox         = prompt.Box
	tMaskInput   = prompt.MaskInput
	tMasks       = prompt.Masks
	tScores      = prompt.Scores
	// samMaxPoints bounds the clicks of one prompt.
	samMaxPoints = 256
)

// SAMConfig configures a SAMServer.
type SAMConfig struct {
	EmbedModel       string // the encoder's model name; default "sam-encoder"
	InteractiveModel string // the decoder's; default "sam-decoder"
	Version          string // of both; default "1"
	// Capacity bounds the inferences in flight, of both models together;
	// a request beyond it is answered 503 with Retry-After: 1. 0 is
	// unbounded.
	Capacity     int
	MaxBodyBytes int64 // default 64 MiB
	MaxPixels    int64 // of an image; default 50 million
	Logger       *slog.Logger
}

// SAMServer serves a SAM encoder and decoder as an embed model and an
// interactive model of the prompt protocol.
type SAMServer struct {
	cfg        SAMConfig
	enc, dec   *Model
	encIn      string // the encoder's input
	encOut     int    // index of image_embeddings among the encoder's outputs
	embShape   []int64
	embCount   int64
	decMasks   int // index of masks among the decoder's outputs
	decIoU     int
	embedMeta  oip.ModelMetadata
	promptMeta oip.ModelMetadata
	mux        *http.ServeMux
	log        *slog.Logger
	inFlight   atomic.Int64
}

// NewSAM makes a SAMServer for the encoder enc and the decoder dec, which
// stay the caller's to close. It refuses files whose tensors are not those
// of segment-anything's exports.
func NewSAM(enc, dec *Model, cfg SAMConfig) (*SAMServer, error) {
	if cfg.EmbedModel == "" {
		cfg.EmbedModel = "sam-encoder"
	}
	if cfg.InteractiveModel == "" {
		cfg.InteractiveModel = "sam-decoder"
	}
	if cfg.EmbedModel == cfg.InteractiveModel {
		return nil, fmt.Errorf("the encoder and the decoder are both named %q; they are two models", cfg.EmbedModel)
	}
	if cfg.Version == "" {
		cfg.Version = "1"
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = oip.DefaultMaxBodyBytes
	}
	if cfg.MaxPixels <= 0 {
		cfg.MaxPixels = 50_000_000
	}
	s := &SAMServer{cfg: cfg, enc: enc, dec: dec, mux: http.NewServeMux(), log: cfg.Logger}
	if s.log == nil {
		s.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ins := enc.Inputs()
	// A batch dimension exported as dynamic (-1) takes the one image too.
	if len(ins) != 1 || ins[0].Datatype != oip.FP32 || len(ins[0].Shape) != 4 || (ins[0].Shape[0] != 1 && ins[0].Shape[0] != -1) || !slices.Equal(ins[0].Shape[1:], []int64{3, samSide, samSide}) {
		return nil, fmt.Errorf("the encoder takes %s; a SAM encoder for this worker takes one input, the pre-processed image FP32 [1,3,1024,1024]", describe(ins))
	}
	s.encIn = ins[0].Name
	s.encOut = -1
	outs := enc.Outputs()
	for i, o := range outs {
		if o.Name == samEmbeddings || len(outs) == 1 {
			s.encOut = i
		}
	}
	if s.encOut < 0 || outs[s.encOut].Datatype != oip.FP32 {
		return nil, fmt.Errorf("the encoder returns %s; a SAM encoder returns image_embeddings FP32", describe(outs))
	}
	decl := map[string]oip.TensorMetadata{}
	for _, in := range dec.Inputs() {
		decl[in.Name] = in
	}
	for _, want := range layout.SAMDecoderRanks {
		d, ok := decl[want.Name]
		if !ok || d.Datatype != oip.FP32 || len(d.Shape) != want.Rank {
			return nil, fmt.Errorf("the decoder takes %s; segment-anything's export takes image_embeddings, point_coords, point_labels, mask_input, has_mask_input and orig_im_size, all FP32 (input %s of rank %d)", describe(dec.Inputs()), want.Name, want.Rank)
		}
	}
	if len(decl) != 6 {
		return nil, fmt.Errorf("the decoder takes %s; segment-anything's export takes exactly image_embeddings, point_coords, point_labels, mask_input, has_mask_input and orig_im_size", describe(dec.Inputs()))
	}
	if d := decl[samMaskInput]; !slices.Equal(d.Shape, []int64{1, 1, samMaskSide, samMaskSide}) {
		return nil, fmt.Errorf("the decoder's mask_input is %s; SAM's is [1,1,256,256]", shapeString(d.Shape))
	}
	// The embedding's shape is the decoder's, which must be fixed, and the
	// encoder's when that is declared.
	s.embShape = decl[samEmbeddings].Shape
	n, err := oip.Count(s.embShape, 1<<28)
	if err != nil || slices.Contains(s.embShape, -1) {
		return nil, fmt.Errorf("the decoder's image_embeddings is %s; it must have fixed dimensions", shapeString(s.embShape))
	}
	s.embCount = n
	if es := outs[s.encOut].Shape; !slices.Contains(es, -1) && !slices.Equal(es, s.embShape) {
		return nil, fmt.Errorf("the encoder returns image_embeddings %s but the decoder takes %s: they are not one model's two halves", shapeString(es), shapeString(s.embShape))
	}
	s.decMasks, s.decIoU = -1, -1
	for i, o := range dec.Outputs() {
		switch o.Name {
		case samMasks:
			s.decMasks = i
		case samIoU:
			s.decIoU = i
		}
	}
	if s.decMasks < 0 || s.decIoU < 0 {
		return nil, fmt.Errorf("the decoder returns %s; segment-anything's export returns masks and iou_predictions", describe(dec.Outputs()))
	}

	params := oip.Parameters{ParamLayout: LayoutSAM}
	s.embedMeta = oip.ModelMetadata{
		Name: cfg.EmbedModel, Versions: []string{cfg.Version}, Platform: "onnxruntime_onnx",
		Inputs:     []oip.TensorMetadata{{Name: tImage, Datatype: oip.BYTES, Shape: []int64{1}}},
		Outputs:    []oip.TensorMetadata{{Name: tEmbedding, Datatype: oip.FP32, Shape: []int64{samHeader + n}}},
		Parameters: params,
	}
	s.promptMeta = oip.ModelMetadata{
		Name: cfg.InteractiveModel, Versions: []string{cfg.Version}, Platform: "onnxruntime_onnx",
		Inputs: []oip.TensorMetadata{
			{Name: tEmbedding, Datatype: oip.FP32, Shape: []int64{samHeader + n}},
			{Name: tPoints, Datatype: oip.FP32, Shape: []int64{-1, 2}},
			{Name: tPointLabels, Datatype: oip.INT32, Shape: []int64{-1}},
			{Name: tBox, Datatype: oip.FP32, Shape: []int64{4}},
			{Name: tMaskInput, Datatype: oip.BYTES, Shape: []int64{1}},
		},
		Outputs: []oip.TensorMetadata{
			{Name: tMasks, Datatype: oip.BYTES, Shape: []int64{-1}},
			{Name: tScores, Datatype: oip.FP32, Shape: []int64{-1}},
		},
		Parameters: params,
	}
	s.routes()
	return s, nil
}

// EmbedMetadata is what GET /v2/models/{embed model} answers.
func (s *SAMServer) EmbedMetadata() oip.ModelMetadata { return s.embedMeta }

// InteractiveMetadata is what GET /v2/models/{interactive model} answers.
func (s *SAMServer) InteractiveMetadata() oip.ModelMetadata { return s.promptMeta }

// ServeHTTP serves the protocol.
func (s *SAMServer) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *SAMServer) routes() {
	ok := func(key string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, map[string]bool{key: true}) }
	}
	s.mux.HandleFunc("GET /v2/health/live", ok("live"))
	s.mux.HandleFunc("GET /v2/health/ready", ok("ready"))
	s.mux.HandleFunc("GET /v2", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, oip.ServerMetadata{Name: "imagehub-onnx-worker", Version: RuntimeVersion, Extensions: []string{oip.ExtensionBinaryTensorData}})
	})
	meta := func(w http.ResponseWriter, r *http.Request) {
		if m := s.served(w, r); m != nil {
			writeJSON(w, http.StatusOK, m)
		}
	}
	ready := func(w http.ResponseWriter, r *http.Request) {
		if s.served(w, r) != nil {
			writeJSON(w, http.StatusOK, map[string]bool{"ready": true})
		}
	}
	s.mux.HandleFunc("GET /v2/models/{model}", meta)
	s.mux.HandleFunc("GET /v2/models/{model}/versions/{version}", meta)
	s.mux.HandleFunc("GET /v2/models/{model}/ready", ready)
	s.mux.HandleFunc("GET /v2/models/{model}/versions/{version}/ready", ready)
	s.mux.HandleFunc("POST /v2/models/{model}/infer", s.infer)
	s.mux.HandleFunc("POST /v2/models/{model}/versions/{version}/infer", s.infer)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no route "+r.Method+" "+r.URL.Path)
	})
}

// served returns the metadata of the model the path names, or answers 404.
func (s *SAMServer) served(w http.ResponseWriter, r *http.Request) *oip.ModelMetadata {
	var m *oip.ModelMetadata
	switch r.PathValue("model") {
	case s.cfg.EmbedModel:
		m = &s.embedMeta
	case s.cfg.InteractiveModel:
		m = &s.promptMeta
	default:
		writeError(w, http.StatusNotFound, "unknown model "+r.PathValue("model")+"; this worker serves "+s.cfg.EmbedModel+" and "+s.cfg.InteractiveModel)
		return nil
	}
	if v := r.PathValue("version"); v != "" && v != s.cfg.Version {
		writeError(w, http.StatusNotFound, "unknown version "+v+" of "+m.Name+"; this worker serves version "+s.cfg.Version)
		return nil
	}
	return m
}

// badInput is a request that breaks the protocol: a 400.
type badInput struct{ msg string }

func (e *badInput) Error() string { return e.msg }

func bad(format string, a ...any) error { return &badInput{fmt.Sprintf(format, a...)} }

func (s *SAMServer) infer(w http.ResponseWriter, r *http.Request) {
	m := s.served(w, r)
	if m == nil {
		return
	}
	req, release, ok := readRequest(w, r, s.cfg.MaxBodyBytes, s.cfg.Capacity, &s.inFlight)
	if !ok {
		return
	}
	defer release()
	for _, in := range req.Inputs {
		if !slices.ContainsFunc(m.Inputs, func(d oip.TensorMetadata) bool { return d.Name == in.Name }) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("unexpected input %q: this model takes %s", in.Name, describe(m.Inputs)))
			return
		}
	}
	for _, o := range req.Outputs {
		if !slices.ContainsFunc(m.Outputs, func(d oip.TensorMetadata) bool { return d.Name == o.Name }) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown output %q: this model returns %s", o.Name, describe(m.Outputs)))
			return
		}
	}
	var (
		outs []oip.Tensor
		err  error
	)
	if m == &s.embedMeta {
		outs, err = s.embed(req)
	} else {
		outs, err = s.prompt(req)
	}
	if err != nil {
		var bi *badInput
		var pe *prompt.Error
		var run *RunError
		switch {
		case errors.As(err, &bi), errors.As(err, &pe), errors.As(err, &run):
			writeError(w, http.StatusBadRequest, err.Error())
		default:
			s.log.Warn("inference failed", "model", m.Name, "id", req.ID, "error", err)
			writeError(w, http.StatusInternalServerError, err.Error())
		}
		return
	}
	resp := &oip.InferResponse{ModelName: m.Name, ModelVersion: s.cfg.Version, ID: req.ID}
	if len(req.Outputs) == 0 {
		resp.Outputs = outs
	} else {
		for _, o := range req.Outputs {
			for _, t := range outs {
				if t.Name == o.Name && !slices.ContainsFunc(resp.Outputs, func(x oip.Tensor) bool { return x.Name == o.Name }) {
					resp.Outputs = append(resp.Outputs, t)
				}
			}
		}
	}
	out, err := oip.EncodeResponse(resp, req.OutputBinary)
	if err != nil {
		s.log.Warn("error encoding an answer", "id", req.ID, "error", err)
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	release()
	out.SetHeaders(w.Header())
	w.Header().Set("Content-Length", strconv.Itoa(len(out.Bytes)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out.Bytes)
}

// embed runs the encoder on IMAGE and returns EMBEDDING.
func (s *SAMServer) embed(req *oip.InferRequest) ([]oip.Tensor, error) {
	t := req.Input(tImage)
	if t == nil || t.Datatype != oip.BYTES || len(t.Elems) != 1 {
		return nil, bad("input IMAGE must be BYTES [1], one encoded image file")
	}
	data := t.Elems[0]
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, bad("IMAGE is not a JPEG, PNG or WebP image")
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > mask.MaxSide || cfg.Height > mask.MaxSide || int64(cfg.Width)*int64(cfg.Height) > s.cfg.MaxPixels {
		return nil, bad("IMAGE is %d×%d pixels; at most %d pixels and %d on a side", cfg.Width, cfg.Height, s.cfg.MaxPixels, mask.MaxSide)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, bad("IMAGE cannot be decoded: %v", err)
	}
	pre := layout.SAMInput(img)
	outs, err := s.enc.Run([]oip.Tensor{oip.FP32Tensor(s.encIn, []int64{1, 3, samSide, samSide}, pre)})
	if err != nil {
		return nil, fmt.Errorf("the encoder failed: %w", err)
	}
	e := outs[s.encOut]
	if e.Datatype != oip.FP32 || !slices.Equal(e.Shape, s.embShape) || int64(len(e.Raw)) != 4*s.embCount {
		return nil, fmt.Errorf("the encoder returned image_embeddings %s %s; the decoder takes FP32 %s", e.Datatype, shapeString(e.Shape), shapeString(s.embShape))
	}
	// The header, then the encoder's bytes as they are (both little-endian
	// float32): a megabyte-sized tensor is copied once, not converted.
	b := img.Bounds()
	raw := make([]byte, 0, 4*samHeader+len(e.Raw))
	raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(float32(b.Dy())))
	raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(float32(b.Dx())))
	raw = append(raw, e.Raw...)
	return []oip.Tensor{{Name: tEmbedding, Datatype: oip.FP32, Shape: []int64{samHeader + s.embCount}, Raw: raw}}, nil
}

// prompt maps a prompt to the decoder's inputs, runs it and returns MASKS
// and SCORES.
func (s *SAMServer) prompt(req *oip.InferRequest) ([]oip.Tensor, error) {
	p, err := prompt.Decode(req, prompt.Embedding, samMaxPoints)
	if err != nil {
		return nil, err
	}
	et := p.Embedding
	if et.Datatype != oip.FP32 || int64(len(et.Raw)) != 4*(samHeader+s.embCount) {
		return nil, bad("input EMBEDDING must be FP32 [%d], what %s returns: the image's height and width, then image_embeddings %s", samHeader+s.embCount, s.cfg.EmbedModel, shapeString(s.embShape))
	}
	// Only the header is read; the rest goes to the decoder as it came.
	hf := math.Float32frombits(binary.LittleEndian.Uint32(et.Raw[0:]))
	wf := math.Float32frombits(binary.LittleEndian.Uint32(et.Raw[4:]))
	if hf != float32(math.Trunc(float64(hf))) || wf != float32(math.Trunc(float64(wf))) || hf < 1 || wf < 1 || hf > mask.MaxSide || wf > mask.MaxSide {
		return nil, bad("EMBEDDING starts with %v, %v; it must start with the image's height and width in pixels", hf, wf)
	}
	h, w := int(hf), int(wf)

	if p.WarmUp() {
		// A warm-up (no clicks, no box, as the hub's client and the
		// built-in model take it): the embedding is the per-image work,
		// and the hub has it already.
		return []oip.Tensor{oip.BytesTensor(tMasks), oip.FP32Tensor(tScores, []int64{0}, nil)}, nil
	}
	bm, err := p.InstanceMask(h, w)
	if err != nil {
		return nil, err
	}
	sp := layout.SAMPrompt{W: w, H: h, Box: p.Box, Instance: bm}
	for _, pt := range p.Points {
		sp.Points = append(sp.Points, layout.SAMPoint{X: pt.X, Y: pt.Y, Object: pt.Object})
	}
	di := layout.SAMDecoderInputs(sp)
	byName := layout.SAMDecoderTensors(oip.Tensor{Datatype: oip.FP32, Shape: s.embShape, Raw: et.Raw[4*samHeader:]}, di)
	ins := make([]oip.Tensor, 0, len(byName))
	for _, d := range s.dec.Inputs() {
		ins = append(ins, byName[d.Name])
	}
	outs, err := s.dec.Run(ins)
	if err != nil {
		return nil, fmt.Errorf("the decoder failed: %w", err)
	}
	mt, it := outs[s.decMasks], outs[s.decIoU]
	logits, err := mt.Float32s()
	if err != nil {
		return nil, fmt.Errorf("the decoder returned masks %s %s; it must be FP32 [1, M, %d, %d]", mt.Datatype, shapeString(mt.Shape), h, w)
	}
	ious, err := it.Float32s()
	if err != nil {
		return nil, fmt.Errorf("the decoder returned iou_predictions %s %s", it.Datatype, shapeString(it.Shape))
	}
	rles, scores, err := layout.DecodeSAM(logits, mt.Shape, ious, h, w)
	if err != nil {
		return nil, fmt.Errorf("the decoder's answer: %w", err)
	}
	elems := make([][]byte, len(rles))
	for i, r := range rles {
		if elems[i], err = json.Marshal(r); err != nil {
			return nil, err
		}
	}
	return []oip.Tensor{oip.BytesTensor(tMasks, elems...), oip.FP32Tensor(tScores, []int64{int64(len(scores))}, scores)}, nil
}
