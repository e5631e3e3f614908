package app

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/queries"
	"github.com/deepimageshub/imagehub/training"
	"github.com/deepimageshub/imagehub/views"
)

// trainingsPage: GET /trainings (premium): the start form and the list.
func (s *Server) trainingsPage(c *fiber.Ctx) error {
	return s.renderTrainings(c, http.StatusOK, views.TrainingForm{}, nil)
}

func (s *Server) renderTrainings(c *fiber.Ctx, status int, form views.TrainingForm, fe *views.FormError) error {
	ctx := c.UserContext()
	u := currentUser(c)
	ts, err := s.training.List(ctx, u.ID, u.Role == auth.RoleAdmin, 200, nil)
	if err != nil {
		return err
	}
	names := map[string]string{}
	d := views.Trainings{Form: form, Err: fe}
	datasets, err := s.q.DatasetList(ctx, s.pool)
	if err != nil {
		return fmt.Errorf("error listing datasets: %w", err)
	}
	for _, r := range datasets {
		names[r.Dataset.ID.String()] = r.Dataset.Name
		vs, err := s.q.VersionList(ctx, s.pool, r.Dataset.ID)
		if err != nil {
			return fmt.Errorf("error listing versions: %w", err)
		}
		for _, v := range vs {
			if v.State == queries.DatasetVersionStatePublished {
				d.Versions = append(d.Versions, views.TrainingChoice{
					Value: fmt.Sprintf("%s|%d", r.Dataset.ID, v.Number), Text: fmt.Sprintf("%s version %d", r.Dataset.Name, v.Number)})
			}
		}
	}
	seen, err := s.training.TrainersSeen(ctx)
	if err != nil {
		return err
	}
	for _, r := range s.training.Recipes() {
		text := r.Name + " — " + r.Description
		if w := trainerAbsence(r.Name, seen); w != "" {
			text += " (" + w + ")"
		}
		d.Recipes = append(d.Recipes, views.TrainingChoice{Value: r.Name, Text: text})
	}
	for _, t := range ts {
		row := views.TrainingRow{ID: t.ID.String(), State: t.State, Dataset: names[t.DatasetID.String()], Version: t.VersionNumber,
			Recipe: t.Recipe, Labels: strings.Join(t.Labels, ", "), Created: t.CreatedAt.UTC().Format("2006-01-02 15:04 UTC")}
		if t.ModelVersion != nil {
			row.Model = t.ModelName + " " + *t.ModelVersion
		}
		d.Items = append(d.Items, row)
	}
	return render(c, status, views.TrainingsPage(s.page(c, "Trainings"), d))
}

// trainingCreateSubmit: POST /trainings, the form twin of POST
// /api/v1/trainings; on success it shows the training's page.
func (s *Server) trainingCreateSubmit(c *fiber.Ctx) error {
	form := views.TrainingForm{DatasetVersion: c.FormValue("dataset_version"), Labels: c.FormValue("labels"),
		Recipe: c.FormValue("recipe"), Retrain: c.FormValue("retrain") != ""}
	req := training.Request{Recipe: form.Recipe, Labels: formValues(c, "labels"), Retrain: form.Retrain}
	var version string
	req.DatasetID, version, _ = strings.Cut(form.DatasetVersion, "|")
	req.Version, _ = strconv.Atoi(version)
	t, err := s.training.Create(c.UserContext(), *currentUser(c), req)
	if err != nil {
		return s.rerender(c, err, func(fe *views.FormError) error {
			return s.renderTrainings(c, statusOf(err), form, fe)
		})
	}
	return c.Redirect("/trainings/"+t.ID.String(), http.StatusSeeOther)
}

// trainingPage: GET /trainings/{id}.
func (s *Server) trainingPage(c *fiber.Ctx) error {
	v, err := s.trainingView(c)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.TrainingPage(s.page(c, "Training"), v))
}

// trainingStatusPartial: GET /trainings/{id}/status, the polled part; the
// page reloads once the training has ended, for the figures.
func (s *Server) trainingStatusPartial(c *fiber.Ctx) error {
	v, err := s.trainingView(c)
	if err != nil {
		return err
	}
	if v.Finished && c.Get("HX-Request") != "" {
		c.Set("HX-Refresh", "true")
	}
	return render(c, http.StatusOK, views.TrainingStatus(v))
}

const curveW, curveH = 480, 160

// trainerGone is how long since a trainer of a recipe last asked for work
// before the pages say none is there: idle trainers ask every few seconds,
// and one training a run asks again when it is done.
const trainerGone = 10 * time.Minute

// trainerAbsence says, for the pages, that no trainer of recipe has asked
// for work lately ("" when one has).
func trainerAbsence(recipe string, seen map[string]training.TrainerSeen) string {
	t, ok := seen[recipe]
	switch {
	case !ok:
		return "no trainer of " + recipe + " has asked this hub for work"
	case time.Since(t.At) > trainerGone:
		return "no trainer of " + recipe + " has asked for work since " + t.At.UTC().Format("2006-01-02 15:04 UTC")
	}
	return ""
}

