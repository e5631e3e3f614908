// Package evaluation measures a model version against a split of a
// published dataset version with COCO's instance-segmentation metrics
// (package cocoeval), as an ML engineer would with pycocotools on the
// version's export and the model's answers.
//
// An evaluation goes queued → inferring → scoring → done (or failed). Its
// job (jobs.EvaluateWorker) first queues, through the ordinary inference
// jobs, every image of the split that the model has not answered for, then
// waits for those jobs, then scores (Score): ground truth is the version's
// manifest (the annotations it published, in its order, COCO image id = the
// manifest ordinal, category = the version's category), detections are the
// model's proposals for those images in the order the model gave them. An
// image the model could not answer for counts as one without detections,
// and is counted in failed_images.
package evaluation

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/deepimageshub/imagehub/cocoeval"
	"github.com/deepimageshub/imagehub/dataset"
	"github.com/deepimageshub/imagehub/mask"
	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/queries"
	"github.com/deepimageshub/imagehub/webhook"
)

// Request asks for an evaluation (POST /api/v1/evaluations).
type Request struct {
	Model        string `json:"model"`
	ModelVersion string `json:"model_version"`
	DatasetID    string `json:"dataset_id"`
	Version      int    `json:"version"`
	// Split is train, val or test; empty means test.
	Split string `json:"split"`
}

// New checks a request and records the evaluation, in state queued, in tx.
// Every refusal is a 400 naming the field at fault, and records nothing.
func New(ctx context.Context, tx pgx.Tx, req Request, by uuid.UUID) (queries.Evaluation, error) {
	q := queries.New()
	req.Model, req.ModelVersion = strings.TrimSpace(req.Model), strings.TrimSpace(req.ModelVersion)
	if req.Model == "" {
		return queries.Evaluation{}, problem.BadInput("missing_field", "model", "Say which model to evaluate, by name.")
	}
	if req.ModelVersion == "" {
		return queries.Evaluation{}, problem.BadInput("missing_field", "model_version", "Say which version of the model to evaluate.")
	}
	m, err := q.ModelGetByNameVersion(ctx, tx, queries.ModelGetByNameVersionParams{Name: req.Model, Version: req.ModelVersion})
	if errors.Is(err, pgx.ErrNoRows) {
		if named, err := q.EvaluationModelNameExists(ctx, tx, req.Model); err == nil && named {
			return queries.Evaluation{}, problem.BadInput("unknown_model_version", "model_version",
				fmt.Sprintf("Model %s has no version %q.", req.Model, req.ModelVersion))
		}
		return queries.Evaluation{}, problem.BadInput("unknown_model", "model",
			fmt.Sprintf("No model %s version %s is registered.", req.Model, req.ModelVersion))
	}
	if err != nil {
		return queries.Evaluation{}, fmt.Errorf("error reading model: %w", err)
	}
	if m.Task != "segmentation" {
		// Interactive and embed models answer prompts, not images.
		return queries.Evaluation{}, problem.BadInput("invalid", "model",
			fmt.Sprintf("Model %s is a model of task %q; only segmentation models are evaluated.", m.Name, m.Task))
	}
	if req.DatasetID == "" {
		return queries.Evaluation{}, problem.BadInput("missing_field", "dataset_id", "Say which dataset to evaluate on.")
	}
	dsID, err := uuid.Parse(req.DatasetID)
	if err != nil {
		return queries.Evaluation{}, problem.BadInput("unknown_dataset", "dataset_id", "There is no dataset with this id.")
	}
	ds, err := q.DatasetGet(ctx, tx, dsID)
	if errors.Is(err, pgx.ErrNoRows) {
		return queries.Evaluation{}, problem.BadInput("unknown_dataset", "dataset_id", "There is no dataset with this id.")
	}
	if err != nil {
		return queries.Evaluation{}, fmt.Errorf("error reading dataset: %w", err)
	}
	if req.Version < 1 {
		return queries.Evaluation{}, problem.BadInput("missing_field", "version", "Say which version of the dataset, a number from 1.")
	}
	v, err := q.VersionGet(ctx, tx, queries.VersionGetParams{DatasetID: ds.ID, Number: int32(min(req.Version, 1<<30))})
	if errors.Is(err, pgx.ErrNoRows) {
		return queries.Evaluation{}, problem.BadInput("unknown_version", "version", fmt.Sprintf("Dataset %s has no version %d.", ds.Name, req.Version))
	}
	if err != nil {
		return queries.Evaluation{}, fmt.Errorf("error reading version: %w", err)
	}
	if v.State != queries.DatasetVersionStatePublished {
		return queries.Evaluation{}, problem.BadInput("version_not_published", "version",
			fmt.Sprintf("Version %d of %s is %s, not published.", v.Number, ds.Name, v.State))
	}
	if req.Split == "" {
		req.Split = string(dataset.Test)
	}
	split, ok := dataset.ParseSplit(req.Split)
	if !ok {
		return queries.Evaluation{}, problem.BadInput("unknown_split", "split", "The split is train, val or test.")
	}
	n, err := q.EvaluationSplitImages(ctx, tx, queries.EvaluationSplitImagesParams{VersionID: v.ID, Split: queries.DatasetSplit(split)})
	if err != nil {
		return queries.Evaluation{}, fmt.Errorf("error counting the split: %w", err)
	}
	if n == 0 {
		return queries.Evaluation{}, problem.BadInput("empty_split", "split",
			fmt.Sprintf("The %s split of version %d has no images to evaluate on.", split, v.Number))
	}
	e, err := q.EvaluationInsert(ctx, tx, queries.EvaluationInsertParams{
		ModelID: m.ID, DatasetID: ds.ID, VersionID: v.ID, VersionNumber: v.Number,
		Split: queries.DatasetSplit(split), Images: n, CreatedBy: by,
	})
	if err != nil {
		return queries.Evaluation{}, fmt.Errorf("error recording evaluation: %w", err)
	}
	return e, nil
}

