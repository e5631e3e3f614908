package app

import (
	"github.com/gofiber/fiber/v2"

	"github.com/deepimageshub/imagehub/account"
	"github.com/deepimageshub/imagehub/auth"
)

// apiSignup: POST /api/v1/auth/signup → 201 {user}, signed in.
func (s *Server) apiSignup(c *fiber.Ctx) error {
	var in account.SignUp
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	u, err := s.accounts.Create(c.UserContext(), in, auth.RoleContributor)
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
	u, err := s.accounts.Authenticate(c.UserContext(), in, c.IP())
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
