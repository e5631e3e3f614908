package dispatch

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/dbtest"
	"github.com/deepimageshub/imagehub/queries"
)

// register saves a model with the given endpoints, each of the capacity.
func register(t *testing.T, pool *pgxpool.Pool, capacity int, endpoints ...string) queries.Model {
	t.Helper()
	enabled := true
	s := Spec{Name: "m", Version: "1", Endpoints: endpoints, Capacity: capacity, Enabled: &enabled}
	require.NoError(t, s.Normalize())
	var m queries.Model
	require.NoError(t, pgx.BeginFunc(context.Background(), pool, func(tx pgx.Tx) error {
		var err error
		m, _, err = Save(context.Background(), tx, s, Check{})
		return err
	}))
	return m
}

// TestSlotsNeverExceedCapacity: two Slots on two pools (two hub processes)
// and 40 dispatchers hammer two endpoints of capacity 3; no endpoint ever
// has more than 3 holders, and every request gets through.
func TestSlotsNeverExceedCapacity(t *testing.T) {
	t.Parallel()
	url := dbtest.NewURL(t)
	ctx := context.Background()
	poolA, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	defer poolA.Close()
	poolB, err := pgxpool.New(ctx, url)
	require.NoError(t, err)
	defer poolB.Close()
	m := register(t, poolA, 3, "http://a:8000", "http://b:8000")
	procs := []*Slots{NewSlots(poolA, Health{}), NewSlots(poolB, Health{})}

	var mu sync.Mutex
	inFlight := map[string]int{}
	peak := map[string]int{}
	var served atomic.Int64
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			s := procs[i%2]
			for range 10 {
				slot, err := s.Acquire(ctx, m.ID, 10*time.Second, 10*time.Second)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				inFlight[slot.BaseURL]++
				peak[slot.BaseURL] = max(peak[slot.BaseURL], inFlight[slot.BaseURL])
				mu.Unlock()
				time.Sleep(2 * time.Millisecond)
				mu.Lock()
				inFlight[slot.BaseURL]--
				mu.Unlock()
				if err := s.Release(ctx, slot, i%3 != 0); err != nil {
					t.Error(err)
					return
				}
				served.Add(1)
			}
		})
	}
	wg.Wait()
	require.EqualValues(t, 400, served.Load())
	require.Equal(t, map[string]int{"http://a:8000": 3, "http://b:8000": 3}, peak, "both endpoints used, neither beyond capacity")
	var held int
	require.NoError(t, poolA.QueryRow(ctx, "SELECT count(*) FROM endpoint_slots WHERE held_until > now()").Scan(&held))
	require.Zero(t, held, "every slot was given back")
}

// TestSlotsWaitThenNoSlot: with the only slot held, Acquire waits, then
// reports every endpoint full; a slot whose holder died frees itself when
// its hold ends.
func TestSlotsWaitThenNoSlot(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	m := register(t, pool, 1, "http://a:8000")
	dead := NewSlots(pool, Health{}) // a process that will die holding its slot
	s := NewSlots(pool, Health{})
	_, err := dead.Acquire(ctx, m.ID, 1500*time.Millisecond, time.Second)
	require.NoError(t, err)

	start := time.Now()
	_, err = s.Acquire(ctx, m.ID, time.Second, 300*time.Millisecond)
	var none *ErrNoSlot
	require.ErrorAs(t, err, &none)
	require.True(t, none.CoolingUntil.IsZero(), "full, not cooling")
	require.GreaterOrEqual(t, time.Since(start), 300*time.Millisecond)

	slot, err := s.Acquire(ctx, m.ID, time.Second, 5*time.Second)
	require.NoError(t, err, "the dead holder's slot came back when its hold ended")
	require.Less(t, time.Since(start), 4*time.Second)
	require.NoError(t, s.Release(ctx, slot, true))
}

