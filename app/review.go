package app

import (
	"bytes"
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/interactive"
	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/queries"
	"github.com/deepimageshub/imagehub/review"
	"github.com/deepimageshub/imagehub/views"
)

// reviewImageJSON is the image of a review item: its full size, where the
// full-resolution bytes and the review-size picture are.
type reviewImageJSON struct {
	ID        string   `json:"id"`
	Width     int32    `json:"width"`
	Height    int32    `json:"height"`
	FileURL   string   `json:"file_url"`
	ReviewURL string   `json:"review_url"`
	Labels    []string `json:"labels"`
}

type reviewProposalJSON struct {
	ID    string   `json:"id"`
	Label string   `json:"label"`
	Score float32  `json:"score"`
	BBox  []int32  `json:"bbox"`
	Mask  maskJSON `json:"mask"`
}

// reviewItemJSON is API.md's answer to POST /api/v1/review/next.
type reviewItemJSON struct {
	ItemID         string               `json:"item_id"`
	Kind           string               `json:"kind"`
	Image          reviewImageJSON      `json:"image"`
	Proposals      []reviewProposalJSON `json:"proposals"`
	LeaseExpiresAt time.Time            `json:"lease_expires_at"`
}

// annotationJSON is a final instance (API.md).
type annotationJSON struct {
	ID         string    `json:"id"`
	Label      string    `json:"label"`
	Mask       maskJSON  `json:"mask"`
	BBox       []int32   `json:"bbox"`
	Area       int32     `json:"area"`
	ProposalID *string   `json:"proposal_id,omitempty"`
	IoU        *float32  `json:"iou,omitempty"`
	Author     string    `json:"author,omitempty"` // staff only
	CreatedAt  time.Time `json:"created_at"`
}

// apiReviewNext: POST /api/v1/review/next with an optional body (or query)
// {"label": "cat", "campaign_id": "…"} → 200 and the leased item, or 204.
func (s *Server) apiReviewNext(c *fiber.Ctx) error {
	var in struct {
		Label      string `json:"label"`
		CampaignID string `json:"campaign_id"`
	}
	if len(c.BodyRaw()) > 0 {
		if err := decodeJSON(c, &in); err != nil {
			return err
		}
	}
	in.Label = strings.TrimSpace(cmp.Or(in.Label, c.Query("label")))
	in.CampaignID = strings.TrimSpace(cmp.Or(in.CampaignID, c.Query("campaign_id")))
	ctx := c.UserContext()
	var f review.Filter
	if in.Label != "" {
		ls, err := s.q.LabelGetByNames(ctx, s.pool, []string{in.Label})
		if err != nil {
			return fmt.Errorf("error reading labels: %w", err)
		}
		if len(ls) == 0 {
			return badInput("unknown_label", "label", fmt.Sprintf("%q is not a label of the taxonomy.", in.Label))
		}
		f.LabelID = &ls[0].ID
	}
	if in.CampaignID != "" {
		id, err := uuid.Parse(in.CampaignID)
		if err != nil {
			return badInput("invalid", "campaign_id", "campaign_id is not a campaign id.")
		}
		f.CampaignID = &id
	}
	item, ok, err := s.review.Next(ctx, currentUser(c).ID, f)
	if err != nil {
		return err
	}
	if !ok {
		return c.SendStatus(http.StatusNoContent)
	}
	j, err := s.reviewItemJSON(ctx, item)
	if err != nil {
		return err
	}
	s.warmPrompts(currentUser(c).ID, item.ID, f)
	return c.JSON(j)
}

// promptPrefetch is how many of a reviewer's next items are prepared for
// prompts when they lease one. Few: the model's cache of prepared images
// (64 in the built-in worker) is shared by every reviewer.
const promptPrefetch = 2

