package app

import (
	"net/http"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/deepimageshub/imagehub/queries"
	"github.com/deepimageshub/imagehub/views"
	"github.com/deepimageshub/imagehub/webhook"
)

// webhookJSON is an endpoint as the API shows it: never its secret.
type webhookJSON struct {
	ID                  string     `json:"id"`
	URL                 string     `json:"url"`
	Events              []string   `json:"events"`
	Description         string     `json:"description"`
	Enabled             bool       `json:"enabled"`
	ConsecutiveFailures int        `json:"consecutive_failures"`
	FailingSince        *time.Time `json:"failing_since"`
	DisabledAt          *time.Time `json:"disabled_at"`
	DisabledReason      *string    `json:"disabled_reason"`
	CreatedAt           time.Time  `json:"created_at"`
	Pending             *int       `json:"pending_deliveries,omitempty"`
}

func toWebhookJSON(e queries.WebhookEndpoint) webhookJSON {
	return webhookJSON{
		ID: e.ID.String(), URL: e.Url, Events: e.Events, Description: e.Description, Enabled: e.Enabled,
		ConsecutiveFailures: int(e.ConsecutiveFailures), FailingSince: utcPtr(e.FailingSince),
		DisabledAt: utcPtr(e.DisabledAt), DisabledReason: e.DisabledReason, CreatedAt: e.CreatedAt.UTC(),
	}
}

type deliveryTryJSON struct {
	Attempt    int       `json:"attempt"`
	StartedAt  time.Time `json:"started_at"`
	DurationMS int       `json:"duration_ms"`
	StatusCode *int32    `json:"status_code"`
	Error      *string   `json:"error"`
}

type deliveryJSON struct {
	ID             string            `json:"id"`
	Event          string            `json:"event"`
	Object         map[string]string `json:"object"`
	State          string            `json:"state"`
	Attempts       int               `json:"attempts"`
	LastStatus     *int32            `json:"last_status"`
	LastError      *string           `json:"last_error"`
	LastDurationMS *int32            `json:"last_duration_ms"`
	LastAttemptAt  *time.Time        `json:"last_attempt_at"`
	CreatedAt      time.Time         `json:"created_at"`
	FinishedAt     *time.Time        `json:"finished_at"`
	Tries          []deliveryTryJSON `json:"tries"`
}

func (s *Server) toDeliveryJSON(d webhook.Delivery) deliveryJSON {
	out := deliveryJSON{
		ID: d.ID.String(), Event: d.Event, State: d.State, Attempts: int(d.Attempts),
		Object: map[string]string{
			"type": d.ObjectType, "id": d.ObjectID, "url": strings.TrimRight(s.cfg.BaseURL, "/") + d.ObjectPath,
		},
		LastStatus: d.LastStatus, LastError: d.LastError, LastDurationMS: d.LastDurationMs,
		LastAttemptAt: utcPtr(d.LastAttemptAt), CreatedAt: d.CreatedAt.UTC(), FinishedAt: utcPtr(d.FinishedAt),
		Tries: []deliveryTryJSON{},
	}
	if d.ObjectState != nil {
		out.Object["state"] = *d.ObjectState
	}
	for _, t := range d.Tries {
		out.Tries = append(out.Tries, deliveryTryJSON{Attempt: int(t.Attempt), StartedAt: t.StartedAt.UTC(),
			DurationMS: int(t.DurationMs), StatusCode: t.StatusCode, Error: t.Error})
	}
	return out
}

// apiWebhookCreate: POST /api/v1/webhooks {url, events, secret?,
// description?} → 201 {webhook, secret}; the secret is shown this once.
func (s *Server) apiWebhookCreate(c *fiber.Ctx) error {
	var in webhook.NewEndpoint
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	e, secret, err := s.webhooks.Create(c.UserContext(), currentUser(c).ID, in)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(http.StatusCreated).JSON(fiber.Map{"webhook": toWebhookJSON(e), "secret": secret})
}

// apiWebhookList: GET /api/v1/webhooks → every endpoint, newest first.
func (s *Server) apiWebhookList(c *fiber.Ctx) error {
	rows, err := s.webhooks.List(c.UserContext())
	if err != nil {
		return err
	}
	items := make([]webhookJSON, len(rows))
	for i, r := range rows {
		items[i] = toWebhookJSON(r.WebhookEndpoint)
		n := int(r.Pending)
		items[i].Pending = &n
	}
	return c.JSON(fiber.Map{"items": items, "next_cursor": nil})
}

// apiWebhookGet: GET /api/v1/webhooks/{id}.
func (s *Server) apiWebhookGet(c *fiber.Ctx) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	e, err := s.webhooks.Get(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(toWebhookJSON(e))
}

// apiWebhookUpdate: PATCH /api/v1/webhooks/{id} {url?, events?,
// description?, enabled?} → the endpoint.
func (s *Server) apiWebhookUpdate(c *fiber.Ctx) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	var ch webhook.Change
	if err := decodeJSON(c, &ch); err != nil {
		return err
	}
	e, err := s.webhooks.Update(c.UserContext(), id, ch)
	if err != nil {
		return err
	}
	return c.JSON(toWebhookJSON(e))
}

// apiWebhookDelete: DELETE /api/v1/webhooks/{id} → 204.
func (s *Server) apiWebhookDelete(c *fiber.Ctx) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	if err := s.webhooks.Delete(c.UserContext(), id); err != nil {
		return err
	}
	return c.SendStatus(http.StatusNoContent)
}

