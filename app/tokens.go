package app

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"

	"github.com/deepimageshub/imagehub/account"
	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/problem"
	"github.com/deepimageshub/imagehub/queries"
	"github.com/deepimageshub/imagehub/views"
)

type tokenJSON struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	RevokedAt  *time.Time `json:"revoked_at"`
	// Role is "trainer" for a trainer token, absent otherwise.
	Role string `json:"role,omitempty"`
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func toTokenJSON(t queries.APIToken) tokenJSON {
	return tokenJSON{ID: t.ID.String(), Name: t.Name, CreatedAt: t.CreatedAt.UTC(),
		ExpiresAt: utcPtr(t.ExpiresAt), LastUsedAt: utcPtr(t.LastUsedAt), RevokedAt: utcPtr(t.RevokedAt), Role: tokenRole(t)}
}

func tokenRole(t queries.APIToken) string {
	if t.Trainer {
		return string(auth.RoleTrainer)
	}
	return ""
}

// paramID parses a path parameter as an id; a malformed one is simply not found.
func paramID(c *fiber.Ctx, name string) (uuid.UUID, error) {
	id, err := uuid.Parse(c.Params(name))
	if err != nil {
		return uuid.Nil, errNotFound
	}
	return id, nil
}

var errTokenMintsToken = problem.New(http.StatusForbidden, "session_required", "",
	"An API token cannot create tokens: sign in with your password and create it on your account page, or run `imagehub tokens create`.")

// requireSession refuses a request made with an API token, for what only
// the person, signed in with their password, may do.
func requireSession(c *fiber.Ctx) error {
	if id := currentIdentity(c); id == nil || id.viaToken() {
		return errTokenMintsToken
	}
	return nil
}

// apiTokenCreate: POST /api/v1/tokens {name, expires_in_days? | expires_at?}
// → 201 {token, api_token}. Needs a session: a stolen token must not be able
// to make itself a successor that outlives its revocation.
func (s *Server) apiTokenCreate(c *fiber.Ctx) error {
	if err := requireSession(c); err != nil {
		return err
	}
	var in account.NewToken
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if in.Role == string(auth.RoleTrainer) && currentUser(c).Role != auth.RoleAdmin {
		return problem.Forbidden
	}
	plain, t, err := s.accounts.CreateToken(c.UserContext(), currentUser(c).ID, in)
	if err != nil {
		return err
	}
	return c.Status(http.StatusCreated).JSON(fiber.Map{"token": plain, "api_token": toTokenJSON(t)})
}

// apiTokenList: GET /api/v1/tokens → the caller's tokens, newest first.
func (s *Server) apiTokenList(c *fiber.Ctx) error {
	ts, err := s.accounts.Tokens(c.UserContext(), currentUser(c).ID)
	if err != nil {
		return err
	}
	items := make([]tokenJSON, len(ts))
	for i, t := range ts {
		items[i] = toTokenJSON(t)
	}
	return c.JSON(fiber.Map{"items": items, "next_cursor": nil})
}

// apiTokenRevoke: DELETE /api/v1/tokens/{id} → 204.
func (s *Server) apiTokenRevoke(c *fiber.Ctx) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	if err := s.accounts.RevokeToken(c.UserContext(), currentUser(c).ID, id); err != nil {
		return err
	}
	return c.SendStatus(http.StatusNoContent)
}

func (s *Server) accountPage(c *fiber.Ctx) error {
	return s.renderAccount(c, http.StatusOK, views.Account{})
}

func (s *Server) renderAccount(c *fiber.Ctx, status int, a views.Account) error {
	ts, err := s.accounts.Tokens(c.UserContext(), currentUser(c).ID)
	if err != nil {
		return err
	}
	for _, t := range ts {
		a.Tokens = append(a.Tokens, views.TokenRow{ID: t.ID.String(), Name: t.Name, CreatedAt: t.CreatedAt,
			ExpiresAt: t.ExpiresAt, LastUsedAt: t.LastUsedAt, RevokedAt: t.RevokedAt, Trainer: t.Trainer})
	}
	// The page may show a secret: keep it out of every cache.
	c.Set(fiber.HeaderCacheControl, "no-store")
	return render(c, status, views.AccountPage(s.page(c, "Your account"), a))
}

func (s *Server) tokenCreateSubmit(c *fiber.Ctx) error {
	if err := requireSession(c); err != nil {
		return err
	}
	in := account.NewToken{Name: c.FormValue("name"), Role: c.FormValue("role")}
	if in.Role == string(auth.RoleTrainer) && currentUser(c).Role != auth.RoleAdmin {
		return problem.Forbidden
	}
	if v := strings.TrimSpace(c.FormValue("expires_in_days")); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			n = -1 // refused by the account service with the field named
		}
		in.ExpiresInDays = &n
	}
	plain, _, err := s.accounts.CreateToken(c.UserContext(), currentUser(c).ID, in)
	if err != nil {
		return s.rerender(c, err, func(fe *views.FormError) error {
			return s.renderAccount(c, statusOf(err), views.Account{Err: fe})
		})
	}
	// Rendered in the answer to the POST itself rather than after a redirect:
	// the secret must never sit in a URL or a stored flash message.
	return s.renderAccount(c, http.StatusOK, views.Account{NewToken: plain})
}

func (s *Server) tokenRevokeSubmit(c *fiber.Ctx) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	if err := s.accounts.RevokeToken(c.UserContext(), currentUser(c).ID, id); err != nil {
		return err
	}
	return c.Redirect("/account", http.StatusSeeOther)
}

func (s *Server) passwordChangeSubmit(c *fiber.Ctx) error {
	in := account.PasswordChange{CurrentPassword: c.FormValue("current_password"), NewPassword: c.FormValue("new_password")}
	if err := s.changePassword(c, in); err != nil {
		return s.rerender(c, err, func(fe *views.FormError) error {
			return s.renderAccount(c, statusOf(err), views.Account{PasswordErr: fe})
		})
	}
	return s.renderAccount(c, http.StatusOK, views.Account{PasswordChanged: true})
}

func (s *Server) logoutAllSubmit(c *fiber.Ctx) error {
	if err := s.accounts.SignOutEverywhere(c.UserContext(), currentUser(c).ID); err != nil {
		return err
	}
	s.clearSessionCookie(c)
	return c.Redirect("/login", http.StatusSeeOther)
}
