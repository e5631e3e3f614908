package dataset

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/queries"
	"github.com/deepimageshub/imagehub/webhook"
)

// ErrPublishing is returned by NewVersion while a version of the dataset is
// still being published.
var ErrPublishing = problem.Conflict("publishing", "", "A version of this dataset is being published; wait until it is done.")

// NewVersion records the next version of a dataset, waiting to be
// published, with the dataset's filter as it is now. The caller inserts the
// publish job in the same transaction. Only one version of a dataset is
// published at a time: another gets ErrPublishing.
func NewVersion(ctx context.Context, tx pgx.Tx, datasetID, by uuid.UUID) (queries.DatasetVersion, error) {
	q := queries.New()
	d, err := q.DatasetGetForUpdate(ctx, tx, datasetID)
	if errors.Is(err, pgx.ErrNoRows) {
		return queries.DatasetVersion{}, problem.NotFound
	}
	if err != nil {
		return queries.DatasetVersion{}, fmt.Errorf("error locking dataset: %w", err)
	}
	f, err := FilterOf(ctx, tx, d)
	if err != nil {
		return queries.DatasetVersion{}, err
	}
	filter, err := json.Marshal(f)
	if err != nil {
		return queries.DatasetVersion{}, fmt.Errorf("error encoding filter: %w", err)
	}
	v, err := q.VersionInsert(ctx, tx, queries.VersionInsertParams{DatasetID: d.ID, Filter: filter, CreatedBy: by})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return queries.DatasetVersion{}, ErrPublishing
	}
	if err != nil {
		return queries.DatasetVersion{}, fmt.Errorf("error creating version: %w", err)
	}
	return v, nil
}

// publishLockKey keeps the advisory locks of Publish apart from the
// migrations' and the test harness's.
const publishLockKey = 0x7075626c // "publ"

// Publish writes a version's manifest, categories, class histogram and
// diff in one transaction, set-based, and marks it published. Progress goes
// to the version row from outside the transaction, so pages see it while
// the work runs. A version already published is left as it is, so a job
// run twice publishes once. client queues the version.published
// deliveries.
func Publish(ctx context.Context, pool *pgxpool.Pool, client *river.Client[pgx.Tx], versionID uuid.UUID) (queries.DatasetVersion, error) {
	q := queries.New()
	progress := func(step string, p float32) {
		// Progress is for people; a failed update must not fail the work.
		_ = q.VersionProgress(ctx, pool, queries.VersionProgressParams{ID: versionID, Step: step, Progress: p})
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return queries.DatasetVersion{}, fmt.Errorf("error beginning publish: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // a no-op after commit

	// An advisory lock, not a row lock: the progress updates write the
	// version's row from another connection while this transaction runs.
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext($2))", int32(publishLockKey), versionID.String()); err != nil {
		return queries.DatasetVersion{}, fmt.Errorf("error taking the publish lock: %w", err)
	}
	row, err := q.VersionForPublish(ctx, tx, versionID)
	if err != nil {
		return queries.DatasetVersion{}, fmt.Errorf("error reading version %s: %w", versionID, err)
	}
	v, d := row.DatasetVersion, row.Dataset
	if v.State != queries.DatasetVersionStatePublishing {
		return v, nil
	}
	// One big statement sorts and hashes a million rows: give it memory
	// for that instead of spilling to disk, spare it JIT compilation, which
	// costs more than it saves here, and plan it for this dataset's filter
	// (an empty one takes every row) rather than with a generic plan.
	for _, set := range []string{"SET LOCAL work_mem = '256MB'", "SET LOCAL jit = off", "SET LOCAL plan_cache_mode = force_custom_plan"} {
		if _, err := tx.Exec(ctx, set); err != nil {
			return queries.DatasetVersion{}, fmt.Errorf("error preparing the publish transaction (%s): %w", set, err)
		}
	}

	progress("selecting images and writing the manifest", 0.05)
	mp := queries.VersionManifestInsertParams{
		VersionID: v.ID, TrainPpm: d.TrainPpm, ValPpm: d.ValPpm, Seed: d.Seed,
		LabelIds: d.LabelIds, CampaignIds: d.CampaignIds, Since: d.Since, Until: d.Until, MinShortSide: d.MinShortSide,
	}
	if d.MinSharpness != nil {
		f := float64(*d.MinSharpness)
		mp.MinSharpness = &f
	}
	if _, err := q.VersionManifestInsert(ctx, tx, mp); err != nil {
		return queries.DatasetVersion{}, fmt.Errorf("error writing the manifest: %w", err)
	}
	progress("counting classes per split", 0.6)
	err = q.VersionLabelsInsert(ctx, tx, queries.VersionLabelsInsertParams{VersionID: v.ID, DatasetID: d.ID, FilterLabels: d.LabelIds})
	if err != nil {
		return queries.DatasetVersion{}, fmt.Errorf("error writing the class histogram: %w", err)
	}
	var previous *int32
	prev, err := q.VersionPrevious(ctx, tx, queries.VersionPreviousParams{DatasetID: d.ID, Number: v.Number})
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return queries.DatasetVersion{}, fmt.Errorf("error reading the previous version: %w", err)
	default:
		progress(fmt.Sprintf("comparing with version %d", prev.Number), 0.8)
		previous = &prev.Number
		err := q.VersionChangesInsert(ctx, tx, queries.VersionChangesInsertParams{VersionID: v.ID, PreviousID: prev.ID})
		if err != nil {
			return queries.DatasetVersion{}, fmt.Errorf("error writing the diff: %w", err)
		}
	}
	progress("finishing", 0.95)
	v, err = q.VersionFinish(ctx, tx, queries.VersionFinishParams{ID: v.ID, Previous: previous})
	if err != nil {
		return queries.DatasetVersion{}, fmt.Errorf("error finishing the version: %w", err)
	}
	if v.State == queries.DatasetVersionStatePublished {
		if err := webhook.Emit(ctx, tx, client, webhook.VersionPublished, webhook.Version(v)); err != nil {
			return queries.DatasetVersion{}, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return queries.DatasetVersion{}, fmt.Errorf("error committing the version: %w", err)
	}
	return v, nil
}

// Fail marks a version that could not be published, with the reason.
func Fail(ctx context.Context, db queries.DBTX, versionID uuid.UUID, reason string) error {
	if err := queries.New().VersionFail(ctx, db, queries.VersionFailParams{ID: versionID, Error: &reason}); err != nil {
		return fmt.Errorf("error marking version failed: %w", err)
	}
	return nil
}
