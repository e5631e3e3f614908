// Package ssotest starts a real OpenID Connect provider for tests: the
// example OpenID Provider of github.com/zitadel/oidc (an OpenID-certified
// library), with its own login page, on a loopback port, with the users and
// redirect URIs a test gives it.
//
// The provider is a tool of the tools module (tools/go.mod, pinned there);
// the first Start in a fresh build cache builds it (about 20 seconds on two
// cores) and later ones find it in the go command's cache. A provider that
// cannot be built or started fails the test; it is never skipped.
//
// What the provider can say about a user is fixed by its users file: sub,
// email and email_verified (scope email), name, given_name, family_name and
// preferred_username (scope profile), in userinfo rather than the ID token;
// the ID token carries amr ["pwd"]. It has no group claim, so tests of the
// role mapping use family_name (a string) and amr (an array of strings).
//
// Typical use:
//
//	op := ssotest.Start(t, ssotest.Options{
//		RedirectURIs: []string{base + "/auth/oidc/callback"},
//		Users: []ssotest.User{{Username: "ada", Password: "pw", Email: "ada@example.com", EmailVerified: true}},
//	})
package ssotest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/deepimageshub/imagehub/tooltest"
)

// tool is the provider's package in the tools module.
const tool = "github.com/zitadel/oidc/v3/example/server"

// The confidential client the example provider registers.
const (
	ClientID     = "web"
	ClientSecret = "secret"
)

// User is one account at the provider. ID is its subject (sub); it defaults
// to the username.
type User struct {
	ID            string
	Username      string
	Password      string
	FirstName     string
	LastName      string
	Email         string
	EmailVerified bool
}

// Options configure a provider.
type Options struct {
	// RedirectURIs are the redirect URIs registered for the client.
	RedirectURIs []string
	Users        []User
}

// Provider is a running OpenID provider.
type Provider struct {
	// Issuer is its issuer URL, http://localhost:PORT/ (with the slash).
	Issuer string

	bin    string
	env    []string
	cmd    *exec.Cmd
	exited chan struct{}
	logs   *tooltest.Tail
}

// Binary returns the path of the provider's executable (tooltest.Binary).
func Binary() (string, error) { return tooltest.Binary(tool) }

// Start starts a provider that stops when the test ends. It fails the test,
// never skips it, when the provider cannot be built or does not start.
func Start(tb testing.TB, opts Options) *Provider {
	tb.Helper()
	bin, err := Binary()
	if err != nil {
		tb.Fatalf("ssotest: %v", err)
	}
	users := map[string]map[string]any{}
	for _, u := range opts.Users {
		id := u.ID
		if id == "" {
			id = u.Username
		}
		users[id] = map[string]any{
			"ID": id, "Username": u.Username, "Password": u.Password,
			"FirstName": u.FirstName, "LastName": u.LastName,
			"Email": u.Email, "EmailVerified": u.EmailVerified,
			"PreferredLanguage": "en",
		}
	}
	b, err := json.Marshal(users)
	if err != nil {
		tb.Fatalf("ssotest: %v", err)
	}
	usersFile := filepath.Join(tb.TempDir(), "users.json")
	if err := os.WriteFile(usersFile, b, 0o600); err != nil {
		tb.Fatalf("ssotest: %v", err)
	}
	// The port is picked by listening on port 0 and closing; another
	// process can take it before the provider does, so try a few.
	for attempt := 1; ; attempt++ {
		p, err := start(tb, bin, usersFile, opts.RedirectURIs)
		if err == nil {
			return p
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			tb.Fatalf("ssotest: %v", err)
		}
	}
}

func start(tb testing.TB, bin, usersFile string, redirectURIs []string) (*Provider, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	ln.Close()

	p := &Provider{
		// The example names itself http://localhost:PORT/.
		Issuer: "http://localhost:" + port + "/",
		bin:    bin,
		env: []string{
			"PATH=" + os.Getenv("PATH"), "HOME=" + tb.TempDir(), "TMPDIR=" + os.TempDir(),
			"PORT=" + port, "USERS_FILE=" + usersFile, "REDIRECT_URI=" + strings.Join(redirectURIs, ","),
		},
		logs: tooltest.NewTail(64 << 10),
	}
	tb.Cleanup(p.Stop)
	return p, p.launch()
}

// launch starts the process and waits until it answers discovery.
func (p *Provider) launch() error {
	p.exited = make(chan struct{})
	p.cmd = exec.Command(p.bin)
	p.cmd.Env = p.env
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	tooltest.DieWithParent(p.cmd)
	if err := p.cmd.Start(); err != nil {
		close(p.exited)
		return fmt.Errorf("error starting the OpenID provider: %w", err)
	}
	exited := p.exited
	go func() { _ = p.cmd.Wait(); close(exited) }()

	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := client.Get(p.Issuer + ".well-known/openid-configuration")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("the OpenID provider exited at start: %s", p.logs)
		case <-time.After(25 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Stop()
			return fmt.Errorf("the OpenID provider did not answer at %s in 30s (last error: %v): %s", p.Issuer, err, p.logs)
		}
	}
}

// Restart starts a stopped provider again on its port, with its users (and
// fresh signing keys), for tests of a provider that comes back.
func (p *Provider) Restart(tb testing.TB) {
	tb.Helper()
	p.Stop()
	if err := p.launch(); err != nil {
		tb.Fatalf("ssotest: %v", err)
	}
}

// Stop stops the provider at once; it is safe to call more than once.
func (p *Provider) Stop() {
	if p.cmd == nil {
		return
	}
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// Logs is the tail of the provider's output, for failure messages.
func (p *Provider) Logs() string { return p.logs.String() }

// Login signs in at the provider's own login page the way a browser would:
// it follows authURL (an authorization request) to the login form, submits
// username and password, and follows the provider's redirects until they
// leave the provider. It returns that last redirect: the client's redirect
// URI with code and state (or error). client keeps the provider's cookies.
func (p *Provider) Login(ctx context.Context, client *http.Client, authURL, username, password string) (*url.URL, error) {
	issuer, err := url.Parse(p.Issuer)
	if err != nil {
		return nil, err
	}
	c := *client
	var left *url.URL
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Host != issuer.Host {
			left = req.URL
			return http.ErrUseLastResponse
		}
		if len(via) > 10 {
			return errors.New("too many redirects at the provider")
		}
		return nil
	}
	get := func(u string) (*http.Response, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, nil, err
		}
		res, err := c.Do(req)
		if err != nil {
			return nil, nil, err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return res, b, err
	}
	res, body, err := get(authURL)
	if err != nil {
		return nil, fmt.Errorf("error opening the authorization request: %w", err)
	}
	if left != nil {
		return left, nil // refused at once, back to the client with an error
	}
	id := res.Request.URL.Query().Get("authRequestID")
	if res.StatusCode != http.StatusOK || id == "" {
		return nil, fmt.Errorf("the provider showed no login form (%s %s): %s", res.Status, res.Request.URL, body)
	}
	form := url.Values{"id": {id}, "username": {username}, "password": {password}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, issuer.ResolveReference(&url.URL{Path: "/login/username"}).String(), strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err = c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("error submitting the login form: %w", err)
	}
	body, _ = io.ReadAll(res.Body)
	res.Body.Close()
	if left == nil {
		return nil, fmt.Errorf("the provider did not send the browser back (%s): %s", res.Status, body)
	}
	return left, nil
}
