package app

import (
	"context"
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"
)

// healthz answers while the process is up.
func (s *Server) healthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

// readyz answers 200 only when the database and the blob store both answer, so
// a load balancer sends no traffic to a replica that cannot serve it. The
// answer names the part that is down, never its error text (which can carry
// addresses and credentials' user names): that goes to the log.
func (s *Server) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 3*time.Second)
	defer cancel()
	checks := fiber.Map{"database": "ok", "blobs": "ok"}
	ready := true
	if err := s.pool.Ping(ctx); err != nil {
		checks["database"], ready = "down", false
		s.logger.WarnContext(ctx, "readiness: database is not answering", "error", err)
	}
	if err := s.blobs.Ping(ctx); err != nil {
		checks["blobs"], ready = "down", false
		s.logger.WarnContext(ctx, "readiness: blob store is not answering", "error", err)
	}
	status, word := fiber.StatusOK, "ok"
	if !ready {
		status, word = fiber.StatusServiceUnavailable, "unavailable"
		c.Set(fiber.HeaderRetryAfter, strconv.Itoa(retryAfterSeconds))
	}
	return c.Status(status).JSON(fiber.Map{"status": word, "ready": ready, "checks": checks})
}
