package app

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func nowPlusHour() time.Time { return time.Now().Add(time.Hour) }

func TestAPITokens(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	c := tb.client(t)
	c.signup("ada@example.com", "Ada")

	res := c.json(http.MethodPost, "/api/v1/tokens", map[string]string{"name": "download script"})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	m := res.json(t)
	token := m["token"].(string)
	require.Regexp(t, `^ihub_[A-Za-z0-9_-]{43}$`, token, "256 random bits")
	tokenID := m["api_token"].(map[string]any)["id"].(string)

	// Only the hash is stored.
	var stored []byte
	require.NoError(t, tb.pool.QueryRow(context.Background(), "SELECT token_hash FROM api_tokens").Scan(&stored))
	require.Len(t, stored, 32)
	require.NotContains(t, string(stored), token[5:])

	script := tb.client(t)
	script.header.Set("Authorization", "Bearer "+token)
	res = script.get("/api/v1/me")
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	require.Equal(t, "ada@example.com", res.json(t)["user"].(map[string]any)["email"])

	// last_used_at is kept.
	list := c.get("/api/v1/tokens").json(t)["items"].([]any)
	require.Len(t, list, 1)
	require.NotNil(t, list[0].(map[string]any)["last_used_at"])

	// Bad tokens: 401 with a reason, even on public routes.
	for _, bad := range []string{"Bearer ihub_nope", "Bearer ", "Basic abc", token} {
		s := tb.client(t)
		s.header.Set("Authorization", bad)
		res := s.get("/api/v1/me")
		require.Equal(t, http.StatusUnauthorized, res.StatusCode, bad)
		code, _ := res.apiError(t)
		require.Equal(t, "unauthenticated", code)
	}

	// Revoke: the token stops working at once.
	res = c.do(http.MethodDelete, "/api/v1/tokens/"+tokenID, nil, http.Header{csrfHeader: {c.csrf()}})
	require.Equal(t, http.StatusNoContent, res.StatusCode, "%s", res.body)
	require.Equal(t, http.StatusUnauthorized, script.get("/api/v1/me").StatusCode)
	require.Equal(t, http.StatusNotFound, c.do(http.MethodDelete, "/api/v1/tokens/"+tokenID, nil, nil).StatusCode, "revoked twice")

	// Someone else's token cannot be revoked (404, not 403).
	other := tb.client(t)
	other.signup("bob@example.com", "Bob")
	otherToken := other.json(http.MethodPost, "/api/v1/tokens", map[string]string{"name": "bob's"}).json(t)["api_token"].(map[string]any)["id"].(string)
	require.Equal(t, http.StatusNotFound, c.do(http.MethodDelete, "/api/v1/tokens/"+otherToken, nil, nil).StatusCode)

	// Expired tokens are refused.
	days := 1
	res = c.json(http.MethodPost, "/api/v1/tokens", map[string]any{"name": "short", "expires_in_days": days})
	require.Equal(t, http.StatusCreated, res.StatusCode)
	short := res.json(t)["token"].(string)
	_, err := tb.pool.Exec(context.Background(), "UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE name = 'short'")
	require.NoError(t, err)
	s := tb.client(t)
	s.header.Set("Authorization", "Bearer "+short)
	require.Equal(t, http.StatusUnauthorized, s.get("/api/v1/me").StatusCode)

	// Bad input.
	for _, body := range []string{`{}`, `{"name": ""}`, `{"name": "x", "expires_in_days": 0}`} {
		res := c.json(http.MethodPost, "/api/v1/tokens", body)
		require.Equal(t, http.StatusBadRequest, res.StatusCode, body)
	}
}

func TestAccountPageShowsTokenOnce(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	c := tb.client(t)
	c.signup("ada@example.com", "Ada")

	res := c.form("/account/tokens", url.Values{"name": {"laptop"}, "expires_in_days": {"30"}})
	require.Equal(t, http.StatusOK, res.StatusCode)
	secret := res.doc(t).Find("#new-token").Text()
	require.Regexp(t, `^ihub_`, secret)
	require.Equal(t, "no-store", res.Header.Get("Cache-Control"))

	page := c.get("/account").doc(t)
	require.Equal(t, 0, page.Find("#new-token").Length(), "the secret is shown once")
	require.Equal(t, "laptop", page.Find("tbody tr td").First().Text())

	// The token works, and revoking it from the page ends it.
	s := tb.client(t)
	s.header.Set("Authorization", "Bearer "+secret)
	require.Equal(t, http.StatusOK, s.get("/api/v1/me").StatusCode)
	action, ok := page.Find("tbody form").Attr("action")
	require.True(t, ok)
	require.Equal(t, http.StatusSeeOther, c.form(action, url.Values{}).StatusCode)
	require.Equal(t, http.StatusUnauthorized, s.get("/api/v1/me").StatusCode)

	// A refused form shows the reason beside the field.
	res = c.form("/account/tokens", url.Values{"name": {""}})
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
	require.Equal(t, 1, res.doc(t).Find("#name-error").Length())
}
