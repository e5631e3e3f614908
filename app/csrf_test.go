package app

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCSRF(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	c := tb.client(t)
	c.signup("ada@example.com", "Ada")

	countTokens := func() int {
		var n int
		require.NoError(t, tb.pool.QueryRow(t.Context(), "SELECT count(*) FROM api_tokens").Scan(&n))
		return n
	}

	t.Run("page form without token is refused", func(t *testing.T) {
		res := c.do(http.MethodPost, "/account/tokens", strings.NewReader("name=x"),
			http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
		require.Equal(t, http.StatusForbidden, res.StatusCode)
		require.Contains(t, string(res.body), "expired")
		require.Equal(t, 0, countTokens())
	})
	t.Run("page form with a wrong token is refused", func(t *testing.T) {
		res := c.form("/account/tokens", url.Values{"name": {"x"}, csrfField: {strings.Repeat("A", 43)}})
		require.Equal(t, http.StatusForbidden, res.StatusCode)
		require.Equal(t, 0, countTokens())
	})
	t.Run("page form with the token works", func(t *testing.T) {
		res := c.form("/account/tokens", url.Values{"name": {"laptop"}})
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
		require.Equal(t, 1, countTokens())
	})
	t.Run("htmx header token works", func(t *testing.T) {
		res := c.do(http.MethodPost, "/account/tokens", strings.NewReader("name=htmx"),
			http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, csrfHeader: {c.csrf()}})
		require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
		require.Equal(t, 2, countTokens())
	})
	t.Run("cross-origin API call with the session cookie is refused", func(t *testing.T) {
		res := c.do(http.MethodPost, "/api/v1/tokens", strings.NewReader(`{"name":"evil"}`),
			http.Header{"Content-Type": {"application/json"}, "Origin": {"https://evil.example"}})
		require.Equal(t, http.StatusForbidden, res.StatusCode)
		res = c.do(http.MethodPost, "/api/v1/tokens", strings.NewReader(`{"name":"evil"}`),
			http.Header{"Content-Type": {"application/json"}, "Sec-Fetch-Site": {"cross-site"}})
		require.Equal(t, http.StatusForbidden, res.StatusCode)
		require.Equal(t, 2, countTokens())
	})
	t.Run("same-origin browser API call works", func(t *testing.T) {
		res := c.do(http.MethodPost, "/api/v1/tokens", strings.NewReader(`{"name":"same"}`),
			http.Header{"Content-Type": {"application/json"}, "Origin": {tb.base}, "Sec-Fetch-Site": {"same-origin"}, csrfHeader: {c.csrf()}})
		require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	})
	t.Run("bearer token requests need no CSRF token", func(t *testing.T) {
		token := c.json(http.MethodPost, "/api/v1/tokens", map[string]string{"name": "script"}).json(t)["token"].(string)
		script := tb.client(t)
		script.header.Set("Authorization", "Bearer "+token)
		other := c.json(http.MethodPost, "/api/v1/tokens", map[string]string{"name": "other"}).json(t)["api_token"].(map[string]any)["id"].(string)
		res := script.do(http.MethodDelete, "/api/v1/tokens/"+other, nil, nil)
		require.Equal(t, http.StatusNoContent, res.StatusCode, "%s", res.body)
	})
}
