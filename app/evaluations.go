package app

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/deepimageshub/imagehub/cocoeval"
	"github.com/deepimageshub/imagehub/dispatch"
	"github.com/deepimageshub/imagehub/evaluation"
	"github.com/deepimageshub/imagehub/jobs"
	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/queries"
	"github.com/deepimageshub/imagehub/views"
)

// evaluationJSON is an evaluation in the API (API.md). metrics and
// per_class are null until it is done.
type evaluationJSON struct {
	ID           string                    `json:"id"`
	State        string                    `json:"state"`
	Model        modelRefJSON              `json:"model"`
	DatasetID    string                    `json:"dataset_id"`
	Version      int                       `json:"version"`
	Split        string                    `json:"split"`
	Images       int                       `json:"images"`
	Queued       int                       `json:"queued"`
	FailedImages int                       `json:"failed_images"`
	Detections   int                       `json:"detections"`
	Metrics      *cocoeval.Stats           `json:"metrics"`
	PerClass     map[string]classEvalJSON  `json:"per_class"`
	Error        *string                   `json:"error,omitempty"`
	JobID        *string                   `json:"job_id"`
	CreatedAt    time.Time                 `json:"created_at"`
	FinishedAt   *time.Time                `json:"finished_at"`
	classes      []queries.EvaluationClass `json:"-"`
}

type modelRefJSON struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

type classEvalJSON struct {
	AP         float64 `json:"AP"`
	AP50       float64 `json:"AP50"`
	AP75       float64 `json:"AP75"`
	Instances  int     `json:"instances"`
	Detections int     `json:"detections"`
}

func figureOr(p *float64) float64 {
	if p == nil {
		return -1
	}
	return *p
}

// toEvaluationJSON describes an evaluation; withClasses reads its
// per-class figures too.
func (s *Server) toEvaluationJSON(ctx context.Context, e queries.Evaluation, name, version string, withClasses bool) (evaluationJSON, error) {
	j := evaluationJSON{
		ID: e.ID.String(), State: string(e.State), Model: modelRefJSON{Name: name, Version: version},
		DatasetID: e.DatasetID.String(), Version: int(e.VersionNumber), Split: string(e.Split),
		Images: int(e.Images), Queued: int(e.Queued), FailedImages: int(e.FailedImages), Detections: int(e.Detections),
		Error: e.Error, CreatedAt: e.CreatedAt.UTC(), FinishedAt: utcPtr(e.FinishedAt),
	}
	if e.JobID != nil {
		id := strconv.FormatInt(*e.JobID, 10)
		j.JobID = &id
	}
	if e.State != queries.EvaluationStateDone {
		return j, nil
	}
	j.Metrics = &cocoeval.Stats{
		AP: figureOr(e.Ap), AP50: figureOr(e.Ap50), AP75: figureOr(e.Ap75), APs: figureOr(e.ApSmall), APm: figureOr(e.ApMedium), APl: figureOr(e.ApLarge),
		AR1: figureOr(e.Ar1), AR10: figureOr(e.Ar10), AR100: figureOr(e.Ar100), ARs: figureOr(e.ArSmall), ARm: figureOr(e.ArMedium), ARl: figureOr(e.ArLarge),
	}
	if !withClasses {
		return j, nil
	}
	classes, err := s.q.EvaluationClasses(ctx, s.pool, e.ID)
	if err != nil {
		return evaluationJSON{}, fmt.Errorf("error reading per-class figures: %w", err)
	}
	j.PerClass = make(map[string]classEvalJSON, len(classes))
	for _, c := range classes {
		j.PerClass[c.Name] = classEvalJSON{AP: c.Ap, AP50: c.Ap50, AP75: c.Ap75, Instances: int(c.Instances), Detections: int(c.Detections)}
	}
	j.classes = classes
	return j, nil
}

// startEvaluation records an evaluation and its job in one transaction.
func (s *Server) startEvaluation(ctx context.Context, req evaluation.Request, by uuid.UUID) (queries.Evaluation, error) {
	if s.river == nil {
		return queries.Evaluation{}, problem.New(http.StatusServiceUnavailable, "no_workers", "", "This process runs no background jobs; evaluations need them.")
	}
	var e queries.Evaluation
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		e, err = jobs.StartEvaluation(ctx, tx, s.river, req, by)
		return err
	})
	return e, err
}

