// Package webhook tells other systems what happened in the hub: admins
// register endpoints (a URL, the events it wants, a secret), and each event
// becomes one delivery per endpoint that asked for it, a signed POST sent
// by a River job with retries (docs/webhooks.md).
//
// An event is emitted with Emit inside the transaction of the change it
// reports: the delivery rows and their jobs commit with the change or not
// at all, so a rolled-back change sends nothing and a committed one is
// never lost, even when the process dies before the job runs. The caller
// passes the River client that queues the jobs (its own, or a worker's
// river.ClientFromContext): the package holds none.
package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/deepimageshub/imagehub/queries"
)

// Event names what happened.
type Event string

// The events an endpoint can ask for.
const (
	ImageAccepted         Event = "image.accepted"
	ImageFlagged          Event = "image.flagged"
	ReviewSubmitted       Event = "review.submitted"
	VersionPublished      Event = "version.published"
	EvaluationFinished    Event = "evaluation.finished"
	TrainingFinished      Event = "training.finished"
	CampaignTargetReached Event = "campaign.target_reached"
)

// Events lists every event, in the order pages show them.
var Events = []Event{
	ImageAccepted, ImageFlagged, ReviewSubmitted, VersionPublished,
	EvaluationFinished, TrainingFinished, CampaignTargetReached,
}

// Known reports whether e is one of Events.
func Known(e Event) bool {
	for _, k := range Events {
		if k == e {
			return true
		}
	}
	return false
}

// Object is what an event is about: its type, id, the path of its API
// resource (made absolute with the hub's BASE_URL in the payload) and, for
// events that end in more than one way, its state.
type Object struct {
	Type  string
	ID    string
	Path  string
	State string
}

// Image is the object of the image events.
func Image(id uuid.UUID) Object {
	return Object{Type: "image", ID: id.String(), Path: "/api/v1/images/" + id.String()}
}

// Review is the object of review.submitted: the review item, whose
// annotations are the image's (there is no resource of its own).
func Review(item, image uuid.UUID) Object {
	return Object{Type: "review", ID: item.String(), Path: "/api/v1/images/" + image.String()}
}

// Version is the object of version.published.
func Version(v queries.DatasetVersion) Object {
	return Object{Type: "dataset_version", ID: v.ID.String(),
		Path: "/api/v1/datasets/" + v.DatasetID.String() + "/versions/" + strconv.Itoa(int(v.Number))}
}

// Evaluation is the object of evaluation.finished; state is done or failed.
func Evaluation(id uuid.UUID, state string) Object {
	return Object{Type: "evaluation", ID: id.String(), Path: "/api/v1/evaluations/" + id.String(), State: state}
}

// Training is the object of training.finished; state is succeeded, failed
// or cancelled.
func Training(id uuid.UUID, state string) Object {
	return Object{Type: "training", ID: id.String(), Path: "/api/v1/trainings/" + id.String(), State: state}
}

// Campaign is the object of campaign.target_reached.
func Campaign(id uuid.UUID) Object {
	return Object{Type: "campaign", ID: id.String(), Path: "/api/v1/campaigns/" + id.String()}
}

// Emit records ev about obj for every enabled endpoint that asked for it,
// and queues their deliveries with client, in tx. It does nothing when
// none asked (client may then be nil, as in a process that only reads).
func Emit(ctx context.Context, tx pgx.Tx, client *river.Client[pgx.Tx], ev Event, obj Object) error {
	var state *string
	if obj.State != "" {
		state = &obj.State
	}
	ids, err := queries.New().WebhookDeliveryInsert(ctx, tx, queries.WebhookDeliveryInsertParams{
		Event: string(ev), ObjectType: obj.Type, ObjectID: obj.ID, ObjectPath: obj.Path, ObjectState: state,
	})
	if err != nil {
		return fmt.Errorf("error recording webhook deliveries of %s: %w", ev, err)
	}
	return queueDeliveries(ctx, tx, client, ids)
}

func queueDeliveries(ctx context.Context, tx pgx.Tx, client *river.Client[pgx.Tx], ids []uuid.UUID) error {
	if len(ids) == 0 {
		return nil
	}
	if client == nil {
		return errors.New("error queueing webhook deliveries: no River client")
	}
	params := make([]river.InsertManyParams, len(ids))
	for i, id := range ids {
		params[i] = river.InsertManyParams{Args: DeliverArgs{DeliveryID: id}}
	}
	if _, err := client.InsertManyTx(ctx, tx, params); err != nil {
		return fmt.Errorf("error queueing webhook deliveries: %w", err)
	}
	return nil
}

// Payload is the JSON body of every delivery.
type Payload struct {
	// ID is the delivery's id: the same on every try and on "send again",
	// so that a receiver can drop what it has already handled.
	ID     string        `json:"id"`
	Event  string        `json:"event"`
	Time   time.Time     `json:"time"`
	Object PayloadObject `json:"object"`
}

// PayloadObject is Payload's object.
type PayloadObject struct {
	Type  string `json:"type"`
	ID    string `json:"id"`
	URL   string `json:"url"`
	State string `json:"state,omitempty"`
}

// Body is the body of delivery d for a hub at baseURL.
func Body(d queries.WebhookDelivery, baseURL string) ([]byte, error) {
	p := Payload{ID: d.ID.String(), Event: d.Event, Time: d.CreatedAt.UTC().Truncate(time.Millisecond), Object: PayloadObject{
		Type: d.ObjectType, ID: d.ObjectID, URL: strings.TrimRight(baseURL, "/") + d.ObjectPath,
	}}
	if d.ObjectState != nil {
		p.Object.State = *d.ObjectState
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("error encoding the webhook payload: %w", err)
	}
	return b, nil
}
