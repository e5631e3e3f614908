package app

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/dataset"
	"github.com/deepimageshub/imagehub/jobs"
	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/queries"
	"github.com/deepimageshub/imagehub/views"
)

// datasetJSON is a dataset in the API.
type datasetJSON struct {
	ID            string               `json:"id"`
	Name          string               `json:"name"`
	Description   string               `json:"description"`
	Filter        dataset.Filter       `json:"filter"`
	Splits        dataset.Shares       `json:"splits"`
	LatestVersion *int                 `json:"latest_version"`
	CreatedAt     time.Time            `json:"created_at"`
	Versions      []versionSummaryJSON `json:"versions,omitempty"`
}

// versionSummaryJSON is a version in a dataset's list.
type versionSummaryJSON struct {
	Number      int        `json:"number"`
	State       string     `json:"state"`
	CreatedAt   time.Time  `json:"created_at"`
	PublishedAt *time.Time `json:"published_at"`
	Counts      countsJSON `json:"counts"`
}

type countsJSON struct {
	Images    int                        `json:"images"`
	Instances int64                      `json:"instances"`
	Bytes     int64                      `json:"bytes"`
	Splits    map[string]splitCountsJSON `json:"splits"`
}

type splitCountsJSON struct {
	Images    int   `json:"images"`
	Instances int64 `json:"instances"`
}

// versionJSON is GET /api/v1/datasets/{id}/versions/{n} (API.md).
// histogram counts instances of each label per split; image_histogram
// counts the images with at least one.
type versionJSON struct {
	ID             string                    `json:"id"`
	DatasetID      string                    `json:"dataset_id"`
	Number         int                       `json:"number"`
	State          string                    `json:"state"`
	Step           string                    `json:"step"`
	Progress       float32                   `json:"progress"`
	Error          *string                   `json:"error,omitempty"`
	JobID          *int64                    `json:"job_id"`
	CreatedAt      time.Time                 `json:"created_at"`
	PublishedAt    *time.Time                `json:"published_at"`
	Filter         json.RawMessage           `json:"filter"`
	Splits         dataset.Shares            `json:"splits"`
	Counts         countsJSON                `json:"counts"`
	Categories     []categoryJSON            `json:"categories"`
	Histogram      map[string]map[string]int `json:"histogram"`
	ImageHistogram map[string]map[string]int `json:"image_histogram"`
	Diff           diffJSON                  `json:"diff"`
}

type categoryJSON struct {
	ID          int    `json:"id"`
	Name        string `json:"name"`
	DisplayName string `json:"display_name"`
}

type diffJSON struct {
	Previous *int `json:"previous"`
	Added    int  `json:"added"`
	Removed  int  `json:"removed"`
	Changed  int  `json:"changed"`
}

func sharesOf(r dataset.Ratios) dataset.Shares {
	t, v, te := r.Fractions()
	return dataset.Shares{Train: t, Val: v, Test: te}
}

func countsOf(v queries.DatasetVersion) countsJSON {
	return countsJSON{Images: int(v.Images), Instances: v.Instances, Bytes: v.Bytes, Splits: map[string]splitCountsJSON{
		"train": {Images: int(v.TrainImages), Instances: v.TrainInstances},
		"val":   {Images: int(v.ValImages), Instances: v.ValInstances},
		"test":  {Images: int(v.TestImages), Instances: v.TestInstances},
	}}
}

func (s *Server) toDatasetJSON(ctx context.Context, d queries.Dataset, latest int) (datasetJSON, error) {
	f, err := dataset.FilterOf(ctx, s.pool, d)
	if err != nil {
		return datasetJSON{}, err
	}
	j := datasetJSON{ID: d.ID.String(), Name: d.Name, Description: d.Description, Filter: f,
		Splits: sharesOf(dataset.RatiosOf(d)), CreatedAt: d.CreatedAt.UTC()}
	if latest > 0 {
		j.LatestVersion = &latest
	}
	return j, nil
}

func toSummary(v queries.DatasetVersion) versionSummaryJSON {
	return versionSummaryJSON{Number: int(v.Number), State: string(v.State), CreatedAt: v.CreatedAt.UTC(),
		PublishedAt: utcPtr(v.PublishedAt), Counts: countsOf(v)}
}