// apiEvaluationCreate: POST /api/v1/evaluations (admin) → 202 {evaluation}.
func (s *Server) apiEvaluationCreate(c *fiber.Ctx) error {
	var req evaluation.Request
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	e, err := s.startEvaluation(c.UserContext(), req, currentUser(c).ID)
	if err != nil {
		return err
	}
	row, err := s.q.EvaluationGet(c.UserContext(), s.pool, e.ID)
	if err != nil {
		return fmt.Errorf("error reading evaluation: %w", err)
	}
	j, err := s.toEvaluationJSON(c.UserContext(), row.Evaluation, row.ModelName, row.ModelVersion, false)
	if err != nil {
		return err
	}
	return c.Status(http.StatusAccepted).JSON(fiber.Map{"evaluation": j})
}

// evaluationParam reads the evaluation of :id.
func (s *Server) evaluationParam(c *fiber.Ctx) (queries.EvaluationGetRow, error) {
	id, err := paramID(c, "id")
	if err != nil {
		return queries.EvaluationGetRow{}, err
	}
	row, err := s.q.EvaluationGet(c.UserContext(), s.pool, id)
	if err != nil {
		return queries.EvaluationGetRow{}, rowErr(err, "evaluation")
	}
	return row, nil
}

// apiEvaluationGet: GET /api/v1/evaluations/{id} (admin).
func (s *Server) apiEvaluationGet(c *fiber.Ctx) error {
	row, err := s.evaluationParam(c)
	if err != nil {
		return err
	}
	j, err := s.toEvaluationJSON(c.UserContext(), row.Evaluation, row.ModelName, row.ModelVersion, true)
	if err != nil {
		return err
	}
	return c.JSON(j)
}

// listEvaluations reads one page, newest first, narrowed by ?dataset_id=
// and ?version=.
func (s *Server) listEvaluations(c *fiber.Ctx) ([]evaluationJSON, string, error) {
	limit, after, err := pageParams(c)
	if err != nil {
		return nil, "", err
	}
	p := queries.EvaluationListParams{MaxRows: int32(limit + 1)}
	if v := c.Query("dataset_id"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			return nil, "", badInput("invalid_dataset_id", "dataset_id", "dataset_id is not a dataset's id.")
		}
		p.DatasetID = &id
	}
	if v := c.Query("version"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1<<30 {
			return nil, "", badInput("invalid_version", "version", "version is a dataset version's number, from 1.")
		}
		if p.DatasetID == nil {
			return nil, "", badInput("missing_field", "dataset_id", "A version number needs the dataset_id it belongs to.")
		}
		n32 := int32(n)
		p.VersionNumber = &n32
	}
	if after != nil {
		p.BeforeAt, p.BeforeID = &after.T, &after.ID
	}
	rows, err := s.q.EvaluationList(c.UserContext(), s.pool, p)
	if err != nil {
		return nil, "", fmt.Errorf("error listing evaluations: %w", err)
	}
	next := ""
	if len(rows) > limit {
		rows = rows[:limit]
		last := rows[limit-1].Evaluation
		next = cursor{T: last.CreatedAt, ID: last.ID}.String()
	}
	items := make([]evaluationJSON, 0, len(rows))
	for _, r := range rows {
		j, err := s.toEvaluationJSON(c.UserContext(), r.Evaluation, r.ModelName, r.ModelVersion, false)
		if err != nil {
			return nil, "", err
		}
		items = append(items, j)
	}
	return items, next, nil
}

// apiEvaluationList: GET /api/v1/evaluations (admin) → {items, next_cursor}.
func (s *Server) apiEvaluationList(c *fiber.Ctx) error {
	items, next, err := s.listEvaluations(c)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"items": items, "next_cursor": nullIfEmpty(next)})
}

// Pages.

