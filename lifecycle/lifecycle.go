// Package lifecycle is the life cycle of an image: every state an image row
// can be in, every move between them, and the code that makes each move. A
// path that moves an image either calls a function here or is listed here
// with the statement that does it; reasons a contributor sees are the
// constants below, not literals scattered through SQL and handlers.
//
//	uploaded ──ingest──▶ processing ──ingest──▶ awaiting_inference ──settle──▶ awaiting_review ──review──▶ reviewed
//	                          │                        ▲                  │
//	                          ├──ingest──▶ flagged ──approve (Moderate)   └──settle──▶ failed
//	                          │               └──reject (Moderate)──▶ rejected
//	                          ├──ingest──▶ rejected
//	                          └──ingest──▶ failed
//
// The states (queries.ImageStatus, the image_status enum):
//
//   - uploaded: the bytes are stored under their upload hash and the row and
//     its ingest job were written in one transaction (intake.Service, SQL
//     ImageInsert with the job's InsertTx).
//   - processing: the ingest job has started (jobs.IngestWorker, SQL
//     ImageSetProcessing); a job run again after a crash starts here again.
//   - awaiting_inference: the photo is accepted. Ingest's verdict (SQL
//     ImageFinishIngest), or a moderator's approval of a flagged photo
//     (Moderate), sets it, and in the same transaction Accept queues one
//     inference per enabled model: the one place an accepted image fans out.
//     A model enabled later queues the images still waiting
//     (jobs.QueueModelWorker).
//   - flagged: ingest found the photo dark, washed out, flat or blurry
//     (imaging.Thresholds.Check), or a near-duplicate of an earlier photo
//     (ReasonNearDuplicate; near_duplicate_of names it). It waits for a
//     reviewer or an admin on /admin/moderation (Moderate).
//   - rejected: ingest could not read the photo, found it too small, or
//     found the same picture already stored (ReasonIdentical); or a
//     moderator rejected it (ReasonModeratorDefault or their own words).
//     Final.
//   - failed: ingest gave up (ReasonUploadLost, ReasonIngestFailed), or
//     inference ended with no model able to propose (ReasonNoProposals, set
//     by SQL ImageSettle when the last run ends). Final.
//   - awaiting_review: the last pending inference run ended and one
//     succeeded: SQL ImageSettle (sent with RunComplete by
//     queries.RunCompleteAndSettle, or after jobs.InferWorker's RunFail)
//     moves it and writes its review item.
//     Reviewable queues, in the same transaction, its preparation for the
//     interactive model
//     (docs/interactive.md: a two-stage model's embedding), so that a
//     reviewer's first click on it waits for no encoder.
//   - reviewed: a reviewer submitted its first review (review.Service, SQL
//     ImageMarkReviewed), or annotations imported with the photo became its
//     first review when it was accepted (review.ApplyImported, from Accept);
//     later reviews keep it reviewed.
//
// The moves others hear about are webhook events emitted in the same
// transaction (package webhook): image.accepted and campaign.target_reached
// from Accept, image.flagged from ingest's verdict.
//
// Only ingest and Moderate change an image that is not yet accepted, and
// each changes it only from the state it expects (the SQL says so in its
// WHERE), so a retried job or a second moderator never undoes a later
// move. Inference run for an evaluation (package evaluation) never moves
// the image.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/queries"
	"github.com/deepimageshub/imagehub/review"
	"github.com/deepimageshub/imagehub/webhook"
)

// Reasons a contributor sees on their photo.
const (
	ReasonNearDuplicate    = "This looks like a near-duplicate of a photo already in the hub; a person will check it."
	ReasonIdentical        = "This photo is already in the hub (uploaded before with different metadata)."
	ReasonUploadLost       = "The uploaded file was lost before it could be processed; please upload it again."
	ReasonIngestFailed     = "We could not process this photo; please upload it again later."
	ReasonNoProposals      = "No model could propose masks for this photo. An admin can see why on its page."
	ReasonModeratorDefault = "A moderator looked at this photo and decided not to use it."
)