// warmPrompts has the interactive model prepare the leased image in the
// background, then the next ones of the reviewer's queue, so that the
// first click on each is answered as fast as later ones. The
// prepare_prompts job prepared them when they entered the queue, but in a
// long queue the model has dropped that work long before the lease: warming
// the leased image alone would race the reviewer's first click.
func (s *Server) warmPrompts(reviewer, item uuid.UUID, f review.Filter) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		enabled, err := s.prompts.Warm(ctx, reviewer, item)
		if err != nil {
			s.logger.Warn("the interactive model could not prepare a leased image; its first click will be slower", "item_id", item, "error", err)
			return
		}
		// Without an interactive model the next items need nothing
		// either: spare the database their six reads on every lease.
		if enabled {
			s.prepareUpcoming(ctx, reviewer, f, promptPrefetch)
		}
	}()
}

// prepareUpcoming prepares for prompts the images of the n items the
// reviewer would lease next.
func (s *Server) prepareUpcoming(ctx context.Context, reviewer uuid.UUID, f review.Filter, n int) {
	next, err := s.review.Upcoming(ctx, reviewer, f, n)
	if err != nil {
		s.logger.Warn("the next review items were not prepared for prompts", "error", err)
		return
	}
	for _, image := range next {
		if err := s.prompts.Prepare(ctx, image); err != nil {
			s.logger.Warn("the interactive model could not prepare an upcoming image", "image_id", image, "error", err)
			return
		}
	}
}

// apiReviewSegment: POST /api/v1/review/{item_id}/segment with
// {"points": [[x, y, 1|0]…], "box"?: [x1, y1, x2, y2], "instance"?: {size,
// counts}} → 200 {"mask": {size, counts}, "score"}; 409 without the lease;
// 400 naming the field; 503 when no interactive model is enabled.
func (s *Server) apiReviewSegment(c *fiber.Ctx) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	var in interactive.Request
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	res, err := s.prompts.Segment(c.UserContext(), currentUser(c).ID, id, in)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"mask": maskJSON{Size: [2]int32{int32(res.Mask.Size[0]), int32(res.Mask.Size[1])}, Counts: res.Mask.Counts}, "score": res.Score})
}

func (s *Server) reviewItemJSON(ctx context.Context, item queries.ReviewItem) (reviewItemJSON, error) {
	img, err := s.q.ImageGet(ctx, s.pool, item.ImageID)
	if err != nil {
		return reviewItemJSON{}, fmt.Errorf("error reading image: %w", err)
	}
	labels, err := s.q.ImageLabelNames(ctx, s.pool, img.ID)
	if err != nil {
		return reviewItemJSON{}, fmt.Errorf("error reading labels: %w", err)
	}
	if labels == nil {
		labels = []string{}
	}
	id := img.ID.String()
	j := reviewItemJSON{
		ItemID: item.ID.String(), Kind: string(item.Kind), Proposals: []reviewProposalJSON{},
		Image: reviewImageJSON{
			ID: id, Width: img.Width, Height: img.Height, Labels: labels,
			FileURL: "/api/v1/images/" + id + "/file", ReviewURL: "/images/" + id + "/thumb/review",
		},
	}
	if item.LeaseExpiresAt != nil {
		j.LeaseExpiresAt = item.LeaseExpiresAt.UTC()
	}
	if item.Kind == queries.ReviewKindSecond {
		return j, nil // blind: the second reviewer starts from nothing
	}
	props, err := s.q.ProposalsOfImage(ctx, s.pool, img.ID)
	if err != nil {
		return reviewItemJSON{}, fmt.Errorf("error reading proposals: %w", err)
	}
	for _, p := range props {
		j.Proposals = append(j.Proposals, reviewProposalJSON{
			ID: p.ID.String(), Label: p.Label, Score: p.Score, BBox: p.Bbox,
			Mask: maskJSON{Size: [2]int32{p.Height, p.Width}, Counts: p.Counts},
		})
	}
	return j, nil
}

// apiReviewRenew: POST /api/v1/review/{item_id}/renew → {lease_expires_at}.
func (s *Server) apiReviewRenew(c *fiber.Ctx) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	until, err := s.review.Renew(c.UserContext(), currentUser(c).ID, id)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"lease_expires_at": until.UTC()})
}

