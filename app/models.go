package app

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5"

	"github.com/deepimageshub/imagehub/dispatch"
	"github.com/deepimageshub/imagehub/inference"
	"github.com/deepimageshub/imagehub/jobs"
	"github.com/deepimageshub/imagehub/layout"
	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/queries"
	"github.com/deepimageshub/imagehub/views"
)

// modelJSON is a model version in the API (API.md): endpoints is the list of
// base URLs; endpoint_health tells how each is doing.
type modelJSON struct {
	ID             string           `json:"id"`
	Name           string           `json:"name"`
	Version        string           `json:"version"`
	Task           string           `json:"task"`
	Endpoints      []string         `json:"endpoints"`
	Capacity       int              `json:"capacity"`
	TimeoutMS      int              `json:"timeout_ms"`
	Enabled        bool             `json:"enabled"`
	BinaryData     bool             `json:"binary_data"`
	LabelHints     bool             `json:"label_hints"`
	Problems       []string         `json:"problems"`
	CheckedAt      *time.Time       `json:"checked_at"`
	EndpointHealth []endpointHealth `json:"endpoint_health"`
	Layout         string           `json:"layout"`
	Labels         []string         `json:"labels"`
	ScoreThreshold float32          `json:"score_threshold"`
	IoUThreshold   float32          `json:"iou_threshold"`
	MaskThreshold  float32          `json:"mask_threshold"`
	MaxInstances   int              `json:"max_instances"`
	InputSize      int              `json:"input_size"`
	LabelTag       string           `json:"label_tag,omitempty"`
	MaxBatch       int              `json:"max_batch"`
	BatchWindowMS  int              `json:"batch_window_ms"`
	// HeaderNames are the names of the stored request headers; their
	// values are secrets and never leave the hub except to the endpoints.
	HeaderNames []string `json:"header_names"`
}

type endpointHealth struct {
	URL       string     `json:"url"`
	Capacity  int        `json:"capacity"`
	InFlight  int        `json:"in_flight"`
	Healthy   bool       `json:"healthy"`
	Failures  int        `json:"failures"`
	LastError *string    `json:"last_error"`
	CoolUntil *time.Time `json:"cool_until"`
	LastOKAt  *time.Time `json:"last_ok_at"`
}

// listModels reads every model with its endpoints and their health.
func (s *Server) listModels(ctx context.Context) ([]modelJSON, error) {
	models, err := s.q.ModelList(ctx, s.pool)
	if err != nil {
		return nil, fmt.Errorf("error listing models: %w", err)
	}
	eps, err := s.q.EndpointListAll(ctx, s.pool)
	if err != nil {
		return nil, fmt.Errorf("error listing endpoints: %w", err)
	}
	byModel := map[string][]queries.EndpointListAllRow{}
	for _, e := range eps {
		byModel[e.ModelID.String()] = append(byModel[e.ModelID.String()], e)
	}
	out := make([]modelJSON, 0, len(models))
	now := time.Now()
	for _, m := range models {
		j := modelJSON{
			ID: m.ID.String(), Name: m.Name, Version: m.Version, Task: m.Task, TimeoutMS: int(m.TimeoutMs),
			Enabled: m.Enabled, BinaryData: m.BinaryData, LabelHints: m.LabelHints, Problems: m.Problems,
			CheckedAt: m.CheckedAt, Endpoints: []string{}, EndpointHealth: []endpointHealth{},
			Layout: m.Layout, Labels: m.Labels, ScoreThreshold: m.ScoreThreshold, IoUThreshold: m.IouThreshold,
			MaskThreshold: m.MaskThreshold, MaxInstances: int(m.MaxInstances), InputSize: int(m.InputSize), LabelTag: m.LabelTag,
			MaxBatch: int(m.MaxBatch), BatchWindowMS: int(m.BatchWindowMs),
			HeaderNames: headerNames(m.Headers),
		}
		for _, e := range byModel[j.ID] {
			j.Endpoints = append(j.Endpoints, e.BaseUrl)
			j.Capacity = max(j.Capacity, int(e.Capacity))
			cooling := e.CoolUntil != nil && e.CoolUntil.After(now)
			j.EndpointHealth = append(j.EndpointHealth, endpointHealth{
				URL: e.BaseUrl, Capacity: int(e.Capacity), InFlight: int(e.InFlight), Healthy: !cooling,
				Failures: int(e.Failures), LastError: e.LastError, CoolUntil: e.CoolUntil, LastOKAt: e.LastOkAt,
			})
		}
		out = append(out, j)
	}
	return out, nil
}

