package webhook

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/queries"
)

// Limits of what an admin registers.
const (
	MinSecretLength      = 16
	MaxSecretLength      = 256
	MaxDescriptionLength = 200
	// MaxDeliveriesShown is how many of an endpoint's latest deliveries
	// its page and GET …/deliveries show.
	MaxDeliveriesShown = 50
)

// Service manages endpoints and their deliveries for admins.
type Service struct {
	pool         *pgxpool.Pool
	river        *river.Client[pgx.Tx] // queues a delivery sent again
	q            *queries.Queries
	allowPrivate bool
}

// NewService makes the service; allowPrivate is Settings.AllowPrivate.
func NewService(pool *pgxpool.Pool, client *river.Client[pgx.Tx], allowPrivate bool) *Service {
	return &Service{pool: pool, river: client, q: queries.New(), allowPrivate: allowPrivate}
}

// NewEndpoint is what registering an endpoint takes.
type NewEndpoint struct {
	URL         string   `json:"url"`
	Events      []string `json:"events"`
	Secret      *string  `json:"secret"`
	Description string   `json:"description"`
}

// Change is an edit of an endpoint; a nil field is left as it is.
// Enabling an endpoint clears its run of failures.
type Change struct {
	URL         *string   `json:"url"`
	Events      *[]string `json:"events"`
	Description *string   `json:"description"`
	Enabled     *bool     `json:"enabled"`
}

