package app

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/deepimageshub/imagehub/insight"
	"github.com/deepimageshub/imagehub/queries"
	"github.com/deepimageshub/imagehub/views"
)

// classInsightJSON is one class in GET /api/v1/insights/classes.
type classInsightJSON struct {
	Label             string         `json:"label"`
	Images            int            `json:"images"`
	Instances         int            `json:"instances"`
	ImagesBySplit     map[string]int `json:"images_by_split"`
	InstancesBySplit  map[string]int `json:"instances_by_split"`
	AP                *float64       `json:"ap,omitempty"`
	MeanIoU           *float64       `json:"mean_iou,omitempty"`
	AcceptanceRate    *float64       `json:"acceptance_rate,omitempty"`
	Priority          float64        `json:"priority"`
	PriorityReason    string         `json:"priority_reason"`
	SuggestedTarget   int            `json:"suggested_target"`
	SuggestedCampaign string         `json:"suggested_title"`
	// ModelAgreement: over the images two or more models proposed the
	// class for, how often they agreed (review.CommitteeAgreed); absent
	// when no such image.
	ModelAgreement *committeeJSON `json:"model_agreement,omitempty"`
	// Models: what reviewers kept of each model version's proposals of
	// the class, the model most accepted first.
	Models []modelKeptJSON `json:"models"`
}

// committeeJSON is how often the models agree on a class.
type committeeJSON struct {
	Images        int     `json:"images"`
	Agreed        int     `json:"agreed"`
	AgreedShare   float64 `json:"agreed_share"`
	MeanAgreement float64 `json:"mean_agreement"`
}

// modelKeptJSON is what reviewers did with one model version's proposals
// of a class.
type modelKeptJSON struct {
	Model          string  `json:"model"`
	Version        string  `json:"version"`
	Judged         int     `json:"judged"`
	AcceptedShare  float64 `json:"accepted_share"`
	CorrectedShare float64 `json:"corrected_share"`
}

// classInsights ranks the classes of the latest published version of a
// dataset (package insight). version is 0 when the dataset has none.
func (s *Server) classInsights(ctx context.Context, datasetID uuid.UUID) (queries.Dataset, int, []classInsightJSON, error) {
	d, err := s.q.DatasetGet(ctx, s.pool, datasetID)
	if errors.Is(err, pgx.ErrNoRows) {
		return queries.Dataset{}, 0, nil, badInput("unknown_dataset", "dataset_id", "There is no dataset with this id.")
	}
	if err != nil {
		return queries.Dataset{}, 0, nil, fmt.Errorf("error reading dataset: %w", err)
	}
	versions, err := s.q.VersionList(ctx, s.pool, d.ID)
	if err != nil {
		return queries.Dataset{}, 0, nil, fmt.Errorf("error listing versions: %w", err)
	}
	var v *queries.DatasetVersion
	for i := range versions {
		if versions[i].State == queries.DatasetVersionStatePublished {
			v = &versions[i]
			break
		}
	}
	items := []classInsightJSON{}
	if v == nil {
		return d, 0, items, nil
	}
	labels, err := s.q.VersionLabels(ctx, s.pool, v.ID)
	if err != nil {
		return queries.Dataset{}, 0, nil, fmt.Errorf("error reading the version's classes: %w", err)
	}
	ap := map[uuid.UUID]float64{}
	if e, err := s.q.EvaluationLatestForVersion(ctx, s.pool, v.ID); err == nil {
		classes, err := s.q.EvaluationClasses(ctx, s.pool, e.ID)
		if err != nil {
			return queries.Dataset{}, 0, nil, fmt.Errorf("error reading per-class figures: %w", err)
		}
		for _, c := range classes {
			ap[c.LabelID] = c.Ap
		}
	} else if !errors.Is(err, pgx.ErrNoRows) {
		return queries.Dataset{}, 0, nil, fmt.Errorf("error reading the latest evaluation: %w", err)
	}
	ids := make([]uuid.UUID, len(labels))
	for i, l := range labels {
		ids[i] = l.LabelID
	}
	quality, err := s.q.LabelReviewQuality(ctx, s.pool, ids)
	if err != nil {
		return queries.Dataset{}, 0, nil, fmt.Errorf("error reading review quality: %w", err)
	}
	byLabel := map[uuid.UUID]queries.LabelReviewQualityRow{}
	for _, q := range quality {
		byLabel[q.LabelID] = q
	}
	committee, err := s.q.CommitteeByLabel(ctx, s.pool, ids)
	if err != nil {
		return queries.Dataset{}, 0, nil, fmt.Errorf("error reading the models' agreement: %w", err)
	}
	agreeBy := map[uuid.UUID]*committeeJSON{}
	for _, c := range committee {
		agreeBy[c.LabelID] = &committeeJSON{Images: int(c.Images), Agreed: int(c.Agreed),
			AgreedShare: float64(c.Agreed) / float64(c.Images), MeanAgreement: c.MeanAgreement}
	}
	verdicts, err := s.q.LabelModelVerdicts(ctx, s.pool, ids)
	if err != nil {
		return queries.Dataset{}, 0, nil, fmt.Errorf("error reading the models' verdicts: %w", err)
	}
	keptBy := map[uuid.UUID][]modelKeptJSON{}
	for _, v := range verdicts {
		keptBy[v.LabelID] = append(keptBy[v.LabelID], modelKeptJSON{Model: v.ModelName, Version: v.ModelVersion, Judged: int(v.Judged),
			AcceptedShare: float64(v.Accepted) / float64(v.Judged), CorrectedShare: float64(v.Corrected) / float64(v.Judged)})
	}
	for _, k := range keptBy {
		slices.SortStableFunc(k, func(a, b modelKeptJSON) int { return cmp.Compare(b.AcceptedShare, a.AcceptedShare) })
	}
	classes := make([]insight.Class, len(labels))
	splits := map[string]classInsightJSON{}
	for i, l := range labels {
		c := insight.Class{
			Label:     l.Name,
			Images:    int(l.TrainImages + l.ValImages + l.TestImages),
			Instances: int(l.TrainInstances + l.ValInstances + l.TestInstances),
		}
		if a, ok := ap[l.LabelID]; ok && a >= 0 {
			c.AP = &a
		}
		if q, ok := byLabel[l.LabelID]; ok && q.Judged > 0 {
			iou, acc := q.MeanIou, float64(q.Accepted)/float64(q.Judged)
			c.MeanIoU, c.Acceptance = &iou, &acc
		}
		classes[i] = c
		splits[l.Name] = classInsightJSON{
			ImagesBySplit:    map[string]int{"train": int(l.TrainImages), "val": int(l.ValImages), "test": int(l.TestImages)},
			InstancesBySplit: map[string]int{"train": int(l.TrainInstances), "val": int(l.ValInstances), "test": int(l.TestInstances)},
			ModelAgreement:   agreeBy[l.LabelID],
			Models:           append([]modelKeptJSON{}, keptBy[l.LabelID]...),
		}
	}
	for _, r := range insight.Rank(classes) {
		j := splits[r.Label]
		j.Label, j.Images, j.Instances = r.Label, r.Images, r.Instances
		j.AP, j.MeanIoU, j.AcceptanceRate = r.AP, r.MeanIoU, r.Acceptance
		j.Priority, j.PriorityReason, j.SuggestedTarget = r.Priority, r.Reason, r.SuggestedTarget
		j.SuggestedCampaign = "More photos of " + r.Label
		items = append(items, j)
	}
	return d, int(v.Number), items, nil
}

