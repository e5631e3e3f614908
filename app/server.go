// Package app is the web application: the Fiber app, its routes, middleware and
// handlers. Pages and the JSON API under /api/v1 share the same logic and
// differ only in what they render.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/a-h/templ"
	"github.com/gofiber/fiber/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"riverqueue.com/riverui"

	"github.com/deepimageshub/imagehub/account"
	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/clientip"
	"github.com/deepimageshub/imagehub/config"
	"github.com/deepimageshub/imagehub/dispatch"
	"github.com/deepimageshub/imagehub/imaging"
	"github.com/deepimageshub/imagehub/inference"
	"github.com/deepimageshub/imagehub/intake"
	"github.com/deepimageshub/imagehub/interactive"
	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/queries"
	"github.com/deepimageshub/imagehub/review"
	"github.com/deepimageshub/imagehub/signedurl"
	"github.com/deepimageshub/imagehub/sso"
	"github.com/deepimageshub/imagehub/training"
	"github.com/deepimageshub/imagehub/views"
	"github.com/deepimageshub/imagehub/webhook"
)

// Deps are the server's dependencies, built by the caller (cmd/imagehub or a
// test) so that each can choose real or test instances.
type Deps struct {
	Config   config.Config
	Pool     *pgxpool.Pool
	River    *river.Client[pgx.Tx]
	Blobs    blob.Store
	Logger   *slog.Logger
	Registry Registry // metrics are registered here; nil makes a fresh one
	// Training is what trainings need from the caller: recipes, artifact
	// checkers, the endpoint serving trained models. Limits, lease and
	// BaseURL come from Config.
	Training training.Options
}

// Server holds every dependency of the handlers. There are no package-level
// variables for configuration: two servers can run in one test process.
type Server struct {
	cfg      config.Config
	pool     *pgxpool.Pool
	q        *queries.Queries
	accounts *account.Service
	intake   *intake.Service
	river    *river.Client[pgx.Tx]
	blobs    blob.Store
	review   *review.Service
	// prompts answers click-to-segment prompts (package interactive).
	prompts  *interactive.Service
	training *training.Service
	webhooks *webhook.Service
	// sso is OpenID Connect sign-in; nil when OIDC_ISSUER is unset.
	sso *sso.Service
	// inference checks model endpoints when an admin registers them.
	inference *inference.Client
	// signer checks the signed image URLs models fetch (signedurl).
	signer *signedurl.Signer
	// jobsUI is riverui, mounted at /admin/jobs when there is a River client.
	jobsUI  *riverui.Handler
	logger  *slog.Logger
	metrics *metrics
	// registry holds the metrics MetricsHandler serves.
	registry Registry
	app      *fiber.App
	routes   []route

	crossOrigin *http.CrossOriginProtection
	// clientIPs knows the trusted proxies (see clientAddr).
	clientIPs *clientip.Resolver
	// security is the headers every answer carries (headers.go).
	security securityPolicy
}

