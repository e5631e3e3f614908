package training

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/dispatch"
	"github.com/deepimageshub/imagehub/evaluation"
	"github.com/deepimageshub/imagehub/inference"
	"github.com/deepimageshub/imagehub/jobs"
	"github.com/deepimageshub/imagehub/layout"
	"github.com/deepimageshub/imagehub/onnxmeta"
	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/queries"
	"github.com/deepimageshub/imagehub/worker/onnxworker"
)

// Artifact formats (X-Artifact-Format) and ONNX layouts (X-Artifact-Layout).
const (
	ArtifactONNX   = "onnx"
	ArtifactRegion = "imagehub-region"
)

func invalidArtifact(why string) error {
	return problem.New(http.StatusBadRequest, "invalid_artifact", "artifact", "The artifact was refused: "+why)
}

// Upload reads an artifact from body (whole, within MaxArtifactBytes),
// checks it, stores it, registers it as the next version of the training's
// model and starts its evaluations, then moves the run to evaluating. A
// body cut short or refused stores nothing and leaves the run running, so
// its trainer can upload again while its lease lives.
func (s *Service) Upload(ctx context.Context, id uuid.UUID, token, format, layoutKind string, body io.Reader) (Training, error) {
	if err := s.holds(ctx, s.pool, id, token); err != nil {
		return Training{}, err
	}
	switch format {
	case ArtifactRegion:
	case ArtifactONNX:
		if layoutKind != "yolo-seg" && layoutKind != "maskrcnn" {
			return Training{}, problem.BadInput("invalid_artifact", "X-Artifact-Layout", `An ONNX artifact says its layout: "yolo-seg" or "maskrcnn".`)
		}
	default:
		return Training{}, problem.BadInput("invalid_artifact", "X-Artifact-Format", `X-Artifact-Format is "onnx" or "imagehub-region".`)
	}
	data, err := io.ReadAll(io.LimitReader(body, s.opts.MaxArtifactBytes+1))
	if err != nil {
		return Training{}, fmt.Errorf("error reading the artifact: %w", err)
	}
	if int64(len(data)) > s.opts.MaxArtifactBytes {
		return Training{}, problem.New(http.StatusRequestEntityTooLarge, "too_large", "artifact",
			fmt.Sprintf("An artifact may be at most %d bytes.", s.opts.MaxArtifactBytes))
	}
	t, err := get(ctx, s.pool, id)
	if err != nil {
		return Training{}, err
	}
	labels, err := s.check(ctx, format, layoutKind, data, t.Labels)
	if err != nil {
		return Training{}, invalidArtifact(err.Error())
	}
	if labels == nil {
		labels = t.Labels
	}
	for i, l := range labels {
		if slices.Contains(labels[:i], l) {
			return Training{}, invalidArtifact(fmt.Sprintf("it lists label %q twice", l))
		}
		if !slices.Contains(t.Labels, l) {
			return Training{}, invalidArtifact(fmt.Sprintf("it predicts label %q, which the run did not train", l))
		}
	}
	if len(labels) == 0 {
		return Training{}, invalidArtifact("it predicts no label")
	}
	sum := sha256.Sum256(data)
	key := "trainings/" + id.String() + "/" + hex.EncodeToString(sum[:])
	if err := s.blobs.Put(ctx, key, bytes.NewReader(data), int64(len(data)), "application/octet-stream"); err != nil {
		return Training{}, fmt.Errorf("error storing the artifact: %w", err)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := s.holds(ctx, tx, id, token); err != nil {
			return err
		}
		return s.register(ctx, tx, t, key, sum[:], int64(len(data)), format, layoutKind, labels)
	})
	if err != nil {
		// Nothing points at the blob: remove it so no half-stored model
		// stays. The key is the run's and the content's, so a second upload
		// of the same file that lost the race to the first (which committed)
		// must not delete the first's artifact. A hub that dies before this
		// leaves the blob to the blob sweep (jobs.SweepArgs).
		dctx := context.WithoutCancel(ctx)
		if used, qerr := s.q.TrainingArtifactReferenced(dctx, s.pool, key); qerr == nil && !used {
			_ = s.blobs.Delete(dctx, key)
		}
		return Training{}, err
	}
	return get(ctx, s.pool, id)
}

