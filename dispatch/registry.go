package dispatch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/deepimageshub/imagehub/inference"
	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/queries"
)

// Spec is a model version as an admin registers it (API.md's body of
// POST /api/v1/models).
type Spec struct {
	Name      string   `json:"name"`
	Version   string   `json:"version"`
	Task      string   `json:"task"`
	Endpoints []string `json:"endpoints"`
	Capacity  int      `json:"capacity"`
	TimeoutMS int      `json:"timeout_ms"`
	Enabled   *bool    `json:"enabled"`
}

var (
	nameRe    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)
	versionRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
)

// MaxEndpoints bounds the endpoints of one model.
const MaxEndpoints = 64

// Normalize fills defaults and checks every field, naming the one at fault.
func (s *Spec) Normalize() error {
	s.Name, s.Version = strings.TrimSpace(s.Name), strings.TrimSpace(s.Version)
	if s.Task == "" {
		s.Task = "segmentation"
	}
	if s.Version == "" {
		s.Version = "1"
	}
	if s.Capacity == 0 {
		s.Capacity = 4
	}
	if s.TimeoutMS == 0 {
		s.TimeoutMS = 60_000
	}
	if s.Enabled == nil {
		t := true
		s.Enabled = &t
	}
	switch {
	case !nameRe.MatchString(s.Name):
		return problem.BadInput("invalid_model", "name", "A model name is 1 to 128 letters, digits, '.', '_' or '-', as the inference server names it.")
	case !versionRe.MatchString(s.Version):
		return problem.BadInput("invalid_model", "version", "A version is 1 to 64 letters, digits, '.', '_' or '-'.")
	case s.Task != "segmentation":
		return problem.BadInput("invalid_model", "task", `The only task is "segmentation".`)
	case s.Capacity < 1 || s.Capacity > 1024:
		return problem.BadInput("invalid_model", "capacity", "Capacity is the requests one endpoint may have in flight: 1 to 1024.")
	case s.TimeoutMS < 100 || s.TimeoutMS > 600_000:
		return problem.BadInput("invalid_model", "timeout_ms", "The timeout is 100 to 600000 milliseconds.")
	case len(s.Endpoints) == 0:
		return problem.BadInput("invalid_model", "endpoints", "Give at least one endpoint base URL, such as http://gpu-1:8000.")
	case len(s.Endpoints) > MaxEndpoints:
		return problem.BadInput("invalid_model", "endpoints", fmt.Sprintf("At most %d endpoints per model.", MaxEndpoints))
	}
	seen := map[string]bool{}
	out := s.Endpoints[:0:0]
	for _, e := range s.Endpoints {
		base, err := normalizeBase(e)
		if err != nil {
			return problem.BadInput("invalid_model", "endpoints", err.Error())
		}
		if !seen[base] {
			seen[base] = true
			out = append(out, base)
		}
	}
	s.Endpoints = out
	return nil
}

// normalizeBase checks an endpoint base URL: http or https, a host, no
// query, no credentials, and no /v2 (the hub adds the protocol's paths).
func normalizeBase(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an http or https URL with a host, such as http://gpu-1:8000", raw)
	}
	if u.User != nil {
		return "", fmt.Errorf("%q carries credentials: endpoints take none in the URL", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q has a query or fragment: give the server's base URL only", raw)
	}
	p := strings.TrimRight(u.Path, "/")
	if strings.HasSuffix(p, "/v2") || strings.Contains(p, "/v2/") {
		return "", fmt.Errorf("%q includes the protocol path: give the base URL, without /v2", raw)
	}
	u.Path = p
	return u.String(), nil
}

// Check is what the hub found when it asked a model's endpoints about it.
type Check struct {
	// Unfit lists what in the model's metadata breaks the convention
	// (PROTOCOL.md); such a model is not saved.
	Unfit []string
	// Unreachable lists endpoints that did not answer as ready; the model
	// is saved and jobs wait for them.
	Unreachable []string
	// Binary: every endpoint that answered lists binary_tensor_data.
	Binary bool
	// LabelHints: the model takes LABEL_HINTS.
	LabelHints bool
}

// Problems is every finding, for display.
func (c Check) Problems() []string { return append(append([]string{}, c.Unfit...), c.Unreachable...) }

