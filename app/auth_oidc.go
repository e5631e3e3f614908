package app

import (
	"net/http"
	"net/url"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/sso"
	"github.com/deepimageshub/imagehub/views"
)

// OpenID Connect sign-in (package sso). Both routes answer 404 when
// OIDC_ISSUER is unset.
const (
	oidcLoginPath    = "/auth/oidc/login"
	oidcCallbackPath = "/auth/oidc/callback"
	// oidcCookie holds the state of the sign-in in progress, binding the
	// callback to the browser that started it. SameSite=Lax: the callback
	// is a top-level navigation from the provider's site.
	oidcCookie = "imagehub_oidc"
)

var errOIDCOff = problem.New(http.StatusNotFound, "not_found", "", "Sign-in through an identity provider is not set up on this hub.")

// withSSO adds the provider's button to the sign-in page when there is one.
func (s *Server) withSSO(f views.LoginForm) views.LoginForm {
	if s.sso == nil {
		return f
	}
	f.SSOName = s.sso.Name()
	f.SSOURL = oidcLoginPath
	if f.Next != "" {
		f.SSOURL += "?" + url.Values{"next": {f.Next}}.Encode()
	}
	return f
}

func (s *Server) oidcLogin(c *fiber.Ctx) error {
	if s.sso == nil {
		return errOIDCOff
	}
	at, err := s.sso.Begin(c.UserContext(), safeNext(c.Query("next")))
	if err != nil {
		return err
	}
	c.Cookie(&fiber.Cookie{
		Name: oidcCookie, Value: at.State, Path: "/auth/oidc/", Expires: at.Expires,
		HTTPOnly: true, Secure: s.cfg.SecureCookies, SameSite: fiber.CookieSameSiteLaxMode,
	})
	return c.Redirect(at.URL, http.StatusSeeOther)
}

func (s *Server) oidcCallback(c *fiber.Ctx) error {
	if s.sso == nil {
		return errOIDCOff
	}
	browserState := c.Cookies(oidcCookie)
	// The attempt is single use, whatever the outcome.
	c.Cookie(&fiber.Cookie{
		Name: oidcCookie, Value: "", Path: "/auth/oidc/", Expires: time.Unix(0, 0), MaxAge: -1,
		HTTPOnly: true, Secure: s.cfg.SecureCookies, SameSite: fiber.CookieSameSiteLaxMode,
	})
	res, err := s.sso.Finish(c.UserContext(), sso.Callback{
		State: c.Query("state"), BrowserState: browserState, Code: c.Query("code"),
		Error: c.Query("error"), ErrorDescription: c.Query("error_description"),
	})
	if err != nil {
		return err
	}
	if err := s.startSession(c, res.User); err != nil {
		return err
	}
	return c.Redirect(safeNext(res.Next), http.StatusSeeOther)
}