// New builds the server and its routes.
func New(d Deps) (*Server, error) {
	if d.Pool == nil || d.Logger == nil || d.Blobs == nil {
		return nil, errors.New("app.New: Pool, Blobs and Logger are required")
	}
	reg := d.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	s := &Server{
		cfg:  d.Config,
		pool: d.Pool,
		q:    queries.New(),
		accounts: account.NewService(d.Pool, account.Limits{
			FreeAttempts:          d.Config.LoginFreeAttempts,
			FreeAttemptsPerClient: d.Config.LoginFreeAttemptsPerClient,
			FirstDelay:            d.Config.LoginDelay,
			MaxDelay:              d.Config.LoginMaxDelay,
			FailureMemory:         d.Config.LoginFailureWindow,
			SignupsPerClient:      d.Config.SignupMaxPerClient,
			SignupWindow:          d.Config.SignupWindow,
			PasswordCost:          d.Config.PasswordHashCost,
		}),
		river:     d.River,
		blobs:     d.Blobs,
		inference: newInferenceClient(),
		signer:    signedurl.New(d.Pool, d.Config.BaseURL),
		review: review.NewService(d.Pool, d.River, review.Settings{
			Lease: d.Config.ReviewLease, MaxInstances: d.Config.ReviewMaxInstances,
			SecondShare: d.Config.SecondReviewShare, MinAgreement: d.Config.SecondReviewMinAgreement,
		}),
		logger: d.Logger,
	}
	s.prompts = interactive.NewService(d.Pool,
		dispatch.NewSlots(d.Pool, dispatch.Health{FailureThreshold: d.Config.EndpointFailures, CoolOff: d.Config.EndpointCoolOff}),
		s.inference, d.Blobs, interactive.Settings{
			MaxPoints: d.Config.PromptMaxPoints, Timeout: d.Config.PromptTimeout, SlotWait: d.Config.PromptSlotWait,
		})
	if d.Config.OIDCIssuer != "" {
		s.sso = sso.New(sso.Settings{
			Issuer: d.Config.OIDCIssuer, ClientID: d.Config.OIDCClientID, ClientSecret: d.Config.OIDCClientSecret,
			RedirectURL: strings.TrimRight(d.Config.BaseURL, "/") + oidcCallbackPath,
			Name:        d.Config.OIDCName, Scopes: strings.Fields(d.Config.OIDCScopes),
			RoleClaim: d.Config.OIDCRoleClaim, RoleMap: d.Config.OIDCRoles,
		}, d.Pool, s.accounts, d.Logger)
	}
	topts := d.Training
	topts.MaxConcurrent, topts.MaxAttempts = d.Config.TrainingMaxConcurrent, d.Config.TrainingMaxAttempts
	topts.QueueTimeout = d.Config.TrainingQueueTimeout
	topts.Lease, topts.MaxArtifactBytes, topts.BaseURL = d.Config.TrainingLease, d.Config.TrainingArtifactMaxBytes, d.Config.BaseURL
	s.webhooks = webhook.NewService(d.Pool, d.River, d.Config.WebhookAllowPrivate)
	s.training = training.NewService(d.Pool, d.Blobs, d.River, topts)
	s.intake = intake.NewService(d.Pool, d.Blobs, d.River, imaging.Limits{
		MaxPixels: d.Config.UploadMaxPixels, MinShortSide: imaging.DefaultThresholds.MinShortSide,
	}, d.Logger)
	m, err := newMetrics(reg, d.Pool)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	if err := s.newJobsUI(); err != nil {
		return nil, err
	}
	if s.clientIPs, err = clientip.New(d.Config.TrustedProxies); err != nil {
		return nil, fmt.Errorf("TRUSTED_PROXIES: %w", err)
	}
	s.security = newSecurityPolicy(d.Config.BaseURL, s.presignedOrigin())
	s.crossOrigin = http.NewCrossOriginProtection()
	if base, err := url.Parse(d.Config.BaseURL); err == nil && base.Host != "" {
		// Behind a proxy the Host header may differ from the public address.
		if err := s.crossOrigin.AddTrustedOrigin(base.Scheme + "://" + base.Host); err != nil {
			return nil, fmt.Errorf("error trusting BASE_URL origin: %w", err)
		}
	}
	s.app = fiber.New(fiber.Config{
		AppName:               "imagehub",
		DisableStartupMessage: true,
		ErrorHandler:          s.handleError,
		ReadTimeout:           ReadTimeout,
		WriteTimeout:          WriteTimeout,
		IdleTimeout:           120 * time.Second,
		// Bodies stream: fasthttp reads at most 8 KiB of one before the
		// handlers run, and each route's body policy (routes.go) says how
		// much of the rest is read, after the role and CSRF checks.
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		BodyLimit:                    maxSmallBody,
		ProxyHeader:                  "", // set behind a trusted proxy only
	})
	s.registry = reg
	s.routes = s.routeTable()
	s.mount()
	return s, nil
}

// ReadTimeout bounds the reading of a whole request, an upload's body
// included: the longest an upload may take to arrive. The Helm chart's
// shutdown budget (deploy/helm/imagehub, hub.longestRequestSeconds) must
// cover it, which deploy's tests check.
const ReadTimeout = 60 * time.Second

// WriteTimeout bounds writing a response; dataset downloads stream for a
// long time and push their own deadline on as they write.
const WriteTimeout = 10 * time.Minute

// App is the Fiber app, for tests (app.Test) and for Serve.
func (s *Server) App() *fiber.App { return s.app }

// Serve answers HTTP on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.app.Listener(ln); err != nil {
		return fmt.Errorf("error serving http: %w", err)
	}
	return nil
}

// Shutdown stops taking connections and waits for requests in flight.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.app.ShutdownWithContext(ctx); err != nil {
		return fmt.Errorf("error shutting down http: %w", err)
	}
	return nil
}

