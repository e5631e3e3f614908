// Package dispatch decides where an inference goes: it keeps the registry of
// models and their endpoints, hands out request slots so that no endpoint
// ever has more requests in flight than its registered capacity, and keeps
// each endpoint's health (consecutive failures, cool-off).
//
// Slots are rows in PostgreSQL (endpoint_slots), one per unit of capacity,
// taken with FOR UPDATE SKIP LOCKED, so the bound holds across any number
// of hub processes on one database. A slot is held with a deadline: a
// process killed while holding one loses it for at most the request's
// timeout. Within a process, dispatchers waiting for a slot queue in order
// and only the first polls the database, so a thousand waiting jobs cost
// one query per poll; a slot freed by a good answer in this process goes
// straight to the next waiter, which takes it over without a query while
// its hold still covers the next request (HandoffSlack) and in one
// statement otherwise, so a busy endpoint's slots are never idle between
// two requests. A waiter may be an inference job or a sender of a batch
// (package jobs): a slot is one request, whatever its images.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deepimageshub/imagehub/queries"
)

// Slot is one request's right to an endpoint.
type Slot struct {
	EndpointID uuid.UUID
	BaseURL    string
	n          int32
	holder     uuid.UUID
	model      uuid.UUID
	// until is a lower bound of the hold's end in the database, so a slot
	// handed over in process is taken over without a query while it lasts.
	until time.Time
}

// Health settings of endpoints.
type Health struct {
	// FailureThreshold is how many retryable failures in a row send an
	// endpoint into cool-off.
	FailureThreshold int
	// CoolOff is how long an endpoint in cool-off gets no requests.
	CoolOff time.Duration
}

// Slots hands out endpoint slots. One Slots serves a whole process.
type Slots struct {
	pool   *pgxpool.Pool
	q      *queries.Queries
	health Health
	// Poll is how often the first waiter of a model asks the database for
	// a slot freed by another process or by an expired hold.
	Poll time.Duration

	mu      sync.Mutex
	waiters map[uuid.UUID][]*waiter // per model, in arrival order
	// reported is when this process last told the database an endpoint
	// answered well; failed marks endpoints that failed since.
	reported map[uuid.UUID]time.Time
	failed   map[uuid.UUID]bool
}

// waiter is one dispatcher waiting for a slot. turn tells the head of the
// queue to poll the database; handed brings a slot given back in process.
type waiter struct {
	turn   chan struct{}
	handed chan Slot
}

// NewSlots makes a Slots.
func NewSlots(pool *pgxpool.Pool, h Health) *Slots {
	if h.FailureThreshold < 1 {
		h.FailureThreshold = 3
	}
	if h.CoolOff <= 0 {
		h.CoolOff = 30 * time.Second
	}
	return &Slots{pool: pool, q: queries.New(), health: h, Poll: 50 * time.Millisecond, waiters: map[uuid.UUID][]*waiter{},
		reported: map[uuid.UUID]time.Time{}, failed: map[uuid.UUID]bool{}}
}

// ErrNoSlot is returned by Acquire when every endpoint stayed full for the
// whole wait. CoolingUntil, when not zero, is when the first endpoint in
// cool-off comes back: every endpoint of the model is cooling off.
type ErrNoSlot struct{ CoolingUntil time.Time }

func (e *ErrNoSlot) Error() string {
	if !e.CoolingUntil.IsZero() {
		return fmt.Sprintf("every endpoint is cooling off after failures, until %s", e.CoolingUntil.Format(time.RFC3339))
	}
	return "every endpoint is at capacity"
}

// HandoffSlack is how much of a hold a slot handed over in process may
// have spent and still be taken over without a query: callers ask for a
// hold longer than their request's timeout by more than this (the
// inference jobs add 2s), so the request still ends within the hold.
// Without it every handover would renew the hold, a round trip to the
// database between two requests of a busy endpoint.
const HandoffSlack = time.Second