// keepStoredTask fills, for an update that names no task (the admin page's
// form, an API call that leaves it out), the stored model's task and embed
// model: a task is fixed when a model is first registered.
func (s *Server) keepStoredTask(ctx context.Context, spec *dispatch.Spec) error {
	if spec.Task != "" {
		return nil
	}
	old, err := s.q.ModelGetByNameVersion(ctx, s.pool, queries.ModelGetByNameVersionParams{
		Name: strings.TrimSpace(spec.Name), Version: cmp.Or(strings.TrimSpace(spec.Version), "1")})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("error reading model: %w", err)
	}
	spec.Task = old.Task
	if old.EmbedModelID != nil && spec.EmbedModel == "" {
		em, err := s.q.ModelGet(ctx, s.pool, *old.EmbedModelID)
		if err != nil {
			return fmt.Errorf("error reading embed model: %w", err)
		}
		spec.EmbedModel, spec.EmbedVersion = em.Name, em.Version
	}
	return nil
}

// saveModel checks the model's endpoints, then creates or updates it and
// queues inference of the waiting images, in one transaction. A model whose
// metadata breaks the convention is refused with every finding; a model
// whose endpoints do not answer yet is saved, and its jobs wait for them.
func (s *Server) saveModel(ctx context.Context, spec dispatch.Spec) (modelJSON, bool, error) {
	if err := s.keepStoredTask(ctx, &spec); err != nil {
		return modelJSON{}, false, err
	}
	if spec.Layout == string(layout.LabelStudio) && len(spec.Labels) == 0 {
		// A Label Studio backend labels with the config the hub sends it:
		// by default, every label of the hub.
		names, err := s.q.LabelNames(ctx, s.pool)
		if err != nil {
			return modelJSON{}, false, fmt.Errorf("error reading labels: %w", err)
		}
		spec.Labels = names
	}
	if err := spec.Normalize(); err != nil {
		return modelJSON{}, false, err
	}
	probe := spec
	if spec.Headers == nil {
		// An update that keeps the stored headers checks with them.
		h, err := dispatch.StoredHeaders(ctx, s.pool, spec)
		if err != nil {
			return modelJSON{}, false, err
		}
		probe.Headers = h
	}
	check := dispatch.Inspect(ctx, s.inference, probe, 10*time.Second)
	if err := dispatch.ResolveLabels(spec, check); err != nil {
		return modelJSON{}, false, err
	}
	if len(check.Unfit) > 0 {
		what := "the hub's segmentation convention (PROTOCOL.md)"
		switch {
		case spec.Layout == string(layout.SAM):
			what = "a Segment Anything " + spec.Task + " model served with its own tensors (the sam layout, docs/interactive.md)"
		case spec.Task != dispatch.TaskSegmentation:
			what = "the hub's prompt protocol for " + spec.Task + " models (docs/interactive.md)"
		case spec.Layout != string(layout.ImageHub):
			what = "the " + spec.Layout + " layout (PROTOCOL.md)"
		}
		e := problem.New(http.StatusUnprocessableEntity, "model_unfit", "endpoints",
			"The model does not fit "+what+": "+strings.Join(check.Unfit, "; "))
		e.Details = check.Unfit
		return modelJSON{}, false, e
	}
	if len(check.BatchUnfit) > 0 {
		e := problem.New(http.StatusUnprocessableEntity, "model_unfit", "max_batch",
			"The model cannot take a batch (docs/batching.md): "+strings.Join(check.BatchUnfit, "; "))
		e.Details = check.BatchUnfit
		return modelJSON{}, false, e
	}
	var (
		m       queries.Model
		created bool
	)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		m, created, err = jobs.SaveModel(ctx, tx, s.river, spec, check)
		return err
	})
	if err != nil {
		return modelJSON{}, false, err
	}
	all, err := s.listModels(ctx)
	if err != nil {
		return modelJSON{}, false, err
	}
	for _, j := range all {
		if j.ID == m.ID.String() {
			return j, created, nil
		}
	}
	return modelJSON{}, false, fmt.Errorf("model %s vanished after saving", m.ID)
}

