package app

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"crypto/rand"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/requestid"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/queries"
)

const (
	sessionCookie = "imagehub_session"
	csrfCookie    = "imagehub_csrf"
	csrfHeader    = "X-CSRF-Token"
	csrfField     = "_csrf"

	localsIdentity = "identity"
	localsCSRF     = "csrf"
)

// identity is who made a request.
type identity struct {
	user        queries.User
	tokenID     uuid.UUID // set when the request came with a bearer token
	sessionHash []byte    // set when it came with a session cookie
}

func (id *identity) viaToken() bool { return id.tokenID != uuid.Nil }

func currentIdentity(c *fiber.Ctx) *identity {
	id, _ := c.Locals(localsIdentity).(*identity)
	return id
}

// currentUser is the signed-in user, or nil for an anonymous request.
func currentUser(c *fiber.Ctx) *queries.User {
	if id := currentIdentity(c); id != nil {
		return &id.user
	}
	return nil
}

// logger returns the base logger annotated with the request id.
func logger(c *fiber.Ctx, base *slog.Logger) *slog.Logger {
	if rid, ok := c.Locals(requestid.ConfigDefault.ContextKey).(string); ok {
		return base.With("request_id", rid)
	}
	return base
}

// observe logs each request and records its metrics. It renders errors itself
// so that the status it records is the one the client sees.
func (s *Server) observe(c *fiber.Ctx) error {
	start := time.Now()
	if err := c.Next(); err != nil {
		if herr := s.handleError(c, err); herr != nil {
			_ = c.SendStatus(fiber.StatusInternalServerError)
		}
	}
	// A refusal may come before the body was read (sign-in required, role,
	// CSRF): what is left of it must not be taken for the next request.
	finishBody(c)
	status := c.Response().StatusCode()
	route := c.Route().Path
	if status == fiber.StatusNotFound && route == "/" && c.Path() != "/" {
		route = "unmatched" // keep metric labels bounded: never the raw path
	}
	elapsed := time.Since(start)
	s.metrics.observeRequest(route, c.Method(), status, elapsed)
	attrs := []any{"method", c.Method(), "path", c.Path(), "status", status, "duration", elapsed}
	if u := currentUser(c); u != nil {
		attrs = append(attrs, "user_id", u.ID.String())
	}
	if route != "/healthz" && route != "/metrics" {
		logger(c, s.logger).InfoContext(c.UserContext(), "request", attrs...)
	}
	return nil
}

// identify works out who is calling: a bearer token, a session cookie, or
// nobody. A bearer token that is wrong is refused outright (401), even on a
// public route, so that a script with a stale token learns it at once.
func (s *Server) identify(c *fiber.Ctx) error {
	ctx := c.UserContext()
	if h := c.Get(fiber.HeaderAuthorization); h != "" {
		scheme, token, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || token == "" {
			return errUnauthenticated("Send the API token as: Authorization: Bearer <token>.")
		}
		row, err := s.q.APITokenGetUser(ctx, s.pool, auth.HashSecret(strings.TrimSpace(token)))
		if errors.Is(err, pgx.ErrNoRows) {
			return errUnauthenticated("This API token is unknown, revoked or expired.")
		}
		if err != nil {
			return err
		}
		if err := s.q.APITokenTouch(ctx, s.pool, row.TokenID); err != nil {
			return err
		}
		if row.Trainer {
			// A trainer token acts as the trainer role only, and only on
			// the trainer's routes, public ones included.
			if !strings.HasPrefix(c.Path(), trainerAPIPrefix) {
				return errForbidden
			}
			row.User.Role = auth.RoleTrainer
		}
		c.Locals(localsIdentity, &identity{user: row.User, tokenID: row.TokenID})
		return c.Next()
	}
	if raw := c.Cookies(cookieName(sessionCookie, s.cfg.HTTPS())); raw != "" {
		hash := auth.HashSecret(raw)
		row, err := s.q.SessionGetUser(ctx, s.pool, queries.SessionGetUserParams{
			IDHash: hash, MaxAgeSeconds: s.cfg.SessionMaxAge.Seconds(),
		})
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			s.clearSessionCookie(c) // expired or signed out elsewhere
		case err != nil:
			return err
		default:
			// Sliding expiry: renew when a minute of the lifetime has been used.
			if time.Until(row.SessionExpiresAt) < s.cfg.SessionTTL-time.Minute {
				err := s.q.SessionTouch(ctx, s.pool, queries.SessionTouchParams{
					IDHash: hash, ExpiresAt: time.Now().Add(s.cfg.SessionTTL), MaxAgeSeconds: s.cfg.SessionMaxAge.Seconds(),
				})
				if err != nil {
					return err
				}
			}
			c.Locals(localsIdentity, &identity{user: row.User, sessionHash: hash})
		}
	}
	return c.Next()
}

