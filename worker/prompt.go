package worker

import (
	"bytes"
	"container/list"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"net/http"
	"strconv"
	"sync"

	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/oip"
	"github.com/deepimageshub/imagehub/prompt"
	"github.com/deepimageshub/imagehub/worker/segment"
)

// The interactive model (docs/interactive.md): IMAGE BYTES [1], POINTS FP32
// [K, 2], POINT_LABELS INT32 [K], optional BOX FP32 [4] and MASK_INPUT
// BYTES [1] (COCO RLE JSON); MASKS BYTES [1] and SCORES FP32 [1]. K = 0
// with no box is a warm-up: the image is prepared and cached, and the
// answer holds no mask. The per-image work (superpixels, their graph) is
// cached by the image's SHA-256, so a prompt on a prepared image costs only
// the graph cut.
//
// The request is read by package prompt, as the SAM decoder's is.
const MaxPoints = 256 // the clicks of one prompt

// InteractiveMetadata is what GET /v2/models/{interactive model} answers.
func (s *Server) InteractiveMetadata() oip.ModelMetadata {
	return oip.ModelMetadata{
		Name:     s.cfg.InteractiveModel,
		Versions: []string{s.cfg.Version},
		Platform: "imagehub_go",
		Inputs: []oip.TensorMetadata{
			{Name: prompt.Image, Datatype: oip.BYTES, Shape: []int64{1}},
			{Name: prompt.Points, Datatype: oip.FP32, Shape: []int64{-1, 2}},
			{Name: prompt.PointLabels, Datatype: oip.INT32, Shape: []int64{-1}},
			{Name: prompt.Box, Datatype: oip.FP32, Shape: []int64{4}},
			{Name: prompt.MaskInput, Datatype: oip.BYTES, Shape: []int64{1}},
		},
		Outputs: []oip.TensorMetadata{
			{Name: prompt.Masks, Datatype: oip.BYTES, Shape: []int64{-1}},
			{Name: prompt.Scores, Datatype: oip.FP32, Shape: []int64{-1}},
		},
	}
}

// InteractiveModel is the served interactive model's name.
func (s *Server) InteractiveModel() string { return s.cfg.InteractiveModel }

// prompt answers one request to the interactive model. Prompts take no
// capacity slot: each costs milliseconds, and the hub bounds them with the
// model's own endpoint slots.
func (s *Server) prompt(w http.ResponseWriter, r *http.Request) {
	s.prompts.Add(1)
	body, err := oip.ReadBody(r.Body, s.cfg.MaxBodyBytes)
	if err != nil {
		if errors.Is(err, oip.ErrTooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request is larger than %d bytes", s.cfg.MaxBodyBytes))
			return
		}
		writeError(w, http.StatusBadRequest, "error reading the request: "+err.Error())
		return
	}
	jsonLen, err := oip.JSONLength(r.Header, len(body))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	req, err := oip.DecodeRequest(body, jsonLen, oip.Limits{MaxBodyBytes: s.cfg.MaxBodyBytes})
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	resp, err := s.answerPrompt(req)
	if err != nil {
		var bad *badRequest
		var pe *prompt.Error
		if errors.As(err, &bad) || errors.As(err, &pe) {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	out, err := oip.EncodeResponse(resp, req.OutputBinary)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	out.SetHeaders(w.Header())
	w.Header().Set("Content-Length", strconv.Itoa(len(out.Bytes)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out.Bytes)
}

func (s *Server) answerPrompt(req *oip.InferRequest) (*oip.InferResponse, error) {
	p, err := prompt.Decode(req, prompt.Image, MaxPoints)
	if err != nil {
		return nil, err
	}
	clicks := make([]segment.Click, len(p.Points))
	for i, pt := range p.Points {
		clicks[i] = segment.Click{X: float64(pt.X), Y: float64(pt.Y), Object: pt.Object}
	}
	var box *[4]float64
	if p.Box != nil {
		box = &[4]float64{float64(p.Box[0]), float64(p.Box[1]), float64(p.Box[2]), float64(p.Box[3])}
	}
	sum := sha256.Sum256(p.Image)
	prep, err := s.prepared(sum, p.Image)
	if err != nil {
		return nil, err
	}
	instance, err := p.InstanceMask(prep.H, prep.W)
	if err != nil {
		return nil, err
	}
	resp := &oip.InferResponse{ModelName: s.cfg.InteractiveModel, ModelVersion: s.cfg.Version, ID: req.ID}
	if p.WarmUp() {
		// A warm-up: the image is prepared, nothing to answer.
		resp.Outputs = []oip.Tensor{oip.BytesTensor(prompt.Masks), oip.FP32Tensor(prompt.Scores, []int64{0}, nil)}
		return resp, nil
	}
	bm, score, err := prep.Prompt(clicks, box, instance)
	if errors.Is(err, segment.ErrEmptyPrompt) {
		return nil, refuse("the prompt has no object point, box or instance: nothing says what to segment")
	}
	if err != nil {
		return nil, err
	}
	enc, err := json.Marshal(mask.Encode(bm))
	if err != nil {
		return nil, err
	}
	resp.Outputs = []oip.Tensor{oip.BytesTensor(prompt.Masks, enc), oip.FP32Tensor(prompt.Scores, []int64{1}, []float32{score})}
	return resp, nil
}

// prepared returns the image's prepared form from the cache, computing it
// once when two prompts for a new image arrive together.
func (s *Server) prepared(sum [32]byte, data []byte) (*segment.Prepared, error) {
	e, fresh := s.cache.get(sum)
	if fresh {
		e.prep, e.err = s.prepare(data)
		close(e.ready)
		if e.err != nil {
			s.cache.drop(sum)
		}
	} else {
		<-e.ready
	}
	return e.prep, e.err
}

func (s *Server) prepare(data []byte) (*segment.Prepared, error) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, refuse("IMAGE is not a JPEG, PNG or WebP image")
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width > mask.MaxSide || cfg.Height > mask.MaxSide || int64(cfg.Width)*int64(cfg.Height) > s.cfg.MaxPixels {
		return nil, refuse("IMAGE is %d×%d pixels; at most %d pixels and %d on a side", cfg.Width, cfg.Height, s.cfg.MaxPixels, mask.MaxSide)
	}
	m, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, refuse("IMAGE cannot be decoded: %v", err)
	}
	return segment.Prepare(m, s.cfg.Interactive), nil
}

// prepCache keeps the prepared images of the last few images prompted, by
// SHA-256, least recently used out first.
type prepCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // of [32]byte, most recent first
	items map[[32]byte]*prepEntry
}

type prepEntry struct {
	ready chan struct{} // closed once prep or err is set
	prep  *segment.Prepared
	err   error
	elem  *list.Element
}

func newPrepCache(n int) *prepCache {
	return &prepCache{max: n, order: list.New(), items: map[[32]byte]*prepEntry{}}
}

// get returns the entry for sum; fresh is true when the caller made it and
// must fill it.
func (c *prepCache) get(sum [32]byte) (*prepEntry, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[sum]; ok {
		c.order.MoveToFront(e.elem)
		return e, false
	}
	e := &prepEntry{ready: make(chan struct{})}
	e.elem = c.order.PushFront(sum)
	c.items[sum] = e
	for c.order.Len() > c.max {
		last := c.order.Back()
		delete(c.items, last.Value.([32]byte))
		c.order.Remove(last)
	}
	return e, true
}

func (c *prepCache) drop(sum [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[sum]; ok {
		c.order.Remove(e.elem)
		delete(c.items, sum)
	}
}
