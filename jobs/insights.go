package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/deepimageshub/imagehub/queries"
)

// compactSummariesEvery is how often the insights summaries' deltas are
// folded in. Writers append a few delta rows per review; the readers sum
// them with the summary, so what a minute leaves costs them little.
const compactSummariesEvery = time.Minute

// CompactSummariesArgs folds the insights summaries' deltas into the
// summaries (migration 00015's insight_compact_summaries).
type CompactSummariesArgs struct{}

// Kind is the job kind.
func (CompactSummariesArgs) Kind() string { return "compact_summaries" }

// InsertOpts keeps one waiting copy whatever the number of replicas.
func (CompactSummariesArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByPeriod: 0}}
}

// CompactSummariesWorker runs CompactSummariesArgs.
type CompactSummariesWorker struct {
	river.WorkerDefaults[CompactSummariesArgs]
	pool   *pgxpool.Pool
	q      *queries.Queries
	logger *slog.Logger
}

// Work folds the deltas in.
func (w *CompactSummariesWorker) Work(ctx context.Context, job *river.Job[CompactSummariesArgs]) error {
	n, err := w.q.InsightCompactSummaries(ctx, w.pool)
	if err != nil {
		return fmt.Errorf("error compacting the insights summaries: %w", err)
	}
	if n > 0 {
		w.logger.DebugContext(ctx, "insights summaries compacted", "deltas", n)
	}
	return nil
}