// apiReviewRelease: POST /api/v1/review/{item_id}/release → 204; 409 when
// the lease is not the caller's.
func (s *Server) apiReviewRelease(c *fiber.Ctx) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	if err := s.review.Release(c.UserContext(), currentUser(c).ID, id); err != nil {
		return err
	}
	return c.SendStatus(http.StatusNoContent)
}

// apiReviewSubmit: POST /api/v1/review/{item_id} → 200 with the stored
// annotations; 409 without a live lease; 400 naming the field at fault.
func (s *Server) apiReviewSubmit(c *fiber.Ctx) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	var sub review.Submission
	if err := decodeJSON(c, &sub); err != nil {
		return err
	}
	u := currentUser(c)
	res, err := s.review.Submit(c.UserContext(), u.ID, id, sub)
	if err != nil {
		return err
	}
	out := make([]annotationJSON, len(res.Annotations))
	for i, a := range res.Annotations {
		out[i] = toAnnotationJSON(a.ID, a.Label, a.Height, a.Width, a.Counts, a.Bbox, a.Area, a.ProposalID, a.Iou, u.Name, a.CreatedAt)
	}
	body := fiber.Map{"item_id": res.Item.ID.String(), "kind": res.Item.Kind, "annotations": out}
	if res.Item.Agreement != nil {
		body["agreement"] = *res.Item.Agreement
	}
	return c.JSON(body)
}

func toAnnotationJSON(id uuid.UUID, label string, h, w int32, counts string, bbox []int32, area int32, proposal *uuid.UUID, iou *float32, author string, created time.Time) annotationJSON {
	j := annotationJSON{
		ID: id.String(), Label: label, Mask: maskJSON{Size: [2]int32{h, w}, Counts: counts},
		BBox: bbox, Area: area, IoU: iou, Author: author, CreatedAt: created.UTC(),
	}
	if proposal != nil {
		p := proposal.String()
		j.ProposalID = &p
	}
	return j
}

// imageAnnotations are an image's current annotations, for GET /images/{id}.
func (s *Server) imageAnnotations(ctx context.Context, image uuid.UUID) ([]annotationJSON, error) {
	rows, err := s.q.AnnotationsCurrent(ctx, s.pool, image)
	if err != nil {
		return nil, fmt.Errorf("error reading annotations: %w", err)
	}
	out := make([]annotationJSON, len(rows))
	for i, a := range rows {
		out[i] = toAnnotationJSON(a.ID, a.Label, a.Height, a.Width, a.Counts, a.Bbox, a.Area, a.ProposalID, a.Iou, a.AuthorName, a.CreatedAt)
	}
	return out, nil
}

// scorecards reads each reviewer's figures (only one reviewer's when only
// is set). Items per hour are over the reviews that have a time: the
// client's, or the server's since the lease began.
func (s *Server) scorecards(ctx context.Context, only *uuid.UUID) ([]views.ReviewerRow, error) {
	rows, err := s.q.ReviewerStats(ctx, s.pool, only)
	if err != nil {
		return nil, fmt.Errorf("error reading reviewer stats: %w", err)
	}
	out := make([]views.ReviewerRow, 0, len(rows))
	for _, r := range rows {
		row := views.ReviewerRow{
			Name: r.Name, Email: r.Email, Items: int(r.Items), SecondReviews: int(r.SecondReviews),
			Hours:    float64(r.TimeSpentMs) / 3.6e6,
			Accepted: int(r.Accepted), Corrected: int(r.Corrected), Rejected: int(r.Rejected),
		}
		if row.Hours > 0 {
			row.PerHour = float64(r.TimedItems) / row.Hours
		}
		if judged := row.Accepted + row.Corrected + row.Rejected; judged > 0 {
			row.Acceptance, row.HasAcceptance = float64(row.Accepted)/float64(judged), true
		}
		if r.SecondReviews > 0 {
			row.Agreement, row.HasAgreement = float32(r.Agreement), true
		}
		out = append(out, row)
	}
	return out, nil
}

