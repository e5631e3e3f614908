package jobs

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/deepimageshub/imagehub/dispatch"
	"github.com/deepimageshub/imagehub/inference"
)

// batcher gathers the images of the inference jobs running in this
// process into requests of up to a model's max_batch images
// (docs/batching.md). Each job stays a River job of one image: it hands
// its image to the batcher and waits for its own instances, then stores
// them, fails or retries as it would alone. The batcher's senders take a
// slot (dispatch.Slots: capacity counts requests, whatever their images,
// across every process on the database), claim up to max_batch waiting
// images, waiting at most batch_window_ms after the oldest arrived for the
// batch to fill, and send them in one request. A slot freed by a good
// answer goes straight to the next sender waiting for one, which finds
// the next batch already waiting, so a busy endpoint is never idle
// between two requests.
//
// Images wait in groups of one model and, for a model that takes
// LABEL_HINTS, one set of hints: the hints are one list per request.
type batcher struct {
	slots   *dispatch.Slots
	client  *inference.Client
	logger  *slog.Logger
	metrics *inferMetrics
	// slotWait is how long a sender waits for a slot before telling the
	// oldest images of its group that there is none (their jobs snooze).
	slotWait time.Duration

	mu     sync.Mutex
	groups map[batchKey]*batchGroup
}

func newBatcher(slots *dispatch.Slots, client *inference.Client, logger *slog.Logger, metrics *inferMetrics, slotWait time.Duration) *batcher {
	return &batcher{slots: slots, client: client, logger: logger, metrics: metrics, slotWait: slotWait, groups: map[batchKey]*batchGroup{}}
}

type batchKey struct {
	model uuid.UUID
	hints string // the hints every image of the group shares, "" when not sent
}

// batchGroup is the images of one key waiting for a request, and its
// senders. Guarded by batcher.mu.
type batchGroup struct {
	key     batchKey
	pending []*batchEntry
	// idle counts the senders that have not claimed their images yet; a
	// new one starts while they could not take every waiting image.
	idle int
	// full is closed (and replaced) when max_batch images wait, waking the
	// senders that wait for their window to fill.
	full chan struct{}
}

// batchEntry is one job's image.
type batchEntry struct {
	item     inference.Item
	ep       inference.Endpoint // Base is set by the sender
	maxBatch int
	window   time.Duration
	timeout  time.Duration // of the call
	arrived  time.Time
	done     chan batchResult // buffered: a sender never waits on a job
	claimed  bool
}

// batchResult is what became of one image of a request.
type batchResult struct {
	instances []inference.Instance
	slot      dispatch.Slot // the endpoint that answered; zero without a slot
	elapsed   time.Duration
	// images is how many images shared the request; 0 when none was sent.
	images int
	err    error // may be a *dispatch.ErrNoSlot
}

// segment sends e's image with others of the same key and returns its
// result, or the job's ctx error once ctx ends.
func (b *batcher) segment(ctx context.Context, key batchKey, e *batchEntry) batchResult {
	e.arrived = time.Now()
	e.done = make(chan batchResult, 1)
	b.mu.Lock()
	g := b.groups[key]
	if g == nil {
		g = &batchGroup{key: key, full: make(chan struct{})}
		b.groups[key] = g
	}
	g.pending = append(g.pending, e)
	if len(g.pending) >= e.maxBatch {
		close(g.full)
		g.full = make(chan struct{})
	}
	if g.idle*e.maxBatch < len(g.pending) {
		g.idle++
		go b.send(g, e.maxBatch)
	}
	b.mu.Unlock()

	select {
	case r := <-e.done:
		return r
	case <-ctx.Done():
		b.mu.Lock()
		if !e.claimed {
			g.remove(e)
		}
		b.mu.Unlock()
		return batchResult{err: ctx.Err()}
	}
}

func (g *batchGroup) remove(e *batchEntry) {
	for i, p := range g.pending {
		if p == e {
			g.pending = append(g.pending[:i:i], g.pending[i+1:]...)
			return
		}
	}
}

// claim takes up to n of the oldest waiting images. The caller holds mu.
func (g *batchGroup) claim(n int) []*batchEntry {
	n = min(n, len(g.pending))
	batch := g.pending[:n:n]
	g.pending = append([]*batchEntry(nil), g.pending[n:]...)
	for _, e := range batch {
		e.claimed = true
	}
	return batch
}