// MaxReasonLength caps a moderator's reason, in characters.
const MaxReasonLength = 500

// Fanout queues inference of images by models in tx: jobs.Fanout, which
// inserts the infer jobs. It is a function so that this package, which the
// jobs depend on, does not depend on them.
type Fanout func(ctx context.Context, tx pgx.Tx, images, models []uuid.UUID) error

// Accept sends on an image that tx has just moved to awaiting_inference
// (ingest's verdict, or a moderator's approval). Annotations imported with
// the image are its first review, so it needs no inference; otherwise it
// gets one inference per enabled model (with none enabled it waits, and
// enabling one queues it), and proposals imported with it join the models'
// once their runs are queued, so it waits for those too. The photo also
// closes its campaign when it brings it to its target. client queues the
// webhook deliveries of these events.
func Accept(ctx context.Context, tx pgx.Tx, client *river.Client[pgx.Tx], image uuid.UUID, fanout Fanout) error {
	q := queries.New()
	if err := webhook.Emit(ctx, tx, client, webhook.ImageAccepted, webhook.Image(image)); err != nil {
		return err
	}
	// A campaign closes itself once it has as many accepted photos as it
	// asked for.
	closed, err := q.CampaignCloseAtTarget(ctx, tx, image)
	if err != nil {
		return fmt.Errorf("error closing a campaign at its target: %w", err)
	}
	for _, c := range closed {
		if err := webhook.Emit(ctx, tx, client, webhook.CampaignTargetReached, webhook.Campaign(c)); err != nil {
			return err
		}
	}
	img, err := q.ImageGetForUpdate(ctx, tx, image)
	if err != nil {
		return fmt.Errorf("error reading image: %w", err)
	}
	if applied, err := review.ApplyImported(ctx, tx, img); err != nil || applied > 0 {
		return err
	}
	models, err := q.ModelEnabledIDs(ctx, tx)
	if err != nil {
		return fmt.Errorf("error reading enabled models: %w", err)
	}
	if len(models) > 0 {
		if err := fanout(ctx, tx, []uuid.UUID{image}, models); err != nil {
			return err
		}
	}
	if _, err := review.ApplyImportedProposals(ctx, tx, img, ReasonNoProposals); err != nil {
		return err
	}
	return nil
}

// PreparePrompts queues the preparation of an image for interactive
// models: jobs.PreparePrompts, which inserts the job.
type PreparePrompts func(ctx context.Context, image uuid.UUID) error

// Reviewable follows the end of an image's last inference run, in the
// transaction that settles it: when the image now waits for review and an
// interactive model is enabled, it queues the image's preparation for
// prompts (a two-stage model's embedding, or a warm-up of a single-stage
// one), so that a reviewer's first click waits for no encoder. The job
// commits with the review item or not at all. (The inference job takes
// that transaction only when an interactive model is enabled; one enabled
// later prepares the images at their lease.)
func Reviewable(ctx context.Context, db queries.DBTX, image uuid.UUID, prepare PreparePrompts) error {
	ready, err := queries.New().PromptsReadyFor(ctx, db, image)
	if err != nil {
		return fmt.Errorf("error reading interactive models: %w", err)
	}
	if !ready {
		return nil
	}
	return prepare(ctx, image)
}

// Decision is a moderator's verdict on a flagged photo.
type Decision string

// The decisions.
const (
	Approve Decision = "approve"
	Reject  Decision = "reject"
)

