package training

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/jobs"
	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/queries"
)

// Training is a training as the API shows it.
type Training struct {
	ID            uuid.UUID
	CreatedBy     uuid.UUID
	DatasetID     uuid.UUID
	VersionID     uuid.UUID
	VersionNumber int
	LabelIDs      []uuid.UUID
	Labels        []string
	Recipe        string
	Params        map[string]float64
	Seed          int64
	Retrain       bool
	RetrainOf     *uuid.UUID
	Enable        bool
	ModelName     string
	ModelVersion  *string
	ModelID       *uuid.UUID
	State         string
	Attempt       int
	MaxAttempts   int
	Trainer       *string
	Step, Steps   int
	// Phase is what the trainer said it was doing at its latest report
	// while running: Running or Evaluating (its own validation pass).
	Phase        *string
	Epoch        *int
	Loss         *float64
	ArtifactKey  *string
	ArtifactSHA  []byte
	ArtifactSize *int64
	ArtifactFmt  *string
	ArtifactLay  *string
	EvaluationID *uuid.UUID
	BaselineID   *uuid.UUID
	Error        *string
	CreatedAt    time.Time
	StartedAt    *time.Time
	FinishedAt   *time.Time
	LeaseExpires *time.Time
}

const trainingColumns = `id, created_by, dataset_id, version_id, version_number, label_ids, label_names, recipe, params, seed,
	retrain, retrain_of, enable, model_name, model_version, model_id, state::text, attempt, max_attempts, trainer,
	step, steps, phase, epoch, loss, artifact_key, artifact_sha256, artifact_size, artifact_format, artifact_layout,
	evaluation_id, baseline_evaluation_id, error, created_at, started_at, finished_at, lease_expires_at`

func scanTraining(row pgx.Row) (Training, error) {
	var t Training
	var params []byte
	err := row.Scan(&t.ID, &t.CreatedBy, &t.DatasetID, &t.VersionID, &t.VersionNumber, &t.LabelIDs, &t.Labels, &t.Recipe,
		&params, &t.Seed, &t.Retrain, &t.RetrainOf, &t.Enable, &t.ModelName, &t.ModelVersion, &t.ModelID, &t.State,
		&t.Attempt, &t.MaxAttempts, &t.Trainer, &t.Step, &t.Steps, &t.Phase, &t.Epoch, &t.Loss, &t.ArtifactKey, &t.ArtifactSHA,
		&t.ArtifactSize, &t.ArtifactFmt, &t.ArtifactLay, &t.EvaluationID, &t.BaselineID, &t.Error, &t.CreatedAt,
		&t.StartedAt, &t.FinishedAt, &t.LeaseExpires)
	if err != nil {
		return Training{}, err
	}
	if err := json.Unmarshal(params, &t.Params); err != nil {
		return Training{}, fmt.Errorf("error reading params of training %s: %w", t.ID, err)
	}
	return t, nil
}

