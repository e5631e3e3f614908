package app

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/config"
	"github.com/deepimageshub/imagehub/static"
)

// cspDirectives splits a Content-Security-Policy into its directives.
func cspDirectives(t testing.TB, csp string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, d := range strings.Split(csp, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		require.NotContains(t, out, name, "directive %s twice", name)
		out[name] = value
	}
	return out
}

// TestHeaders: every answer (pages, errors, the API, static files, a
// refusal) carries nosniff, a Referrer-Policy, no framing and the strict
// page CSP; HSTS only when BASE_URL is https.
func TestHeaders(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	c := tb.client(t)
	answers := map[string]*response{
		"home page":      c.get("/"),
		"sign-in page":   c.get("/login"),
		"404 page":       c.get("/no-such-page"),
		"API 401":        c.get("/api/v1/me"),
		"health":         c.get("/healthz"),
		"static file":    c.get(static.Path("app.css")),
		"login redirect": c.get("/account"),
		"415 refusal": c.do(http.MethodPost, "/api/v1/auth/login", strings.NewReader("x"),
			http.Header{"Content-Type": {"application/json"}, "Content-Encoding": {"gzip"}}),
	}
	for name, res := range answers {
		require.Less(t, res.StatusCode, 500, name)
		require.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"), name)
		require.Equal(t, "same-origin", res.Header.Get("Referrer-Policy"), name)
		require.Equal(t, "DENY", res.Header.Get("X-Frame-Options"), name)
		require.Empty(t, res.Header.Get("Strict-Transport-Security"), "%s: no HSTS over http", name)
		d := cspDirectives(t, res.Header.Get("Content-Security-Policy"))
		require.Equal(t, "'none'", d["frame-ancestors"], name)
		require.Equal(t, "'self'", d["default-src"], name)
		require.Equal(t, "'self'", d["script-src"], "%s: scripts only from files of this site", name)
		require.Equal(t, "'self'", d["style-src"], name)
		require.Equal(t, "'none'", d["object-src"], name)
	}

	https := setup(t, func(cfg *config.Config) { cfg.BaseURL = "https://hub.example" })
	res := https.client(t).get("/healthz")
	require.Equal(t, "max-age=31536000", res.Header.Get("Strict-Transport-Security"))
	require.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
}

// TestHeadersPagesHaveNoInlineCode: the pages hold no inline script, no
// event-handler attribute and no style attribute, which their CSP would
// block; htmx is told not to add its inline style.
func TestHeadersPagesHaveNoInlineCode(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	admin, _ := tb.userWithRole(t, "ada@example.com", auth.RoleAdmin)
	anonymous := tb.client(t)
	pages := map[string]*response{"/login": anonymous.get("/login"), "/signup": anonymous.get("/signup")}
	for _, p := range []string{"/", "/upload", "/uploads", "/campaigns", "/account", "/review", "/review/stats",
		"/datasets", "/admin/users", "/admin/labels", "/admin/models", "/admin/datasets", "/no-such-page"} {
		pages[p] = admin.get(p)
	}
	for path, res := range pages {
		require.Contains(t, res.Header.Get("Content-Type"), "text/html", path)
		doc := res.doc(t)
		require.Zero(t, doc.Find("script:not([src]):not([type=importmap])").Length(), "%s: inline script", path)
		doc.Find("script[type=importmap]").Each(func(_ int, s *goquery.Selection) {
			require.Equal(t, static.ImportMap(), s.Text(), "%s: the import map is the one the CSP allows by its hash", path)
			require.Equal(t, "'self' "+static.ImportMapSource(), cspDirectives(t, res.Header.Get("Content-Security-Policy"))["script-src"],
				"%s: the one inline script allowed is the import map", path)
		})
		require.Zero(t, doc.Find("[style]").Length(), "%s: style attribute", path)
		require.Zero(t, doc.Find("style").Length(), "%s: style element", path)
		doc.Find("*").Each(func(_ int, s *goquery.Selection) {
			for _, a := range s.Nodes[0].Attr {
				require.False(t, strings.HasPrefix(strings.ToLower(a.Key), "on"), "%s: %s attribute on <%s>", path, a.Key, goquery.NodeName(s))
				require.False(t, strings.HasPrefix(strings.ToLower(a.Key), "hx-on"), "%s: %s needs eval", path, a.Key)
			}
		})
		cfg, _ := doc.Find(`meta[name="htmx-config"]`).Attr("content")
		require.JSONEq(t, `{"includeIndicatorStyles": false}`, cfg, path)
	}
}

// TestHeadersJobConsole: riverui's pages get a CSP of their own, as strict
// as riverui runs under (inline styles, scripts from this site only), and
// the script that keeps its bundle from probing eval.
func TestHeadersJobConsole(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	admin, _ := tb.userWithRole(t, "ada@example.com", auth.RoleAdmin)
	res := admin.do(http.MethodGet, "/admin/jobs/", nil, http.Header{"Accept": {"text/html"}})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	d := cspDirectives(t, res.Header.Get("Content-Security-Policy"))
	require.Equal(t, "'self'", d["script-src"])
	require.Equal(t, "'self' 'unsafe-inline'", d["style-src"])
	require.Equal(t, "'none'", d["frame-ancestors"])
	require.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
	require.True(t, bytes.HasPrefix(bytes.TrimSpace(res.body[bytes.Index(res.body, []byte("<head>")):]),
		[]byte(`<head><script src="`+static.Path("jobs-console.js")+`"></script>`)), "%s", res.body)
	js := admin.get(static.Path("jobs-console.js"))
	require.Equal(t, http.StatusOK, js.StatusCode)
	require.Contains(t, string(js.body), "jitless")
}

func TestHeadersImageOrigin(t *testing.T) {
	t.Parallel()
	p := newSecurityPolicy("https://hub.example", "https://s3.example.com")
	require.Equal(t, "'self' https://s3.example.com", cspDirectives(t, p.pageCSP)["img-src"])
	require.Equal(t, "'self' https://s3.example.com", cspDirectives(t, p.consoleCSP)["img-src"])
	require.NotEmpty(t, p.hsts)
	p = newSecurityPolicy("http://localhost:8080", "")
	require.Equal(t, "'self'", cspDirectives(t, p.pageCSP)["img-src"])
	require.Empty(t, p.hsts)
}
