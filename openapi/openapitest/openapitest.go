// Package openapitest checks a test's API calls against the hub's OpenAPI
// description (package openapi). Tests make their /api/v1 calls through
// Transport, which calls Check for each: the app's test client, the
// black-box tests of the program, and the program's own requests (through a
// proxy) when a test runs one of its clients such as `imagehub download`.
package openapitest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/deepimageshub/imagehub/openapi"
)

// description is the OpenAPI description loaded once per test binary:
// every API call of the tests is checked against it. kin-openapi routes the
// call and checks its parameters; JSON bodies are checked here with JSON
// Schema 2020-12 schemas compiled once each, since kin-openapi compiles an
// OpenAPI 3.1 schema anew for every value it validates (about 10 ms a call).
type description struct {
	router   routers.Router
	compiler *jsonschema.Compiler
	mu       sync.Mutex
	// schemas holds each compiled body schema by its JSON pointer.
	schemas map[string]*jsonschema.Schema
}

// descriptionURL names the description as a JSON Schema resource, so that
// its $refs (#/components/schemas/…) resolve inside it.
const descriptionURL = "mem://imagehub/openapi.json"

var apiDescription = sync.OnceValues(func() (*description, error) {
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
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	raw, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(descriptionURL, raw); err != nil {
		return nil, err
	}
	return &description{router: router, compiler: c, schemas: map[string]*jsonschema.Schema{}}, nil
})

// validateJSON checks a JSON body against the schema at the JSON pointer
// (its path segments, unescaped) of the description.
func (d *description) validateJSON(body []byte, pointer ...string) error {
	for i, p := range pointer {
		pointer[i] = strings.NewReplacer("~", "~0", "/", "~1").Replace(p)
	}
	ptr := "/" + strings.Join(pointer, "/")
	d.mu.Lock()
	sch, ok := d.schemas[ptr]
	if !ok {
		var err error
		sch, err = d.compiler.Compile(descriptionURL + "#" + ptr)
		if err != nil {
			d.mu.Unlock()
			return fmt.Errorf("error compiling the schema at %s: %w", ptr, err)
		}
		d.schemas[ptr] = sch
	}
	d.mu.Unlock()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("the body is not JSON: %w", err)
	}
	return sch.Validate(v)
}

// mediaKey is the key of content that describes the media type mt: itself,
// type/*, or */*; "" when none does.
func mediaKey(content openapi3.Content, mt string) string {
	if mt == "" {
		mt = "application/octet-stream"
	}
	for _, k := range []string{mt, mt[:strings.Index(mt+"/", "/")] + "/*", "*/*"} {
		if content[k] != nil {
			return k
		}
	}
	return ""
}

func mediaType(h http.Header) string {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return mt
}

// Check validates one API call of a test against the
// description: a request the description allows must get an answer it
// describes, and one it refuses must have been refused (4xx) by the hub
// too. Paths outside /api/v1 and benchmarks' calls are not checked.
//
// sent is the request body as sent, nil when it was not kept (a compressed
// one): then only the answer is checked.
func Check(t testing.TB, req *http.Request, sent *bytes.Buffer, res *http.Response, resBody []byte) {
	t.Helper()
	if !strings.HasPrefix(req.URL.Path, "/api/v1/") || req.Method == http.MethodHead {
		return
	}
	if _, bench := t.(*testing.B); bench {
		return
	}
	d, err := apiDescription()
	if err != nil {
		t.Fatalf("openapi: %v", err)
	}
	call := fmt.Sprintf("%s %s → %d", req.Method, req.URL.RequestURI(), res.StatusCode)
	vreq := req.Clone(context.Background())
	if sent != nil {
		vreq.Body = io.NopCloser(bytes.NewReader(sent.Bytes()))
	}
	route, params, err := d.router.FindRoute(vreq)
	if err != nil {
		if res.StatusCode != http.StatusNotFound && res.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("openapi: %s: the description has no such route (%v)", call, err)
		}
		return
	}
	op := []string{"paths", route.Path, strings.ToLower(req.Method)}

	// The request: kin-openapi checks the parameters (and a body that is
	// not JSON); a JSON body is checked here.
	refused := res.StatusCode >= 400 && res.StatusCode < 500
	jsonBody := mediaType(req.Header) == "application/json" && sent != nil && sent.Len() > 0
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, ExcludeRequestBody: jsonBody || sent == nil}
	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: opts}
	if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil && !refused {
		t.Errorf("openapi: %s: the hub took a request the description refuses: %v", call, err)
	}
	if jsonBody && !refused {
		rb := route.Operation.RequestBody
		switch {
		case rb == nil || rb.Value.Content.Get("application/json") == nil:
			t.Errorf("openapi: %s: the hub took a JSON body the description does not describe", call)
		default:
			at := append(op, "requestBody")
			if rb.Ref != "" {
				at = strings.Split(strings.TrimPrefix(rb.Ref, "#/"), "/")
			}
			if err := d.validateJSON(sent.Bytes(), append(at, "content", "application/json", "schema")...); err != nil {
				t.Errorf("openapi: %s: the hub took a body the description refuses: %v", call, err)
			}
		}
	}

	// The answer: its status, its content type and, for JSON, its body.
	status := strconv.Itoa(res.StatusCode)
	answer := route.Operation.Responses.Value(status)
	if answer == nil {
		status, answer = "default", route.Operation.Responses.Default()
	}
	if answer == nil {
		t.Errorf("openapi: %s: the description has no such status", call)
		return
	}
	if len(resBody) == 0 && len(answer.Value.Content) == 0 {
		return
	}
	mt := mediaType(res.Header)
	key := mediaKey(answer.Value.Content, mt)
	if key == "" {
		t.Errorf("openapi: %s: the description has no %q answer for this status", call, mt)
		return
	}
	if mt != "application/json" {
		return
	}
	at := append(op, "responses", status)
	if answer.Ref != "" { // #/components/responses/Problem
		at = strings.Split(strings.TrimPrefix(answer.Ref, "#/"), "/")
	}
	if err := d.validateJSON(resBody, append(at, "content", key, "schema")...); err != nil {
		t.Errorf("openapi: %s: the answer does not match the description: %v\nbody: %.300s", call, err, resBody)
	}
}