// holds checks, locking the row in a transaction, that token is the live
// lease of a running run. An upload may outlast the lease by the time it
// takes, as long as no one else took the run.
func (s *Service) holds(ctx context.Context, db queries.DBTX, id uuid.UUID, token string) error {
	lock := ""
	if _, ok := db.(pgx.Tx); ok {
		lock = " FOR UPDATE"
	}
	var state string
	err := db.QueryRow(ctx, `SELECT state::text FROM trainings WHERE id = $1 AND lease_hash = $2`+lock,
		id, auth.HashSecret(token)).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && state != Running) {
		return ErrLeaseLost
	}
	if err != nil {
		return fmt.Errorf("error reading the lease: %w", err)
	}
	return nil
}

// check runs the format's checker and returns the labels the artifact
// predicts (nil: the run's, in order). An ONNX file is checked here
// (checkONNX), then by the injected checker when there is one.
func (s *Service) check(ctx context.Context, format, layoutKind string, data []byte, runLabels []string) ([]string, error) {
	if len(data) == 0 {
		return nil, errors.New("the file is empty")
	}
	fn := s.opts.CheckArtifact[format]
	if format == ArtifactONNX {
		labels, err := checkONNX(data, layout.Kind(layoutKind), runLabels)
		if err != nil || fn == nil {
			return labels, err
		}
		// The injected check (loading the file, say) refuses or names
		// the labels; naming none keeps the ones read here.
		more, err := fn(ctx, data)
		if err != nil || more != nil {
			return more, err
		}
		return labels, nil
	}
	if fn == nil {
		return nil, fmt.Errorf("this hub has no checker for %s artifacts", format)
	}
	return fn(ctx, data)
}

// checkONNX reads the graph's inputs and outputs from the file (no ONNX
// Runtime needed) and checks them against the layout the trainer named
// with the registry's own check (inference.CheckLayout), with the model's
// class names: its Ultralytics "names" metadata when it has them, else the
// run's labels. So a yolo-seg file's 4+nc+32 rows must match the labels,
// and a file of another layout, or none, is refused before anything is
// stored.
func checkONNX(data []byte, kind layout.Kind, runLabels []string) ([]string, error) {
	m, err := onnxmeta.Read(data)
	if err != nil {
		return nil, err
	}
	var labels []string
	if v, ok := m.Props["names"]; ok {
		if labels, err = onnxworker.ParseUltralyticsNames(v); err != nil {
			return nil, fmt.Errorf("its metadata's class names cannot be read: %w", err)
		}
	}
	p := layout.Params{Kind: kind, Labels: labels}
	if labels == nil {
		p.Labels = runLabels
	}
	if _, problems := inference.CheckLayout(m.Metadata("artifact"), p); len(problems) > 0 {
		msgs := make([]string, len(problems))
		for i, pr := range problems {
			msgs[i] = pr.Message
		}
		return nil, fmt.Errorf("it does not fit the %s layout: %s", kind, strings.Join(msgs, "; "))
	}
	return labels, nil
}