// apiModelList: GET /api/v1/models (admin).
func (s *Server) apiModelList(c *fiber.Ctx) error {
	items, err := s.listModels(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"items": items, "next_cursor": nil})
}

// apiModelSave: POST /api/v1/models (admin) → 201 for a new model version,
// 200 for an update of one with the same name and version.
func (s *Server) apiModelSave(c *fiber.Ctx) error {
	var spec dispatch.Spec
	if err := decodeJSON(c, &spec); err != nil {
		return err
	}
	m, created, err := s.saveModel(c.UserContext(), spec)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return c.Status(status).JSON(fiber.Map{"model": m})
}

// headerNames lists the names of stored headers, never their values.
func headerNames(raw []byte) []string {
	var h inference.Headers
	if err := json.Unmarshal(raw, &h); err != nil {
		return []string{}
	}
	return h.Names()
}

func (s *Server) adminModelsPage(c *fiber.Ctx) error {
	return s.renderAdminModels(c, http.StatusOK, nil, views.ModelForm{
		Version: "1", Task: dispatch.TaskSegmentation, Capacity: "4", TimeoutMS: "60000", Enabled: true, Layout: string(layout.ImageHub),
		ScoreThreshold: "0.25", IoUThreshold: "0.45", MaskThreshold: "0.5", MaxInstances: "100",
		MaxBatch: "1", BatchWindowMS: "10",
	})
}

func (s *Server) renderAdminModels(c *fiber.Ctx, status int, fe *views.FormError, form views.ModelForm) error {
	models, err := s.listModels(c.UserContext())
	if err != nil {
		return err
	}
	d := views.AdminModels{Err: fe, Form: form}
	for _, m := range models {
		if m.Task == dispatch.TaskEmbed {
			d.EmbedModels = append(d.EmbedModels, views.EmbedOption{Name: m.Name, Version: m.Version})
		}
		row := views.ModelRow{
			ID: m.ID, Name: m.Name, Version: m.Version, Task: m.Task, Enabled: m.Enabled, TimeoutMS: m.TimeoutMS,
			Capacity: m.Capacity, Binary: m.BinaryData, Hints: m.LabelHints, Problems: m.Problems,
			Layout: m.Layout, Labels: m.Labels, ScoreThreshold: m.ScoreThreshold, IoUThreshold: m.IoUThreshold,
			MaskThreshold: m.MaskThreshold, MaxInstances: m.MaxInstances, InputSize: m.InputSize,
			HeaderNames: m.HeaderNames, MaxBatch: m.MaxBatch, BatchWindowMS: m.BatchWindowMS,
		}
		for _, e := range m.EndpointHealth {
			row.Endpoints = append(row.Endpoints, views.EndpointRow{
				URL: e.URL, Capacity: e.Capacity, InFlight: e.InFlight, Healthy: e.Healthy,
				Failures: e.Failures, LastError: deref(e.LastError),
			})
		}
		d.Models = append(d.Models, row)
	}
	series, err := s.training.Series(c.UserContext())
	if err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(series)) {
		d.Series = append(d.Series, modelSeries(name, series[name]))
	}
	return render(c, status, views.AdminModelsPage(s.page(c, "Models"), d))
}

