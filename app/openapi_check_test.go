package app

import (
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/openapi"
)

// TestOpenAPIRoutes: every /api/v1 route the app serves is in the
// description, and every operation of the description is a route of the
// app, by method and path (parameter names aside). The description is
// served, to anyone, as JSON; /api/docs is the page that renders it (in
// Chromium: TestCSPInBrowser).
func TestOpenAPIRoutes(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	anonymous := tb.client(t)
	res := anonymous.get("/api/v1/openapi.json")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, "application/json", res.Header.Get("Content-Type"))
	want, err := openapi.JSON()
	require.NoError(t, err)
	require.JSONEq(t, string(want), string(res.body))
	res = anonymous.get("/api/docs")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Contains(t, res.Header.Get("Content-Security-Policy"), "img-src 'self' data:")
	page := res.doc(t)
	require.Equal(t, "/api/v1/openapi.json", page.Find("body").AttrOr("data-spec", ""))
	require.Equal(t, 2, page.Find(`script[src^="/static/"]`).Length())

	served := map[string]bool{}
	for _, r := range tb.server.App().GetRoutes(true) {
		if !strings.HasPrefix(r.Path, "/api/v1/") || r.Method == http.MethodHead {
			continue
		}
		served[r.Method+" "+openapi.Template(r.Path)] = true
	}
	require.NotEmpty(t, served)

	doc, err := openapi3.NewLoader().LoadFromData(want)
	require.NoError(t, err)
	described := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			described[method+" "+openapi.Template(path)] = true
		}
	}
	for r := range served {
		require.True(t, described[r], "%s is served but not in the description: add it to openapi/", r)
	}
	for r := range described {
		require.True(t, served[r], "%s is in the description but no route serves it", r)
	}
}
