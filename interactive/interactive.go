// Package interactive answers a reviewer's prompts (clicks and a box on the
// image they hold the lease on) with one mask, from the enabled model of
// task "interactive" (docs/interactive.md).
//
// A prompt is checked completely before anything is sent. It goes to the
// interactive model's own endpoint slots (package dispatch), so it never
// waits behind the proposal jobs of segmentation models, and it waits for a
// slot only briefly (Settings.SlotWait): a reviewer would rather click
// again than wait.
package interactive

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/singleflight"

	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/dispatch"
	"github.com/deepimageshub/imagehub/inference"
	"github.com/deepimageshub/imagehub/layout"
	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/queries"
)

// Settings tune prompts.
type Settings struct {
	MaxPoints int           // clicks in one prompt; default 64
	Timeout   time.Duration // one prompt's call to the model; default 5s
	SlotWait  time.Duration // longest wait for a free endpoint slot; default 1s
}

func (s Settings) withDefaults() Settings {
	if s.MaxPoints <= 0 {
		s.MaxPoints = 64
	}
	if s.Timeout <= 0 {
		s.Timeout = 5 * time.Second
	}
	if s.SlotWait <= 0 {
		s.SlotWait = time.Second
	}
	return s
}

// Service answers prompts.
type Service struct {
	pool   *pgxpool.Pool
	q      *queries.Queries
	slots  *dispatch.Slots
	client *inference.Client
	blobs  blob.Store
	set    Settings
	images *lru[[]byte]
	fetch  singleflight.Group // one read of an image that a warm-up and a click both miss
	embed  *Embedder
}

// NewService makes a Service.
func NewService(pool *pgxpool.Pool, slots *dispatch.Slots, client *inference.Client, blobs blob.Store, s Settings) *Service {
	s = s.withDefaults()
	return &Service{pool: pool, q: queries.New(), slots: slots, client: client, blobs: blobs, set: s, images: newLRU[[]byte](32),
		embed: &Embedder{Slots: slots, Client: client, Blobs: blobs, SlotWait: s.SlotWait}}
}

// MaxPoints is the most clicks a prompt may have.
func (s *Service) MaxPoints() int { return s.set.MaxPoints }

// Request is the body of POST /api/v1/review/{item_id}/segment: points as
// [x, y, label] in the image's full-size pixels (label 1 object, 0
// background), an optional box [x1, y1, x2, y2] and an optional instance to
// refine.
type Request struct {
	Points   [][]float64 `json:"points"`
	Box      []float64   `json:"box"`
	Instance *mask.RLE   `json:"instance"`
}

// Result is the mask the model answered.
type Result struct {
	Mask  mask.RLE `json:"mask"`
	Score float32  `json:"score"`
}

var errNoModel = problem.New(http.StatusServiceUnavailable, "no_interactive_model", "",
	"No interactive model is enabled, so clicks cannot be turned into masks. An admin registers one (task \"interactive\"), such as the built-in worker's imagehub-interactive.")

var errLease = problem.New(http.StatusConflict, "lease_lost", "",
	"This item is no longer leased to you (the lease expired or another reviewer has it); take the next item.")

// check turns a request into a prompt for an image of w×h, naming the field
// at fault.
func (s *Service) check(r Request, w, h int) (inference.Prompt, error) {
	var p inference.Prompt
	if len(r.Points) == 0 && r.Box == nil {
		return p, problem.BadInput("missing_field", "points", "Give at least one point [x, y, 1] on the object, or a box.")
	}
	if len(r.Points) > s.set.MaxPoints {
		return p, problem.BadInput("too_many", "points", fmt.Sprintf("A prompt has at most %d points; this one has %d.", s.set.MaxPoints, len(r.Points)))
	}
	finite := func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
	object := false
	for i, pt := range r.Points {
		field := fmt.Sprintf("points[%d]", i)
		if len(pt) != 3 || !finite(pt[0]) || !finite(pt[1]) || (pt[2] != 0 && pt[2] != 1) {
			return p, problem.BadInput("invalid", field, "A point is [x, y, label]: pixel coordinates and 1 for the object or 0 for the background.")
		}
		if pt[0] < 0 || pt[1] < 0 || pt[0] >= float64(w) || pt[1] >= float64(h) {
			return p, problem.BadInput("outside_image", field, fmt.Sprintf("Point (%g, %g) is outside the image, which is %d×%d pixels.", pt[0], pt[1], w, h))
		}
		object = object || pt[2] == 1
		p.Points = append(p.Points, inference.Point{X: float32(pt[0]), Y: float32(pt[1]), Object: pt[2] == 1})
	}
	if r.Box != nil {
		b := r.Box
		if len(b) != 4 || !finite(b[0]) || !finite(b[1]) || !finite(b[2]) || !finite(b[3]) || b[0] >= b[2] || b[1] >= b[3] {
			return p, problem.BadInput("invalid", "box", "A box is [x1, y1, x2, y2] with x1 < x2 and y1 < y2, in pixels.")
		}
		if b[2] <= 0 || b[3] <= 0 || b[0] >= float64(w) || b[1] >= float64(h) {
			return p, problem.BadInput("outside_image", "box", fmt.Sprintf("The box lies outside the image, which is %d×%d pixels.", w, h))
		}
		// Clipped to the image: a box dragged past an edge means "to the edge".
		p.Box = &[4]float32{float32(max(b[0], 0)), float32(max(b[1], 0)), float32(min(b[2], float64(w))), float32(min(b[3], float64(h)))}
	}
	if r.Instance != nil {
		if r.Instance.Size != [2]int{h, w} {
			return p, problem.BadInput("invalid", "instance", fmt.Sprintf("The instance's size must be [%d, %d], the image's [height, width].", h, w))
		}
		if err := r.Instance.Validate(); err != nil {
			return p, problem.BadInput("invalid", "instance", "The instance is not a valid COCO RLE mask: "+err.Error())
		}
		p.Instance = r.Instance
	}
	if !object && r.Box == nil && r.Instance == nil {
		return p, problem.BadInput("invalid", "points", "Background points alone say nothing about the object: add a point [x, y, 1] on it, a box, or the instance to refine.")
	}
	return p, nil
}