// toVersionJSON describes a version; showErr adds the reason of a failed
// publish, which may name internals, for admins.
func (s *Server) toVersionJSON(ctx context.Context, d queries.Dataset, v queries.DatasetVersion, showErr bool) (versionJSON, error) {
	j := versionJSON{
		ID: v.ID.String(), DatasetID: d.ID.String(), Number: int(v.Number), State: string(v.State), Step: v.Step,
		Progress: v.Progress, JobID: v.JobID, CreatedAt: v.CreatedAt.UTC(), PublishedAt: utcPtr(v.PublishedAt),
		Filter: json.RawMessage(v.Filter), Splits: sharesOf(dataset.RatiosOf(d)), Counts: countsOf(v),
		Categories: []categoryJSON{}, Histogram: map[string]map[string]int{}, ImageHistogram: map[string]map[string]int{},
	}
	if showErr {
		j.Error = v.Error
	}
	for _, sp := range dataset.Splits {
		j.Histogram[string(sp)] = map[string]int{}
		j.ImageHistogram[string(sp)] = map[string]int{}
	}
	labels, err := s.q.VersionLabels(ctx, s.pool, v.ID)
	if err != nil {
		return versionJSON{}, fmt.Errorf("error reading the histogram: %w", err)
	}
	for _, l := range labels {
		j.Categories = append(j.Categories, categoryJSON{ID: int(l.CategoryID), Name: l.Name, DisplayName: l.DisplayName})
		j.Histogram["train"][l.Name] = int(l.TrainInstances)
		j.Histogram["val"][l.Name] = int(l.ValInstances)
		j.Histogram["test"][l.Name] = int(l.TestInstances)
		j.ImageHistogram["train"][l.Name] = int(l.TrainImages)
		j.ImageHistogram["val"][l.Name] = int(l.ValImages)
		j.ImageHistogram["test"][l.Name] = int(l.TestImages)
	}
	j.Diff = diffJSON{Added: int(v.Added), Removed: int(v.Removed), Changed: int(v.Changed)}
	if v.Previous != nil {
		p := int(*v.Previous)
		j.Diff.Previous = &p
	}
	return j, nil
}

// datasetParam reads the dataset of :id.
func (s *Server) datasetParam(c *fiber.Ctx) (queries.Dataset, error) {
	id, err := paramID(c, "id")
	if err != nil {
		return queries.Dataset{}, err
	}
	d, err := s.q.DatasetGet(c.UserContext(), s.pool, id)
	if err != nil {
		return queries.Dataset{}, rowErr(err, "dataset")
	}
	return d, nil
}

// versionParam reads the dataset of :id and its version :n.
func (s *Server) versionParam(c *fiber.Ctx) (queries.Dataset, queries.DatasetVersion, error) {
	d, err := s.datasetParam(c)
	if err != nil {
		return queries.Dataset{}, queries.DatasetVersion{}, err
	}
	n, err := strconv.Atoi(c.Params("n"))
	if err != nil || n < 1 || n > 1<<30 {
		return queries.Dataset{}, queries.DatasetVersion{}, errNotFound
	}
	v, err := s.q.VersionGet(c.UserContext(), s.pool, queries.VersionGetParams{DatasetID: d.ID, Number: int32(n)})
	if err != nil {
		return queries.Dataset{}, queries.DatasetVersion{}, rowErr(err, "version")
	}
	return d, v, nil
}

// publishVersion records the next version of a dataset and its publish job
// in one transaction.
func (s *Server) publishVersion(ctx context.Context, datasetID uuid.UUID, by uuid.UUID) (queries.DatasetVersion, *int64, error) {
	if s.river == nil {
		return queries.DatasetVersion{}, nil, problem.New(http.StatusServiceUnavailable, "no_workers", "", "This process runs no background jobs; publishing needs them.")
	}
	var v queries.DatasetVersion
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if v, err = dataset.NewVersion(ctx, tx, datasetID, by); err != nil {
			return err
		}
		res, err := s.river.InsertTx(ctx, tx, jobs.PublishArgs{VersionID: v.ID}, nil)
		if err != nil {
			return fmt.Errorf("error queueing the publish job: %w", err)
		}
		v.JobID = &res.Job.ID
		if err := s.q.VersionSetJob(ctx, tx, queries.VersionSetJobParams{ID: v.ID, JobID: v.JobID}); err != nil {
			return fmt.Errorf("error recording the publish job: %w", err)
		}
		return nil
	})
	if err != nil {
		return queries.DatasetVersion{}, nil, err
	}
	return v, v.JobID, nil
}

