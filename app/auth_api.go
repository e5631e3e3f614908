package app

import (
	"net/http"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/deepimageshub/imagehub/account"
	"github.com/deepimageshub/imagehub/problem"
)

var errSignupClosed = problem.New(http.StatusForbidden, "signup_closed", "",
	"Self sign-up is closed on this hub: ask an admin to create an account for you.")

// signupAllowed refuses self sign-up when SIGNUP_OPEN=false, except with a
// setup code, which is how the first admin of such a site signs up.
func (s *Server) signupAllowed(in account.SignUp) error {
	if !s.cfg.SignupOpen && strings.TrimSpace(in.SetupCode) == "" {
		return errSignupClosed
	}
	return nil
}

// apiSignup: POST /api/v1/auth/signup {email, password, name, setup_code?} →
// 201 {user}, signed in.
func (s *Server) apiSignup(c *fiber.Ctx) error {
	var in account.SignUp
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if err := s.signupAllowed(in); err != nil {
		return err
	}
	u, err := s.accounts.Register(c.UserContext(), in, s.clientKey(c))
	if err != nil {
		return err
	}
	if err := s.startSession(c, u); err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"user": toUserJSON(u)})
}

// apiLogin: POST /api/v1/auth/login → 200 {user} and a session cookie.
func (s *Server) apiLogin(c *fiber.Ctx) error {
	var in account.Login
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	u, err := s.accounts.Authenticate(c.UserContext(), in, s.clientKey(c))
	if err != nil {
		return err
	}
	if err := s.startSession(c, u); err != nil {
		return err
	}
	return c.JSON(fiber.Map{"user": toUserJSON(u)})
}

// apiLogout: POST /api/v1/auth/logout → 204; the session ends server-side.
func (s *Server) apiLogout(c *fiber.Ctx) error {
	if err := s.endSession(c); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

// apiMe: GET /api/v1/me → {user}.
func (s *Server) apiMe(c *fiber.Ctx) error {
	return c.JSON(fiber.Map{"user": toUserJSON(*currentUser(c))})
}

// apiPasswordChange: POST /api/v1/me/password {current_password,
// new_password} → 204. The user's other sessions end; this one gets a fresh id.
func (s *Server) apiPasswordChange(c *fiber.Ctx) error {
	var in account.PasswordChange
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if err := s.changePassword(c, in); err != nil {
		return err
	}
	return c.SendStatus(http.StatusNoContent)
}

// changePassword changes the caller's password and ends their other
// sessions; a browser's own session is replaced by a fresh one.
func (s *Server) changePassword(c *fiber.Ctx, in account.PasswordChange) error {
	id := currentIdentity(c)
	if err := s.accounts.ChangePassword(c.UserContext(), id.user.ID, in, s.clientKey(c), id.sessionHash); err != nil {
		return err
	}
	if id.sessionHash != nil {
		return s.startSession(c, id.user)
	}
	return nil
}

// apiLogoutAll: POST /api/v1/me/logout-all → 204: every session of the
// caller ends and every token is revoked, this request's included.
func (s *Server) apiLogoutAll(c *fiber.Ctx) error {
	if err := s.accounts.SignOutEverywhere(c.UserContext(), currentUser(c).ID); err != nil {
		return err
	}
	s.clearSessionCookie(c)
	return c.SendStatus(http.StatusNoContent)
}
