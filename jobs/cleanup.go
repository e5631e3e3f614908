package jobs

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/deepimageshub/imagehub/queries"
)

// CleanupArgs removes expired sessions and old sign-in and sign-up counts.
type CleanupArgs struct{}

// Kind is the job kind.
func (CleanupArgs) Kind() string { return "cleanup" }

// InsertOpts makes the periodic cleanup unique while it waits, so replicas
// that each schedule it do not pile up copies.
func (CleanupArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true, ByPeriod: 0}}
}

// CleanupWorker runs CleanupArgs.
type CleanupWorker struct {
	river.WorkerDefaults[CleanupArgs]
	pool   *pgxpool.Pool
	q      *queries.Queries
	logger *slog.Logger
}

// failureWindow is how long throttle counts are kept: longer than any
// throttling window anyone would configure.
const failureWindow = 24 * 60 * 60

// Work deletes what has expired.
func (w *CleanupWorker) Work(ctx context.Context, job *river.Job[CleanupArgs]) error {
	sessions, err := w.q.SessionDeleteExpired(ctx, w.pool)
	if err != nil {
		return fmt.Errorf("error deleting expired sessions: %w", err)
	}
	failures, err := w.q.LoginThrottleDeleteOld(ctx, w.pool, failureWindow)
	if err != nil {
		return fmt.Errorf("error deleting old sign-in failures: %w", err)
	}
	signups, err := w.q.SignupThrottleDeleteOld(ctx, w.pool, failureWindow)
	if err != nil {
		return fmt.Errorf("error deleting old sign-up counts: %w", err)
	}
	w.logger.InfoContext(ctx, "cleanup done", "sessions", sessions, "login_throttle", failures, "signup_throttle", signups)
	return nil
}
