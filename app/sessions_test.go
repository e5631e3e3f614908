package app

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/config"
)

// bearer is a client that authenticates with an API token only.
func (tb *testBundle) bearer(t testing.TB, token string) *client {
	c := tb.client(t)
	c.header.Set("Authorization", "Bearer "+token)
	return c
}

func (c *client) newToken(body any) string {
	c.t.Helper()
	res := c.json(http.MethodPost, "/api/v1/tokens", body)
	require.Equal(c.t, http.StatusCreated, res.StatusCode, "%s", res.body)
	return res.json(c.t)["token"].(string)
}

func TestTokenCannotMintTokens(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	c, _ := tb.userWithRole(t, "ada@example.com", auth.RoleAdmin)
	script := tb.bearer(t, c.newToken(map[string]string{"name": "script"}))

	res := script.json(http.MethodPost, "/api/v1/tokens", map[string]string{"name": "successor"})
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	code, _ := res.apiError(t)
	require.Equal(t, "session_required", code)
	require.Contains(t, string(res.body), "cannot create tokens")
	res = script.form("/account/tokens", url.Values{"name": {"successor"}, csrfField: {"x"}})
	require.Equal(t, http.StatusForbidden, res.StatusCode, "nor through the page's form")
	require.Equal(t, 1, tb.count(t, "SELECT count(*) FROM api_tokens"))
	// What a token may do, it still does.
	require.Equal(t, http.StatusOK, script.get("/api/v1/tokens").StatusCode)
}

func TestTokenExpiry(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	c, _ := tb.userWithRole(t, "ada@example.com", auth.RoleContributor)

	at := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	res := c.json(http.MethodPost, "/api/v1/tokens", map[string]any{"name": "until", "expires_at": at.Format(time.RFC3339)})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	require.Equal(t, at.Format(time.RFC3339), res.json(t)["api_token"].(map[string]any)["expires_at"])
	script := tb.bearer(t, res.json(t)["token"].(string))
	require.Equal(t, http.StatusOK, script.get("/api/v1/me").StatusCode)

	_, err := tb.pool.Exec(context.Background(), "UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE name = 'until'")
	require.NoError(t, err)
	res = script.get("/api/v1/me")
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	require.Contains(t, string(res.body), "expired")

	for _, body := range []string{
		`{"name": "x", "expires_at": "2001-01-01T00:00:00Z"}`,
		`{"name": "x", "expires_at": "2999-01-01T00:00:00Z"}`,
		`{"name": "x", "expires_at": "` + at.Format(time.RFC3339) + `", "expires_in_days": 3}`,
	} {
		res := c.json(http.MethodPost, "/api/v1/tokens", body)
		require.Equal(t, http.StatusBadRequest, res.StatusCode, body)
		_, field := res.apiError(t)
		require.Equal(t, "expires_at", field, body)
	}
	require.Equal(t, 1, tb.count(t, "SELECT count(*) FROM api_tokens"))
}

func TestPasswordChange(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	c, _ := tb.userWithRole(t, "ada@example.com", auth.RoleContributor)
	other := tb.client(t)
	require.Equal(t, http.StatusOK, other.login("ada@example.com", testPassword).StatusCode)
	script := tb.bearer(t, c.newToken(map[string]string{"name": "script"}))
	before := sessionCookieOf(t, c)

	change := func(cur, next string) *response {
		return c.json(http.MethodPost, "/api/v1/me/password", map[string]string{"current_password": cur, "new_password": next})
	}
	res := change("wrong password!", "a new long password")
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	code, field := res.apiError(t)
	require.Equal(t, "wrong_password", code)
	require.Equal(t, "current_password", field)
	res = change(testPassword, "short")
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
	_, field = res.apiError(t)
	require.Equal(t, "new_password", field)
	require.Equal(t, http.StatusOK, other.get("/api/v1/me").StatusCode, "refusals change nothing")

	require.Equal(t, http.StatusNoContent, change(testPassword, "a new long password").StatusCode)
	require.Equal(t, http.StatusOK, c.get("/api/v1/me").StatusCode, "this session stays signed in")
	require.NotEqual(t, before, sessionCookieOf(t, c), "with a fresh session id")
	require.Equal(t, http.StatusUnauthorized, other.get("/api/v1/me").StatusCode, "other sessions end")
	require.Equal(t, http.StatusOK, script.get("/api/v1/me").StatusCode, "tokens are not sessions")
	require.Equal(t, http.StatusUnauthorized, tb.client(t).login("ada@example.com", testPassword).StatusCode)
	require.Equal(t, http.StatusOK, tb.client(t).login("ada@example.com", "a new long password").StatusCode)

	// The form on the account page.
	res = c.form("/account/password", url.Values{"current_password": {"wrong one!"}, "new_password": {"yet another password"}})
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	require.Equal(t, 1, res.doc(t).Find("#current_password-error").Length())
	res = c.form("/account/password", url.Values{"current_password": {"a new long password"}, "new_password": {"yet another password"}})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	require.Equal(t, 1, res.doc(t).Find("#password-changed").Length())
	require.Equal(t, http.StatusOK, tb.client(t).login("ada@example.com", "yet another password").StatusCode)
}

