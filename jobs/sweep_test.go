package jobs

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/dataset/datasettest"
	"github.com/deepimageshub/imagehub/dbtest"
	"github.com/deepimageshub/imagehub/queries"
)

// TestTrainingArtifactSweep: an artifact the hub stored but no training
// records (the hub died between the blob write and the commit of the
// upload's transaction) is deleted by the blob sweep once older than the
// grace period; the artifact a training records stays, and so does a
// young one, whose upload may still be committing.
func TestTrainingArtifactSweep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := dbtest.NewPool(t)
	store, err := blob.Open(ctx, "file://"+filepath.Join(t.TempDir(), "blobs"))
	require.NoError(t, err)
	fx := datasettest.New(t, pool, store)

	var datasetID, versionID uuid.UUID
	require.NoError(t, pool.QueryRow(ctx, `INSERT INTO datasets (name, train_ppm, val_ppm, test_ppm, seed, created_by)
		VALUES ('d', 1000000, 0, 0, decode(md5(random()::text), 'hex'), $1) RETURNING id`, fx.Owner).Scan(&datasetID))
	require.NoError(t, pool.QueryRow(ctx, `INSERT INTO dataset_versions (dataset_id, number, state, filter, created_by)
		VALUES ($1, 1, 'published', '{}', $2) RETURNING id`, datasetID, fx.Owner).Scan(&versionID))
	run := uuid.New()
	sha := func(c string) string { return strings.Repeat(c, 64) }
	kept := "trainings/" + run.String() + "/" + sha("a")
	_, err = pool.Exec(ctx, `INSERT INTO trainings (id, created_by, dataset_id, version_id, version_number, recipe, seed,
		model_name, max_attempts, state, artifact_key) VALUES ($1, $2, $3, $4, 1, 'r', 1, 'm', 3, 'succeeded', $5)`,
		run, fx.Owner, datasetID, versionID, kept)
	require.NoError(t, err)

	// The same run's earlier upload that never committed, one of a run
	// that never recorded any, and one just written.
	orphans := []string{"trainings/" + run.String() + "/" + sha("b"), "trainings/" + uuid.NewString() + "/" + sha("c")}
	young := "trainings/" + uuid.NewString() + "/" + sha("d")
	for _, k := range append(append([]string{kept, young}, orphans...), "trainings/notes.txt") {
		require.NoError(t, store.Put(ctx, k, bytes.NewReader([]byte("x")), 1, ""))
	}
	old := time.Now().Add(-2 * time.Hour)
	for _, k := range append([]string{kept, "trainings/notes.txt"}, orphans...) {
		require.NoError(t, store.(*blob.FS).Touch(k, old))
	}

	w := &SweepWorker{q: queries.New(), pool: pool, blobs: store, logger: slog.New(slog.NewTextHandler(io.Discard, nil)), grace: time.Hour}
	require.NoError(t, w.Work(ctx, &river.Job[SweepArgs]{}))

	var left []string
	require.NoError(t, store.List(ctx, "trainings/", func(i blob.Info) error {
		left = append(left, i.Key)
		return nil
	}))
	require.ElementsMatch(t, []string{kept, young, "trainings/notes.txt"}, left,
		"the orphans are gone; the recorded artifact, the young one and a name not of the hub's making stay")
}