// Segment answers reviewer's prompt on item, which they must hold the live
// lease on.
func (s *Service) Segment(ctx context.Context, reviewer, item uuid.UUID, r Request) (Result, error) {
	img, err := s.q.ReviewLeasedImage(ctx, s.pool, queries.ReviewLeasedImageParams{ID: item, Reviewer: &reviewer})
	if errors.Is(err, pgx.ErrNoRows) {
		if _, gerr := s.q.ReviewGet(ctx, s.pool, item); errors.Is(gerr, pgx.ErrNoRows) {
			return Result{}, problem.NotFound
		}
		return Result{}, errLease
	}
	if err != nil {
		return Result{}, fmt.Errorf("error reading the leased item: %w", err)
	}
	p, err := s.check(r, int(img.Width), int(img.Height))
	if err != nil {
		return Result{}, err
	}
	ans, err := s.ask(ctx, img.ImageID, img.Sha256, int(img.Width), int(img.Height), p)
	if err != nil {
		return Result{}, err
	}
	return Result{Mask: ans.Mask, Score: ans.Score}, nil
}

// Warm sends the image of item to the interactive model with an empty
// prompt, so the model prepares it (the built-in worker computes and caches
// its superpixels) before the reviewer's first click. Errors only matter to
// logs: a click works without it, only slower. enabled is false when no
// interactive model is enabled, so that there is nothing to prepare ahead
// either.
func (s *Service) Warm(ctx context.Context, reviewer, item uuid.UUID) (enabled bool, err error) {
	img, err := s.q.ReviewLeasedImage(ctx, s.pool, queries.ReviewLeasedImageParams{ID: item, Reviewer: &reviewer})
	if err != nil {
		return true, fmt.Errorf("error reading the leased item: %w", err)
	}
	_, err = s.ask(ctx, img.ImageID, img.Sha256, int(img.Width), int(img.Height), inference.Prompt{})
	if errors.Is(err, errNoModel) {
		return false, nil
	}
	return true, err
}

// Prepare readies an image for prompts ahead of any lease (the River job
// run when the image enters the review queue): the two-stage model's
// embedding is computed and kept, a single-stage model gets a warm-up.
// Nothing is done when no interactive model is enabled.
func (s *Service) Prepare(ctx context.Context, image uuid.UUID) error {
	img, err := s.q.ImageGet(ctx, s.pool, image)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && img.Sha256 == nil) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("error reading image: %w", err)
	}
	_, err = s.ask(ctx, img.ID, img.Sha256, int(img.Width), int(img.Height), inference.Prompt{})
	if errors.Is(err, errNoModel) {
		return nil
	}
	return err
}

