package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/openapi"
)

// apiDescription is the OpenAPI description loaded and routed once per
// test binary: every API call of the tests is checked against it.
var apiDescription = sync.OnceValues(func() (routers.Router, error) {
	b, err := openapi.JSON()
	if err != nil {
		return nil, err
	}
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		return nil, fmt.Errorf("error loading the description: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("the description is invalid: %w", err)
	}
	// The bodies the API sends or takes that are not JSON: their bytes are
	// not checked, their content type is.
	for _, ct := range []string{"application/zip", "image/jpeg", "image/png", "image/webp", "image/gif", "image/tiff", "image/bmp"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.FileBodyDecoder)
	}
	return gorillamux.NewRouter(doc)
})

// checkAgainstDescription validates one API call of a test against the
// description: a request the description allows must get an answer it
// describes, and one it refuses must have been refused (4xx) by the hub
// too. Paths outside /api/v1 and benchmarks' calls are not checked.
//
// sent is the request body as sent, nil when it was not kept (a compressed
// one): then only the answer is checked.
func checkAgainstDescription(t testing.TB, req *http.Request, sent *bytes.Buffer, res *http.Response, resBody []byte) {
	t.Helper()
	if !strings.HasPrefix(req.URL.Path, "/api/v1/") || req.Method == http.MethodHead {
		return
	}
	if _, bench := t.(*testing.B); bench {
		return
	}
	router, err := apiDescription()
	if err != nil {
		t.Fatalf("openapi: %v", err)
	}
	call := fmt.Sprintf("%s %s → %d", req.Method, req.URL.RequestURI(), res.StatusCode)
	vreq := req.Clone(context.Background())
	if sent != nil {
		vreq.Body = io.NopCloser(bytes.NewReader(sent.Bytes()))
	}
	route, params, err := router.FindRoute(vreq)
	if err != nil {
		if res.StatusCode != http.StatusNotFound && res.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("openapi: %s: the description has no such route (%v)", call, err)
		}
		return
	}
	in := &openapi3filter.RequestValidationInput{
		Request: vreq, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true},
	}
	unread := sent == nil && req.Body != nil && req.Body != http.NoBody
	if err := openapi3filter.ValidateRequest(context.Background(), in); !unread && err != nil && (res.StatusCode < 400 || res.StatusCode >= 500) {
		t.Errorf("openapi: %s: the hub took a request the description refuses: %v", call, err)
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: res.StatusCode, Header: res.Header,
		Body: io.NopCloser(bytes.NewReader(resBody)), Options: in.Options,
	}
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		t.Errorf("openapi: %s: the answer does not match the description: %v\nbody: %.300s", call, err, resBody)
	}
}

// TestOpenAPIRoutes: every /api/v1 route the app serves is in the
// description, and every operation of the description is a route of the
// app, by method and path (parameter names aside).
func TestOpenAPIRoutes(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	served := map[string]bool{}
	for _, r := range tb.server.App().GetRoutes(true) {
		if !strings.HasPrefix(r.Path, "/api/v1/") || r.Method == http.MethodHead {
			continue
		}
		served[r.Method+" "+openapi.Template(r.Path)] = true
	}
	require.NotEmpty(t, served)

	b, err := openapi.JSON()
	require.NoError(t, err)
	doc, err := openapi3.NewLoader().LoadFromData(b)
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
