package app

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/deepimageshub/imagehub/queries"
	"github.com/deepimageshub/imagehub/views"
)

// campaignInput is the campaign form and API body.
type campaignInput struct {
	Title       string    `json:"title"`
	Description string    `json:"description"`
	Labels      []string  `json:"labels"`
	TargetCount int       `json:"target_count"`
	Priority    int       `json:"priority"`
	ClosesAt    time.Time `json:"closes_at"`
}

func (in *campaignInput) validate() error {
	in.Title = strings.TrimSpace(in.Title)
	switch {
	case in.Title == "":
		return badInput("missing_field", "title", "Give the campaign a title.")
	case utf8.RuneCountInString(in.Title) > 200:
		return badInput("too_long", "title", "The title can be at most 200 characters.")
	case utf8.RuneCountInString(in.Description) > 5000:
		return badInput("too_long", "description", "The description can be at most 5000 characters.")
	case len(in.Labels) == 0:
		return badInput("missing_field", "labels", "Say which labels the campaign asks for.")
	case in.TargetCount < 1 || in.TargetCount > 10_000_000:
		return badInput("invalid", "target_count", "target_count must be from 1 to 10000000.")
	case in.ClosesAt.IsZero():
		return badInput("missing_field", "closes_at", "Say when the campaign closes (RFC 3339, e.g. 2027-01-31T00:00:00Z).")
	case !in.ClosesAt.After(time.Now()):
		return badInput("invalid", "closes_at", "closes_at must be in the future.")
	case in.Priority < -1000 || in.Priority > 1000:
		return badInput("invalid", "priority", "priority must be from -1000 to 1000.")
	}
	return nil
}

type campaignJSON struct {
	ID          string    `json:"id"`
	Title       string    `json:"title"`
	Description string    `json:"description"`
	Labels      []string  `json:"labels"`
	TargetCount int32     `json:"target_count"`
	ImageCount  int64     `json:"image_count"`
	Priority    int32     `json:"priority"`
	ClosesAt    time.Time `json:"closes_at"`
	Open        bool      `json:"open"`
	CreatedAt   time.Time `json:"created_at"`
	// Progress counts photos uploaded into it, accepted, reviewed, and
	// reviewed instances of its labels.
	Progress *campaignProgressJSON `json:"progress,omitempty"`
}

type campaignProgressJSON struct {
	Uploads   int `json:"uploads"`
	Accepted  int `json:"accepted"`
	Reviewed  int `json:"reviewed"`
	Instances int `json:"instances"`
}

func (s *Server) campaignProgress(ctx context.Context, id uuid.UUID) (*campaignProgressJSON, error) {
	p, err := s.q.CampaignProgress(ctx, s.pool, id)
	if err != nil {
		return nil, fmt.Errorf("error reading campaign progress: %w", err)
	}
	return &campaignProgressJSON{Uploads: int(p.Uploads), Accepted: int(p.Accepted), Reviewed: int(p.Reviewed), Instances: int(p.Instances)}, nil
}

func (s *Server) createCampaign(ctx context.Context, by queries.User, in campaignInput) (queries.Campaign, []string, error) {
	if err := in.validate(); err != nil {
		return queries.Campaign{}, nil, err
	}
	labels, err := s.intake.ResolveLabels(ctx, in.Labels)
	if err != nil {
		return queries.Campaign{}, nil, err
	}
	var camp queries.Campaign
	names := make([]string, len(labels))
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		camp, err = s.q.CampaignInsert(ctx, tx, queries.CampaignInsertParams{
			Title: in.Title, Description: in.Description, TargetCount: int32(in.TargetCount),
			Priority: int32(in.Priority), ClosesAt: in.ClosesAt, CreatedBy: by.ID,
		})
		if err != nil {
			return fmt.Errorf("error creating campaign: %w", err)
		}
		for i, l := range labels {
			names[i] = l.Name
			if err := s.q.CampaignLabelInsert(ctx, tx, queries.CampaignLabelInsertParams{CampaignID: camp.ID, LabelID: l.ID}); err != nil {
				return fmt.Errorf("error adding campaign label: %w", err)
			}
		}
		return nil
	})
	return camp, names, err
}

func (s *Server) campaigns(ctx context.Context, openOnly bool) ([]campaignJSON, error) {
	rows, err := s.q.CampaignList(ctx, s.pool, queries.CampaignListParams{OpenOnly: openOnly})
	if err != nil {
		return nil, fmt.Errorf("error listing campaigns: %w", err)
	}
	return s.campaignItems(ctx, len(rows), func(i int) queries.CampaignListRow { return rows[i] })
}

