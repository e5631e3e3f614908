package jobs

import (
	"context"
	"fmt"
	"runtime/debug"

	"golang.org/x/sync/semaphore"
)

// memoryBudget admits image decodes by the memory they take rather than by
// their number, so that sixteen 40-megapixel photos or 16-bit PNGs arriving
// at once wait their turn instead of exhausting the process's memory. One
// budget is shared by every ingest of a process (NewClient makes it).
//
// A decode that needs more than the whole budget (possible only with a
// budget below what the pixel cap allows) takes the whole budget: it waits
// until it is alone, and then runs, rather than being refused or waiting
// forever. Waiting ends with the job's context (shutdown, job timeout), and
// the job is retried later.
type memoryBudget struct {
	sem   *semaphore.Weighted
	total int64
}

func newMemoryBudget(total int64) *memoryBudget {
	return &memoryBudget{sem: semaphore.NewWeighted(total), total: total}
}

// freeAfter is the share of the budget above which a finished decode
// returns its memory to the system at once: left to the collector, the
// garbage of a few large decodes would more than double the heap before
// the next collection, whatever the budget says.
const freeAfter = 8

// acquire waits until n bytes (at most the whole budget) are free and
// takes them; release gives them back.
func (b *memoryBudget) acquire(ctx context.Context, n int64) (release func(), err error) {
	n = min(max(n, 1), b.total)
	if err := b.sem.Acquire(ctx, n); err != nil {
		return nil, fmt.Errorf("error waiting for %d MiB of the ingest memory budget: %w", n>>20, err)
	}
	return func() {
		b.sem.Release(n)
		if n >= b.total/freeAfter {
			debug.FreeOSMemory()
		}
	}, nil
}
