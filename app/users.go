package app

import (
	"fmt"
	"net/http"

	"github.com/gofiber/fiber/v2"

	"github.com/deepimageshub/imagehub/account"
	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/queries"
	"github.com/deepimageshub/imagehub/views"
)

// listUsers returns one page of accounts in sign-up order.
func (s *Server) listUsers(c *fiber.Ctx) ([]queries.User, string, error) {
	limit, after, err := pageParams(c)
	if err != nil {
		return nil, "", err
	}
	p := queries.UserListParams{MaxRows: int32(limit + 1)}
	if after != nil {
		p.AfterCreatedAt, p.AfterID = &after.T, &after.ID
	}
	users, err := s.q.UserList(c.UserContext(), s.pool, p)
	if err != nil {
		return nil, "", fmt.Errorf("error listing users: %w", err)
	}
	next := ""
	if len(users) > limit {
		users = users[:limit]
		last := users[limit-1]
		next = cursor{T: last.CreatedAt, ID: last.ID}.String()
	}
	return users, next, nil
}

// apiUserList: GET /api/v1/users → {items, next_cursor}.
func (s *Server) apiUserList(c *fiber.Ctx) error {
	users, next, err := s.listUsers(c)
	if err != nil {
		return err
	}
	items := make([]userJSON, len(users))
	for i, u := range users {
		items[i] = toUserJSON(u)
	}
	return c.JSON(fiber.Map{"items": items, "next_cursor": nullIfEmpty(next)})
}

// apiUserCreate: POST /api/v1/users {email, name, password, role?} → 201
// {user}: how accounts are made when self sign-up is closed.
func (s *Server) apiUserCreate(c *fiber.Ctx) error {
	var in struct {
		account.SignUp
		Role auth.Role `json:"role"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if in.Role == "" {
		in.Role = auth.RoleContributor
	}
	u, err := s.accounts.Create(c.UserContext(), account.SignUp{Email: in.Email, Name: in.Name, Password: in.Password}, in.Role)
	if err != nil {
		return err
	}
	return c.Status(http.StatusCreated).JSON(fiber.Map{"user": toUserJSON(u)})
}

// apiUserSetRole: PUT /api/v1/users/{id}/role {role} → 200 {user}.
func (s *Server) apiUserSetRole(c *fiber.Ctx) error {
	var in struct {
		Role auth.Role `json:"role"`
	}
	if err := decodeJSON(c, &in); err != nil {
		return err
	}
	if in.Role == "" {
		return badInput("missing_field", "role", "Say which role: contributor, reviewer, premium or admin.")
	}
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	u, err := s.accounts.SetRole(c.UserContext(), id, in.Role)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"user": toUserJSON(u)})
}

func (s *Server) adminUsersPage(c *fiber.Ctx) error {
	return s.renderAdminUsers(c, http.StatusOK, views.AdminUsers{})
}

func (s *Server) renderAdminUsers(c *fiber.Ctx, status int, d views.AdminUsers) error {
	users, next, err := s.listUsers(c)
	if err != nil {
		return err
	}
	d.NextCursor = next
	for _, u := range users {
		d.Users = append(d.Users, views.UserRow{ID: u.ID.String(), Email: u.Email, Name: u.Name, Role: u.Role, CreatedAt: u.CreatedAt})
	}
	return render(c, status, views.AdminUsersPage(s.page(c, "Users"), d))
}

func (s *Server) userCreateSubmit(c *fiber.Ctx) error {
	in := account.SignUp{Email: c.FormValue("email"), Name: c.FormValue("name"), Password: c.FormValue("password")}
	u, err := s.accounts.Create(c.UserContext(), in, auth.Role(c.FormValue("role")))
	if err != nil {
		return s.rerender(c, err, func(fe *views.FormError) error {
			return s.renderAdminUsers(c, statusOf(err), views.AdminUsers{Err: fe})
		})
	}
	return s.renderAdminUsers(c, http.StatusOK, views.AdminUsers{Created: u.Email})
}

func (s *Server) userRoleSubmit(c *fiber.Ctx) error {
	id, err := paramID(c, "id")
	if err != nil {
		return err
	}
	if _, err := s.accounts.SetRole(c.UserContext(), id, auth.Role(c.FormValue("role"))); err != nil {
		return err
	}
	return c.Redirect("/admin/users", http.StatusSeeOther)
}

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