// campaignItems renders n campaign rows with their progress.
func (s *Server) campaignItems(ctx context.Context, n int, row func(int) queries.CampaignListRow) ([]campaignJSON, error) {
	out := make([]campaignJSON, n)
	now := time.Now()
	for i := range n {
		r := row(i)
		out[i] = campaignJSON{
			ID: r.ID.String(), Title: r.Title, Description: r.Description, Labels: r.LabelNames,
			TargetCount: r.TargetCount, ImageCount: r.ImageCount, Priority: r.Priority,
			ClosesAt: r.ClosesAt.UTC(), Open: r.ClosesAt.After(now), CreatedAt: r.CreatedAt.UTC(),
		}
		var err error
		if out[i].Progress, err = s.campaignProgress(ctx, r.ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// apiCampaignList: GET /api/v1/campaigns (?open=true for open ones only),
// open ones first, a page at a time.
func (s *Server) apiCampaignList(c *fiber.Ctx) error {
	limit, after, err := pageParams(c)
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	p := queries.CampaignPageParams{OpenOnly: c.Query("open") == "true", Lim: int32(limit + 1)}
	if after != nil {
		p.AfterID, p.AfterClosed, p.AfterPriority, p.AfterClosesAt, p.AfterCreatedAt = &after.ID, after.Closed, after.P, after.U, after.T
	}
	rows, err := s.q.CampaignPage(ctx, s.pool, p)
	if err != nil {
		return fmt.Errorf("error listing campaigns: %w", err)
	}
	items, err := s.campaignItems(ctx, min(len(rows), limit), func(i int) queries.CampaignListRow { return queries.CampaignListRow(rows[i]) })
	if err != nil {
		return err
	}
	next := ""
	if len(rows) > limit {
		last := items[limit-1]
		next = cursor{T: rows[limit-1].CreatedAt, ID: rows[limit-1].ID, P: last.Priority, Closed: !last.Open, U: rows[limit-1].ClosesAt}.String()
	}
	return c.JSON(fiber.Map{"items": items, "next_cursor": nullIfEmpty(next)})
}

// apiCampaignGet: GET /api/v1/campaigns/{id} → one campaign, as in the
// list (the URL of campaign.target_reached's object).
func (s *Server) apiCampaignGet(c *fiber.Ctx) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	rows, err := s.q.CampaignList(c.UserContext(), s.pool, queries.CampaignListParams{OnlyID: &id})
	if err != nil {
		return fmt.Errorf("error reading campaign: %w", err)
	}
	if len(rows) == 0 {
		return errNotFound
	}
	items, err := s.campaignItems(c.UserContext(), 1, func(int) queries.CampaignListRow { return rows[0] })
	if err != nil {
		return err
	}
	return c.JSON(items[0])
}

// apiCampaignCreate: POST /api/v1/campaigns (admin) → 201 {campaign}.
func (s *Server) apiCampaignCreate(c *fiber.Ctx) error {
	var in campaignInput
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	camp, labels, err := s.createCampaign(c.UserContext(), *currentUser(c), in)
	if err != nil {
		return err
	}
	return c.Status(http.StatusCreated).JSON(fiber.Map{"campaign": campaignJSON{
		ID: camp.ID.String(), Title: camp.Title, Description: camp.Description, Labels: labels,
		TargetCount: camp.TargetCount, Priority: camp.Priority, ClosesAt: camp.ClosesAt.UTC(), Open: true, CreatedAt: camp.CreatedAt.UTC(),
	}})
}

func (s *Server) campaignsPage(c *fiber.Ctx) error {
	return s.renderCampaigns(c, http.StatusOK, views.CampaignForm{}, nil)
}

func (s *Server) renderCampaigns(c *fiber.Ctx, status int, form views.CampaignForm, fe *views.FormError) error {
	items, err := s.campaigns(c.UserContext(), false)
	if err != nil {
		return err
	}
	d := views.Campaigns{Form: form, Err: fe}
	for _, it := range items {
		d.Items = append(d.Items, campaignRow(it))
	}
	if currentUser(c).Role.AtLeast("admin") {
		labels, err := s.q.LabelList(c.UserContext(), s.pool)
		if err != nil {
			return fmt.Errorf("error listing labels: %w", err)
		}
		for _, l := range labels {
			d.AllLabels = append(d.AllLabels, l.Name)
		}
	}
	return render(c, status, views.CampaignsPage(s.page(c, "Campaigns"), d))
}

func (s *Server) campaignCreateSubmit(c *fiber.Ctx) error {
	form := views.CampaignForm{Title: c.FormValue("title"), Description: c.FormValue("description"),
		Target: c.FormValue("target_count"), ClosesOn: c.FormValue("closes_on"), Labels: c.FormValue("labels")}
	in := campaignInput{Title: form.Title, Description: form.Description}
	in.TargetCount, _ = strconv.Atoi(strings.TrimSpace(form.Target))
	if form.ClosesOn != "" {
		// A date closes at the end of that day, UTC.
		if d, err := time.Parse("2006-01-02", form.ClosesOn); err == nil {
			in.ClosesAt = d.Add(24*time.Hour - time.Second)
		}
	}
	for _, l := range strings.Split(form.Labels, ",") {
		if l = strings.TrimSpace(l); l != "" {
			in.Labels = append(in.Labels, l)
		}
	}
	if _, _, err := s.createCampaign(c.UserContext(), *currentUser(c), in); err != nil {
		return s.rerender(c, err, func(fe *views.FormError) error { return s.renderCampaigns(c, statusOf(err), form, fe) })
	}
	return c.Redirect("/campaigns", http.StatusSeeOther)
}

func campaignRow(it campaignJSON) views.CampaignRow {
	r := views.CampaignRow{ID: it.ID, Title: it.Title, Description: it.Description, Labels: it.Labels,
		Target: int(it.TargetCount), Count: int(it.ImageCount), ClosesAt: it.ClosesAt, Open: it.Open}
	if p := it.Progress; p != nil {
		r.Uploads, r.Accepted, r.Reviewed, r.Instances = p.Uploads, p.Accepted, p.Reviewed, p.Instances
	}
	return r
}

// campaignProgressPartial: GET /campaigns/{id}/progress, the progress of
// one campaign, which its page refreshes by itself while it is open.
func (s *Server) campaignProgressPartial(c *fiber.Ctx) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	items, err := s.campaigns(c.UserContext(), false)
	if err != nil {
		return err
	}
	for _, it := range items {
		if it.ID == id.String() {
			return render(c, http.StatusOK, views.CampaignProgress(campaignRow(it)))
		}
	}
	return errNotFound
}
