package app

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/deepimageshub/imagehub/review"
	"github.com/deepimageshub/imagehub/views"
)

// reviewPage: GET /review, the reviewer's screen. The page is a shell with
// the shortcuts and the filters; static/review.js leases items through the
// review API (POST /api/v1/review/next and friends) and edits the masks in
// the browser. ?label= and ?campaign_id= narrow the queue: the script passes
// them on to /api/v1/review/next, which checks them.
func (s *Server) reviewPage(c *fiber.Ctx) error {
	ctx := c.UserContext()
	labels, err := s.q.LabelList(ctx, s.pool)
	if err != nil {
		return fmt.Errorf("error listing labels: %w", err)
	}
	camps, err := s.campaigns(ctx, true)
	if err != nil {
		return err
	}
	d := views.ReviewScreen{Label: c.Query("label"), Campaign: c.Query("campaign_id")}
	for _, l := range labels {
		d.Labels = append(d.Labels, views.LabelOption{Name: l.Name, DisplayName: l.DisplayName})
	}
	for _, cp := range camps {
		d.Campaigns = append(d.Campaigns, views.CampaignOption{ID: cp.ID, Title: cp.Title})
	}
	s.prefetchFirst(c)
	c.Set(fiber.HeaderContentSecurityPolicy, s.security.reviewCSP) // its import map is inline
	return render(c, http.StatusOK, views.ReviewPage(s.page(c, "Review"), d))
}

// prefetchFirst prepares for prompts, in the background, the first items
// the reviewer opening the review screen will lease (with the screen's
// filter): the page and its scripts load meanwhile, so the first click of
// the session waits no more than later ones. A filter that does not parse
// prefetches the unfiltered queue; review/next reports the error.
func (s *Server) prefetchFirst(c *fiber.Ctx) {
	var f review.Filter
	if id, err := uuid.Parse(c.Query("campaign_id")); err == nil {
		f.CampaignID = &id
	}
	label := strings.Clone(c.Query("label"))
	reviewer := currentUser(c).ID
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if label != "" {
			ls, err := s.q.LabelGetByNames(ctx, s.pool, []string{label})
			if err == nil && len(ls) > 0 {
				f.LabelID = &ls[0].ID
			}
		}
		s.prepareUpcoming(ctx, reviewer, f, promptPrefetch+1)
	}()
}