func TestSignOutEverywhere(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	a, _ := tb.userWithRole(t, "ada@example.com", auth.RoleContributor)
	b := tb.client(t)
	require.Equal(t, http.StatusOK, b.login("ada@example.com", testPassword).StatusCode)
	s1 := tb.bearer(t, a.newToken(map[string]string{"name": "one"}))
	s2 := tb.bearer(t, a.newToken(map[string]string{"name": "two"}))
	bob, _ := tb.userWithRole(t, "bob@example.com", auth.RoleContributor)
	bobScript := tb.bearer(t, bob.newToken(map[string]string{"name": "bob"}))

	res := a.json(http.MethodPost, "/api/v1/me/logout-all", "{}")
	require.Equal(t, http.StatusNoContent, res.StatusCode, "%s", res.body)
	for name, c := range map[string]*client{"this session": a, "other session": b, "token one": s1, "token two": s2} {
		require.Equal(t, http.StatusUnauthorized, c.get("/api/v1/me").StatusCode, name)
	}
	require.Equal(t, 0, tb.count(t, "SELECT count(*) FROM api_tokens JOIN users ON users.id = user_id WHERE email = 'ada@example.com' AND revoked_at IS NULL"))
	require.Equal(t, http.StatusOK, bob.get("/api/v1/me").StatusCode, "nobody else is signed out")
	require.Equal(t, http.StatusOK, bobScript.get("/api/v1/me").StatusCode)

	// The button on the account page.
	require.Equal(t, 1, bob.get("/account").doc(t).Find(`form[action="/account/logout-all"] button`).Length())
	res = bob.form("/account/logout-all", url.Values{})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "/login", res.Header.Get("Location"))
	require.Equal(t, http.StatusUnauthorized, bob.get("/api/v1/me").StatusCode)
	require.Equal(t, http.StatusUnauthorized, bobScript.get("/api/v1/me").StatusCode)
}

func TestSecureCookiesForHTTPS(t *testing.T) {
	t.Parallel()
	tb := setup(t, func(cfg *config.Config) { cfg.BaseURL = "https://hub.example.org" })
	tb.userWithRole(t, "ada@example.com", auth.RoleContributor)
	c := tb.client(t)
	res := c.login("ada@example.com", testPassword)
	require.Equal(t, http.StatusOK, res.StatusCode)
	session := findCookie(t, res.Response, "__Host-imagehub_session")
	require.True(t, session.Secure)
	require.True(t, session.HttpOnly)
	require.Equal(t, "/", session.Path)
	require.Empty(t, session.Domain, "__Host- cookies carry no Domain")
	page := tb.client(t).get("/login")
	require.Equal(t, http.StatusOK, page.StatusCode)
	csrf := findCookie(t, page.Response, "__Host-imagehub_csrf")
	require.True(t, csrf.Secure)
	require.Equal(t, "/", csrf.Path)

	// The server reads the prefixed names, and only those.
	me := tb.client(t)
	me.header.Set("Cookie", "__Host-imagehub_session="+session.Value)
	require.Equal(t, http.StatusOK, me.get("/api/v1/me").StatusCode)
	me.header.Set("Cookie", "imagehub_session="+session.Value)
	require.Equal(t, http.StatusUnauthorized, me.get("/api/v1/me").StatusCode)
	// The CSRF check compares with the prefixed cookie too.
	form := func(cookie string) int {
		f := tb.client(t)
		f.header.Set("Cookie", cookie)
		return f.do(http.MethodPost, "/account/tokens", strings.NewReader(url.Values{"name": {"t"}, csrfField: {csrf.Value}}.Encode()),
			http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}).StatusCode
	}
	require.Equal(t, http.StatusForbidden, form("__Host-imagehub_session="+session.Value+"; imagehub_csrf="+csrf.Value))
	require.Equal(t, http.StatusOK, form("__Host-imagehub_session="+session.Value+"; __Host-imagehub_csrf="+csrf.Value))

	// Plain http: plain names, not Secure.
	tb2 := setup(t)
	tb2.userWithRole(t, "ada@example.com", auth.RoleContributor)
	res = tb2.client(t).login("ada@example.com", testPassword)
	plain := findCookie(t, res.Response, "imagehub_session")
	require.False(t, plain.Secure)
}

func findCookie(t *testing.T, res *http.Response, name string) *http.Cookie {
	t.Helper()
	var names []string
	for _, ck := range res.Cookies() {
		if ck.Name == name {
			return ck
		}
		names = append(names, ck.Name)
	}
	t.Fatalf("no cookie %s among %s", name, strings.Join(names, ", "))
	return nil
}

func TestSessionAbsoluteLifetime(t *testing.T) {
	t.Parallel()
	tb := setup(t, func(cfg *config.Config) { cfg.SessionMaxAge = 48 * time.Hour })
	c, _ := tb.userWithRole(t, "ada@example.com", auth.RoleContributor)
	var left float64
	require.NoError(t, tb.pool.QueryRow(context.Background(), "SELECT extract(epoch FROM expires_at - now()) FROM sessions").Scan(&left))
	require.InDelta(t, (48 * time.Hour).Seconds(), left, 60, "a new session never outlives SESSION_MAX_AGE")

	// Busy for nearly two days: renewals stop at the absolute lifetime.
	_, err := tb.pool.Exec(context.Background(),
		"UPDATE sessions SET created_at = now() - interval '47 hours', last_seen_at = now() - interval '1 hour'")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, c.get("/api/v1/me").StatusCode)
	require.NoError(t, tb.pool.QueryRow(context.Background(), "SELECT extract(epoch FROM expires_at - now()) FROM sessions").Scan(&left))
	require.InDelta(t, time.Hour.Seconds(), left, 60, "the sliding renewal is capped")

	// Past it the session is over, whatever its sliding expiry says.
	_, err = tb.pool.Exec(context.Background(),
		"UPDATE sessions SET created_at = now() - interval '49 hours', expires_at = now() + interval '1 day'")
	require.NoError(t, err)
	require.Equal(t, http.StatusUnauthorized, c.get("/api/v1/me").StatusCode)
}