// Inspect asks every endpoint whether it is ready, what it supports and how
// the model looks, within timeout per endpoint.
func Inspect(ctx context.Context, client *inference.Client, s Spec, timeout time.Duration) Check {
	c := Check{Binary: true, LabelHints: true}
	answered := 0
	for _, base := range s.Endpoints {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		if err := client.Ready(ctx, base); err != nil {
			c.Unreachable = append(c.Unreachable, fmt.Sprintf("%s: not ready (%v)", base, err))
			cancel()
			continue
		}
		srv, err := client.ServerMetadata(ctx, base)
		if err != nil {
			c.Unreachable = append(c.Unreachable, fmt.Sprintf("%s: no server metadata at /v2 (%v)", base, err))
			cancel()
			continue
		}
		meta, err := client.ModelMetadata(ctx, base, s.Name, s.Version)
		cancel()
		if err != nil {
			var ce *inference.Contract
			if errors.As(err, &ce) && ce.Status == http.StatusNotFound {
				c.Unfit = append(c.Unfit, fmt.Sprintf("%s: the server does not serve model %q version %q", base, s.Name, s.Version))
				continue
			}
			c.Unreachable = append(c.Unreachable, fmt.Sprintf("%s: no model metadata (%v)", base, err))
			continue
		}
		answered++
		c.Binary = c.Binary && srv.HasExtension("binary_tensor_data")
		c.LabelHints = c.LabelHints && inference.AcceptsLabelHints(meta)
		for _, p := range inference.CheckConvention(meta) {
			c.Unfit = append(c.Unfit, fmt.Sprintf("%s: %s", base, p.Message))
		}
	}
	if answered == 0 {
		// Nothing known yet: JSON works everywhere, and hints are sent
		// only to a model whose metadata asks for them.
		c.Binary, c.LabelHints = false, false
	}
	return c
}

// Save creates or updates the model named by s (name and version) with its
// endpoints and their slots, inside tx, and records the check. It reports
// whether the model is new.
func Save(ctx context.Context, tx pgx.Tx, s Spec, c Check) (queries.Model, bool, error) {
	q := queries.New()
	created := false
	m, err := q.ModelGetByNameVersion(ctx, tx, queries.ModelGetByNameVersionParams{Name: s.Name, Version: s.Version})
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		m, err = q.ModelInsert(ctx, tx, queries.ModelInsertParams{
			Name: s.Name, Version: s.Version, Task: s.Task, TimeoutMs: int32(s.TimeoutMS), Enabled: *s.Enabled,
		})
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23505" {
			return queries.Model{}, false, problem.Conflict("model_exists", "name", "This model version was registered at the same moment; try again.")
		}
		if err != nil {
			return queries.Model{}, false, fmt.Errorf("error saving model: %w", err)
		}
		created = true
	case err != nil:
		return queries.Model{}, false, fmt.Errorf("error reading model: %w", err)
	default:
		m, err = q.ModelUpdate(ctx, tx, queries.ModelUpdateParams{ID: m.ID, TimeoutMs: int32(s.TimeoutMS), Enabled: *s.Enabled})
		if err != nil {
			return queries.Model{}, false, fmt.Errorf("error updating model: %w", err)
		}
	}
	if err := q.EndpointDeleteOthers(ctx, tx, queries.EndpointDeleteOthersParams{ModelID: m.ID, Keep: s.Endpoints}); err != nil {
		return queries.Model{}, false, fmt.Errorf("error removing endpoints: %w", err)
	}
	for _, base := range s.Endpoints {
		e, err := q.EndpointUpsert(ctx, tx, queries.EndpointUpsertParams{ModelID: m.ID, BaseUrl: base, Capacity: int32(s.Capacity)})
		if err != nil {
			return queries.Model{}, false, fmt.Errorf("error saving endpoint %s: %w", base, err)
		}
		if err := q.EndpointSlotsAdd(ctx, tx, queries.EndpointSlotsAddParams{EndpointID: e.ID, Capacity: int32(s.Capacity)}); err != nil {
			return queries.Model{}, false, fmt.Errorf("error adding endpoint slots: %w", err)
		}
		if err := q.EndpointSlotsTrim(ctx, tx, queries.EndpointSlotsTrimParams{EndpointID: e.ID, Capacity: int32(s.Capacity)}); err != nil {
			return queries.Model{}, false, fmt.Errorf("error trimming endpoint slots: %w", err)
		}
	}
	problems := c.Problems()
	if problems == nil {
		problems = []string{}
	}
	if err := q.ModelSetCheck(ctx, tx, queries.ModelSetCheckParams{
		ID: m.ID, BinaryData: c.Binary, LabelHints: c.LabelHints, Problems: problems,
	}); err != nil {
		return queries.Model{}, false, fmt.Errorf("error recording model check: %w", err)
	}
	m, err = q.ModelGet(ctx, tx, m.ID)
	if err != nil {
		return queries.Model{}, false, fmt.Errorf("error reading model: %w", err)
	}
	return m, created, nil
}