// apiDatasetList: GET /api/v1/datasets (premium), by name, a page at a time.
func (s *Server) apiDatasetList(c *fiber.Ctx) error {
	limit, after, err := pageParams(c)
	if err != nil {
		return err
	}
	p := queries.DatasetPageParams{Lim: int32(limit + 1)}
	if after != nil {
		p.AfterName, p.AfterID = &after.K, after.ID
	}
	rows, err := s.q.DatasetPage(c.UserContext(), s.pool, p)
	if err != nil {
		return fmt.Errorf("error listing datasets: %w", err)
	}
	next := ""
	if len(rows) > limit {
		rows = rows[:limit]
		// The database's lower(), which the order uses, not Go's.
		last := rows[limit-1]
		next = cursor{K: last.SortName, ID: last.Dataset.ID}.String()
	}
	items := make([]datasetJSON, 0, len(rows))
	for _, r := range rows {
		j, err := s.toDatasetJSON(c.UserContext(), r.Dataset, int(r.LatestVersion))
		if err != nil {
			return err
		}
		items = append(items, j)
	}
	return c.JSON(fiber.Map{"items": items, "next_cursor": nullIfEmpty(next)})
}

// apiDatasetCreate: POST /api/v1/datasets (admin) → 201 {dataset}.
func (s *Server) apiDatasetCreate(c *fiber.Ctx) error {
	var spec dataset.Spec
	if err := decodeJSON(c, &spec); err != nil {
		return err
	}
	d, err := dataset.Create(c.UserContext(), s.pool, spec, currentUser(c).ID)
	if err != nil {
		return err
	}
	j, err := s.toDatasetJSON(c.UserContext(), d, 0)
	if err != nil {
		return err
	}
	return c.Status(http.StatusCreated).JSON(fiber.Map{"dataset": j})
}

// apiDatasetGet: GET /api/v1/datasets/{id} (premium): the dataset and its
// versions, newest first.
func (s *Server) apiDatasetGet(c *fiber.Ctx) error {
	d, err := s.datasetParam(c)
	if err != nil {
		return err
	}
	versions, err := s.q.VersionList(c.UserContext(), s.pool, d.ID)
	if err != nil {
		return fmt.Errorf("error listing versions: %w", err)
	}
	latest := 0
	summaries := make([]versionSummaryJSON, 0, len(versions))
	for _, v := range versions {
		if v.State == queries.DatasetVersionStatePublished && latest == 0 {
			latest = int(v.Number)
		}
		summaries = append(summaries, toSummary(v))
	}
	j, err := s.toDatasetJSON(c.UserContext(), d, latest)
	if err != nil {
		return err
	}
	j.Versions = summaries
	return c.JSON(fiber.Map{"dataset": j})
}

// apiVersionPublish: POST /api/v1/datasets/{id}/versions (admin) → 202
// {version, job}: the version exists at once, in state publishing, and a
// job publishes it.
func (s *Server) apiVersionPublish(c *fiber.Ctx) error {
	d, err := s.datasetParam(c)
	if err != nil {
		return err
	}
	v, job, err := s.publishVersion(c.UserContext(), d.ID, currentUser(c).ID)
	if err != nil {
		return err
	}
	j, err := s.toVersionJSON(c.UserContext(), d, v, true)
	if err != nil {
		return err
	}
	return c.Status(http.StatusAccepted).JSON(fiber.Map{
		"version": j,
		"job":     fiber.Map{"id": strconv.FormatInt(*job, 10), "kind": jobs.PublishArgs{}.Kind(), "state": "available"},
	})
}

// apiVersionGet: GET /api/v1/datasets/{id}/versions/{n} (premium).
func (s *Server) apiVersionGet(c *fiber.Ctx) error {
	d, v, err := s.versionParam(c)
	if err != nil {
		return err
	}
	j, err := s.toVersionJSON(c.UserContext(), d, v, currentUser(c).Role.AtLeast(auth.RoleAdmin))
	if err != nil {
		return err
	}
	return c.JSON(j)
}

// Pages.