func (s *Server) trainingView(c *fiber.Ctx) (views.TrainingView, error) {
	t, err := s.trainingParam(c)
	if err != nil {
		return views.TrainingView{}, err
	}
	ctx := c.UserContext()
	j := s.toTrainingJSON(ctx, t)
	params, _ := json.Marshal(t.Params)
	v := views.TrainingView{ID: t.ID.String(), State: t.State, Recipe: t.Recipe, Labels: strings.Join(t.Labels, ", "),
		Params: string(params), Version: t.VersionNumber, Attempt: t.Attempt, MaxAttempts: t.MaxAttempts, Seed: int(t.Seed),
		Step: t.Step, Steps: t.Steps, Finished: t.State == training.Succeeded || t.State == training.Failed || t.State == training.Cancelled}
	if d, err := s.q.DatasetGet(ctx, s.pool, t.DatasetID); err == nil {
		v.Dataset = d.Name
	}
	if t.Trainer != nil {
		v.Trainer = *t.Trainer
	}
	if t.Error != nil {
		v.Error = *t.Error
	}
	if t.State == training.Queued {
		seen, err := s.training.TrainersSeen(ctx)
		if err != nil {
			return views.TrainingView{}, err
		}
		if w := trainerAbsence(t.Recipe, seen); w != "" {
			v.Waiting = fmt.Sprintf("Waiting for a trainer: %s. Unless one takes it, the run ends failed at %s, freeing your training slot; cancel it to free the slot now.",
				w, t.CreatedAt.Add(s.cfg.TrainingQueueTimeout).UTC().Format("2006-01-02 15:04 UTC"))
		}
	}
	if t.Loss != nil {
		v.Loss = fmt.Sprintf("%.4g", *t.Loss)
	}
	if j.Progress.Phase != nil {
		v.Phase = *j.Progress.Phase
	}
	if j.Artifact != nil {
		v.Artifact = "/api/v1/trainings/" + v.ID + "/artifact"
	}
	hist, err := s.training.History(ctx, t.ID)
	if err != nil {
		return views.TrainingView{}, err
	}
	v.Curve = lossCurve(hist)
	versions, err := s.training.Versions(ctx, t.ModelName)
	if err != nil {
		return views.TrainingView{}, err
	}
	v.Series = modelSeries(t.ModelName, versions)
	if j.Metrics != nil && j.Metrics.Evaluation != nil {
		e := j.Metrics.Evaluation
		v.Model = e.Model.Name + " " + e.Model.Version
		var base map[string]classEvalJSON
		if b := j.Metrics.Baseline; b != nil {
			v.Baseline, base = b.Model.Name+" "+b.Model.Version, b.PerClass
		}
		for _, name := range t.Labels {
			c, ok := e.PerClass[name]
			if !ok {
				continue
			}
			row := views.TrainingClassRow{Label: name, AP50: c.AP50, AP: c.AP, Instances: c.Instances, BaseAP50: -1, BaseAP: -1}
			if b, ok := base[name]; ok {
				row.BaseAP50, row.BaseAP = b.AP50, b.AP
			}
			v.Classes = append(v.Classes, row)
		}
	}
	return v, nil
}

// modelSeries is a trained model's versions for ModelSeriesTable: the
// figures and an AP50 line over the versions, AP50 0 at the bottom and 1
// at the top.
func modelSeries(name string, versions []training.ModelVersion) views.ModelSeries {
	ms := views.ModelSeries{Name: name, Width: curveW, Height: curveH}
	fig := func(p *float64) string {
		if p == nil {
			return ""
		}
		return fmt.Sprintf("%.3f", *p)
	}
	type point struct{ x, y float64 }
	var pts []point
	for i, m := range versions {
		row := views.ModelVersionRow{Version: m.Version, TrainingID: m.TrainingID.String(), DatasetVersion: m.DatasetNumber, AP: fig(m.AP), AP50: fig(m.AP50)}
		if m.FinishedAt != nil {
			row.Finished = m.FinishedAt.UTC().Format("2006-01-02 15:04 UTC")
		}
		for _, c := range m.PerClass {
			row.PerClass = append(row.PerClass, fmt.Sprintf("%s %.3f", c.Label, c.AP50))
		}
		ms.Versions = append(ms.Versions, row)
		if m.AP50 != nil {
			x := float64(curveW) / 2 // one version alone sits in the middle
			if len(versions) > 1 {
				x = 8 + float64(i)/float64(len(versions)-1)*float64(curveW-16)
			}
			pts = append(pts, point{x, float64(curveH-8) - *m.AP50*float64(curveH-24)})
		}
	}
	if len(pts) == 1 {
		// A polyline of one point draws nothing: a short level stroke.
		pts = []point{{pts[0].x - 4, pts[0].y}, {pts[0].x + 4, pts[0].y}}
	}
	parts := make([]string, len(pts))
	for i, p := range pts {
		parts[i] = fmt.Sprintf("%.1f,%.1f", p.x, p.y)
	}
	ms.Points = strings.Join(parts, " ")
	return ms
}

// lossCurve draws the reported losses of the latest attempt against step.
func lossCurve(hist []training.Point) views.LossCurve {
	lc := views.LossCurve{Width: curveW, Height: curveH}
	last := 0
	for _, p := range hist {
		last = max(last, p.Attempt)
	}
	var pts []training.Point
	maxLoss, maxStep := 0.0, 1
	for _, p := range hist {
		if p.Attempt == last && p.Loss != nil {
			pts = append(pts, p)
			maxLoss, maxStep = max(maxLoss, *p.Loss), max(maxStep, p.Step, p.Steps)
		}
	}
	if len(pts) == 0 || maxLoss <= 0 {
		return lc
	}
	var b strings.Builder
	for i, p := range pts {
		if i > 0 {
			b.WriteByte(' ')
		}
		x := float64(p.Step) / float64(maxStep) * float64(curveW-8)
		y := float64(curveH-8) - *p.Loss/maxLoss*float64(curveH-24)
		fmt.Fprintf(&b, "%.1f,%.1f", x+4, y+4)
	}
	lc.Points, lc.MaxLoss = b.String(), fmt.Sprintf("%.4g", maxLoss)
	return lc
}