// reviewStatsCSV: GET /review/stats.csv, the page's table as CSV.
func (s *Server) reviewStatsCSV(c *fiber.Ctx) error {
	u := currentUser(c)
	var only *uuid.UUID
	if !u.Role.AtLeast(auth.RoleAdmin) {
		only = &u.ID
	}
	rows, err := s.scorecards(c.UserContext(), only)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	_ = w.Write([]string{"reviewer", "email", "items", "hours", "items_per_hour", "proposals_accepted", "proposals_corrected",
		"proposals_rejected", "acceptance_rate", "second_reviews", "agreement"})
	for _, r := range rows {
		rec := []string{r.Name, r.Email, strconv.Itoa(r.Items), strconv.FormatFloat(r.Hours, 'f', 4, 64),
			strconv.FormatFloat(r.PerHour, 'f', 1, 64), strconv.Itoa(r.Accepted), strconv.Itoa(r.Corrected), strconv.Itoa(r.Rejected), "",
			strconv.Itoa(r.SecondReviews), ""}
		if r.HasAcceptance {
			rec[8] = strconv.FormatFloat(r.Acceptance, 'f', 4, 64)
		}
		if r.HasAgreement {
			rec[10] = strconv.FormatFloat(float64(r.Agreement), 'f', 4, 64)
		}
		_ = w.Write(rec)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return fmt.Errorf("error writing CSV: %w", err)
	}
	c.Set(fiber.HeaderContentType, "text/csv; charset=utf-8")
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="reviewer-stats.csv"`)
	return c.Send(buf.Bytes())
}

// reviewStatsPage: GET /review/stats. A reviewer sees their own figures,
// an admin everyone's.
func (s *Server) reviewStatsPage(c *fiber.Ctx) error {
	u := currentUser(c)
	var only *uuid.UUID
	if !u.Role.AtLeast(auth.RoleAdmin) {
		only = &u.ID
	}
	rows, err := s.scorecards(c.UserContext(), only)
	if err != nil {
		return err
	}
	d := views.ReviewStats{All: only == nil, Rows: rows}
	if only == nil {
		flagged, err := s.q.ReviewsFlagged(c.UserContext(), s.pool)
		if err != nil {
			return fmt.Errorf("error reading flagged reviews: %w", err)
		}
		for _, f := range flagged {
			row := views.FlaggedRow{ItemID: f.ID.String(), ImageID: f.ImageID.String(), Filename: f.Filename}
			if f.Agreement != nil {
				row.Agreement = *f.Agreement
			}
			d.Flagged = append(d.Flagged, row)
		}
	}
	return render(c, http.StatusOK, views.ReviewStatsPage(s.page(c, "Review statistics"), d))
}

// flaggedReviewPage: GET /admin/reviews/{item_id}: a second review that
// disagreed with the first, both versions side by side.
func (s *Server) flaggedReviewPage(c *fiber.Ctx) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	ctx := c.UserContext()
	second, err := s.q.ReviewGet(ctx, s.pool, id)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && second.Kind != queries.ReviewKindSecond) {
		return problem.NotFound
	}
	if err != nil {
		return fmt.Errorf("error reading review: %w", err)
	}
	first, err := s.q.FirstReviewOf(ctx, s.pool, second.ImageID)
	if err != nil {
		return fmt.Errorf("error reading first review: %w", err)
	}
	img, err := s.q.ImageGet(ctx, s.pool, second.ImageID)
	if err != nil {
		return fmt.Errorf("error reading image: %w", err)
	}
	d := views.ReviewCompare{ImageID: img.ID.String(), Filename: img.Filename, Width: int(img.Width), Height: int(img.Height)}
	if second.Agreement != nil {
		d.Agreement = *second.Agreement
	}
	for _, side := range []struct {
		item queries.ReviewItem
		dst  *[]views.CompareInstance
	}{{first, &d.First}, {second, &d.Second}} {
		rows, err := s.q.AnnotationsOfReview(ctx, s.pool, side.item.ID)
		if err != nil {
			return fmt.Errorf("error reading annotations: %w", err)
		}
		for _, a := range rows {
			*side.dst = append(*side.dst, views.CompareInstance{Label: a.Label, Area: int(a.Area), BBox: a.Bbox})
		}
	}
	return render(c, http.StatusOK, views.ReviewComparePage(s.page(c, "Second review"), d))
}