func (s *Server) datasetRows(ctx context.Context) ([]views.DatasetRow, error) {
	rows, err := s.q.DatasetList(ctx, s.pool)
	if err != nil {
		return nil, fmt.Errorf("error listing datasets: %w", err)
	}
	out := make([]views.DatasetRow, 0, len(rows))
	for _, r := range rows {
		f, err := dataset.FilterOf(ctx, s.pool, r.Dataset)
		if err != nil {
			return nil, err
		}
		out = append(out, views.DatasetRow{
			ID: r.Dataset.ID.String(), Name: r.Dataset.Name, Description: r.Dataset.Description,
			Filter: f.Describe(), Splits: splitsText(dataset.RatiosOf(r.Dataset)),
			Latest: int(r.LatestVersion), Versions: int(r.Versions),
		})
	}
	return out, nil
}

func splitsText(r dataset.Ratios) string {
	t, v, te := r.Fractions()
	return fmt.Sprintf("train %g%%, val %g%%, test %g%%", t*100, v*100, te*100)
}

// datasetsPage: GET /datasets (premium).
func (s *Server) datasetsPage(c *fiber.Ctx) error {
	items, err := s.datasetRows(c.UserContext())
	if err != nil {
		return err
	}
	d := views.Datasets{Items: items, Admin: currentUser(c).Role.AtLeast(auth.RoleAdmin)}
	return render(c, http.StatusOK, views.DatasetsPage(s.page(c, "Datasets"), d))
}

// adminDatasetsPage: GET /admin/datasets, the form to define one.
func (s *Server) adminDatasetsPage(c *fiber.Ctx) error {
	return s.renderAdminDatasets(c, http.StatusOK, views.DatasetForm{Train: "0.8", Val: "0.1", Test: "0.1"}, nil)
}

func (s *Server) renderAdminDatasets(c *fiber.Ctx, status int, form views.DatasetForm, fe *views.FormError) error {
	ctx := c.UserContext()
	items, err := s.datasetRows(ctx)
	if err != nil {
		return err
	}
	d := views.AdminDatasets{Items: items, Form: form, Err: fe}
	labels, err := s.q.LabelList(ctx, s.pool)
	if err != nil {
		return fmt.Errorf("error listing labels: %w", err)
	}
	for _, l := range labels {
		d.AllLabels = append(d.AllLabels, l.Name)
	}
	camps, err := s.q.CampaignList(ctx, s.pool, queries.CampaignListParams{})
	if err != nil {
		return fmt.Errorf("error listing campaigns: %w", err)
	}
	for _, cp := range camps {
		d.Campaigns = append(d.Campaigns, views.CampaignOption{ID: cp.ID.String(), Title: cp.Title})
	}
	return render(c, status, views.AdminDatasetsPage(s.page(c, "Define a dataset"), d))
}

// datasetCreateSubmit: POST /admin/datasets, the form twin of
// POST /api/v1/datasets.
func (s *Server) datasetCreateSubmit(c *fiber.Ctx) error {
	form := views.DatasetForm{
		Name: c.FormValue("name"), Description: c.FormValue("description"), Labels: c.FormValue("labels"),
		MinSharpness: c.FormValue("min_sharpness"), MinShortSide: c.FormValue("min_short_side"),
		Since: c.FormValue("since"), Until: c.FormValue("until"),
		Train: c.FormValue("train"), Val: c.FormValue("val"), Test: c.FormValue("test"),
	}
	var campaigns []string
	for _, v := range c.Context().PostArgs().PeekMulti("campaign_ids") {
		campaigns = append(campaigns, string(v))
	}
	form.Campaigns = strings.Join(campaigns, ",")
	fail := func(err error) error {
		return s.rerender(c, err, func(fe *views.FormError) error { return s.renderAdminDatasets(c, statusOf(err), form, fe) })
	}
	spec := dataset.Spec{Name: form.Name, Description: form.Description}
	for _, l := range strings.Split(form.Labels, ",") {
		if l = strings.TrimSpace(l); l != "" {
			spec.Filter.Labels = append(spec.Filter.Labels, l)
		}
	}
	spec.Filter.CampaignIDs = campaigns
	if v := strings.TrimSpace(form.MinSharpness); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fail(badInput("invalid_filter", "filter.min_quality", "The minimum sharpness is a number."))
		}
		spec.Filter.MinQuality = &dataset.Quality{Sharpness: &f}
	}
	if v := strings.TrimSpace(form.MinShortSide); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fail(badInput("invalid_filter", "filter.min_quality", "The minimum short side is a whole number of pixels."))
		}
		if spec.Filter.MinQuality == nil {
			spec.Filter.MinQuality = &dataset.Quality{}
		}
		spec.Filter.MinQuality.ShortSide = &n
	}
	for field, v := range map[string]struct {
		s   string
		dst **time.Time
	}{"filter.since": {form.Since, &spec.Filter.Since}, "filter.until": {form.Until, &spec.Filter.Until}} {
		if v.s == "" {
			continue
		}
		t, err := time.Parse("2006-01-02", v.s)
		if err != nil {
			return fail(badInput("invalid_filter", field, "Give a date as YYYY-MM-DD."))
		}
		*v.dst = &t
	}
	var shares dataset.Shares
	for _, f := range []struct {
		s   string
		dst *float64
	}{{form.Train, &shares.Train}, {form.Val, &shares.Val}, {form.Test, &shares.Test}} {
		v, err := strconv.ParseFloat(strings.TrimSpace(f.s), 64)
		if err != nil {
			return fail(badInput("invalid_splits", "splits", "Each share is a number from 0 to 1."))
		}
		*f.dst = v
	}
	spec.Splits = &shares
	d, err := dataset.Create(c.UserContext(), s.pool, spec, currentUser(c).ID)
	if err != nil {
		return fail(err)
	}
	return c.Redirect("/datasets/"+d.ID.String(), http.StatusSeeOther)
}