// Acquire takes a slot on the least-loaded healthy endpoint of the model,
// waiting up to wait for one to free up. The slot is held for at most hold
// (the request's timeout and a margin); give it back with Release.
func (s *Slots) Acquire(ctx context.Context, model uuid.UUID, hold, wait time.Duration) (Slot, error) {
	if slot, ok, err := s.try(ctx, model, hold); err != nil || ok {
		return slot, err
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(s.Poll)
	defer tick.Stop()

	w := &waiter{turn: make(chan struct{}, 1), handed: make(chan Slot, 1)}
	s.enqueue(model, w)
	head := false
	for {
		select {
		case <-w.turn:
			head = true
		case <-tick.C:
			if !head {
				continue
			}
		case slot := <-w.handed:
			// Release took w out of the queue and gave it this slot. Its
			// hold, taken for the same kind of request, still covers this
			// one when it lasts hold less the slack: no query.
			if time.Until(slot.until) >= hold-HandoffSlack {
				return slot, nil
			}
			if got, ok, err := s.renew(ctx, slot, hold); err != nil || ok {
				return got, err
			}
			head = false
			s.enqueue(model, w)
			continue
		case <-deadline.C:
			if slot, ok := s.leave(model, w); ok {
				return s.keepOrGive(ctx, slot, hold)
			}
			return Slot{}, s.noSlot(ctx, model)
		case <-ctx.Done():
			if slot, ok := s.leave(model, w); ok {
				_ = s.Release(ctx, slot, false)
			}
			return Slot{}, ctx.Err()
		}
		slot, ok, err := s.try(ctx, model, hold)
		if err != nil || ok {
			if handed, was := s.leave(model, w); was {
				_ = s.Release(ctx, handed, true)
			}
			return slot, err
		}
	}
}

// keepOrGive takes over a slot handed over just as the wait ended.
func (s *Slots) keepOrGive(ctx context.Context, slot Slot, hold time.Duration) (Slot, error) {
	got, ok, err := s.renew(ctx, slot, hold)
	if err != nil {
		return Slot{}, err
	}
	if !ok {
		return Slot{}, &ErrNoSlot{}
	}
	return got, nil
}

func (s *Slots) enqueue(model uuid.UUID, w *waiter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waiters[model] = append(s.waiters[model], w)
	if len(s.waiters[model]) == 1 {
		wake(w.turn)
	}
}

// leave takes w out of the model's queue, handing the turn on when it was
// the head. A slot handed to w before it left is returned to the caller.
func (s *Slots) leave(model uuid.UUID, w *waiter) (Slot, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.waiters[model]
	for i, c := range q {
		if c == w {
			q = append(q[:i:i], q[i+1:]...)
			if i == 0 && len(q) > 0 {
				wake(q[0].turn)
			}
			break
		}
	}
	if len(q) == 0 {
		delete(s.waiters, model)
	} else {
		s.waiters[model] = q
	}
	select {
	case slot := <-w.handed:
		return slot, true
	default:
		return Slot{}, false
	}
}

func wake(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// renew takes over a slot handed over in process, under a new holder id.
func (s *Slots) renew(ctx context.Context, slot Slot, hold time.Duration) (Slot, bool, error) {
	holder := uuid.New()
	start := time.Now()
	n, err := s.q.SlotRenew(ctx, s.pool, queries.SlotRenewParams{
		HoldSeconds: hold.Seconds(), NewHolder: &holder, EndpointID: slot.EndpointID, Slot: slot.n, OldHolder: &slot.holder,
	})
	if err != nil {
		return Slot{}, false, fmt.Errorf("error taking over an endpoint slot: %w", err)
	}
	if n == 0 {
		return Slot{}, false, nil
	}
	slot.holder, slot.until = holder, start.Add(hold)
	return slot, true, nil
}

func (s *Slots) try(ctx context.Context, model uuid.UUID, hold time.Duration) (Slot, bool, error) {
	holder := uuid.New()
	start := time.Now()
	row, err := s.q.SlotAcquire(ctx, s.pool, queries.SlotAcquireParams{
		ModelID: model, HoldSeconds: hold.Seconds(), Holder: &holder,
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return Slot{}, false, nil
	}
	if err != nil {
		return Slot{}, false, fmt.Errorf("error taking an endpoint slot: %w", err)
	}
	return Slot{EndpointID: row.EndpointID, BaseURL: row.BaseUrl, n: row.Slot, holder: holder, model: model, until: start.Add(hold)}, true, nil
}

func (s *Slots) noSlot(ctx context.Context, model uuid.UUID) error {
	until, err := s.q.EndpointsCoolingUntil(ctx, s.pool, model)
	if err != nil {
		return fmt.Errorf("error reading endpoint health: %w", err)
	}
	e := &ErrNoSlot{}
	if time.Until(until) > 0 {
		// Some endpoint is cooling off; if the rest are merely full it is
		// still worth a short wait, which the caller decides from the time.
		e.CoolingUntil = until
	}
	return e
}

// Release gives a slot back. After a good answer (ok) a waiter of the same
// model in this process gets the slot at once; otherwise it goes back to
// the database and the first waiter is told to look. A good answer also
// clears the endpoint's failure count (at most every few seconds, unless
// it failed since). Release uses its own short deadline so that a
// canceled job still frees its slot.
func (s *Slots) Release(ctx context.Context, slot Slot, ok bool) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	s.mu.Lock()
	report := ok && (s.failed[slot.EndpointID] || time.Since(s.reported[slot.EndpointID]) > healthReportEvery)
	if report {
		s.reported[slot.EndpointID] = time.Now()
		delete(s.failed, slot.EndpointID)
	}
	if q := s.waiters[slot.model]; ok && len(q) > 0 {
		w := q[0]
		if len(q) == 1 {
			delete(s.waiters, slot.model)
		} else {
			s.waiters[slot.model] = q[1:]
			wake(q[1].turn)
		}
		w.handed <- slot // buffered, and w is out of the queue: never blocks
		s.mu.Unlock()
		if report {
			return s.succeeded(ctx, slot.EndpointID)
		}
		return nil
	}
	s.mu.Unlock()

	err := s.q.SlotRelease(ctx, s.pool, queries.SlotReleaseParams{
		EndpointID: slot.EndpointID, Slot: slot.n, Holder: &slot.holder, Succeeded: report,
	})
	s.mu.Lock()
	if q := s.waiters[slot.model]; len(q) > 0 {
		wake(q[0].turn)
	}
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("error giving back an endpoint slot: %w", err)
	}
	return nil
}

// healthReportEvery is how often a process tells the database that an
// endpoint keeps answering well.
const healthReportEvery = 2 * time.Second

func (s *Slots) succeeded(ctx context.Context, endpoint uuid.UUID) error {
	if err := s.q.EndpointSucceeded(ctx, s.pool, endpoint); err != nil {
		return fmt.Errorf("error recording endpoint health: %w", err)
	}
	return nil
}

// Failed records a retryable failure of the endpoint and reports whether it
// is now cooling off.
func (s *Slots) Failed(ctx context.Context, endpoint uuid.UUID, cause error) (cooling bool, err error) {
	s.mu.Lock()
	s.failed[endpoint] = true
	s.mu.Unlock()
	msg := cause.Error()
	if len(msg) > 1000 {
		msg = msg[:1000]
	}
	row, err := s.q.EndpointFailed(ctx, s.pool, queries.EndpointFailedParams{
		ID: endpoint, LastError: &msg, Threshold: int32(s.health.FailureThreshold), CoolSeconds: s.health.CoolOff.Seconds(),
	})
	if err != nil {
		return false, fmt.Errorf("error recording endpoint health: %w", err)
	}
	return row.CoolUntil != nil && time.Until(*row.CoolUntil) > 0, nil
}