// isAPI reports whether a request is for the JSON API rather than a page.
func isAPI(c *fiber.Ctx) bool { return strings.HasPrefix(c.Path(), "/api/") }

// handleError renders every error a handler returns: JSON for the API, a page
// otherwise. Only server-side failures are logged as errors.
func (s *Server) handleError(c *fiber.Ctx, err error) error {
	var fe *fiber.Error
	var e *problem.Error
	if errors.As(err, &fe) {
		e = problem.New(fe.Code, fiberCode(fe.Code), "", fiberMessage(fe))
	} else {
		var known bool
		e, known = asError(err)
		if !known || e.Status >= 500 {
			logger(c, s.logger).ErrorContext(c.UserContext(), "request failed", "error", err, "path", c.Path())
		}
	}
	for k, v := range e.Headers {
		c.Set(k, v)
	}
	if isAPI(c) || strings.Contains(c.Get(fiber.HeaderAccept), "application/json") && !strings.Contains(c.Get(fiber.HeaderAccept), "text/html") {
		return c.Status(e.Status).JSON(fiber.Map{"error": apiError{Code: e.Code, Message: e.Message, Field: e.Field, Details: e.Details}})
	}
	p := s.page(c, httpStatusTitle(e.Status))
	if e.Status < 500 {
		p.Flash = nil
	}
	return render(c, e.Status, views.ErrorPage(p, e.Status, e.Message))
}

type apiError struct {
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Field   string   `json:"field,omitempty"`
	Details []string `json:"details,omitempty"`
}

func fiberCode(status int) string {
	switch status {
	case fiber.StatusNotFound:
		return "not_found"
	case fiber.StatusMethodNotAllowed:
		return "method_not_allowed"
	case fiber.StatusRequestEntityTooLarge:
		return "too_large"
	case fiber.StatusRequestTimeout:
		return "timeout"
	default:
		if status >= 500 {
			return "internal"
		}
		return "bad_request"
	}
}

func fiberMessage(fe *fiber.Error) string {
	switch fe.Code {
	case fiber.StatusNotFound:
		return "There is nothing here."
	case fiber.StatusMethodNotAllowed:
		return "This address does not take that method."
	case fiber.StatusRequestEntityTooLarge:
		return "The request body is too large."
	}
	return fe.Message
}

func httpStatusTitle(status int) string {
	switch status {
	case 400:
		return "That did not work"
	case 401:
		return "Please sign in"
	case 403:
		return "Not allowed"
	case 404:
		return "Not found"
	case 409:
		return "Conflict"
	case 429:
		return "Slow down"
	case 503:
		return "Temporarily unavailable"
	}
	if status >= 500 {
		return "Something went wrong"
	}
	return "That did not work"
}

// render writes a templ component as the HTML response.
func render(c *fiber.Ctx, status int, comp templ.Component) error {
	c.Status(status)
	c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
	if err := comp.Render(c.UserContext(), c.Response().BodyWriter()); err != nil {
		return fmt.Errorf("error rendering page: %w", err)
	}
	return nil
}

// page fills in what the layout needs for this request.
func (s *Server) page(c *fiber.Ctx, title string) views.Page {
	p := views.Page{Title: title, Path: c.Path(), CSRF: csrfToken(c, s.cfg.HTTPS())}
	if u := currentUser(c); u != nil {
		p.Viewer = &views.Viewer{ID: u.ID.String(), Name: u.Name, Email: u.Email, Role: u.Role}
		if u.Role == auth.RoleAdmin {
			p.Notices = s.adminNotices(c)
		}
	}
	return p
}

// adminNotices are the standing warnings an admin sees on every page: the
// webhook endpoints disabled for failing. A failure to read them is
// logged, not shown: the page itself still works.
func (s *Server) adminNotices(c *fiber.Ctx) []views.Notice {
	off, err := s.webhooks.Disabled(c.UserContext())
	if err != nil {
		s.logger.WarnContext(c.UserContext(), "error reading disabled webhook endpoints", "error", err)
		return nil
	}
	var out []views.Notice
	for _, e := range off {
		out = append(out, views.Notice{
			Text: "Webhook endpoint " + e.Url + " was disabled after failing; nothing is sent to it until it is enabled again.",
			Href: "/admin/webhooks/" + e.ID.String(),
		})
	}
	return out
}
