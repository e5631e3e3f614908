package app

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSignupLoginLogout(t *testing.T) {
	t.Parallel()
	tb := setup(t)

	res := tb.client(t).json(http.MethodPost, "/api/v1/auth/signup", map[string]string{"email": "ada@example.com", "password": testPassword, "name": "Ada"})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	first := res.json(t)["user"].(map[string]any)
	require.Equal(t, "contributor", first["role"], "the first visitor of a fresh site is not its admin")
	require.NotEmpty(t, first["id"])
	require.NotEmpty(t, first["created_at"])

	c := tb.client(t)
	res = c.json(http.MethodPost, "/api/v1/auth/signup", map[string]string{"email": "bob@example.com", "password": testPassword, "name": "Bob"})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	require.Equal(t, "contributor", res.json(t)["user"].(map[string]any)["role"])

	// Signed in by the sign-up.
	res = c.get("/api/v1/me")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "bob@example.com", res.json(t)["user"].(map[string]any)["email"])

	// Sign out ends the session on the server, not just in this browser.
	cookie := sessionCookieOf(t, c)
	res = c.json(http.MethodPost, "/api/v1/auth/logout", "{}")
	require.Equal(t, http.StatusNoContent, res.StatusCode)
	require.Equal(t, http.StatusUnauthorized, c.get("/api/v1/me").StatusCode)
	replay := tb.client(t)
	replay.header.Set("Cookie", sessionCookie+"="+cookie)
	require.Equal(t, http.StatusUnauthorized, replay.get("/api/v1/me").StatusCode, "a signed-out session must not come back")

	// Sign in again: a new session id.
	res = c.json(http.MethodPost, "/api/v1/auth/login", map[string]string{"email": "BOB@example.com", "password": testPassword})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	require.NotEqual(t, cookie, sessionCookieOf(t, c))
	require.Equal(t, http.StatusOK, c.get("/api/v1/me").StatusCode)

	// Wrong password.
	res = tb.client(t).json(http.MethodPost, "/api/v1/auth/login", map[string]string{"email": "bob@example.com", "password": "wrong password!"})
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	code, _ := res.apiError(t)
	require.Equal(t, "invalid_credentials", code)
}

func sessionCookieOf(t *testing.T, c *client) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.base, nil)
	for _, ck := range c.http.Jar.Cookies(req.URL) {
		if ck.Name == sessionCookie {
			return ck.Value
		}
	}
	t.Fatal("no session cookie")
	return ""
}

func TestSignupBadInput(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	tb.client(t).signup("taken@example.com", "Taken")

	long := strings.Repeat("x", 101)
	cases := []struct {
		name   string
		body   string
		status int
		code   string
		field  string
	}{
		{"malformed json", `{"email": "a@example.com",`, 400, "invalid_json", ""},
		{"not an object", `[1,2]`, 400, "invalid_json", ""},
		{"wrong type", `{"email": 5, "password": "long enough pw", "name": "A"}`, 400, "invalid_json", "email"},
		{"empty body", ``, 400, "invalid_json", ""},
		{"missing name", `{"email": "a@example.com", "password": "long enough pw"}`, 400, "missing_field", "name"},
		{"missing email", `{"name": "A", "password": "long enough pw"}`, 400, "missing_field", "email"},
		{"missing password", `{"name": "A", "email": "a@example.com"}`, 400, "missing_field", "password"},
		{"bad email", `{"name": "A", "email": "not-an-email", "password": "long enough pw"}`, 400, "invalid_email", "email"},
		{"long name", `{"name": "` + long + `", "email": "a@example.com", "password": "long enough pw"}`, 400, "too_long", "name"},
		{"long email", `{"name": "A", "email": "` + strings.Repeat("a", 250) + `@example.com", "password": "long enough pw"}`, 400, "too_long", "email"},
		{"weak password", `{"name": "A", "email": "a@example.com", "password": "short"}`, 400, "weak_password", "password"},
		{"long password", `{"name": "A", "email": "a@example.com", "password": "` + strings.Repeat("p", 73) + `"}`, 400, "too_long", "password"},
		{"duplicate email", `{"name": "A", "email": "TAKEN@example.com", "password": "long enough pw"}`, 409, "email_taken", "email"},
		{"setup code once there is an admin", `{"name": "A", "email": "a@example.com", "password": "long enough pw", "setup_code": "AAAA-BBBB"}`, 403, "invalid_setup_code", "setup_code"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := tb.countUsers(t)
			res := tb.client(t).json(http.MethodPost, "/api/v1/auth/signup", tc.body)
			require.Equal(t, tc.status, res.StatusCode, "%s", res.body)
			code, field := res.apiError(t)
			require.Equal(t, tc.code, code)
			require.Equal(t, tc.field, field)
			require.Equal(t, before, tb.countUsers(t), "a refused sign-up must write nothing")
		})
	}

	t.Run("wrong content type", func(t *testing.T) {
		res := tb.client(t).do(http.MethodPost, "/api/v1/auth/signup", strings.NewReader("email=a"), http.Header{"Content-Type": {"text/plain"}})
		require.Equal(t, http.StatusUnsupportedMediaType, res.StatusCode)
	})
}

func TestConcurrentSetupCodeSignupsMakeOneAdmin(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	code := tb.setupCode(t)
	const n = 6
	statuses := make(chan string, n)
	for i := range n {
		go func() {
			res := tb.client(t).json(http.MethodPost, "/api/v1/auth/signup", map[string]string{
				"email": "u" + string(rune('a'+i)) + "@example.com", "password": testPassword, "name": "U", "setup_code": code,
			})
			if res.StatusCode == http.StatusCreated {
				statuses <- res.json(t)["user"].(map[string]any)["role"].(string)
				return
			}
			statuses <- res.Status
		}()
	}
	var got []string
	for range n {
		got = append(got, <-statuses)
	}
	require.ElementsMatch(t, []string{"admin", "403 Forbidden", "403 Forbidden", "403 Forbidden", "403 Forbidden", "403 Forbidden"}, got,
		"one code makes exactly one admin")
	require.Equal(t, 1, tb.countUsers(t), "refused sign-ups make no account")
}

func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	c := tb.client(t)
	c.signup("ada@example.com", "Ada")
	require.Equal(t, http.StatusOK, c.get("/api/v1/me").StatusCode)

	_, err := tb.pool.Exec(context.Background(), "UPDATE sessions SET expires_at = now() - interval '1 second'")
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, c.get("/api/v1/me").StatusCode)
	res := c.get("/account")
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "an expired session is sent to sign in")
	require.Equal(t, "/login?next=%2Faccount", res.Header.Get("Location"))
}

func TestSessionSlidesForward(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	c := tb.client(t)
	c.signup("ada@example.com", "Ada")
	// Pretend the session was last renewed an hour ago.
	_, err := tb.pool.Exec(context.Background(),
		"UPDATE sessions SET expires_at = expires_at - interval '1 hour', last_seen_at = now() - interval '1 hour'")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, c.get("/api/v1/me").StatusCode)
	var left float64
	require.NoError(t, tb.pool.QueryRow(context.Background(),
		"SELECT extract(epoch FROM expires_at - now()) FROM sessions").Scan(&left))
	require.Greater(t, left, (testConfig(t).SessionTTL - 5*60e9).Seconds(), "use renews the session")
}
