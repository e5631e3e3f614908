package app

import (
	"fmt"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/queries"
)

// userJSON is a user as the API shows it.
type userJSON struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Role      auth.Role `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

func toUserJSON(u queries.User) userJSON {
	return userJSON{ID: u.ID.String(), Email: u.Email, Name: u.Name, Role: u.Role, CreatedAt: u.CreatedAt.UTC()}
}

// startSession signs the browser in with a fresh session id (never one it
// brought along), ending the session it had before.
func (s *Server) startSession(c *fiber.Ctx, u queries.User) error {
	ctx := c.UserContext()
	if id := currentIdentity(c); id != nil && id.sessionHash != nil {
		if err := s.q.SessionDelete(ctx, s.pool, id.sessionHash); err != nil {
			return fmt.Errorf("error ending old session: %w", err)
		}
	}
	plain, hash := auth.NewSecret("")
	expires := time.Now().Add(min(s.cfg.SessionTTL, s.cfg.SessionMaxAge))
	ua := c.Get(fiber.HeaderUserAgent)
	if len(ua) > 300 {
		ua = ua[:300]
	}
	err := s.q.SessionInsert(ctx, s.pool, queries.SessionInsertParams{
		IDHash: hash, UserID: u.ID, ExpiresAt: expires, UserAgent: ua, IP: s.clientAddr(c).String(),
	})
	if err != nil {
		return fmt.Errorf("error creating session: %w", err)
	}
	c.Cookie(&fiber.Cookie{
		Name: cookieName(sessionCookie, s.cfg.HTTPS()), Value: plain, Path: "/", Expires: expires,
		HTTPOnly: true, Secure: s.cfg.HTTPS(), SameSite: fiber.CookieSameSiteLaxMode,
	})
	c.Locals(localsIdentity, &identity{user: u, sessionHash: hash})
	return nil
}

// endSession signs the browser out.
func (s *Server) endSession(c *fiber.Ctx) error {
	if id := currentIdentity(c); id != nil && id.sessionHash != nil {
		if err := s.q.SessionDelete(c.UserContext(), s.pool, id.sessionHash); err != nil {
			return fmt.Errorf("error ending session: %w", err)
		}
	}
	s.clearSessionCookie(c)
	c.Locals(localsIdentity, nil)
	return nil
}

func (s *Server) clearSessionCookie(c *fiber.Ctx) {
	c.Cookie(&fiber.Cookie{
		Name: cookieName(sessionCookie, s.cfg.HTTPS()), Value: "", Path: "/", Expires: time.Unix(0, 0), MaxAge: -1,
		HTTPOnly: true, Secure: s.cfg.HTTPS(), SameSite: fiber.CookieSameSiteLaxMode,
	})
}

// cookieName is a cookie's name on this site: with the __Host- prefix when
// cookies are Secure, so that the browser keeps them to this host, path /
// and https, and no sibling subdomain can plant or shadow them.
func cookieName(base string, secure bool) string {
	if secure {
		return "__Host-" + base
	}
	return base
}
