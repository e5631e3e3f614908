package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/config"
	"github.com/deepimageshub/imagehub/dbtest"
	"github.com/deepimageshub/imagehub/importer"
	"github.com/deepimageshub/imagehub/jobs"
	"github.com/deepimageshub/imagehub/openapi/openapitest"
	"github.com/deepimageshub/imagehub/queries"
	"github.com/deepimageshub/imagehub/training"
)

// testBundle is a running server on a fresh database, reached over real HTTP
// on a loopback port.
type testBundle struct {
	server *Server
	pool   *pgxpool.Pool
	q      *queries.Queries
	base   string
	blobs  blob.Store
}

func testConfig(t testing.TB) config.Config {
	t.Helper()
	cfg, err := config.Load(func(string) string { return "" })
	require.NoError(t, err)
	// bcrypt at cost 10 takes about a second of CPU under the race
	// detector, and nearly every test signs someone in.
	cfg.PasswordHashCost = auth.MinPasswordCost
	return cfg
}

// testPasswords hashes like the test servers do.
var testPasswords = auth.NewPasswords(auth.MinPasswordCost)

func setup(t testing.TB, mods ...func(*config.Config)) *testBundle {
	t.Helper()
	pool := dbtest.NewPool(t)
	cfg := testConfig(t)
	for _, m := range mods {
		m(&cfg)
	}
	blobs, err := blob.Open(context.Background(), "file://"+t.TempDir())
	require.NoError(t, err)
	return startBundle(t, cfg, pool, blobs)
}

// startBundle starts the server and its River workers on a database and a
// blob store.
func startBundle(t testing.TB, cfg config.Config, pool *pgxpool.Pool, blobs blob.Store) *testBundle {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return startBundleOn(t, cfg, pool, blobs, ln)
}

// startBundleOn is startBundle on a listener the test opened first, for
// tests whose configuration names the server's own address.
func startBundleOn(t testing.TB, cfg config.Config, pool *pgxpool.Pool, blobs blob.Store, ln net.Listener) *testBundle {
	t.Helper()
	return startBundleWith(t, cfg, pool, blobs, ln, training.Options{})
}

// startBundleWith is startBundleOn with what trainings need (recipes,
// artifact checkers, the endpoint of trained models), wired as serve does.
func startBundleWith(t testing.TB, cfg config.Config, pool *pgxpool.Pool, blobs blob.Store, ln net.Listener, topts training.Options) *testBundle {
	t.Helper()
	cfg.DataDir = t.TempDir()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	deps := jobs.Deps{Pool: pool, Logger: logger, Blobs: blobs, Config: cfg}
	deps.AfterPublish = append(deps.AfterPublish, training.AfterPublish(deps, topts))
	rc, err := jobs.NewClient(deps, jobs.Options{Work: true, More: []jobs.AddWorkers{importer.AddWorkers, training.AddWorkers}})
	require.NoError(t, err)
	require.NoError(t, rc.Start(context.Background()))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = rc.StopAndCancel(ctx)
	})
	s, err := New(Deps{Config: cfg, Pool: pool, Blobs: blobs, River: rc, Logger: logger, Training: topts})
	require.NoError(t, err)
	bg, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	require.NoError(t, s.Start(bg))
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	return &testBundle{server: s, pool: pool, q: queries.New(), base: "http://" + ln.Addr().String(), blobs: blobs}
}

// client is a browser-like HTTP client: it keeps cookies and does not follow
// redirects, so tests see them.
type client struct {
	t    testing.TB
	tb   *testBundle
	base string
	http *http.Client
	// header is added to every request (Authorization for token tests).
	header http.Header
}