// ForNewVersion records, in tx, an evaluation on the test split of a
// version just published for every enabled model that has none there yet,
// and returns them (none when the split is empty): every version is
// measured with the models that propose today.
func ForNewVersion(ctx context.Context, tx pgx.Tx, v queries.DatasetVersion) ([]queries.Evaluation, error) {
	q := queries.New()
	split := queries.DatasetSplit(dataset.Test)
	n, err := q.EvaluationSplitImages(ctx, tx, queries.EvaluationSplitImagesParams{VersionID: v.ID, Split: split})
	if err != nil || n == 0 {
		return nil, err
	}
	models, err := q.EvaluationsToStartForVersion(ctx, tx, queries.EvaluationsToStartForVersionParams{VersionID: v.ID, Split: split})
	if err != nil {
		return nil, fmt.Errorf("error finding models to evaluate: %w", err)
	}
	var out []queries.Evaluation
	for _, m := range models {
		e, err := q.EvaluationInsert(ctx, tx, queries.EvaluationInsertParams{
			ModelID: m, DatasetID: v.DatasetID, VersionID: v.ID, VersionNumber: v.Number,
			Split: split, Images: n, CreatedBy: v.CreatedBy,
		})
		if err != nil {
			return nil, fmt.Errorf("error recording evaluation: %w", err)
		}
		out = append(out, e)
	}
	return out, nil
}

// Pending counts the inference jobs an evaluation queued that River has not
// finished (run, retried, or given up on) yet.
func Pending(ctx context.Context, db queries.DBTX, id uuid.UUID) (int, error) {
	var n int
	err := db.QueryRow(ctx, `
		SELECT count(*) FROM river_job
		WHERE kind = 'infer' AND finalized_at IS NULL AND args @> jsonb_build_object('evaluation_id', $1::text)`,
		id.String()).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("error counting the evaluation's inference jobs: %w", err)
	}
	return n, nil
}

