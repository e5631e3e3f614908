package app

import (
	"fmt"

	"github.com/gofiber/fiber/v2"
)

// modelQualityJSON is one model version's record on one label (API.md).
type modelQualityJSON struct {
	Model     modelRef `json:"model"`
	Label     string   `json:"label"`
	Proposals int32    `json:"proposals"`
	Accepted  int32    `json:"accepted"`
	Corrected int32    `json:"corrected"`
	Rejected  int32    `json:"rejected"`
	MeanIoU   float64  `json:"mean_iou"`
}

// apiModelStats: GET /api/v1/stats/models (admin) → per model version and
// label, how reviewers judged the proposals.
func (s *Server) apiModelStats(c *fiber.Ctx) error {
	rows, err := s.q.ModelQuality(c.UserContext(), s.pool)
	if err != nil {
		return fmt.Errorf("error reading model quality: %w", err)
	}
	items := make([]modelQualityJSON, len(rows))
	for i, r := range rows {
		items[i] = modelQualityJSON{
			Model: modelRef{Name: r.ModelName, Version: r.ModelVersion}, Label: r.Label, Proposals: r.Proposals,
			Accepted: r.Accepted, Corrected: r.Corrected, Rejected: r.Rejected, MeanIoU: r.MeanIou,
		}
	}
	return c.JSON(fiber.Map{"items": items})
}