// checkEvents refuses an empty list and unknown names, and drops repeats.
func checkEvents(in []string) ([]string, error) {
	if len(in) == 0 {
		return nil, problem.BadInput("missing_field", "events", "Name at least one event: "+eventList()+".")
	}
	out := make([]string, 0, len(in))
	for i, e := range in {
		e = strings.TrimSpace(e)
		if !Known(Event(e)) {
			return nil, problem.BadInput("invalid_event", fmt.Sprintf("events[%d]", i),
				fmt.Sprintf("%q is not an event; the events are %s.", e, eventList()))
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out, nil
}

func eventList() string {
	names := make([]string, len(Events))
	for i, e := range Events {
		names[i] = string(e)
	}
	return strings.Join(names, ", ")
}

func checkDescription(d string) (string, error) {
	d = strings.TrimSpace(d)
	if utf8.RuneCountInString(d) > MaxDescriptionLength {
		return "", problem.BadInput("too_long", "description", fmt.Sprintf("The description is at most %d characters.", MaxDescriptionLength))
	}
	return d, nil
}

// Create registers an endpoint and returns it with its secret (the one
// given, or a new one): the only time the secret is shown.
func (s *Service) Create(ctx context.Context, by uuid.UUID, in NewEndpoint) (queries.WebhookEndpoint, string, error) {
	u, err := checkURL(in.URL, s.allowPrivate)
	if err != nil {
		return queries.WebhookEndpoint{}, "", err
	}
	events, err := checkEvents(in.Events)
	if err != nil {
		return queries.WebhookEndpoint{}, "", err
	}
	desc, err := checkDescription(in.Description)
	if err != nil {
		return queries.WebhookEndpoint{}, "", err
	}
	secret := newSecret()
	if in.Secret != nil && *in.Secret != "" {
		secret = *in.Secret
		if n := len(secret); n < MinSecretLength || n > MaxSecretLength {
			return queries.WebhookEndpoint{}, "", problem.BadInput("invalid_secret", "secret",
				fmt.Sprintf("The secret is %d to %d characters; leave it out to have one made.", MinSecretLength, MaxSecretLength))
		}
	}
	e, err := s.q.WebhookEndpointInsert(ctx, s.pool, queries.WebhookEndpointInsertParams{
		Url: u, Events: events, Secret: secret, Description: desc, CreatedBy: &by,
	})
	if err != nil {
		return queries.WebhookEndpoint{}, "", fmt.Errorf("error storing webhook endpoint: %w", err)
	}
	return e, secret, nil
}

// Get is one endpoint; an unknown one is a 404.
func (s *Service) Get(ctx context.Context, id uuid.UUID) (queries.WebhookEndpoint, error) {
	e, err := s.q.WebhookEndpointGet(ctx, s.pool, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return e, problem.NotFound
	}
	if err != nil {
		return e, fmt.Errorf("error reading webhook endpoint: %w", err)
	}
	return e, nil
}

// List is every endpoint, newest first, with its pending deliveries.
func (s *Service) List(ctx context.Context) ([]queries.WebhookEndpointListRow, error) {
	rows, err := s.q.WebhookEndpointList(ctx, s.pool)
	if err != nil {
		return nil, fmt.Errorf("error listing webhook endpoints: %w", err)
	}
	return rows, nil
}

// Update applies a change.
func (s *Service) Update(ctx context.Context, id uuid.UUID, ch Change) (queries.WebhookEndpoint, error) {
	p := queries.WebhookEndpointUpdateParams{ID: id, Enabled: ch.Enabled}
	if ch.URL != nil {
		u, err := checkURL(*ch.URL, s.allowPrivate)
		if err != nil {
			return queries.WebhookEndpoint{}, err
		}
		p.Url = &u
	}
	if ch.Events != nil {
		events, err := checkEvents(*ch.Events)
		if err != nil {
			return queries.WebhookEndpoint{}, err
		}
		p.Events = events
	}
	if ch.Description != nil {
		d, err := checkDescription(*ch.Description)
		if err != nil {
			return queries.WebhookEndpoint{}, err
		}
		p.Description = &d
	}
	e, err := s.q.WebhookEndpointUpdate(ctx, s.pool, p)
	if errors.Is(err, pgx.ErrNoRows) {
		return e, problem.NotFound
	}
	if err != nil {
		return e, fmt.Errorf("error updating webhook endpoint: %w", err)
	}
	return e, nil
}

// Delete removes an endpoint and its deliveries; their jobs find nothing
// and end.
func (s *Service) Delete(ctx context.Context, id uuid.UUID) error {
	n, err := s.q.WebhookEndpointDelete(ctx, s.pool, id)
	if err != nil {
		return fmt.Errorf("error deleting webhook endpoint: %w", err)
	}
	if n == 0 {
		return problem.NotFound
	}
	return nil
}

// Delivery is one delivery with each of its tries, oldest first.
type Delivery struct {
	queries.WebhookDelivery
	Tries []queries.WebhookAttempt
}

// Deliveries are an endpoint's latest deliveries, newest first.
func (s *Service) Deliveries(ctx context.Context, endpoint uuid.UUID) ([]Delivery, error) {
	if _, err := s.Get(ctx, endpoint); err != nil {
		return nil, err
	}
	ds, err := s.q.WebhookDeliveryList(ctx, s.pool, queries.WebhookDeliveryListParams{EndpointID: endpoint, MaxRows: MaxDeliveriesShown})
	if err != nil {
		return nil, fmt.Errorf("error listing webhook deliveries: %w", err)
	}
	ids := make([]uuid.UUID, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	tries, err := s.q.WebhookAttemptsOfDeliveries(ctx, s.pool, ids)
	if err != nil {
		return nil, fmt.Errorf("error listing webhook tries: %w", err)
	}
	byID := make(map[uuid.UUID][]queries.WebhookAttempt, len(ds))
	for _, t := range tries {
		byID[t.DeliveryID] = append(byID[t.DeliveryID], t)
	}
	out := make([]Delivery, len(ds))
	for i, d := range ds {
		out[i] = Delivery{WebhookDelivery: d, Tries: byID[d.ID]}
	}
	return out, nil
}

// Redeliver sends a delivery again ("send again"): same id and body, a new
// job with a fresh run of tries. The endpoint must be enabled.
func (s *Service) Redeliver(ctx context.Context, endpoint, delivery uuid.UUID) (queries.WebhookDelivery, error) {
	var d queries.WebhookDelivery
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		e, err := s.q.WebhookEndpointGet(ctx, tx, endpoint)
		if errors.Is(err, pgx.ErrNoRows) {
			return problem.NotFound
		}
		if err != nil {
			return fmt.Errorf("error reading webhook endpoint: %w", err)
		}
		d, err = s.q.WebhookDeliveryOfEndpoint(ctx, tx, queries.WebhookDeliveryOfEndpointParams{ID: delivery, EndpointID: endpoint})
		if errors.Is(err, pgx.ErrNoRows) {
			return problem.NotFound
		}
		if err != nil {
			return fmt.Errorf("error reading webhook delivery: %w", err)
		}
		if !e.Enabled {
			return problem.Conflict("endpoint_disabled", "", "This endpoint is disabled; enable it first.")
		}
		if d.State == StatePending {
			return problem.Conflict("delivery_pending", "", "This delivery is still being sent; wait for it to end.")
		}
		if err := s.q.WebhookDeliveryRequeue(ctx, tx, d.ID); err != nil {
			return fmt.Errorf("error requeueing webhook delivery: %w", err)
		}
		d.State, d.FinishedAt = StatePending, nil
		return queueDeliveries(ctx, tx, s.river, []uuid.UUID{d.ID})
	})
	return d, err
}

// Disabled are the endpoints disabled for failing, for the admins' notice.
func (s *Service) Disabled(ctx context.Context) ([]queries.WebhookEndpointsDisabledRow, error) {
	rows, err := s.q.WebhookEndpointsDisabled(ctx, s.pool)
	if err != nil {
		return nil, fmt.Errorf("error listing disabled webhook endpoints: %w", err)
	}
	return rows, nil
}