// Score computes the metrics of an evaluation in state scoring and stores
// them, moving it to done, with the evaluation.finished event whose
// deliveries client queues. A second call stores nothing.
func Score(ctx context.Context, db *pgxpool.Pool, client *river.Client[pgx.Tx], e queries.Evaluation) error {
	q := queries.New()
	labels, err := q.VersionLabels(ctx, db, e.VersionID)
	if err != nil {
		return fmt.Errorf("error reading the version's categories: %w", err)
	}
	catOf := make(map[uuid.UUID]int64, len(labels))
	cats := make([]int64, 0, len(labels))
	for _, l := range labels {
		catOf[l.LabelID] = int64(l.CategoryID)
		cats = append(cats, int64(l.CategoryID))
	}
	ordinals, err := q.EvaluationSplitOrdinals(ctx, db, queries.EvaluationSplitOrdinalsParams{VersionID: e.VersionID, Split: e.Split})
	if err != nil {
		return fmt.Errorf("error reading the split: %w", err)
	}
	images := make([]int64, len(ordinals))
	for i, o := range ordinals {
		images[i] = int64(o)
	}
	gtRows, err := q.EvaluationGroundTruth(ctx, db, queries.EvaluationGroundTruthParams{VersionID: e.VersionID, Split: e.Split})
	if err != nil {
		return fmt.Errorf("error reading the ground truth: %w", err)
	}
	gts := make([]cocoeval.GroundTruth, 0, len(gtRows))
	for _, r := range gtRows {
		cat, ok := catOf[r.LabelID]
		if !ok {
			return fmt.Errorf("annotation of image %d has a label the version does not list", r.Ordinal)
		}
		gts = append(gts, cocoeval.GroundTruth{
			ImageID: int64(r.Ordinal), CategoryID: cat, Area: float64(r.Area),
			Mask: mask.RLE{Size: [2]int{int(r.Height), int(r.Width)}, Counts: r.Counts},
		})
	}
	dtRows, err := q.EvaluationDetections(ctx, db, queries.EvaluationDetectionsParams{VersionID: e.VersionID, Split: e.Split, ModelID: e.ModelID})
	if err != nil {
		return fmt.Errorf("error reading the proposals: %w", err)
	}
	dts := make([]cocoeval.Detection, 0, len(dtRows))
	for _, r := range dtRows {
		cat, ok := catOf[r.LabelID]
		if !ok {
			continue // a class the version does not have: COCOeval leaves it out too
		}
		dts = append(dts, cocoeval.Detection{
			ImageID: int64(r.Ordinal), CategoryID: cat, Score: float64(r.Score),
			Mask: mask.RLE{Size: [2]int{int(r.Height), int(r.Width)}, Counts: r.Counts},
		})
	}
	res, err := cocoeval.Evaluate(images, cats, gts, dts)
	if err != nil {
		return fmt.Errorf("error scoring: %w", err)
	}
	failed, err := q.EvaluationFailedImages(ctx, db, queries.EvaluationFailedImagesParams{VersionID: e.VersionID, Split: e.Split, ModelID: e.ModelID})
	if err != nil {
		return fmt.Errorf("error counting failed images: %w", err)
	}

	s := res.Stats
	cp := queries.EvaluationClassesInsertParams{EvaluationID: e.ID}
	for _, l := range labels {
		c := res.PerClass[int64(l.CategoryID)]
		cp.LabelIds = append(cp.LabelIds, l.LabelID)
		cp.CategoryIds = append(cp.CategoryIds, l.CategoryID)
		cp.Names = append(cp.Names, l.Name)
		cp.Aps, cp.Ap50s, cp.Ap75s = append(cp.Aps, c.AP), append(cp.Ap50s, c.AP50), append(cp.Ap75s, c.AP75)
		cp.Instances = append(cp.Instances, int32(c.Instances))
		cp.Detections = append(cp.Detections, int32(c.Detections))
	}
	f := func(v float64) *float64 { return &v }
	return pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
		n, err := q.EvaluationFinish(ctx, tx, queries.EvaluationFinishParams{
			ID: e.ID, FailedImages: failed, Detections: int32(len(dts)),
			Ap: f(s.AP), Ap50: f(s.AP50), Ap75: f(s.AP75), ApSmall: f(s.APs), ApMedium: f(s.APm), ApLarge: f(s.APl),
			Ar1: f(s.AR1), Ar10: f(s.AR10), Ar100: f(s.AR100), ArSmall: f(s.ARs), ArMedium: f(s.ARm), ArLarge: f(s.ARl),
		})
		if err != nil {
			return fmt.Errorf("error storing the figures: %w", err)
		}
		if n == 0 {
			return nil // scored already
		}
		if err := q.EvaluationClassesInsert(ctx, tx, cp); err != nil {
			return fmt.Errorf("error storing the per-class figures: %w", err)
		}
		return webhook.Emit(ctx, tx, client, webhook.EvaluationFinished, webhook.Evaluation(e.ID, string(queries.EvaluationStateDone)))
	})
}