// csrfToken returns this browser's CSRF token, setting the cookie that holds it
// when there is none yet (double-submit: a form or header must repeat it).
func csrfToken(c *fiber.Ctx, secure bool) string {
	if t, ok := c.Locals(localsCSRF).(string); ok {
		return t
	}
	name := cookieName(csrfCookie, secure)
	t := c.Cookies(name)
	if len(t) != 43 { // 32 random bytes, base64url
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		t = base64.RawURLEncoding.EncodeToString(b)
		c.Cookie(&fiber.Cookie{
			Name: name, Value: t, Path: "/", HTTPOnly: true, Secure: secure,
			SameSite: fiber.CookieSameSiteLaxMode, Expires: time.Now().Add(365 * 24 * time.Hour),
		})
	}
	c.Locals(localsCSRF, t)
	return t
}

var errCSRF = problem.New(http.StatusForbidden, "csrf", "", "This form has expired or did not come from this site. Reload the page and try again.")

// csrfProtect guards every state-changing request that a browser could be
// tricked into sending, by the route's policy (csrfMode):
//   - a cross-origin request (by Sec-Fetch-Site or Origin, as net/http's
//     CrossOriginProtection decides) is refused everywhere;
//   - a token, when sent, must match the cookie's;
//   - a page form must carry one; a streamed body is never parsed to find
//     it, so such a route wants a browser that said where the request came
//     from instead; an API call from a script needs none.
//
// Requests with a bearer token carry no ambient credentials and are exempt.
// It runs after the role check and before the body is read, and reads a
// form body (within the route's limit) only to find the _csrf field.
func (s *Server) csrfProtect(p bodyPolicy) fiber.Handler {
	return func(c *fiber.Ctx) error {
		switch c.Method() {
		case fiber.MethodGet, fiber.MethodHead, fiber.MethodOptions:
			return c.Next()
		}
		if id := currentIdentity(c); id != nil && id.viaToken() {
			return c.Next()
		}
		req := &http.Request{Method: c.Method(), Host: string(c.Request().Host()), Header: http.Header{}}
		for _, h := range []string{"Origin", "Sec-Fetch-Site"} {
			if v := c.Get(h); v != "" {
				req.Header.Set(h, v)
			}
		}
		if err := s.crossOrigin.Check(req); err != nil {
			return errCSRF
		}
		sent := c.Get(csrfHeader)
		if sent == "" {
			switch p.csrf {
			case csrfScript:
				return c.Next()
			case csrfBrowser:
				// The check above found it same-origin if the browser said
				// where it came from; insist that it said so.
				if c.Get("Sec-Fetch-Site") == "" && c.Get("Origin") == "" {
					return errCSRF
				}
				return c.Next()
			default:
				if err := readBody(c, p); err != nil {
					return err
				}
				sent = c.FormValue(csrfField)
			}
		}
		want := c.Cookies(cookieName(csrfCookie, s.cfg.HTTPS()))
		if want == "" || subtle.ConstantTimeCompare([]byte(sent), []byte(want)) != 1 {
			return errCSRF
		}
		return c.Next()
	}
}

// requireRole enforces a route's minimum role.
func requireRole(min auth.Role) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if min == "" {
			return c.Next()
		}
		u := currentUser(c)
		if u == nil {
			if !isAPI(c) && c.Method() == fiber.MethodGet {
				return c.Redirect("/login?next="+url.QueryEscape(c.OriginalURL()), fiber.StatusSeeOther)
			}
			return errUnauthenticated("Sign in, or send an API token as Authorization: Bearer <token>.")
		}
		if !u.Role.AtLeast(min) {
			return errForbidden
		}
		return c.Next()
	}
}
