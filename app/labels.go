package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/queries"
	"github.com/deepimageshub/imagehub/views"
)

type labelJSON struct {
	ID          string  `json:"id"`
	Name        string  `json:"name"`
	DisplayName string  `json:"display_name"`
	ExternalID  *string `json:"external_id"`
}

func toLabelJSON(l queries.Label) labelJSON {
	return labelJSON{ID: l.ID.String(), Name: l.Name, DisplayName: l.DisplayName, ExternalID: l.ExternalID}
}

// apiLabelList: GET /api/v1/labels → the taxonomy in name order, a page at
// a time (an Open Images taxonomy is 20,000 labels).
func (s *Server) apiLabelList(c *fiber.Ctx) error {
	limit, after, err := pageParams(c)
	if err != nil {
		return err
	}
	p := queries.LabelPageParams{Lim: int32(limit + 1)}
	if after != nil {
		p.AfterName = after.K
	}
	labels, err := s.q.LabelPage(c.UserContext(), s.pool, p)
	if err != nil {
		return fmt.Errorf("error listing labels: %w", err)
	}
	next := ""
	if len(labels) > limit {
		labels = labels[:limit]
		next = cursor{K: labels[limit-1].Name, ID: labels[limit-1].ID}.String()
	}
	items := make([]labelJSON, len(labels))
	for i, l := range labels {
		items[i] = toLabelJSON(l)
	}
	return c.JSON(fiber.Map{"items": items, "next_cursor": nullIfEmpty(next)})
}

// labelInput is the label form and API body.
type labelInput struct {
	Name        string `json:"name"`
	DisplayName string `json:"display_name"`
	ExternalID  string `json:"external_id"`
}

var labelNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9 _.()&/'-]{0,99}$`)

func (in *labelInput) validate() error {
	in.Name = strings.ToLower(strings.TrimSpace(in.Name))
	in.DisplayName = strings.TrimSpace(in.DisplayName)
	in.ExternalID = strings.TrimSpace(in.ExternalID)
	if in.DisplayName == "" {
		in.DisplayName = in.Name
	}
	switch {
	case in.Name == "":
		return badInput("missing_field", "name", "Give the label a name, e.g. \"traffic light\".")
	case !labelNameRE.MatchString(in.Name):
		return badInput("invalid", "name", "A label name is up to 100 lower-case letters, digits, spaces and - _ . ( ) & / '.")
	case len(in.DisplayName) > 100:
		return badInput("too_long", "display_name", "The display name can be at most 100 characters.")
	case len(in.ExternalID) > 100:
		return badInput("too_long", "external_id", "The external id can be at most 100 characters.")
	}
	return nil
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (s *Server) createLabel(ctx context.Context, in labelInput) (queries.Label, error) {
	if err := in.validate(); err != nil {
		return queries.Label{}, err
	}
	l, err := s.q.LabelInsert(ctx, s.pool, queries.LabelInsertParams{Name: in.Name, DisplayName: in.DisplayName, ExternalID: optional(in.ExternalID)})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		field := "name"
		if strings.Contains(pgErr.ConstraintName, "external") {
			field = "external_id"
		}
		return queries.Label{}, problem.Conflict("label_exists", field, "A label with this "+strings.ReplaceAll(field, "_", " ")+" already exists.")
	}
	if err != nil {
		return queries.Label{}, fmt.Errorf("error creating label: %w", err)
	}
	return l, nil
}

// apiLabelCreate: POST /api/v1/labels (admin) → 201 {label}.
func (s *Server) apiLabelCreate(c *fiber.Ctx) error {
	var in labelInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	l, err := s.createLabel(c.UserContext(), in)
	if err != nil {
		return err
	}
	return c.Status(http.StatusCreated).JSON(fiber.Map{"label": toLabelJSON(l)})
}

func (s *Server) adminLabelsPage(c *fiber.Ctx) error {
	return s.renderAdminLabels(c, http.StatusOK, nil)
}

func (s *Server) renderAdminLabels(c *fiber.Ctx, status int, fe *views.FormError) error {
	labels, err := s.q.LabelList(c.UserContext(), s.pool)
	if err != nil {
		return fmt.Errorf("error listing labels: %w", err)
	}
	d := views.AdminLabels{Err: fe}
	for _, l := range labels {
		d.Labels = append(d.Labels, views.LabelRow{ID: l.ID.String(), Name: l.Name, DisplayName: l.DisplayName, ExternalID: deref(l.ExternalID)})
	}
	return render(c, status, views.AdminLabelsPage(s.page(c, "Labels"), d))
}

func (s *Server) labelCreateSubmit(c *fiber.Ctx) error {
	in := labelInput{Name: c.FormValue("name"), DisplayName: c.FormValue("display_name"), ExternalID: c.FormValue("external_id")}
	if _, err := s.createLabel(c.UserContext(), in); err != nil {
		return s.rerender(c, err, func(fe *views.FormError) error { return s.renderAdminLabels(c, statusOf(err), fe) })
	}
	return c.Redirect("/admin/labels", http.StatusSeeOther)
}

func (s *Server) labelUpdateSubmit(c *fiber.Ctx) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	in := labelInput{Name: "x", DisplayName: c.FormValue("display_name"), ExternalID: c.FormValue("external_id")}
	if err := in.validate(); err != nil {
		return s.rerender(c, err, func(fe *views.FormError) error { return s.renderAdminLabels(c, statusOf(err), fe) })
	}
	_, err = s.q.LabelUpdate(c.UserContext(), s.pool, queries.LabelUpdateParams{ID: id, DisplayName: in.DisplayName, ExternalID: optional(in.ExternalID)})
	var pgErr *pgconn.PgError
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return problem.NotFound
	case errors.As(err, &pgErr) && pgErr.Code == "23505":
		err = problem.Conflict("label_exists", "external_id", "Another label has this external id.")
		return s.rerender(c, err, func(fe *views.FormError) error { return s.renderAdminLabels(c, statusOf(err), fe) })
	case err != nil:
		return fmt.Errorf("error updating label: %w", err)
	}
	return c.Redirect("/admin/labels", http.StatusSeeOther)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