func evaluationRow(j evaluationJSON) views.EvaluationRow {
	r := views.EvaluationRow{
		ID: j.ID, State: j.State, Model: j.Model.Name + " " + j.Model.Version, DatasetID: j.DatasetID,
		Version: j.Version, Split: j.Split, Images: j.Images, Queued: j.Queued, FailedImages: j.FailedImages,
		Created: j.CreatedAt.Format("2006-01-02 15:04 UTC"),
	}
	if j.Error != nil {
		r.Error = *j.Error
	}
	if m := j.Metrics; m != nil {
		r.Done = true
		r.Metrics = []views.Figure{
			{Name: "AP", Value: m.AP}, {Name: "AP50", Value: m.AP50}, {Name: "AP75", Value: m.AP75},
			{Name: "APs", Value: m.APs}, {Name: "APm", Value: m.APm}, {Name: "APl", Value: m.APl},
			{Name: "AR1", Value: m.AR1}, {Name: "AR10", Value: m.AR10}, {Name: "AR100", Value: m.AR100},
			{Name: "ARs", Value: m.ARs}, {Name: "ARm", Value: m.ARm}, {Name: "ARl", Value: m.ARl},
		}
	}
	for _, c := range j.classes {
		r.Classes = append(r.Classes, views.EvaluationClassRow{
			Label: c.Name, AP: c.Ap, AP50: c.Ap50, AP75: c.Ap75, Instances: int(c.Instances), Detections: int(c.Detections),
		})
	}
	return r
}

// evaluationsPage: GET /admin/evaluations (admin), newest first.
func (s *Server) evaluationsPage(c *fiber.Ctx) error {
	items, next, err := s.listEvaluations(c)
	if err != nil {
		return err
	}
	return s.renderEvaluations(c, http.StatusOK, items, next, views.EvaluationForm{Split: "test"}, nil)
}

func (s *Server) renderEvaluations(c *fiber.Ctx, status int, items []evaluationJSON, next string, form views.EvaluationForm, fe *views.FormError) error {
	ctx := c.UserContext()
	d := views.Evaluations{NextCursor: next, DatasetID: c.Query("dataset_id"), Version: c.Query("version"), Form: form, Err: fe}
	for _, j := range items {
		d.Items = append(d.Items, evaluationRow(j))
	}
	models, err := s.q.ModelList(ctx, s.pool)
	if err != nil {
		return fmt.Errorf("error listing models: %w", err)
	}
	for _, m := range models {
		if m.Task != dispatch.TaskSegmentation {
			continue // prompt models are not evaluated on datasets
		}
		d.Models = append(d.Models, views.EvaluationChoice{ID: m.Name + "|" + m.Version, Text: m.Name + " " + m.Version})
	}
	datasets, err := s.q.DatasetList(ctx, s.pool)
	if err != nil {
		return fmt.Errorf("error listing datasets: %w", err)
	}
	for _, r := range datasets {
		d.Datasets = append(d.Datasets, views.EvaluationChoice{ID: r.Dataset.ID.String(), Text: fmt.Sprintf("%s (latest version %d)", r.Dataset.Name, r.LatestVersion)})
	}
	return render(c, status, views.EvaluationsPage(s.page(c, "Evaluations"), d))
}

// evaluationCreateSubmit: POST /admin/evaluations, the form twin of POST
// /api/v1/evaluations; on success it shows the new evaluation's page.
func (s *Server) evaluationCreateSubmit(c *fiber.Ctx) error {
	form := views.EvaluationForm{Model: c.FormValue("model"), DatasetID: c.FormValue("dataset_id"),
		Version: c.FormValue("version"), Split: c.FormValue("split")}
	req := evaluation.Request{DatasetID: form.DatasetID, Split: form.Split}
	req.Model, req.ModelVersion, _ = strings.Cut(form.Model, "|")
	req.Version, _ = strconv.Atoi(strings.TrimSpace(form.Version))
	e, err := s.startEvaluation(c.UserContext(), req, currentUser(c).ID)
	if err != nil {
		return s.rerender(c, err, func(fe *views.FormError) error {
			items, next, lerr := s.listEvaluations(c)
			if lerr != nil {
				return lerr
			}
			return s.renderEvaluations(c, statusOf(err), items, next, form, fe)
		})
	}
	return c.Redirect("/admin/evaluations/"+e.ID.String(), http.StatusSeeOther)
}

// evaluationPage: GET /admin/evaluations/{id} (admin): the figures and the
// per-class table.
func (s *Server) evaluationPage(c *fiber.Ctx) error {
	row, err := s.evaluationParam(c)
	if err != nil {
		return err
	}
	j, err := s.toEvaluationJSON(c.UserContext(), row.Evaluation, row.ModelName, row.ModelVersion, true)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.EvaluationPage(s.page(c, "Evaluation"), evaluationRow(j)))
}