func get(ctx context.Context, db queries.DBTX, id uuid.UUID) (Training, error) {
	t, err := scanTraining(db.QueryRow(ctx, `SELECT `+trainingColumns+` FROM trainings WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Training{}, problem.NotFound
	}
	if err != nil {
		return Training{}, fmt.Errorf("error reading training: %w", err)
	}
	return t, nil
}

// getForUpdate is get with the row locked until tx ends.
func getForUpdate(ctx context.Context, tx pgx.Tx, id uuid.UUID) (Training, error) {
	t, err := scanTraining(tx.QueryRow(ctx, `SELECT `+trainingColumns+` FROM trainings WHERE id = $1 FOR UPDATE`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Training{}, problem.NotFound
	}
	if err != nil {
		return Training{}, fmt.Errorf("error reading training: %w", err)
	}
	return t, nil
}

// Get reads a training; one of another user's is not found unless the
// caller is an admin.
func (s *Service) Get(ctx context.Context, id uuid.UUID, by uuid.UUID, admin bool) (Training, error) {
	t, err := get(ctx, s.pool, id)
	if err != nil {
		return Training{}, err
	}
	if !admin && t.CreatedBy != by {
		return Training{}, problem.NotFound
	}
	return t, nil
}

// After is where a page of List starts: after the training created at At
// with ID, in List's order.
type After struct {
	At time.Time
	ID uuid.UUID
}

// List lists the caller's trainings, newest first (admins: everyone's), at
// most limit of them, those after after when it is not nil.
func (s *Service) List(ctx context.Context, by uuid.UUID, admin bool, limit int, after *After) ([]Training, error) {
	var at *time.Time
	var afterID uuid.UUID
	if after != nil {
		at, afterID = &after.At, after.ID
	}
	rows, err := s.pool.Query(ctx, `SELECT `+trainingColumns+` FROM trainings
		WHERE ($1 OR created_by = $2) AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5))
		ORDER BY created_at DESC, id DESC LIMIT $3`, admin, by, limit, at, afterID)
	if err != nil {
		return nil, fmt.Errorf("error listing trainings: %w", err)
	}
	defer rows.Close()
	var out []Training
	for rows.Next() {
		t, err := scanTraining(rows)
		if err != nil {
			return nil, fmt.Errorf("error listing trainings: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Point is one progress report, for the loss curve.
type Point struct {
	Attempt, Step, Steps int
	Epoch                *int
	Loss                 *float64
}

// History is every progress report of a training, in order.
func (s *Service) History(ctx context.Context, id uuid.UUID) ([]Point, error) {
	rows, err := s.pool.Query(ctx, `SELECT attempt, step, steps, epoch, loss FROM training_progress WHERE training_id = $1 ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("error reading progress: %w", err)
	}
	defer rows.Close()
	var out []Point
	for rows.Next() {
		var p Point
		if err := rows.Scan(&p.Attempt, &p.Step, &p.Steps, &p.Epoch, &p.Loss); err != nil {
			return nil, fmt.Errorf("error reading progress: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Cancel ends a training that has not finished. A trainer holding it learns
// so from its next progress report.
func (s *Service) Cancel(ctx context.Context, id, by uuid.UUID, admin bool) (Training, error) {
	if _, err := s.Get(ctx, id, by, admin); err != nil {
		return Training{}, err
	}
	n := 0
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The state it leaves, read under the row's lock: a run cancelled
		// while evaluating has a registered model to take back.
		t, err := getForUpdate(ctx, tx, id)
		if err != nil {
			return err
		}
		if n, err = s.finishingTx(ctx, tx, `UPDATE trainings SET state = 'cancelled', finished_at = now()
			WHERE id = $1 AND state IN ('queued', 'running', 'evaluating')
			RETURNING id, state::text`, id); err != nil {
			return err
		}
		if n == 1 && t.State == Evaluating {
			return s.unregister(ctx, tx, t)
		}
		return nil
	})
	if err != nil {
		return Training{}, fmt.Errorf("error cancelling training: %w", err)
	}
	t, err := get(ctx, s.pool, id)
	if err == nil && n == 0 {
		return t, problem.Conflict("already_finished", "", fmt.Sprintf("The training is %s already.", t.State))
	}
	return t, err
}

// unregister takes back, in tx, what the artifact of a run cancelled
// while evaluating set going, so no half-stored model stays: its model
// version is disabled (it proposes nothing; the artifact and the row stay
// for an admin, as with a failed run) and its evaluations not yet done end
// failed, their jobs cancelled.
func (s *Service) unregister(ctx context.Context, tx pgx.Tx, t Training) error {
	if t.ModelID != nil {
		if _, err := tx.Exec(ctx, `UPDATE models SET enabled = false, updated_at = now() WHERE id = $1`, *t.ModelID); err != nil {
			return fmt.Errorf("error disabling the trained model: %w", err)
		}
	}
	for _, e := range []*uuid.UUID{t.EvaluationID, t.BaselineID} {
		if e == nil {
			continue
		}
		if err := jobs.CancelEvaluation(ctx, tx, s.river, *e, "its training was cancelled"); err != nil {
			return err
		}
	}
	return nil
}

// Store reads trained artifacts for the worker that serves them.
type Store struct {
	pool  *pgxpool.Pool
	blobs blob.Store
}

// NewStore makes a Store.
func NewStore(pool *pgxpool.Pool, blobs blob.Store) *Store { return &Store{pool: pool, blobs: blobs} }

// Trained is an artifact registered as a model version, as its server
// needs it.
type Trained struct {
	Format string   // ArtifactONNX or ArtifactRegion
	Layout string   // an ONNX file's layout
	Labels []string // its class names, in output order
	key    string
}

// Find finds the artifact registered as version of model. A model no
// training made is not found.
func (s *Store) Find(ctx context.Context, model, version string) (Trained, error) {
	var t Trained
	var lay *string
	err := s.pool.QueryRow(ctx, `SELECT artifact_key, artifact_format, artifact_layout, coalesce(artifact_labels, label_names) FROM trainings
		WHERE model_name = $1 AND model_version = $2 AND artifact_key IS NOT NULL`, model, version).Scan(&t.key, &t.Format, &lay, &t.Labels)
	if errors.Is(err, pgx.ErrNoRows) {
		return Trained{}, fmt.Errorf("no trained artifact for model %s version %s: %w", model, version, problem.NotFound)
	}
	if err != nil {
		return Trained{}, fmt.Errorf("error finding the artifact of %s %s: %w", model, version, err)
	}
	if lay != nil {
		t.Layout = *lay
	}
	return t, nil
}

// Open reads the file of an artifact Find found.
func (s *Store) Open(ctx context.Context, t Trained) (io.ReadCloser, error) {
	rc, _, err := s.blobs.Get(ctx, t.key)
	if err != nil {
		return nil, fmt.Errorf("error reading the artifact %s: %w", t.key, err)
	}
	return rc, nil
}

// Artifact opens the artifact registered as version of model, and says its
// format (onnx or imagehub-region). A model no training made is not found.
func (s *Store) Artifact(ctx context.Context, model, version string) (io.ReadCloser, string, error) {
	t, err := s.Find(ctx, model, version)
	if err != nil {
		return nil, "", err
	}
	rc, err := s.Open(ctx, t)
	if err != nil {
		return nil, "", fmt.Errorf("error reading the artifact of %s %s: %w", model, version, err)
	}
	return rc, t.Format, nil
}

// Artifact opens a training's artifact, for its owner's download.
func (s *Service) Artifact(ctx context.Context, t Training) (io.ReadCloser, error) {
	if t.ArtifactKey == nil {
		return nil, problem.NotFound
	}
	rc, _, err := s.blobs.Get(ctx, *t.ArtifactKey)
	if err != nil {
		return nil, fmt.Errorf("error reading the artifact: %w", err)
	}
	return rc, nil
}

// ModelVersion is one trained version of a model with its evaluation.
type ModelVersion struct {
	Model         string
	Version       string
	TrainingID    uuid.UUID
	DatasetNumber int
	AP, AP50      *float64
	// PerClass is the evaluation's AP50 of each label the run trained, by
	// label name.
	PerClass   []ClassAP50
	FinishedAt *time.Time
}

// ClassAP50 is one class's AP50 in an evaluation.
type ClassAP50 struct {
	Label string
	AP50  float64
}

// Versions lists the trained versions of a model, oldest first, with the
// figures of their evaluations: the series a retrain adds to.
func (s *Service) Versions(ctx context.Context, model string) ([]ModelVersion, error) {
	series, err := s.series(ctx, &model)
	return series[model], err
}

// Series is Versions of every model trainings made, by model name.
func (s *Service) Series(ctx context.Context) (map[string][]ModelVersion, error) {
	return s.series(ctx, nil)
}

func (s *Service) series(ctx context.Context, model *string) (map[string][]ModelVersion, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT t.model_name, t.model_version, t.id, t.version_number, e.ap, e.ap50, t.finished_at,
			ARRAY(SELECT c.name FROM evaluation_classes c WHERE c.evaluation_id = e.id AND c.name = ANY (t.label_names) ORDER BY c.name),
			ARRAY(SELECT c.ap50 FROM evaluation_classes c WHERE c.evaluation_id = e.id AND c.name = ANY (t.label_names) ORDER BY c.name)
		FROM trainings t LEFT JOIN evaluations e ON e.id = t.evaluation_id AND e.state = 'done'
		WHERE ($1::text IS NULL OR t.model_name = $1) AND t.model_version IS NOT NULL
		ORDER BY t.model_name, t.model_version::int`, model)
	if err != nil {
		return nil, fmt.Errorf("error listing model versions: %w", err)
	}
	defer rows.Close()
	out := map[string][]ModelVersion{}
	for rows.Next() {
		var v ModelVersion
		var names []string
		var ap50s []float64
		if err := rows.Scan(&v.Model, &v.Version, &v.TrainingID, &v.DatasetNumber, &v.AP, &v.AP50, &v.FinishedAt, &names, &ap50s); err != nil {
			return nil, fmt.Errorf("error listing model versions: %w", err)
		}
		for i := range min(len(names), len(ap50s)) {
			v.PerClass = append(v.PerClass, ClassAP50{Label: names[i], AP50: ap50s[i]})
		}
		out[v.Model] = append(out[v.Model], v)
	}
	return out, rows.Err()
}