// datasetPage: GET /datasets/{id} (premium).
func (s *Server) datasetPage(c *fiber.Ctx) error {
	return s.renderDatasetPage(c, http.StatusOK, nil)
}

func (s *Server) renderDatasetPage(c *fiber.Ctx, status int, fe *views.FormError) error {
	d, err := s.datasetParam(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	f, err := dataset.FilterOf(ctx, s.pool, d)
	if err != nil {
		return err
	}
	versions, err := s.q.VersionList(ctx, s.pool, d.ID)
	if err != nil {
		return fmt.Errorf("error listing versions: %w", err)
	}
	page := views.DatasetDetail{
		ID: d.ID.String(), Name: d.Name, Description: d.Description, Filter: f.Describe(),
		Splits: splitsText(dataset.RatiosOf(d)), Created: d.CreatedAt.UTC().Format("2006-01-02"),
		Admin: currentUser(c).Role.AtLeast(auth.RoleAdmin), Err: fe,
	}
	for _, v := range versions {
		row := views.VersionRow{Number: int(v.Number), State: string(v.State), Step: v.Step, Progress: float64(v.Progress),
			Images: int(v.Images), Instances: int(v.Instances), Added: int(v.Added), Removed: int(v.Removed), Changed: int(v.Changed)}
		if v.PublishedAt != nil {
			row.Published = v.PublishedAt.UTC().Format("2006-01-02 15:04 UTC")
		}
		page.Versions = append(page.Versions, row)
	}
	return render(c, status, views.DatasetPage(s.page(c, d.Name), page))
}

// versionPublishSubmit: POST /admin/datasets/{id}/versions, the form twin of
// POST /api/v1/datasets/{id}/versions; it goes to the new version's page,
// which shows the progress.
func (s *Server) versionPublishSubmit(c *fiber.Ctx) error {
	d, err := s.datasetParam(c)
	if err != nil {
		return err
	}
	v, _, err := s.publishVersion(c.UserContext(), d.ID, currentUser(c).ID)
	if err != nil {
		return s.rerender(c, err, func(fe *views.FormError) error { return s.renderDatasetPage(c, statusOf(err), fe) })
	}
	return c.Redirect(fmt.Sprintf("/datasets/%s/versions/%d", d.ID, v.Number), http.StatusSeeOther)
}

// versionView builds the version page's data.
func (s *Server) versionView(c *fiber.Ctx, d queries.Dataset, v queries.DatasetVersion) (views.VersionView, error) {
	ctx := c.UserContext()
	admin := currentUser(c).Role.AtLeast(auth.RoleAdmin)
	page := views.VersionView{
		DatasetID: d.ID.String(), DatasetName: d.Name, Number: int(v.Number), State: string(v.State),
		Step: v.Step, Progress: float64(v.Progress), Images: int(v.Images), Instances: int(v.Instances),
		Bytes: sizeText(v.Bytes), Admin: admin, BaseURL: strings.TrimSuffix(s.cfg.BaseURL, "/"),
		APIPath: fmt.Sprintf("/api/v1/datasets/%s/versions/%d/download", d.ID, v.Number),
	}
	if admin && v.Error != nil {
		page.Error = *v.Error
	}
	if v.State != queries.DatasetVersionStatePublished {
		return page, nil
	}
	page.Published = v.PublishedAt.UTC().Format("2006-01-02 15:04 UTC")
	var f dataset.Filter
	if err := json.Unmarshal(v.Filter, &f); err != nil {
		return views.VersionView{}, fmt.Errorf("error reading the version's filter: %w", err)
	}
	page.Filter = f.Describe()
	r := dataset.RatiosOf(d)
	page.Splits = splitsText(r)
	tr, va, te := r.Fractions()
	page.SplitCounts = []views.SplitCount{
		{Name: "train", Share: fmt.Sprintf("%g%%", tr*100), Images: int(v.TrainImages), Instances: int(v.TrainInstances)},
		{Name: "val", Share: fmt.Sprintf("%g%%", va*100), Images: int(v.ValImages), Instances: int(v.ValInstances)},
		{Name: "test", Share: fmt.Sprintf("%g%%", te*100), Images: int(v.TestImages), Instances: int(v.TestInstances)},
	}
	labels, err := s.q.VersionLabels(ctx, s.pool, v.ID)
	if err != nil {
		return views.VersionView{}, fmt.Errorf("error reading the histogram: %w", err)
	}
	var counts []views.LabelCounts
	for _, l := range labels {
		page.Labels = append(page.Labels, l.Name)
		counts = append(counts, views.LabelCounts{Label: l.Name, Train: int(l.TrainInstances), Val: int(l.ValInstances), Test: int(l.TestInstances)})
	}
	page.Chart = views.NewHistogram(counts)
	page.Diff = views.VersionDiff{Added: int(v.Added), Removed: int(v.Removed), Changed: int(v.Changed)}
	if v.Previous != nil {
		page.Diff.Previous = int(*v.Previous)
		if admin {
			// A sample of each kind: enough to check a version by eye.
			for _, kind := range []queries.DatasetChange{queries.DatasetChangeAdded, queries.DatasetChangeRemoved, queries.DatasetChangeChanged} {
				rows, err := s.q.VersionChanges(ctx, s.pool, queries.VersionChangesParams{VersionID: v.ID, Change: kind, MaxRows: 20})
				if err != nil {
					return views.VersionView{}, fmt.Errorf("error reading the diff: %w", err)
				}
				for _, r := range rows {
					page.Diff.Items = append(page.Diff.Items, views.DiffItem{Change: string(kind), SHA: hex.EncodeToString(r.Sha256), ImageID: r.ImageID.String()})
				}
			}
		}
	}
	exports, err := s.q.ExportList(ctx, s.pool, v.ID)
	if err != nil {
		return views.VersionView{}, fmt.Errorf("error listing exports: %w", err)
	}
	for _, e := range exports {
		page.Exports = append(page.Exports, s.exportRow(d, v, e, labels, admin))
	}
	return page, nil
}

func sizeText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// versionPage: GET /datasets/{id}/versions/{n} (premium).
func (s *Server) versionPage(c *fiber.Ctx) error {
	d, v, err := s.versionParam(c)
	if err != nil {
		return err
	}
	page, err := s.versionView(c, d, v)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.VersionPage(s.page(c, fmt.Sprintf("%s, version %d", d.Name, v.Number)), page))
}

// versionStatusPartial: GET /datasets/{id}/versions/{n}/status, the live
// progress of a version being published. Once it is published the page
// reloads itself to show the rest.
func (s *Server) versionStatusPartial(c *fiber.Ctx) error {
	d, v, err := s.versionParam(c)
	if err != nil {
		return err
	}
	if v.State == queries.DatasetVersionStatePublished && c.Get("HX-Request") != "" {
		c.Set("HX-Refresh", "true")
	}
	page, err := s.versionView(c, d, v)
	if err != nil {
		return err
	}
	return render(c, http.StatusOK, views.VersionProgress(page))
}
