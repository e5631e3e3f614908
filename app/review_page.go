package app

import (
	"fmt"
	"net/http"

	"github.com/gofiber/fiber/v2"

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
	c.Set(fiber.HeaderContentSecurityPolicy, s.security.reviewCSP) // its import map is inline
	return render(c, http.StatusOK, views.ReviewPage(s.page(c, "Review"), d))
}
