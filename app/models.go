package app

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5"

	"github.com/deepimageshub/imagehub/dispatch"
	"github.com/deepimageshub/imagehub/inference"
	"github.com/deepimageshub/imagehub/jobs"
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

// saveModel checks the model's endpoints, then creates or updates it and
// queues inference of the waiting images, in one transaction. A model whose
// metadata breaks the convention is refused with every finding; a model
// whose endpoints do not answer yet is saved, and its jobs wait for them.
func (s *Server) saveModel(ctx context.Context, spec dispatch.Spec) (modelJSON, bool, error) {
	if err := spec.Normalize(); err != nil {
		return modelJSON{}, false, err
	}
	check := dispatch.Inspect(ctx, s.inference, spec, 10*time.Second)
	if len(check.Unfit) > 0 {
		e := problem.New(http.StatusUnprocessableEntity, "model_unfit", "endpoints",
			"The model does not fit the hub's segmentation convention (PROTOCOL.md): "+strings.Join(check.Unfit, "; "))
		e.Details = check.Unfit
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

func (s *Server) adminModelsPage(c *fiber.Ctx) error {
	return s.renderAdminModels(c, http.StatusOK, nil, views.ModelForm{Version: "1", Capacity: "4", TimeoutMS: "60000", Enabled: true})
}

func (s *Server) renderAdminModels(c *fiber.Ctx, status int, fe *views.FormError, form views.ModelForm) error {
	models, err := s.listModels(c.UserContext())
	if err != nil {
		return err
	}
	d := views.AdminModels{Err: fe, Form: form}
	for _, m := range models {
		row := views.ModelRow{
			ID: m.ID, Name: m.Name, Version: m.Version, Enabled: m.Enabled, TimeoutMS: m.TimeoutMS,
			Capacity: m.Capacity, Binary: m.BinaryData, Hints: m.LabelHints, Problems: m.Problems,
		}
		for _, e := range m.EndpointHealth {
			row.Endpoints = append(row.Endpoints, views.EndpointRow{
				URL: e.URL, Capacity: e.Capacity, InFlight: e.InFlight, Healthy: e.Healthy,
				Failures: e.Failures, LastError: deref(e.LastError),
			})
		}
		d.Models = append(d.Models, row)
	}
	return render(c, status, views.AdminModelsPage(s.page(c, "Models"), d))
}

// modelSaveSubmit: POST /admin/models, the form twin of POST /api/v1/models.
// Endpoints come one per line.
func (s *Server) modelSaveSubmit(c *fiber.Ctx) error {
	form := views.ModelForm{
		Name: c.FormValue("name"), Version: c.FormValue("version"), Endpoints: c.FormValue("endpoints"),
		Capacity: c.FormValue("capacity"), TimeoutMS: c.FormValue("timeout_ms"), Enabled: c.FormValue("enabled") != "",
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
		Name: form.Name, Version: form.Version, Task: "segmentation", Endpoints: strings.Fields(form.Endpoints),
		Capacity: capacity, TimeoutMS: timeout, Enabled: &enabled,
	}
	if _, _, err := s.saveModel(c.UserContext(), spec); err != nil {
		return fail(err)
	}
	return c.Redirect("/admin/models", http.StatusSeeOther)
}

// newInferenceClient is the client the registry checks endpoints with.
func newInferenceClient() *inference.Client {
	return inference.New(&http.Client{Timeout: 30 * time.Second})
}
