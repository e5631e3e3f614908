package dataset

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/queries"
)

// Spec is a dataset as an admin defines it: API.md's body of
// POST /api/v1/datasets.
type Spec struct {
	Name        string  `json:"name"`
	Description string  `json:"description"`
	Filter      Filter  `json:"filter"`
	Splits      *Shares `json:"splits"`
}

// Filter picks a dataset's images among the reviewed ones; every field is
// optional and an empty filter takes them all. Labels keeps the images with
// at least one instance of one of the labels, and only those instances;
// CampaignIDs the images uploaded for one of the campaigns; MinQuality the
// images at least that sharp or large; Since and Until the images uploaded
// in [since, until).
type Filter struct {
	Labels      []string   `json:"labels,omitempty"`
	CampaignIDs []string   `json:"campaign_ids,omitempty"`
	MinQuality  *Quality   `json:"min_quality,omitempty"`
	Since       *time.Time `json:"since,omitempty"`
	Until       *time.Time `json:"until,omitempty"`
}

// Quality is the least quality an image must have, in the measures ingest
// records (imaging.QualityReport): Sharpness, the variance of the
// Laplacian (ingest flags a photo under 40 as blurry), and ShortSide in
// pixels. In JSON a plain number is the minimum sharpness.
type Quality struct {
	Sharpness *float64 `json:"sharpness,omitempty"`
	ShortSide *int     `json:"short_side,omitempty"`
}

// UnmarshalJSON reads {"sharpness": 60, "short_side": 512} or 60.
func (q *Quality) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && (b[0] == '-' || b[0] >= '0' && b[0] <= '9') {
		var f float64
		if err := json.Unmarshal(b, &f); err != nil {
			return err
		}
		*q = Quality{Sharpness: &f}
		return nil
	}
	type plain Quality
	*q = Quality{}
	return json.Unmarshal(b, (*plain)(q))
}

// Shares are the split ratios as fractions of 1, as the API takes them.
type Shares struct {
	Train float64 `json:"train"`
	Val   float64 `json:"val"`
	Test  float64 `json:"test"`
}

// IsEmpty reports whether the filter takes every reviewed image.
func (f Filter) IsEmpty() bool {
	return len(f.Labels) == 0 && len(f.CampaignIDs) == 0 && f.MinQuality == nil && f.Since == nil && f.Until == nil
}

// Create checks a spec, naming the field at fault, and stores the dataset
// with a new seed. Labels are named (unknown ones are refused); campaigns
// must exist.
func Create(ctx context.Context, db queries.DBTX, spec Spec, by uuid.UUID) (queries.Dataset, error) {
	q := queries.New()
	spec.Name = strings.TrimSpace(spec.Name)
	switch {
	case spec.Name == "":
		return queries.Dataset{}, problem.BadInput("missing_field", "name", "Give the dataset a name.")
	case utf8.RuneCountInString(spec.Name) > 100:
		return queries.Dataset{}, problem.BadInput("too_long", "name", "A dataset name is at most 100 characters.")
	case utf8.RuneCountInString(spec.Description) > 5000:
		return queries.Dataset{}, problem.BadInput("too_long", "description", "The description is at most 5000 characters.")
	}
	ratios := DefaultRatios
	if spec.Splits != nil {
		var err error
		if ratios, err = NewRatios(spec.Splits.Train, spec.Splits.Val, spec.Splits.Test); err != nil {
			return queries.Dataset{}, err
		}
	}
	p := queries.DatasetInsertParams{
		Name: spec.Name, Description: spec.Description, LabelIds: []uuid.UUID{}, CampaignIds: []uuid.UUID{},
		TrainPpm: int32(ratios.Train), ValPpm: int32(ratios.Val), TestPpm: int32(ratios.Test),
		Seed: NewSeed(), CreatedBy: by,
	}
	f := spec.Filter
	if len(f.Labels) > 0 {
		labels, err := resolveLabels(ctx, db, f.Labels)
		if err != nil {
			return queries.Dataset{}, err
		}
		for _, l := range labels {
			p.LabelIds = append(p.LabelIds, l.ID)
		}
	}
	if len(f.CampaignIDs) > 0 {
		seen := map[uuid.UUID]bool{}
		for _, s := range f.CampaignIDs {
			id, err := uuid.Parse(strings.TrimSpace(s))
			if err != nil {
				return queries.Dataset{}, problem.BadInput("invalid_filter", "filter.campaign_ids", fmt.Sprintf("%q is not a campaign id.", s))
			}
			if !seen[id] {
				seen[id] = true
				p.CampaignIds = append(p.CampaignIds, id)
			}
		}
		slices.SortFunc(p.CampaignIds, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
		n, err := q.DatasetCampaignsExist(ctx, db, p.CampaignIds)
		if err != nil {
			return queries.Dataset{}, fmt.Errorf("error checking campaigns: %w", err)
		}
		if int(n) != len(p.CampaignIds) {
			return queries.Dataset{}, problem.BadInput("invalid_filter", "filter.campaign_ids", "Some of these campaigns do not exist.")
		}
	}
	if mq := f.MinQuality; mq != nil {
		if mq.Sharpness != nil {
			if *mq.Sharpness < 0 || *mq.Sharpness > 1e9 {
				return queries.Dataset{}, problem.BadInput("invalid_filter", "filter.min_quality", "The minimum sharpness is a number from 0 (ingest flags photos under 40 as blurry).")
			}
			v := float32(*mq.Sharpness)
			p.MinSharpness = &v
		}
		if mq.ShortSide != nil {
			if *mq.ShortSide < 1 || *mq.ShortSide > 100_000 {
				return queries.Dataset{}, problem.BadInput("invalid_filter", "filter.min_quality", "The minimum short side is a number of pixels from 1.")
			}
			v := int32(*mq.ShortSide)
			p.MinShortSide = &v
		}
	}
	if f.Since != nil && f.Until != nil && !f.Since.Before(*f.Until) {
		return queries.Dataset{}, problem.BadInput("invalid_filter", "filter.until", "until must be later than since.")
	}
	p.Since, p.Until = f.Since, f.Until
	d, err := q.DatasetInsert(ctx, db, p)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return queries.Dataset{}, problem.Conflict("dataset_exists", "name", "A dataset with this name already exists.")
	}
	if err != nil {
		return queries.Dataset{}, fmt.Errorf("error creating dataset: %w", err)
	}
	return d, nil
}

