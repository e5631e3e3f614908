package app

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
)

func TestPagesSignupLoginFlow(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	c := tb.client(t)

	home := c.get("/").doc(t)
	require.Equal(t, 5, home.Find("ol.steps li").Length(), "the home page explains the flow")
	require.Equal(t, 1, home.Find(`nav a[href="/signup"]`).Length())
	require.Equal(t, 1, home.Find(`script[src^="/static/"][src$="/htmx.min.js"]`).Length())

	form := c.get("/signup").doc(t)
	require.Equal(t, 1, form.Find(`form[action="/signup"] input[name="_csrf"]`).Length())
	require.Equal(t, 1, form.Find(`form[action="/signup"] input[name="setup_code"]`).Length(), "no admin yet: the form asks for the setup code")

	// A refusal keeps what was typed and names the field.
	res := c.form("/signup", url.Values{"name": {"Ada"}, "email": {"ada@example.com"}, "password": {"short"}})
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
	d := res.doc(t)
	require.Equal(t, 1, d.Find("#password-error").Length())
	v, _ := d.Find(`input[name="email"]`).Attr("value")
	require.Equal(t, "ada@example.com", v)

	// The operator's setup code makes the first admin.
	res = c.form("/signup", url.Values{"name": {"Ada"}, "email": {"ada@example.com"}, "password": {testPassword}, "setup_code": {tb.setupCode(t)}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	home = c.get("/").doc(t)
	require.Equal(t, 1, home.Find(`nav a[href="/admin/users"]`).Length(), "the setup code's account is admin and sees Users")

	require.Equal(t, http.StatusSeeOther, c.form("/logout", url.Values{}).StatusCode)
	require.Equal(t, 1, c.get("/").doc(t).Find(`nav a[href="/login"]`).Length())

	// Sign in with a wrong password, then the right one with a next page.
	res = c.form("/login", url.Values{"email": {"ada@example.com"}, "password": {"wrong password"}})
	require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	require.Contains(t, res.doc(t).Find(".flash.error").Text(), "Wrong email or password")
	res = c.form("/login", url.Values{"email": {"ada@example.com"}, "password": {testPassword}, "next": {"/account"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	require.Equal(t, "/account", res.Header.Get("Location"))
	res = c.form("/login", url.Values{"email": {"ada@example.com"}, "password": {testPassword}, "next": {"//evil.example/"}})
	require.Equal(t, "/", res.Header.Get("Location"), "never redirect off the site")
}

func TestNavigationByRole(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	admin, _ := tb.userWithRole(t, "ada@example.com", auth.RoleAdmin)
	contributor, u := tb.userWithRole(t, "bob@example.com", auth.RoleContributor)

	require.Equal(t, 0, contributor.get("/").doc(t).Find(`nav a[href="/admin/users"]`).Length())
	require.Equal(t, http.StatusForbidden, contributor.get("/admin/users").StatusCode)

	page := admin.get("/admin/users").doc(t)
	require.Equal(t, 2, page.Find("tbody tr").Length())
	row := page.Find("#user-" + u.ID.String())
	action, _ := row.Find("form").Attr("action")
	res := admin.form(action, url.Values{"role": {"premium"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "%s", res.body)
	sel := admin.get("/admin/users").doc(t).Find("#user-" + u.ID.String() + " option[selected]").Text()
	require.Equal(t, "premium", strings.TrimSpace(sel))
}

func TestOperationsEndpoints(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	c := tb.client(t)
	require.Equal(t, http.StatusOK, c.get("/healthz").StatusCode)
	res := c.get("/readyz")
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	require.Equal(t, true, res.json(t)["ready"])

	c.get("/login")
	res = c.get("/metrics")
	require.Equal(t, http.StatusOK, res.StatusCode)
	body := string(res.body)
	require.Contains(t, body, `imagehub_http_requests_total{method="GET",route="/login",status="200"} 1`)
	require.Contains(t, body, "imagehub_http_request_duration_seconds_bucket")
	require.Contains(t, body, "go_goroutines")

	// Static files carry their hash and are cached for good.
	d := c.get("/").doc(t)
	css, _ := d.Find(`link[rel="stylesheet"]`).Attr("href")
	res = c.get(css)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, res.Header.Get("Cache-Control"), "immutable")
	require.Contains(t, res.Header.Get("Content-Type"), "text/css")
	require.Equal(t, http.StatusNotFound, c.get("/static/0000000000/app.css").StatusCode)

	// Requests carry an id for the logs.
	require.NotEmpty(t, res.Header.Get("X-Request-Id"))

	// Unknown API paths answer in JSON, pages in HTML.
	res = c.get("/api/v1/nope")
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	code, _ := res.apiError(t)
	require.Equal(t, "not_found", code)
	res = c.get("/nope")
	require.Equal(t, http.StatusNotFound, res.StatusCode)
	require.Contains(t, res.Header.Get("Content-Type"), "text/html")
}
