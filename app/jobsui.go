package app

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"riverqueue.com/riverui"

	"github.com/deepimageshub/imagehub/problem"
)

// jobsUIPrefix is where River's own console (riverui) is mounted, for
// admins: every job, its attempts and errors, with retry and cancel.
const jobsUIPrefix = "/admin/jobs"

// newJobsUI builds riverui's handler on the server's River client. Its
// background services start with Start.
func (s *Server) newJobsUI() error {
	if s.river == nil {
		return nil
	}
	h, err := riverui.NewHandler(&riverui.HandlerOpts{
		Endpoints: riverui.NewEndpoints(s.river, nil),
		Logger:    s.logger,
		Prefix:    jobsUIPrefix,
	})
	if err != nil {
		return fmt.Errorf("error creating the job console: %w", err)
	}
	s.jobsUI = h
	s.jobsUIHandler = adaptor.HTTPHandler(h)
	return nil
}

// Start starts what the server runs in the background (the job console's
// caches) until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	if s.jobsUI == nil {
		return nil
	}
	if err := s.jobsUI.Start(ctx); err != nil {
		return fmt.Errorf("error starting the job console: %w", err)
	}
	return nil
}

// jobsConsole serves riverui under /admin/jobs. The route table has
// already required an admin; csrfProtect has refused cross-origin writes,
// and jobsUIWriteCheck requires that a write says where it came from.
func (s *Server) jobsConsole(c *fiber.Ctx) error {
	if s.jobsUIHandler == nil {
		return problem.New(http.StatusNotFound, "not_found", "", "The job console is not running in this process.")
	}
	return s.jobsUIHandler(c)
}

// isJobsUIWrite reports a state-changing call of riverui's front end. It
// sends no CSRF token of ours, so such a call must come from a browser that
// says it is same-origin (Sec-Fetch-Site or Origin, checked before).
func isJobsUIWrite(c *fiber.Ctx) bool {
	return strings.HasPrefix(c.Path(), jobsUIPrefix+"/") || c.Path() == jobsUIPrefix
}
