package app

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"riverqueue.com/riverui"

	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/static"
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
	return nil
}

// Start starts what the server runs in the background (the job console's
// caches, the OpenID Connect discovery) until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	if s.sso != nil {
		// In the background: a provider that is down must not stop serve.
		go s.sso.Discover(ctx)
	}
	if s.jobsUI == nil {
		return nil
	}
	if err := s.jobsUI.Start(ctx); err != nil {
		return fmt.Errorf("error starting the job console: %w", err)
	}
	return nil
}

// jobsConsole serves riverui under /admin/jobs. The route table has
// already required an admin; csrfProtect (the console policy) has refused
// cross-origin writes and writes that do not say where they come from, and
// the body has been read within its limit.
//
// Fiber's adaptor would hand riverui the fasthttp request itself as the
// request's context; contexts derived from it race with the server's
// shutdown (a known fasthttp flaw). The request gets the handler's own
// context instead, and riverui's small answers are buffered.
func (s *Server) jobsConsole(c *fiber.Ctx) error {
	if s.jobsUI == nil {
		return problem.New(http.StatusNotFound, "not_found", "", "The job console is not running in this process.")
	}
	r, err := adaptor.ConvertRequest(c, true)
	if err != nil {
		return fmt.Errorf("error reading the request for the job console: %w", err)
	}
	w := &bufferedResponse{header: http.Header{}, status: http.StatusOK}
	s.jobsUI.ServeHTTP(w, r.WithContext(c.UserContext()))
	if w.status == http.StatusOK && strings.HasPrefix(w.header.Get("Content-Type"), "text/html") {
		// riverui's page: its bundle (Zod) probes for eval, which the
		// console's CSP forbids; a script of ours, first in the page, tells
		// Zod not to try.
		page := bytes.Replace(w.body.Bytes(), []byte("<head>"), []byte(`<head><script src="`+static.Path("jobs-console.js")+`"></script>`), 1)
		w.body.Reset()
		w.body.Write(page)
		w.header.Del("Content-Length")
	}
	for k, vs := range w.header {
		for _, v := range vs {
			c.Response().Header.Add(k, v)
		}
	}
	c.Set(fiber.HeaderContentSecurityPolicy, s.security.consoleCSP)
	return c.Status(w.status).Send(w.body.Bytes())
}

// bufferedResponse is an http.ResponseWriter that keeps the answer.
type bufferedResponse struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(status int) {
	if !b.wrote {
		b.status, b.wrote = status, true
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	b.WriteHeader(http.StatusOK)
	return b.body.Write(p)
}
