package app

import (
	"context"
	"fmt"
	"net/http"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/deepimageshub/imagehub/jobs"
	"github.com/deepimageshub/imagehub/lifecycle"
	"github.com/deepimageshub/imagehub/queries"
	"github.com/deepimageshub/imagehub/views"
)

// moderationItemJSON is one flagged photo in the moderation queue.
type moderationItemJSON struct {
	Image           imageJSON  `json:"image"`
	Reason          string     `json:"reason"`
	Flags           []string   `json:"flags"`
	NearDuplicateOf *imageJSON `json:"near_duplicate_of,omitempty"`
}

// moderationQueue reads one page of flagged photos, oldest first, with
// the photos they resemble; ?reason= narrows it to one flag kind.
func (s *Server) moderationQueue(c *fiber.Ctx) ([]moderationItemJSON, string, error) {
	ctx := c.UserContext()
	limit, after, err := pageParams(c)
	if err != nil {
		return nil, "", err
	}
	p := queries.ImageModerationQueueParams{MaxRows: int32(limit + 1)}
	if v := c.Query("reason"); v != "" {
		kind, err := lifecycle.ParseFlag(v)
		if err != nil {
			return nil, "", err
		}
		p.NearDuplicate, p.Words = lifecycle.FlagFilter(kind)
	}
	if after != nil {
		p.AfterAt, p.AfterID = &after.T, &after.ID
	}
	imgs, err := s.q.ImageModerationQueue(ctx, s.pool, p)
	if err != nil {
		return nil, "", fmt.Errorf("error reading the moderation queue: %w", err)
	}
	next := ""
	if len(imgs) > limit {
		imgs = imgs[:limit]
		last := imgs[limit-1]
		next = cursor{T: last.CreatedAt, ID: last.ID}.String()
	}
	var twinIDs []uuid.UUID
	for _, img := range imgs {
		if img.NearDuplicateOf != nil {
			twinIDs = append(twinIDs, *img.NearDuplicateOf)
		}
	}
	twins := map[uuid.UUID]queries.Image{}
	if len(twinIDs) > 0 {
		rows, err := s.q.ImagesByIDs(ctx, s.pool, twinIDs)
		if err != nil {
			return nil, "", fmt.Errorf("error reading near-duplicates: %w", err)
		}
		for _, r := range rows {
			twins[r.ID] = r
		}
	}
	items := make([]moderationItemJSON, 0, len(imgs))
	for _, img := range imgs {
		j, err := s.imageJSON(ctx, img)
		if err != nil {
			return nil, "", err
		}
		it := moderationItemJSON{Image: j, Flags: lifecycle.Flags(img)}
		if img.Reason != nil {
			it.Reason = *img.Reason
		}
		if it.Flags == nil {
			it.Flags = []string{}
		}
		if img.NearDuplicateOf != nil {
			if twin, ok := twins[*img.NearDuplicateOf]; ok {
				tj, err := s.imageJSON(ctx, twin)
				if err != nil {
					return nil, "", err
				}
				it.NearDuplicateOf = &tj
			}
		}
		items = append(items, it)
	}
	return items, next, nil
}

// moderate applies one decision to one flagged photo, and on approval
// queues its inference, in one transaction (lifecycle.Moderate).
func (s *Server) moderate(ctx context.Context, id uuid.UUID, d lifecycle.Decision, reason string) (queries.Image, error) {
	var img queries.Image
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		img, err = lifecycle.Moderate(ctx, tx, s.river, id, d, reason, jobs.Fanout(s.river, s.cfg.InferMaxAttempts))
		return err
	})
	return img, err
}

// apiModerationList: GET /api/v1/moderation (reviewer) → {items, next_cursor}.
func (s *Server) apiModerationList(c *fiber.Ctx) error {
	items, next, err := s.moderationQueue(c)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"items": items, "next_cursor": nullIfEmpty(next)})
}

// apiModerationDecide: POST /api/v1/moderation/{image_id} (reviewer)
// {decision, reason?} → 200 {image}.
func (s *Server) apiModerationDecide(c *fiber.Ctx) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	var in struct {
		Decision lifecycle.Decision `json:"decision"`
		Reason   string             `json:"reason"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	img, err := s.moderate(c.UserContext(), id, in.Decision, in.Reason)
	if err != nil {
		return err
	}
	j, err := s.imageJSON(c.UserContext(), img)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"image": j})
}

// moderationPage: GET /admin/moderation (reviewer): flagged photos, each
// beside the photo it resembles, with a decision per key.
func (s *Server) moderationPage(c *fiber.Ctx) error {
	items, next, err := s.moderationQueue(c)
	if err != nil {
		return err
	}
	d := views.Moderation{NextCursor: next, Reason: c.Query("reason")}
	for _, it := range items {
		row := views.ModerationRow{ID: it.Image.ID, Filename: it.Image.Filename, Reason: it.Reason, Flags: it.Flags,
			Width: int(it.Image.Width), Height: int(it.Image.Height)}
		if t := it.NearDuplicateOf; t != nil {
			row.TwinID, row.TwinFilename, row.TwinStatus = t.ID, t.Filename, t.Status
		}
		d.Items = append(d.Items, row)
	}
	p := s.page(c, "Moderation")
	// After a decision (POST, redirect, GET): what was done, from counts.
	if done, verb := c.QueryInt("done", -1), c.Query("verb"); done >= 0 && (verb == "approved" || verb == "rejected") {
		msg := fmt.Sprintf("%d %s.", done, verb)
		if skipped := c.QueryInt("skipped"); skipped > 0 {
			msg += fmt.Sprintf(" %d skipped: someone decided before you.", skipped)
		}
		p.Flash = &views.Flash{Kind: "ok", Text: msg}
	}
	return render(c, http.StatusOK, views.ModerationPage(p, d))
}

// moderationSubmit: POST /admin/moderation (reviewer), the form twin of
// POST /api/v1/moderation/{image_id} for one or several photos at once
// (image_ids repeated). Each photo is decided on its own: one that someone
// else decided meanwhile is skipped and counted.
func (s *Server) moderationSubmit(c *fiber.Ctx) error {
	d := lifecycle.Decision(c.FormValue("decision"))
	reason := c.FormValue("reason")
	ids := c.Context().PostArgs().PeekMulti("image_ids")
	if len(ids) == 0 {
		return badInput("missing_field", "image_ids", "Select at least one photo.")
	}
	done, skipped := 0, 0
	for _, raw := range ids {
		id, err := uuid.Parse(string(raw))
		if err != nil {
			return badInput("invalid_id", "image_ids", "A selected photo's id is not valid.")
		}
		if _, err := s.moderate(c.UserContext(), id, d, reason); err != nil {
			if e, ok := asError(err); ok && (e.Status == http.StatusConflict || e.Status == http.StatusNotFound) {
				skipped++
				continue
			}
			return err
		}
		done++
	}
	verb := "approved"
	if d == lifecycle.Reject {
		verb = "rejected"
	}
	return c.Redirect(fmt.Sprintf("/admin/moderation?done=%d&verb=%s&skipped=%d", done, verb, skipped), http.StatusSeeOther)
}