// again reports whether the sender that just finished should serve its
// group once more, counting it idle if so, and forgets an empty group
// nobody serves. The caller holds mu.
func (b *batcher) again(g *batchGroup, maxBatch int) bool {
	if len(g.pending) > g.idle*maxBatch {
		g.idle++
		return true
	}
	if g.idle == 0 && len(g.pending) == 0 && b.groups[g.key] == g {
		delete(b.groups, g.key)
	}
	return false
}

// send serves g until its images are taken by enough senders: take a
// slot, gather a batch, send it, hand out the answers.
func (b *batcher) send(g *batchGroup, maxBatch int) {
	ctx := context.Background()
	for {
		b.mu.Lock()
		if len(g.pending) == 0 {
			g.idle--
			b.again(g, maxBatch)
			b.mu.Unlock()
			return
		}
		timeout := g.pending[0].timeout
		b.mu.Unlock()

		// The hold outlives the call by a margin: a process killed mid-call
		// frees the slot when the call would have ended anyway.
		slot, err := b.slots.Acquire(ctx, g.key.model, timeout+2*time.Second, b.slotWait)
		if err != nil {
			b.mu.Lock()
			batch := g.claim(maxBatch)
			g.idle--
			more := b.again(g, maxBatch)
			b.mu.Unlock()
			for _, e := range batch {
				e.done <- batchResult{err: err}
			}
			if !more {
				return
			}
			continue
		}
		batch := b.gather(g, maxBatch)
		if len(batch) > 0 {
			b.call(ctx, slot, batch)
		} else if rerr := b.slots.Release(ctx, slot, true); rerr != nil {
			b.logger.WarnContext(ctx, "slot not given back; it frees itself when its hold ends", "error", rerr)
		}
		b.mu.Lock()
		more := b.again(g, maxBatch)
		b.mu.Unlock()
		if !more {
			return
		}
	}
}

// gather claims up to maxBatch images once that many wait, or once the
// oldest has waited its window, and counts the sender busy.
func (b *batcher) gather(g *batchGroup, maxBatch int) []*batchEntry {
	for {
		b.mu.Lock()
		var wait time.Duration
		if n := len(g.pending); n > 0 && n < maxBatch {
			wait = g.pending[0].window - time.Since(g.pending[0].arrived)
		}
		if wait <= 0 {
			batch := g.claim(maxBatch)
			g.idle--
			b.mu.Unlock()
			return batch
		}
		full := g.full
		b.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-full:
		case <-t.C:
		}
		t.Stop()
	}
}

// call sends batch to slot's endpoint and hands every image its result.
// A retryable failure of a batch of several images counts once against
// the endpoint's health here; each image then tries alone (InferWorker),
// and a failure of a lone image is counted by its job.
func (b *batcher) call(ctx context.Context, slot dispatch.Slot, batch []*batchEntry) {
	items := make([]inference.Item, len(batch))
	timeout := batch[0].timeout
	for i, e := range batch {
		items[i] = e.item
		timeout = min(timeout, e.timeout-time.Since(e.arrived))
	}
	ep := batch[0].ep
	ep.Base = slot.BaseURL
	b.metrics.inFlight.WithLabelValues(slot.BaseURL).Inc()
	start := time.Now()
	callCtx, cancel := context.WithTimeout(ctx, max(timeout, 100*time.Millisecond))
	out, err := b.client.SegmentBatch(callCtx, ep, items)
	cancel()
	elapsed := time.Since(start)
	b.metrics.inFlight.WithLabelValues(slot.BaseURL).Dec()
	var busy *inference.Busy
	if err != nil && len(batch) > 1 && inference.Kind(err) == inference.KindRetryable && !errors.As(err, &busy) {
		if cooling, herr := b.slots.Failed(ctx, slot.EndpointID, err); herr != nil {
			b.logger.WarnContext(ctx, "error recording endpoint health", "error", herr)
		} else if cooling {
			b.logger.WarnContext(ctx, "endpoint cooling off after failures", "endpoint", slot.BaseURL, "error", err)
		}
	}
	if rerr := b.slots.Release(ctx, slot, err == nil); rerr != nil {
		b.logger.WarnContext(ctx, "slot not given back; it frees itself when its hold ends", "error", rerr)
	}
	for i, e := range batch {
		r := batchResult{slot: slot, elapsed: elapsed, images: len(batch), err: err}
		if err == nil {
			r.instances = out[i]
		}
		e.done <- r
	}
}

// hintsKey is the batching key part of an image's hints: images batch
// together only with the same hints, when the model takes them.
func hintsKey(hints []string, sent bool) string {
	if !sent {
		return ""
	}
	return strings.Join(hints, "\x00")
}
