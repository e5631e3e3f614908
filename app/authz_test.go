package app

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/queries"
)

// TestAuthorizationMatrix calls every route of the route table as every role
// and as nobody, and checks the role rule: too low a role gets 403, nobody gets
// 401 (or, for a page, is sent to sign in), and a role high enough is let
// through to the handler (whatever the handler then says of the empty input).
func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	ctx := context.Background()

	users := map[auth.Role]queries.User{}
	for _, r := range auth.Roles {
		hash, err := testPasswords.Hash(testPassword)
		require.NoError(t, err)
		u, err := tb.q.UserInsertWithRole(ctx, tb.pool, queries.UserInsertWithRoleParams{
			Email: string(r) + "@example.com", Name: string(r), PasswordHash: hash, Role: r,
		})
		require.NoError(t, err)
		users[r] = u
	}
	// A fresh session for every request, since some routes (sign-out) end it.
	sessionFor := func(u queries.User) string {
		plain, hash := auth.NewSecret("")
		require.NoError(t, tb.q.SessionInsert(ctx, tb.pool, queries.SessionInsertParams{
			IDHash: hash, UserID: u.ID, ExpiresAt: nowPlusHour(),
		}))
		return plain
	}

	callers := append([]auth.Role{""}, auth.Roles...)
	for _, r := range tb.server.routes {
		path := r.path
		for strings.Contains(path, ":") {
			i := strings.Index(path, ":")
			j := strings.IndexByte(path[i:], '/')
			if j < 0 {
				j = len(path) - i
			}
			path = path[:i] + uuid.NewString() + path[i+j:]
		}
		for _, caller := range callers {
			name := r.method + " " + r.path + " as " + string(caller)
			if caller == "" {
				name = r.method + " " + r.path + " as nobody"
			}
			t.Run(name, func(t *testing.T) {
				c := tb.client(t)
				token := c.csrf()
				h := http.Header{csrfHeader: {token}, "Content-Type": {"application/json"}}
				if caller != "" {
					h.Set("Cookie", sessionCookie+"="+sessionFor(users[caller])+"; "+csrfCookie+"="+token)
				}
				var body *strings.Reader
				if r.method != http.MethodGet {
					body = strings.NewReader("{}")
				} else {
					body = strings.NewReader("")
				}
				res := c.do(r.method, path, body, h)
				switch {
				case r.role == Public || (caller != "" && caller.AtLeast(r.role)):
					require.NotContains(t, []int{401, 403}, res.StatusCode, "%s", res.body)
					require.Less(t, res.StatusCode, 500, "%s", res.body)
				case caller == "":
					if r.method == http.MethodGet && !strings.HasPrefix(r.path, "/api/") {
						require.Equal(t, http.StatusSeeOther, res.StatusCode)
						require.True(t, strings.HasPrefix(res.Header.Get("Location"), "/login?next="))
					} else {
						require.Equal(t, http.StatusUnauthorized, res.StatusCode, "%s", res.body)
					}
				default:
					require.Equal(t, http.StatusForbidden, res.StatusCode, "%s", res.body)
				}
			})
		}
	}
}

func TestContributorCannotManageRoles(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	admin := tb.client(t)
	admin.signup("ada@example.com", "Ada")
	c := tb.client(t)
	bob := c.signup("bob@example.com", "Bob")

	res := c.json(http.MethodPut, "/api/v1/users/"+bob["id"].(string)+"/role", map[string]string{"role": "admin"})
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	code, _ := res.apiError(t)
	require.Equal(t, "forbidden", code)
	require.Equal(t, http.StatusForbidden, c.get("/api/v1/users").StatusCode)

	// The admin can, and the change takes effect on Bob's next request.
	res = admin.json(http.MethodPut, "/api/v1/users/"+bob["id"].(string)+"/role", map[string]string{"role": "reviewer"})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	require.Equal(t, "reviewer", res.json(t)["user"].(map[string]any)["role"])
	require.Equal(t, "reviewer", c.get("/api/v1/me").json(t)["user"].(map[string]any)["role"])

	// Bad input names the field and changes nothing.
	res = admin.json(http.MethodPut, "/api/v1/users/"+bob["id"].(string)+"/role", map[string]string{"role": "emperor"})
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
	_, field := res.apiError(t)
	require.Equal(t, "role", field)
	require.Equal(t, http.StatusNotFound, admin.json(http.MethodPut, "/api/v1/users/"+uuid.NewString()+"/role", map[string]string{"role": "admin"}).StatusCode)

	// The only admin cannot demote themselves.
	me := admin.get("/api/v1/me").json(t)["user"].(map[string]any)
	res = admin.json(http.MethodPut, "/api/v1/users/"+me["id"].(string)+"/role", map[string]string{"role": "contributor"})
	require.Equal(t, http.StatusConflict, res.StatusCode)
}

func TestUserListPaging(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	admin := tb.client(t)
	admin.signup("ada@example.com", "Ada")
	for i := range 4 {
		tb.userWithRole(t, "u"+string(rune('a'+i))+"@example.com", auth.RoleContributor)
	}
	var seen []string
	next := ""
	for pages := 0; pages < 10; pages++ {
		path := "/api/v1/users?limit=2"
		if next != "" {
			path += "&cursor=" + next
		}
		res := admin.get(path)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
		m := res.json(t)
		for _, it := range m["items"].([]any) {
			seen = append(seen, it.(map[string]any)["email"].(string))
		}
		if m["next_cursor"] == nil {
			break
		}
		next = m["next_cursor"].(string)
	}
	require.Len(t, seen, 5)
	require.Equal(t, "ada@example.com", seen[0])

	require.Equal(t, http.StatusBadRequest, admin.get("/api/v1/users?limit=501").StatusCode)
	require.Equal(t, http.StatusBadRequest, admin.get("/api/v1/users?cursor=garbage").StatusCode)
}
