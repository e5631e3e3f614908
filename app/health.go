package app

import (
	"context"
	"time"

	"github.com/gofiber/fiber/v2"
)

// healthz answers while the process is up.
func (s *Server) healthz(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"status": "ok"})
}

// readyz answers 200 only when the database and the blob store both answer, so
// a load balancer sends no traffic to a replica that cannot serve it.
func (s *Server) readyz(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(c.UserContext(), 3*time.Second)
	defer cancel()
	checks := fiber.Map{"database": "ok", "blobs": "ok"}
	ready := true
	if err := s.pool.Ping(ctx); err != nil {
		checks["database"], ready = err.Error(), false
	}
	if err := s.blobs.Ping(ctx); err != nil {
		checks["blobs"], ready = err.Error(), false
	}
	status := fiber.StatusOK
	if !ready {
		status = fiber.StatusServiceUnavailable
	}
	return c.Status(status).JSON(fiber.Map{"ready": ready, "checks": checks})
}