func (tb *testBundle) client(t testing.TB) *client {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &client{t: t, tb: tb, base: tb.base, header: http.Header{}, http: &http.Client{
		// Every API call a test makes with this client, through do or
		// its http.Client directly, is held to the API description.
		Transport:     openapitest.Transport(t, nil),
		Jar:           jar,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

type response struct {
	*http.Response
	body []byte
}

func (r *response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), "body: %s", r.body)
	return m
}

// apiError returns the API.md error body's code and field.
func (r *response) apiError(t testing.TB) (code, field string) {
	t.Helper()
	e, ok := r.json(t)["error"].(map[string]any)
	require.True(t, ok, "no error object in %s", r.body)
	f, _ := e["field"].(string)
	require.NotEmpty(t, e["message"], "error without a message")
	return e["code"].(string), f
}

func (r *response) doc(t testing.TB) *goquery.Document {
	t.Helper()
	d, err := goquery.NewDocumentFromReader(strings.NewReader(string(r.body)))
	require.NoError(t, err)
	return d
}

func (c *client) do(method, path string, body io.Reader, header http.Header) *response {
	c.t.Helper()
	// The body's kind is kept: a reader of unknown length goes without a
	// Content-Length. (http.NewRequest would see only the Len of a
	// strings or bytes reader.)
	size := int64(-1)
	if l, ok := body.(interface{ Len() int }); ok {
		size = int64(l.Len())
	}
	req, err := http.NewRequest(method, c.base+path, body)
	require.NoError(c.t, err)
	switch {
	case size == 0:
		req.Body = http.NoBody
	case size > 0:
		req.ContentLength = size
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	for k, v := range header {
		req.Header[k] = v
	}
	res, err := c.http.Do(req)
	require.NoError(c.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(c.t, err)
	return &response{Response: res, body: b}
}

func (c *client) get(path string) *response { return c.do(http.MethodGet, path, nil, nil) }

func (c *client) json(method, path string, v any) *response {
	c.t.Helper()
	var body io.Reader
	switch v := v.(type) {
	case string:
		body = strings.NewReader(v)
	default:
		b, err := json.Marshal(v)
		require.NoError(c.t, err)
		body = strings.NewReader(string(b))
	}
	return c.do(method, path, body, http.Header{"Content-Type": {"application/json"}})
}

// csrf returns this client's CSRF token, fetching a page first if needed.
func (c *client) csrf() string {
	c.t.Helper()
	u, _ := url.Parse(c.base)
	for _, ck := range c.http.Jar.Cookies(u) {
		if ck.Name == csrfCookie {
			return ck.Value
		}
	}
	c.get("/")
	for _, ck := range c.http.Jar.Cookies(u) {
		if ck.Name == csrfCookie {
			return ck.Value
		}
	}
	c.t.Fatal("no csrf cookie after visiting a page")
	return ""
}

// form posts a browser form, with the CSRF token unless told otherwise.
func (c *client) form(path string, values url.Values) *response {
	c.t.Helper()
	if values.Get(csrfField) == "" {
		values.Set(csrfField, c.csrf())
	}
	return c.do(http.MethodPost, path, strings.NewReader(values.Encode()),
		http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
}

const testPassword = "correct horse battery"

// signup creates an account through the API and leaves the client signed in.
// While the site has no admin, it signs up with a setup code, as the operator
// of a fresh deployment would with the one serve printed: so the first
// account a test signs up is admin, and later ones are contributors.
func (c *client) signup(email, name string) map[string]any {
	c.t.Helper()
	body := map[string]string{"email": email, "password": testPassword, "name": name}
	if code := c.tb.setupCode(c.t); code != "" {
		body["setup_code"] = code
	}
	res := c.json(http.MethodPost, "/api/v1/auth/signup", body)
	if res.StatusCode == http.StatusForbidden && body["setup_code"] != "" {
		// Another sign-up of this test became admin first.
		delete(body, "setup_code")
		res = c.json(http.MethodPost, "/api/v1/auth/signup", body)
	}
	require.Equal(c.t, http.StatusCreated, res.StatusCode, "%s", res.body)
	return res.json(c.t)["user"].(map[string]any)
}

// setupCode issues a setup code as serve does, or "" once there is an admin.
func (tb *testBundle) setupCode(t testing.TB) string {
	t.Helper()
	code, err := tb.server.accounts.IssueSetupCode(context.Background())
	require.NoError(t, err)
	return code
}

// userWithRole creates an account with role directly in the database and a
// client signed in as it.
func (tb *testBundle) userWithRole(t testing.TB, email string, role auth.Role) (*client, queries.User) {
	t.Helper()
	hash, err := testPasswords.Hash(testPassword)
	require.NoError(t, err)
	u, err := tb.q.UserInsertWithRole(context.Background(), tb.pool, queries.UserInsertWithRoleParams{
		Email: email, Name: strings.Split(email, "@")[0], PasswordHash: hash, Role: role,
	})
	require.NoError(t, err)
	c := tb.client(t)
	res := c.json(http.MethodPost, "/api/v1/auth/login", map[string]string{"email": email, "password": testPassword})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	return c, u
}

func (tb *testBundle) countUsers(t testing.TB) int {
	t.Helper()
	var n int
	require.NoError(t, tb.pool.QueryRow(context.Background(), "SELECT count(*) FROM users").Scan(&n))
	return n
}