// Moderate applies a moderator's decision to a flagged image in tx:
// approve sends it on exactly as if ingest had accepted it (Accept), reject
// ends it with the reason the contributor will see (ReasonModeratorDefault
// when none is given). An image that is not flagged (any more) is a 409, an
// unknown one a 404, a bad decision or reason a 400 naming the field.
func Moderate(ctx context.Context, tx pgx.Tx, client *river.Client[pgx.Tx], image uuid.UUID, d Decision, reason string, fanout Fanout) (queries.Image, error) {
	reason = strings.TrimSpace(reason)
	switch d {
	case Approve, Reject:
	case "":
		return queries.Image{}, problem.BadInput("missing_field", "decision", `Say "approve" or "reject".`)
	default:
		return queries.Image{}, problem.BadInput("invalid_decision", "decision", `The decision is "approve" or "reject".`)
	}
	if utf8.RuneCountInString(reason) > MaxReasonLength {
		return queries.Image{}, problem.BadInput("too_long", "reason", fmt.Sprintf("The reason is at most %d characters.", MaxReasonLength))
	}
	q := queries.New()
	img, err := q.ImageGetForUpdate(ctx, tx, image)
	if errors.Is(err, pgx.ErrNoRows) {
		return queries.Image{}, problem.NotFound
	}
	if err != nil {
		return queries.Image{}, fmt.Errorf("error reading image: %w", err)
	}
	if img.Status != queries.ImageStatusFlagged {
		return queries.Image{}, problem.New(http.StatusConflict, "not_flagged", "",
			fmt.Sprintf("This photo is %s, not waiting for moderation (someone may have decided already).", strings.ReplaceAll(string(img.Status), "_", " ")))
	}
	if d == Approve {
		img, err = q.ImageModerate(ctx, tx, queries.ImageModerateParams{ID: image, Status: queries.ImageStatusAwaitingInference})
		if err != nil {
			return queries.Image{}, fmt.Errorf("error approving image: %w", err)
		}
		return img, Accept(ctx, tx, client, image, fanout)
	}
	if reason == "" {
		reason = ReasonModeratorDefault
	}
	img, err = q.ImageModerate(ctx, tx, queries.ImageModerateParams{ID: image, Status: queries.ImageStatusRejected, Reason: &reason})
	if err != nil {
		return queries.Image{}, fmt.Errorf("error rejecting image: %w", err)
	}
	return img, nil
}

// Flag kinds, for narrowing the moderation queue: what ingest found.
const (
	FlagNearDuplicate = "near_duplicate"
	FlagDark          = "dark"
	FlagWashedOut     = "washed_out"
	FlagFlat          = "flat"
	FlagBlurry        = "blurry"
)

// flagWords are the words imaging.Thresholds.Check writes for each quality
// flag into the reason.
var flagWords = map[string]string{
	FlagDark: "too dark", FlagWashedOut: "washed out", FlagFlat: "flat, with almost no contrast", FlagBlurry: "blurry",
}

// Flags lists why a flagged image waits: its quality problems and whether
// it resembles an earlier photo.
func Flags(img queries.Image) []string {
	var out []string
	if img.NearDuplicateOf != nil {
		out = append(out, FlagNearDuplicate)
	}
	if img.Reason != nil {
		for _, k := range []string{FlagDark, FlagWashedOut, FlagFlat, FlagBlurry} {
			if strings.Contains(*img.Reason, flagWords[k]) {
				out = append(out, k)
			}
		}
	}
	return out
}

// ParseFlag checks a flag kind given to narrow the queue.
func ParseFlag(s string) (string, error) {
	switch s {
	case FlagNearDuplicate, FlagDark, FlagWashedOut, FlagFlat, FlagBlurry:
		return s, nil
	}
	return "", problem.BadInput("invalid_reason", "reason", "reason is one of near_duplicate, dark, washed_out, flat, blurry.")
}

// FlagFilter turns a flag kind into the parameters of ImageModerationQueue.
func FlagFilter(kind string) (nearDuplicate bool, words *string) {
	if kind == FlagNearDuplicate {
		return true, nil
	}
	if w, ok := flagWords[kind]; ok {
		return false, &w
	}
	return false, nil
}