// TestSlotsLeastLoadedAndCoolOff: requests spread over endpoints by load;
// an endpoint that keeps failing cools off and gets nothing until it ends.
func TestSlotsLeastLoadedAndCoolOff(t *testing.T) {
	t.Parallel()
	pool := dbtest.NewPool(t)
	ctx := context.Background()
	m := register(t, pool, 4, "http://a:8000", "http://b:8000")
	s := NewSlots(pool, Health{FailureThreshold: 2, CoolOff: 700 * time.Millisecond})

	first, err := s.Acquire(ctx, m.ID, time.Minute, time.Second)
	require.NoError(t, err)
	second, err := s.Acquire(ctx, m.ID, time.Minute, time.Second)
	require.NoError(t, err)
	require.NotEqual(t, first.BaseURL, second.BaseURL, "the second request goes to the idle endpoint")
	require.NoError(t, s.Release(ctx, first, true))
	require.NoError(t, s.Release(ctx, second, true))

	var bad Slot
	for range 2 {
		slot, err := s.Acquire(ctx, m.ID, time.Minute, time.Second)
		require.NoError(t, err)
		if bad.BaseURL == "" {
			bad = slot
		}
		require.NoError(t, s.Release(ctx, slot, false))
		_, err = s.Failed(ctx, bad.EndpointID, errors.New("connection refused"))
		require.NoError(t, err)
	}
	// Every request now goes to the healthy endpoint until it is full;
	// then a waiter learns when the cooling one comes back.
	var held []Slot
	for {
		slot, err := s.Acquire(ctx, m.ID, time.Minute, 50*time.Millisecond)
		var none *ErrNoSlot
		if errors.As(err, &none) {
			require.False(t, none.CoolingUntil.IsZero())
			break
		}
		require.NoError(t, err)
		require.NotEqual(t, bad.BaseURL, slot.BaseURL)
		held = append(held, slot)
	}
	require.Len(t, held, 4, "the healthy endpoint's whole capacity")
	time.Sleep(800 * time.Millisecond)
	back, err := s.Acquire(ctx, m.ID, time.Minute, time.Second)
	require.NoError(t, err)
	require.Equal(t, bad.BaseURL, back.BaseURL, "after the cool-off the endpoint takes requests again")
	for _, h := range append(held, back) {
		require.NoError(t, s.Release(ctx, h, true))
	}
}

// TestSpecNormalize: bad registrations are refused with the field named.
func TestSpecNormalize(t *testing.T) {
	t.Parallel()
	ok := func() Spec { return Spec{Name: "seg", Endpoints: []string{"http://gpu-1:8000/"}} }
	s := ok()
	require.NoError(t, s.Normalize())
	require.Equal(t, []string{"http://gpu-1:8000"}, s.Endpoints)
	require.Equal(t, "1", s.Version)
	require.Equal(t, 4, s.Capacity)
	for field, mutate := range map[string]func(*Spec){
		"name":       func(s *Spec) { s.Name = "../etc" },
		"version":    func(s *Spec) { s.Version = "v 1" },
		"task":       func(s *Spec) { s.Task = "classification" },
		"capacity":   func(s *Spec) { s.Capacity = -1 },
		"timeout_ms": func(s *Spec) { s.TimeoutMS = 5 },
		"endpoints":  func(s *Spec) { s.Endpoints = []string{"ftp://x"} },
		// sam is for a pair's embed and interactive models; the other
		// stock layouts are for segmentation.
		"layout":  func(s *Spec) { s.Layout = "sam" },
		"labels":  func(s *Spec) { s.Task, s.Layout, s.Labels = TaskEmbed, "sam", []string{"cat"} },
		"layout ": func(s *Spec) { s.Task, s.Layout = TaskEmbed, "yolo-seg" },
	} {
		s := ok()
		mutate(&s)
		err := s.Normalize()
		require.Error(t, err, field)
		require.Contains(t, err.Error(), "("+strings.TrimSpace(field)+")", field)
	}
	for _, task := range []string{TaskEmbed, TaskInteractive} {
		s := ok()
		s.Task, s.Layout = task, "sam"
		require.NoError(t, s.Normalize(), task)
		require.Equal(t, "sam", s.Layout)
	}
	for _, bad := range []string{"http://user:pw@gpu:8000", "http://gpu:8000/v2", "http://gpu:8000?x=1", "gpu:8000", ""} {
		s := ok()
		s.Endpoints = []string{bad}
		require.Error(t, s.Normalize(), bad)
	}
}