// modelSaveSubmit: POST /admin/models, the form twin of POST /api/v1/models.
// Endpoints and labels come one per line, headers as "Name: value" lines;
// no header lines keep the stored headers unless clear_headers is set.
// Header values are never put back into the form.
func (s *Server) modelSaveSubmit(c *fiber.Ctx) error {
	form := views.ModelForm{
		Name: c.FormValue("name"), Version: c.FormValue("version"), Endpoints: c.FormValue("endpoints"),
		Task: c.FormValue("task"), EmbedModel: c.FormValue("embed_model"),
		Capacity: c.FormValue("capacity"), TimeoutMS: c.FormValue("timeout_ms"), Enabled: c.FormValue("enabled") != "",
		Layout: c.FormValue("layout"), LabelTag: c.FormValue("label_tag"), Labels: c.FormValue("labels"), ScoreThreshold: c.FormValue("score_threshold"),
		IoUThreshold: c.FormValue("iou_threshold"), MaskThreshold: c.FormValue("mask_threshold"),
		MaxInstances: c.FormValue("max_instances"), InputSize: c.FormValue("input_size"),
		MaxBatch: c.FormValue("max_batch"), BatchWindowMS: c.FormValue("batch_window_ms"),
	}
	fail := func(err error) error {
		return s.rerender(c, err, func(fe *views.FormError) error {
			if e, ok := problem.As(err); ok && len(e.Details) > 0 {
				form.Problems = e.Details
			}
			return s.renderAdminModels(c, statusOf(err), fe, form)
		})
	}
	capacity, err := strconv.Atoi(strings.TrimSpace(form.Capacity))
	if err != nil {
		return fail(badInput("invalid_model", "capacity", "Capacity is a whole number of requests in flight per endpoint."))
	}
	timeout, err := strconv.Atoi(strings.TrimSpace(form.TimeoutMS))
	if err != nil {
		return fail(badInput("invalid_model", "timeout_ms", "The timeout is a whole number of milliseconds."))
	}
	enabled := form.Enabled
	spec := dispatch.Spec{
		Name: form.Name, Version: form.Version, Endpoints: strings.Fields(form.Endpoints),
		Capacity: capacity, TimeoutMS: timeout, Enabled: &enabled, Layout: strings.TrimSpace(form.Layout),
		Task:     strings.TrimSpace(form.Task),
		LabelTag: strings.TrimSpace(form.LabelTag),
	}
	if v := strings.TrimSpace(form.EmbedModel); v != "" {
		// name:version, as the page's options give it.
		name, version, ok := strings.Cut(v, ":")
		if !ok {
			return fail(badInput("invalid_model", "embed_model", "Pick the embed model from the list."))
		}
		spec.EmbedModel, spec.EmbedVersion = name, version
	}
	for _, l := range strings.Split(form.Labels, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			spec.Labels = append(spec.Labels, l)
		}
	}
	for _, f := range []struct {
		field, value string
		dst          *float32
	}{
		{"score_threshold", form.ScoreThreshold, &spec.ScoreThreshold},
		{"iou_threshold", form.IoUThreshold, &spec.IoUThreshold},
		{"mask_threshold", form.MaskThreshold, &spec.MaskThreshold},
	} {
		if v := strings.TrimSpace(f.value); v != "" {
			x, err := strconv.ParseFloat(v, 32)
			if err != nil {
				return fail(badInput("invalid_model", f.field, "A threshold is a number between 0 and 1, such as 0.5."))
			}
			*f.dst = float32(x)
		}
	}
	for _, f := range []struct {
		field, value, msg string
		dst               *int
	}{
		{"max_instances", form.MaxInstances, "The most instances per image is a whole number.", &spec.MaxInstances},
		{"input_size", form.InputSize, "The input size is a whole number of pixels; leave it empty for the default.", &spec.InputSize},
		{"max_batch", form.MaxBatch, "The batch size is a whole number of images per request; 1 sends each image on its own.", &spec.MaxBatch},
	} {
		if v := strings.TrimSpace(f.value); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fail(badInput("invalid_model", f.field, f.msg))
			}
			*f.dst = n
		}
	}
	if v := strings.TrimSpace(form.BatchWindowMS); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fail(badInput("invalid_model", "batch_window_ms", "The batch window is a whole number of milliseconds."))
		}
		spec.BatchWindowMS = &n
	}
	headers, err := parseHeaderLines(c.FormValue("headers"))
	if err != nil {
		return fail(err)
	}
	if headers == nil && c.FormValue("clear_headers") != "" {
		headers = inference.Headers{}
	}
	spec.Headers = headers
	if _, _, err := s.saveModel(c.UserContext(), spec); err != nil {
		return fail(err)
	}
	return c.Redirect("/admin/models", http.StatusSeeOther)
}

// parseHeaderLines reads "Name: value" lines; none gives nil (keep what is
// stored). A message never quotes a value.
func parseHeaderLines(text string) (inference.Headers, error) {
	var h inference.Headers
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok {
			return nil, badInput("invalid_model", "headers", fmt.Sprintf("Line %d is not \"Name: value\".", i+1))
		}
		if h == nil {
			h = inference.Headers{}
		}
		h[strings.TrimSpace(name)] = strings.TrimSpace(value)
	}
	return h, nil
}

// newInferenceClient is the client the registry checks endpoints with.
func newInferenceClient() *inference.Client {
	return inference.New(&http.Client{Timeout: 30 * time.Second})
}
