package queries

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Batcher is a pool, connection or transaction that can send a batch.
type Batcher interface {
	SendBatch(context.Context, *pgx.Batch) pgx.BatchResults
}

// RunCompleteAndSettle runs RunComplete and then ImageSettle (with
// failedReason) in one round
// trip. Sent as one pipelined batch outside a transaction, the two run in
// one implicit transaction: both happen or neither. Each statement takes
// its own snapshot, so ImageSettle, holding the image's lock that
// RunComplete took, sees every other run as it is. It reports how many
// runs were completed (0 when the run had already ended).
//
// The arguments are RunComplete's, in the order sqlc generates them (see
// RunComplete in inference.sql.go); the dispatch tests fail if they drift.
func (q *Queries) RunCompleteAndSettle(ctx context.Context, db Batcher, arg RunCompleteParams, failedReason string) (int32, error) {
	b := &pgx.Batch{}
	var n int32
	b.Queue(runComplete,
		arg.ImageID, arg.Instances, arg.LatencyMs, arg.Endpoint, arg.ModelID, arg.LabelIds, arg.Scores,
		arg.Xs, arg.Ys, arg.Ws, arg.Hs, arg.Areas, arg.Height, arg.Width, arg.Counts, arg.Ids,
	).QueryRow(func(row pgx.Row) error { return row.Scan(&n) })
	b.Queue(imageSettle, arg.ImageID, failedReason)
	if err := db.SendBatch(ctx, b).Close(); err != nil {
		return 0, fmt.Errorf("error completing run: %w", err)
	}
	return n, nil
}

// RunCompleteAndSettleCommittee is RunCompleteAndSettle that also counts,
// in the same round trip and implicit transaction, the models whose runs
// succeeded for the image once it waits for review with no model agreement
// (CommitteePending): two or more means the caller has a committee to
// measure.
func (q *Queries) RunCompleteAndSettleCommittee(ctx context.Context, db Batcher, arg RunCompleteParams, failedReason string) (completed, committee int32, err error) {
	b := &pgx.Batch{}
	b.Queue(runComplete,
		arg.ImageID, arg.Instances, arg.LatencyMs, arg.Endpoint, arg.ModelID, arg.LabelIds, arg.Scores,
		arg.Xs, arg.Ys, arg.Ws, arg.Hs, arg.Areas, arg.Height, arg.Width, arg.Counts, arg.Ids,
	).QueryRow(func(row pgx.Row) error { return row.Scan(&completed) })
	b.Queue(imageSettle, arg.ImageID, failedReason)
	b.Queue(committeePending, arg.ImageID).QueryRow(func(row pgx.Row) error { return row.Scan(&committee) })
	if err := db.SendBatch(ctx, b).Close(); err != nil {
		return 0, 0, fmt.Errorf("error completing run: %w", err)
	}
	return completed, committee, nil
}
