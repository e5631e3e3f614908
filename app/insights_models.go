package app

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/deepimageshub/imagehub/insight"
	"github.com/deepimageshub/imagehub/queries"
	"github.com/deepimageshub/imagehub/views"
)

// insightsModelsPage: GET /insights/models (admin): two evaluations side
// by side, ?a= and ?b= (evaluation ids); without them the two latest
// finished evaluations of different model versions on the same dataset
// version and split. Per class AP and AP50 with the difference, what
// reviewers did with each version's proposals, and a label confusion table.
func (s *Server) insightsModelsPage(c *fiber.Ctx) error {
	ctx := c.UserContext()
	rows, err := s.q.EvaluationList(ctx, s.pool, queries.EvaluationListParams{MaxRows: 200})
	if err != nil {
		return fmt.Errorf("error listing evaluations: %w", err)
	}
	var done []queries.EvaluationListRow
	for _, r := range rows {
		if r.Evaluation.State == queries.EvaluationStateDone {
			done = append(done, r)
		}
	}
	d := views.ModelComparison{}
	for _, r := range done {
		d.Choices = append(d.Choices, views.EvaluationChoice{ID: r.Evaluation.ID.String(),
			Text: fmt.Sprintf("%s %s · dataset version %d, %s · %s", r.ModelName, r.ModelVersion, r.Evaluation.VersionNumber,
				r.Evaluation.Split, r.Evaluation.CreatedAt.UTC().Format("2006-01-02 15:04"))})
	}
	pick := func(param string) (*queries.EvaluationListRow, error) {
		v := c.Query(param)
		if v == "" {
			return nil, nil
		}
		id, err := uuid.Parse(v)
		if err != nil {
			return nil, badInput("invalid_id", param, "Choose an evaluation from the list.")
		}
		for i := range done {
			if done[i].Evaluation.ID == id {
				return &done[i], nil
			}
		}
		return nil, badInput("unknown_evaluation", param, "There is no finished evaluation with this id.")
	}
	a, err := pick("a")
	if err != nil {
		return err
	}
	b, err := pick("b")
	if err != nil {
		return err
	}
	if a == nil && b == nil && len(done) > 0 {
		// The latest one, and the latest other model version on the same data.
		b = &done[0]
		for i := 1; i < len(done); i++ {
			e := done[i].Evaluation
			if e.VersionID == b.Evaluation.VersionID && e.Split == b.Evaluation.Split && e.ModelID != b.Evaluation.ModelID {
				a = &done[i]
				break
			}
		}
	}
	if a != nil && b != nil {
		if err := s.compare(ctx, &d, *a, *b); err != nil {
			return err
		}
	}
	return render(c, http.StatusOK, views.ModelComparisonPage(s.page(c, "Compare models"), d))
}

// compare fills the comparison of evaluation a (the baseline) and b.
func (s *Server) compare(ctx context.Context, d *views.ModelComparison, a, b queries.EvaluationListRow) error {
	d.A, d.B = a.Evaluation.ID.String(), b.Evaluation.ID.String()
	d.AName, d.BName = a.ModelName+" "+a.ModelVersion, b.ModelName+" "+b.ModelVersion
	d.SameData = a.Evaluation.VersionID == b.Evaluation.VersionID && a.Evaluation.Split == b.Evaluation.Split
	d.AAP, d.BAP = figureOr(a.Evaluation.Ap), figureOr(b.Evaluation.Ap)
	d.AAP50, d.BAP50 = figureOr(a.Evaluation.Ap50), figureOr(b.Evaluation.Ap50)
	classes := map[string]*views.ClassComparison{}
	var names []string
	for side, e := range []queries.Evaluation{a.Evaluation, b.Evaluation} {
		rows, err := s.q.EvaluationClasses(ctx, s.pool, e.ID)
		if err != nil {
			return fmt.Errorf("error reading per-class figures: %w", err)
		}
		for _, r := range rows {
			cc := classes[r.Name]
			if cc == nil {
				cc = &views.ClassComparison{Label: r.Name, AAP: -1, BAP: -1, AAP50: -1, BAP50: -1}
				classes[r.Name] = cc
				names = append(names, r.Name)
			}
			if side == 0 {
				cc.AAP, cc.AAP50 = r.Ap, r.Ap50
			} else {
				cc.BAP, cc.BAP50, cc.Instances = r.Ap, r.Ap50, int(r.Instances)
			}
		}
	}
	slices.Sort(names)
	var ranked []insight.Class
	for _, n := range names {
		ranked = append(ranked, insight.Class{Label: n, Instances: classes[n].Instances})
	}
	for _, r := range insight.Rank(ranked) {
		classes[r.Label].Target = r.SuggestedTarget
	}
	for _, n := range names {
		d.Classes = append(d.Classes, *classes[n])
	}
	d.ClosesOn = time.Now().UTC().AddDate(0, 1, 0).Format("2006-01-02")
	totals, err := s.q.ModelVerdictTotals(ctx, s.pool, []uuid.UUID{a.Evaluation.ModelID, b.Evaluation.ModelID})
	if err != nil {
		return fmt.Errorf("error reading reviewers' verdicts: %w", err)
	}
	for _, t := range totals {
		v := views.Verdicts{Accepted: int(t.Accepted), Corrected: int(t.Corrected), Rejected: int(t.Rejected), MeanIoU: t.MeanIou}
		if t.ModelID == a.Evaluation.ModelID {
			d.AVerdicts = v
		}
		if t.ModelID == b.Evaluation.ModelID {
			d.BVerdicts = v
		}
	}
	for side, m := range []uuid.UUID{a.Evaluation.ModelID, b.Evaluation.ModelID} {
		rows, err := s.q.ModelLabelConfusion(ctx, s.pool, m)
		if err != nil {
			return fmt.Errorf("error reading label confusion: %w", err)
		}
		out := make([]views.Confusion, len(rows))
		for i, r := range rows {
			out[i] = views.Confusion{Proposed: r.Proposed, Final: r.Final, N: int(r.N)}
		}
		if side == 0 {
			d.AConfusion = out
		} else {
			d.BConfusion = out
		}
	}
	return nil
}
