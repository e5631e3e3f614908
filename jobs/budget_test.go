package jobs

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/imaging"
	"github.com/deepimageshub/imagehub/imaging/imagingtest"
)

func TestMemoryBudget(t *testing.T) {
	t.Parallel()
	b := newMemoryBudget(100)

	// Two that fit together run together; a third waits for room.
	r1, err := b.acquire(context.Background(), 60)
	require.NoError(t, err)
	r2, err := b.acquire(context.Background(), 40)
	require.NoError(t, err)
	got := make(chan error, 1)
	go func() {
		r3, err := b.acquire(context.Background(), 30)
		if err == nil {
			r3()
		}
		got <- err
	}()
	select {
	case <-got:
		t.Fatal("a decode ran over the budget")
	case <-time.After(50 * time.Millisecond):
	}
	r2()
	require.NoError(t, <-got)

	// More than the whole budget waits until it is alone, then runs.
	big := make(chan func(), 1)
	go func() {
		r, err := b.acquire(context.Background(), 1000)
		if err == nil {
			big <- r
		}
	}()
	select {
	case <-big:
		t.Fatal("an oversized decode ran beside another")
	case <-time.After(50 * time.Millisecond):
	}
	r1()
	select {
	case r := <-big:
		r()
	case <-time.After(5 * time.Second):
		t.Fatal("an oversized decode never ran")
	}

	// Waiting ends with the job's context.
	hold, err := b.acquire(context.Background(), 100)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = b.acquire(ctx, 1)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.ErrorContains(t, err, "ingest memory budget")
	hold()
}

// TestIngestDecodeWaitsForRoom: ingest decodes once the budget has room,
// and when none comes within half the job's time it snoozes the job, which
// costs no attempt, instead of failing it.
func TestIngestDecodeWaitsForRoom(t *testing.T) {
	t.Parallel()
	w := &IngestWorker{budget: newMemoryBudget(64 << 20), logger: slog.New(slog.DiscardHandler)}
	prep, err := imaging.Options{}.Prepare(imagingtest.JPEG(imagingtest.Photo(640, 480, 1)))
	require.NoError(t, err)

	res, d, err := w.decode(context.Background(), prep)
	require.NoError(t, err)
	require.Nil(t, res.Image, "the pixels are dropped")
	require.NotEmpty(t, d.Grid)

	hold, err := w.budget.acquire(context.Background(), 64<<20)
	require.NoError(t, err)
	defer hold()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	began := time.Now()
	_, _, err = w.decode(ctx, prep)
	var snooze *river.JobSnoozeError
	require.ErrorAs(t, err, &snooze)
	require.GreaterOrEqual(t, time.Since(began), 1900*time.Millisecond, "waited for room")
	require.NoError(t, ctx.Err(), "gave up at half the job's time, not at its end")
}