// apiWebhookDeliveries: GET /api/v1/webhooks/{id}/deliveries → the latest
// deliveries, newest first, each with its tries.
func (s *Server) apiWebhookDeliveries(c *fiber.Ctx) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	ds, err := s.webhooks.Deliveries(c.UserContext(), id)
	if err != nil {
		return err
	}
	items := make([]deliveryJSON, len(ds))
	for i, d := range ds {
		items[i] = s.toDeliveryJSON(d)
	}
	return c.JSON(fiber.Map{"items": items, "next_cursor": nil})
}

// apiWebhookRedeliver: POST /api/v1/webhooks/{id}/deliveries/{did}/redeliver
// → 202 {delivery}: "send again", same id and body.
func (s *Server) apiWebhookRedeliver(c *fiber.Ctx) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	did, err := paramID(c, "did")
	if err != nil {
		return err
	}
	d, err := s.webhooks.Redeliver(c.UserContext(), id, did)
	if err != nil {
		return err
	}
	return c.Status(http.StatusAccepted).JSON(fiber.Map{"delivery": s.toDeliveryJSON(webhook.Delivery{WebhookDelivery: d})})
}

// Pages (/admin/webhooks).

func (s *Server) adminWebhooksPage(c *fiber.Ctx) error {
	return s.renderAdminWebhooks(c, http.StatusOK, views.AdminWebhooks{})
}

func (s *Server) renderAdminWebhooks(c *fiber.Ctx, status int, d views.AdminWebhooks) error {
	rows, err := s.webhooks.List(c.UserContext())
	if err != nil {
		return err
	}
	for _, r := range rows {
		d.Endpoints = append(d.Endpoints, webhookRow(r.WebhookEndpoint, int(r.Pending)))
	}
	for _, e := range webhook.Events {
		d.AllEvents = append(d.AllEvents, string(e))
	}
	c.Set(fiber.HeaderCacheControl, "no-store") // it may show a new secret
	return render(c, status, views.AdminWebhooksPage(s.page(c, "Webhooks"), d))
}

func webhookRow(e queries.WebhookEndpoint, pending int) views.WebhookRow {
	return views.WebhookRow{ID: e.ID.String(), URL: e.Url, Events: e.Events, Description: e.Description,
		Enabled: e.Enabled, Failures: int(e.ConsecutiveFailures), DisabledReason: e.DisabledReason,
		CreatedAt: e.CreatedAt, Pending: pending}
}

func (s *Server) webhookCreateSubmit(c *fiber.Ctx) error {
	events := formValues(c, "events")
	in := webhook.NewEndpoint{URL: c.FormValue("url"), Events: events, Description: c.FormValue("description")}
	if sec := c.FormValue("secret"); sec != "" {
		in.Secret = &sec
	}
	e, secret, err := s.webhooks.Create(c.UserContext(), currentUser(c).ID, in)
	if err != nil {
		return s.rerender(c, err, func(fe *views.FormError) error {
			return s.renderAdminWebhooks(c, statusOf(err), views.AdminWebhooks{Err: fe, URL: in.URL, Chosen: events})
		})
	}
	return s.renderAdminWebhooks(c, http.StatusCreated, views.AdminWebhooks{Created: &views.CreatedWebhook{ID: e.ID.String(), URL: e.Url, Secret: secret}})
}

func (s *Server) adminWebhookPage(c *fiber.Ctx) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	e, err := s.webhooks.Get(c.UserContext(), id)
	if err != nil {
		return err
	}
	ds, err := s.webhooks.Deliveries(c.UserContext(), id)
	if err != nil {
		return err
	}
	d := views.AdminWebhook{Endpoint: webhookRow(e, 0), Flash: c.Query("done")}
	for _, x := range ds {
		row := views.DeliveryRow{ID: x.ID.String(), Event: x.Event, ObjectID: x.ObjectID, State: x.State,
			Attempts: int(x.Attempts), LastStatus: x.LastStatus, LastError: x.LastError, DurationMS: x.LastDurationMs,
			LastAttemptAt: x.LastAttemptAt, CreatedAt: x.CreatedAt}
		d.Deliveries = append(d.Deliveries, row)
	}
	return render(c, http.StatusOK, views.AdminWebhookPage(s.page(c, "Webhook"), d))
}

// webhookUpdateSubmit enables or disables an endpoint (the form's enabled
// field) from its page.
func (s *Server) webhookUpdateSubmit(c *fiber.Ctx) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	on := c.FormValue("enabled") == "true"
	if _, err := s.webhooks.Update(c.UserContext(), id, webhook.Change{Enabled: &on}); err != nil {
		return err
	}
	return c.Redirect("/admin/webhooks/"+id.String(), http.StatusSeeOther)
}

func (s *Server) webhookDeleteSubmit(c *fiber.Ctx) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	if err := s.webhooks.Delete(c.UserContext(), id); err != nil {
		return err
	}
	return c.Redirect("/admin/webhooks", http.StatusSeeOther)
}

func (s *Server) webhookRedeliverSubmit(c *fiber.Ctx) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	did, err := paramID(c, "did")
	if err != nil {
		return err
	}
	if _, err := s.webhooks.Redeliver(c.UserContext(), id, did); err != nil {
		return err
	}
	return c.Redirect("/admin/webhooks/"+id.String()+"?done=resent", http.StatusSeeOther)
}