// register makes the model version, records the artifact and starts the
// evaluations: the new version against the model that proposes today, or
// a retrain's against the version before it, on the version's val split
// (test when val is empty).
func (s *Service) register(ctx context.Context, tx pgx.Tx, t Training, key string, sha []byte, size int64, format, layoutKind string, labels []string) error {
	if s.opts.Endpoint == nil || s.opts.Endpoint() == "" {
		return errors.New("this hub has no worker to serve trained models (training.Options.Endpoint)")
	}
	var next int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(model_version::int), 0) + 1 FROM trainings
		WHERE model_name = $1 AND model_version ~ '^[0-9]{1,9}$'`, t.ModelName).Scan(&next); err != nil {
		return fmt.Errorf("error numbering the model version: %w", err)
	}
	version := strconv.Itoa(next)
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM models WHERE name = $1 AND version = $2)`, t.ModelName, version).Scan(&exists); err != nil {
		return fmt.Errorf("error checking the model version: %w", err)
	}
	if exists {
		return problem.Conflict("model_exists", "model_name", fmt.Sprintf("Model %s already has a version %s that no training made.", t.ModelName, version))
	}
	enabled := t.Enable
	spec := dispatch.Spec{Name: t.ModelName, Version: version, Endpoints: []string{s.opts.Endpoint()}, Enabled: &enabled, Labels: labels}
	var check dispatch.Check
	unserved := ""
	if format == ArtifactONNX {
		spec.Layout = layoutKind
		if s.opts.ServeONNX != nil {
			if err := s.opts.ServeONNX(); err != nil {
				unserved = fmt.Sprintf("this hub's built-in worker cannot serve ONNX models: %v", err)
				check.Unreachable = []string{spec.Endpoints[0] + ": " + unserved + "; serve the file from Triton or `imagehub worker --onnx` and register that endpoint"}
				enabled = false
			}
		}
	}
	if err := spec.Normalize(); err != nil {
		return fmt.Errorf("error describing the trained model: %w", err)
	}
	m, _, err := jobs.SaveModel(ctx, tx, s.river, spec, check)
	if err != nil {
		return fmt.Errorf("error registering the trained model: %w", err)
	}
	rec := artifactRecord{key: key, sha: sha, size: size, format: format, layout: layoutKind, labels: labels, version: version, modelID: m.ID}
	if unserved != "" {
		rec.failure = fmt.Sprintf("The artifact is stored and registered as model %s version %s (disabled), but it was not evaluated: %s.", m.Name, m.Version, unserved)
		return rec.save(ctx, tx, t.ID)
	}
	split := "val"
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM dataset_version_images WHERE version_id = $1 AND split = 'val'`, t.VersionID).Scan(&n); err != nil {
		return fmt.Errorf("error counting the val split: %w", err)
	}
	if n == 0 {
		split = "test"
	}
	req := evaluation.Request{Model: m.Name, ModelVersion: m.Version, DatasetID: t.DatasetID.String(), Version: t.VersionNumber, Split: split}
	e, err := jobs.StartEvaluation(ctx, tx, s.river, req, t.CreatedBy)
	if err != nil {
		return fmt.Errorf("error starting the evaluation: %w", err)
	}
	var baseID *uuid.UUID
	var bName, bVersion string
	if next > 1 {
		bName, bVersion = t.ModelName, strconv.Itoa(next-1)
	} else {
		// The model that proposes today: the oldest enabled model that no
		// training made.
		err := tx.QueryRow(ctx, `SELECT name, version FROM models WHERE enabled AND id <> $1
			AND NOT EXISTS (SELECT 1 FROM trainings WHERE model_id = models.id) ORDER BY created_at, name LIMIT 1`, m.ID).Scan(&bName, &bVersion)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("error finding the proposing model: %w", err)
		}
	}
	if bName != "" {
		breq := req
		breq.Model, breq.ModelVersion = bName, bVersion
		be, err := jobs.StartEvaluation(ctx, tx, s.river, breq, t.CreatedBy)
		var pe *problem.Error
		switch {
		case errors.As(err, &pe): // that model is gone: no baseline
		case err != nil:
			return fmt.Errorf("error starting the baseline evaluation: %w", err)
		default:
			baseID = &be.ID
		}
	}
	rec.evaluationID, rec.baselineID = &e.ID, baseID
	return rec.save(ctx, tx, t.ID)
}

// artifactRecord is what a training records of its stored artifact.
type artifactRecord struct {
	key                      string
	sha                      []byte
	size                     int64
	format, layout           string
	labels                   []string
	version                  string
	modelID                  uuid.UUID
	evaluationID, baselineID *uuid.UUID
	// failure, when set, ends the run failed with it instead of moving it
	// to evaluating.
	failure string
}

// save records r on the training and ends its lease: the run is
// evaluating, or failed with r.failure.
func (r artifactRecord) save(ctx context.Context, tx pgx.Tx, id uuid.UUID) error {
	state := Evaluating
	if r.failure != "" {
		state = Failed
	}
	if _, err := tx.Exec(ctx, `UPDATE trainings SET state = $12::text::training_state, artifact_key = $2, artifact_sha256 = $3,
		artifact_size = $4, artifact_format = $5, artifact_layout = nullif($6, ''), artifact_labels = $7,
		model_version = $8, model_id = $9, evaluation_id = $10, baseline_evaluation_id = $11,
		lease_hash = NULL, lease_expires_at = NULL, data_key_hash = NULL, error = nullif($13, ''),
		finished_at = CASE WHEN $12::text = 'failed' THEN now() END
		WHERE id = $1`, id, r.key, r.sha, r.size, r.format, r.layout, r.labels, r.version, r.modelID,
		r.evaluationID, r.baselineID, state, r.failure); err != nil {
		return fmt.Errorf("error recording the artifact: %w", err)
	}
	return nil
}