// apiClassInsights: GET /api/v1/insights/classes?dataset_id= (admin).
func (s *Server) apiClassInsights(c *fiber.Ctx) error {
	v := c.Query("dataset_id")
	if v == "" {
		return badInput("missing_field", "dataset_id", "Say which dataset: ?dataset_id=.")
	}
	id, err := uuid.Parse(v)
	if err != nil {
		return badInput("unknown_dataset", "dataset_id", "There is no dataset with this id.")
	}
	_, version, items, err := s.classInsights(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"dataset_id": id.String(), "version": version, "items": items, "next_cursor": nil})
}

// insightsPage: GET /insights (admin): the classes of a dataset's latest
// version, where more data helps most first, each with a one-click
// campaign.
func (s *Server) insightsPage(c *fiber.Ctx) error {
	ctx := c.UserContext()
	rows, err := s.q.DatasetList(ctx, s.pool)
	if err != nil {
		return fmt.Errorf("error listing datasets: %w", err)
	}
	d := views.ClassInsights{ClosesOn: time.Now().UTC().AddDate(0, 1, 0).Format("2006-01-02")}
	var chosen *uuid.UUID
	for _, r := range rows {
		d.Datasets = append(d.Datasets, views.EvaluationChoice{ID: r.Dataset.ID.String(), Text: r.Dataset.Name})
		if chosen == nil && r.LatestVersion > 0 {
			id := r.Dataset.ID
			chosen = &id
		}
	}
	if v := c.Query("dataset_id"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			return badInput("unknown_dataset", "dataset_id", "There is no dataset with this id.")
		}
		chosen = &id
	}
	if chosen != nil {
		ds, version, items, err := s.classInsights(ctx, *chosen)
		if err != nil {
			return err
		}
		d.DatasetID, d.DatasetName, d.Version = ds.ID.String(), ds.Name, version
		versions, err := s.q.VersionList(ctx, s.pool, ds.ID)
		if err != nil {
			return fmt.Errorf("error listing versions: %w", err)
		}
		// Oldest first, published only: what the growth chart draws.
		for i := len(versions) - 1; i >= 0; i-- {
			v := versions[i]
			if v.State != queries.DatasetVersionStatePublished {
				continue
			}
			d.Growth = append(d.Growth, views.GrowthVersion{Number: int(v.Number),
				Images:    [3]int64{int64(v.TrainImages), int64(v.ValImages), int64(v.TestImages)},
				Instances: [3]int64{v.TrainInstances, v.ValInstances, v.TestInstances}})
		}
		for _, it := range items {
			row := views.ClassInsightRow{Label: it.Label, Images: it.Images, Instances: it.Instances,
				Priority: it.Priority, Reason: it.PriorityReason,
				Target: it.SuggestedTarget, Title: it.SuggestedCampaign, AP: -1, MeanIoU: -1, Acceptance: -1}
			for i, split := range views.Splits {
				row.ImagesBySplit[i], row.InstancesBySplit[i] = it.ImagesBySplit[split], it.InstancesBySplit[split]
			}
			if it.AP != nil {
				row.AP = *it.AP
			}
			if it.MeanIoU != nil {
				row.MeanIoU = *it.MeanIoU
			}
			if it.AcceptanceRate != nil {
				row.Acceptance = *it.AcceptanceRate
			}
			row.Agreed, row.AgreedImages = -1, 0
			if a := it.ModelAgreement; a != nil {
				row.Agreed, row.AgreedImages = a.AgreedShare, a.Images
			}
			for _, m := range it.Models {
				row.Kept = append(row.Kept, views.ModelKept{Model: m.Model + " " + m.Version, Judged: m.Judged,
					Accepted: m.AcceptedShare, Corrected: m.CorrectedShare})
			}
			d.Rows = append(d.Rows, row)
		}
	}
	return render(c, http.StatusOK, views.ClassInsightsPage(s.page(c, "Insights"), d))
}