// resolveLabels reads labels by name, refusing unknown ones by name.
func resolveLabels(ctx context.Context, db queries.DBTX, names []string) ([]queries.Label, error) {
	var uniq []string
	for _, n := range names {
		n = strings.ToLower(strings.TrimSpace(n))
		if n != "" && !slices.Contains(uniq, n) {
			uniq = append(uniq, n)
		}
	}
	if len(uniq) > 1000 {
		return nil, problem.BadInput("invalid_filter", "filter.labels", "A filter names at most 1000 labels.")
	}
	labels, err := queries.New().LabelGetByNames(ctx, db, uniq)
	if err != nil {
		return nil, fmt.Errorf("error reading labels: %w", err)
	}
	if len(labels) != len(uniq) {
		var missing []string
		for _, n := range uniq {
			if !slices.ContainsFunc(labels, func(l queries.Label) bool { return l.Name == n }) {
				missing = append(missing, n)
			}
		}
		return nil, problem.BadInput("unknown_label", "filter.labels", "Unknown labels: "+strings.Join(missing, ", ")+".")
	}
	slices.SortFunc(labels, func(a, b queries.Label) int { return strings.Compare(a.Name, b.Name) })
	return labels, nil
}

// FilterOf returns a dataset's filter in the API's form, with label names
// as they are now.
func FilterOf(ctx context.Context, db queries.DBTX, d queries.Dataset) (Filter, error) {
	var f Filter
	if len(d.LabelIds) > 0 {
		labels, err := queries.New().DatasetLabelsByIDs(ctx, db, d.LabelIds)
		if err != nil {
			return Filter{}, fmt.Errorf("error reading the filter's labels: %w", err)
		}
		for _, l := range labels {
			f.Labels = append(f.Labels, l.Name)
		}
	}
	for _, id := range d.CampaignIds {
		f.CampaignIDs = append(f.CampaignIDs, id.String())
	}
	if d.MinSharpness != nil || d.MinShortSide != nil {
		f.MinQuality = &Quality{}
		if d.MinSharpness != nil {
			v := float64(*d.MinSharpness)
			f.MinQuality.Sharpness = &v
		}
		if d.MinShortSide != nil {
			v := int(*d.MinShortSide)
			f.MinQuality.ShortSide = &v
		}
	}
	if d.Since != nil {
		t := d.Since.UTC()
		f.Since = &t
	}
	if d.Until != nil {
		t := d.Until.UTC()
		f.Until = &t
	}
	return f, nil
}

// RatiosOf returns a dataset's split ratios.
func RatiosOf(d queries.Dataset) Ratios {
	return Ratios{Train: int(d.TrainPpm), Val: int(d.ValPpm), Test: int(d.TestPpm)}
}

// Describe says in one line what a filter takes, for pages and READMEs.
func (f Filter) Describe() string {
	if f.IsEmpty() {
		return "every reviewed image"
	}
	var parts []string
	if len(f.Labels) > 0 {
		parts = append(parts, "images with an instance of "+strings.Join(f.Labels, ", ")+" (only those instances)")
	}
	if len(f.CampaignIDs) > 0 {
		parts = append(parts, "uploaded for campaign "+strings.Join(f.CampaignIDs, ", "))
	}
	if q := f.MinQuality; q != nil {
		if q.Sharpness != nil {
			parts = append(parts, fmt.Sprintf("sharpness at least %g", *q.Sharpness))
		}
		if q.ShortSide != nil {
			parts = append(parts, fmt.Sprintf("short side at least %d px", *q.ShortSide))
		}
	}
	if f.Since != nil {
		parts = append(parts, "uploaded from "+f.Since.UTC().Format(time.RFC3339))
	}
	if f.Until != nil {
		parts = append(parts, "uploaded before "+f.Until.UTC().Format(time.RFC3339))
	}
	return "reviewed images " + strings.Join(parts, "; ")
}