// ask sends p, with the image, to the first enabled interactive model.
func (s *Service) ask(ctx context.Context, imageID uuid.UUID, sha []byte, w, h int, p inference.Prompt) (inference.Answer, error) {
	models, err := s.q.ModelEnabledOfTask(ctx, s.pool, dispatch.TaskInteractive)
	if err != nil {
		return inference.Answer{}, fmt.Errorf("error reading interactive models: %w", err)
	}
	if len(models) == 0 {
		return inference.Answer{}, errNoModel
	}
	m := models[0]
	readImage := func(ctx context.Context) ([]byte, error) {
		b, err := s.image(ctx, sha)
		if err != nil {
			return nil, fmt.Errorf("error reading image %s: %w", imageID, err)
		}
		return b, nil
	}
	if m.EmbedModelID != nil {
		// Two stages: the embedding (computed when the image entered the
		// review queue, or now if that job has not run), then the decoder.
		em, err := s.q.ModelGet(ctx, s.pool, *m.EmbedModelID)
		if err != nil {
			return inference.Answer{}, fmt.Errorf("error reading embed model: %w", err)
		}
		if !em.Enabled {
			return inference.Answer{}, problem.New(http.StatusServiceUnavailable, "no_interactive_model", "",
				fmt.Sprintf("The interactive model %s needs the embed model %s, which is disabled.", m.Name, em.Name))
		}
		v, shape, err := s.embed.Ensure(ctx, em, sha, readImage)
		if err != nil {
			return inference.Answer{}, problem.New(http.StatusBadGateway, "model_failed", "",
				fmt.Sprintf("The image's embedding could not be computed: %v", err))
		}
		if p.Points == nil && p.Box == nil {
			return inference.Answer{}, nil // a warm-up: the embedding is ready
		}
		p.Embedding, p.EmbeddingShape = v, shape
	} else {
		data, err := readImage(ctx)
		if err != nil {
			return inference.Answer{}, err
		}
		p.Image = data
	}
	timeout := min(s.set.Timeout, time.Duration(m.TimeoutMs)*time.Millisecond)
	slot, err := s.slots.Acquire(ctx, m.ID, timeout+2*time.Second, s.set.SlotWait)
	var none *dispatch.ErrNoSlot
	if errors.As(err, &none) {
		e := problem.New(http.StatusServiceUnavailable, "model_busy", "",
			fmt.Sprintf("The interactive model %s is busy (%v); click again in a moment.", m.Name, none))
		e.Headers = map[string]string{"Retry-After": "1"}
		return inference.Answer{}, e
	}
	if err != nil {
		return inference.Answer{}, fmt.Errorf("error taking an endpoint slot: %w", err)
	}
	var headers inference.Headers
	_ = json.Unmarshal(m.Headers, &headers)
	// A sam model is called with its own tensors (inference, layout.SAM).
	ep := inference.Endpoint{Base: slot.BaseURL, Model: m.Name, Version: m.Version, Binary: m.BinaryData, Headers: headers,
		Layout: layout.Params{Kind: layout.Kind(m.Layout), Input: m.InputName}}
	callCtx, cancel := context.WithTimeout(ctx, timeout)
	ans, err := s.client.Prompt(callCtx, ep, p, inference.Expect{Height: h, Width: w})
	cancel()
	if rerr := s.slots.Release(ctx, slot, err == nil); rerr != nil && ctx.Err() == nil {
		err = errors.Join(err, rerr)
	}
	if err != nil {
		if ctx.Err() != nil {
			return inference.Answer{}, ctx.Err()
		}
		if inference.Kind(err) == inference.KindRetryable {
			if _, herr := s.slots.Failed(ctx, slot.EndpointID, err); herr != nil {
				err = errors.Join(err, herr)
			}
		}
		return inference.Answer{}, problem.New(http.StatusBadGateway, "model_failed", "",
			fmt.Sprintf("The interactive model %s did not answer the prompt: %v", m.Name, err))
	}
	return ans, nil
}

// image reads the canonical image, the one the review page shows, keeping
// the last few in memory: a reviewer clicks many times on one image, and
// the lease's warm-up (or the prefetch of the reviewer's next items) reads
// it ahead of the first click, which then shares that read.
func (s *Service) image(ctx context.Context, sha []byte) ([]byte, error) {
	key := blob.ImageKey(sha)
	if b, ok := s.images.get(key); ok {
		return b, nil
	}
	v, err, _ := s.fetch.Do(key, func() (any, error) {
		if b, ok := s.images.get(key); ok {
			return b, nil
		}
		rc, _, err := s.blobs.Get(ctx, key)
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil {
			return nil, err
		}
		s.images.put(key, b)
		return b, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]byte), nil
}

// lru is a small least-recently-used cache by key.
type lru[V any] struct {
	mu    sync.Mutex
	max   int
	order *list.List // keys, most recent first
	items map[string]*list.Element
	data  map[string]V
}

func newLRU[V any](n int) *lru[V] {
	return &lru[V]{max: n, order: list.New(), items: map[string]*list.Element{}, data: map[string]V{}}
}

func (c *lru[V]) get(k string) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[k]
	if !ok {
		var zero V
		return zero, false
	}
	c.order.MoveToFront(e)
	return c.data[k], true
}

func (c *lru[V]) put(k string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[k]; ok {
		c.order.MoveToFront(e)
		c.data[k] = v
		return
	}
	c.items[k] = c.order.PushFront(k)
	c.data[k] = v
	for c.order.Len() > c.max {
		last := c.order.Back()
		k := last.Value.(string)
		c.order.Remove(last)
		delete(c.items, k)
		delete(c.data, k)
	}
}
