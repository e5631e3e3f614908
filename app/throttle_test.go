package app

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/config"
)

// behindProxy trusts the loopback peer as a proxy, so that each test client
// can say its own address in X-Forwarded-For.
func behindProxy(cfg *config.Config) { cfg.TrustedProxies = []string{"127.0.0.1/32"} }

// from makes c a client at addr (behind the trusted proxy). Its timeout is
// generous: under -race on a busy machine a bcrypt check takes seconds.
func (c *client) from(addr string) *client {
	c.header.Set("X-Forwarded-For", addr)
	c.http.Timeout = 3 * time.Minute
	return c
}

// waited checks a Retry-After: at most want seconds, and not much less (the
// time since the delay began has passed).
func waited(t *testing.T, res *response, want int) {
	t.Helper()
	require.Equal(t, http.StatusTooManyRequests, res.StatusCode, "%s", res.body)
	code, _ := res.apiError(t)
	require.Equal(t, "too_many_attempts", code)
	n, err := strconv.Atoi(res.Header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After %q", res.Header.Get("Retry-After"))
	require.LessOrEqual(t, n, want)
	require.Greater(t, n, want-want/4, "Retry-After %d, want about %d", n, want)
}

func (c *client) login(email, password string) *response {
	c.t.Helper()
	return c.json(http.MethodPost, "/api/v1/auth/login", map[string]string{"email": email, "password": password})
}

func TestLoginThrottleParallelGuesses(t *testing.T) {
	t.Parallel()
	tb := setup(t, behindProxy, func(cfg *config.Config) {
		cfg.LoginFreeAttempts = 5
		cfg.LoginDelay = time.Minute // no attempt may wait its turn out during the test
	})
	tb.userWithRole(t, "ada@example.com", auth.RoleAdmin)

	// 60 wrong guesses at once from one client, while the owner signs in
	// from another.
	const guesses = 60
	statuses := make(chan *response, guesses)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range guesses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := tb.client(t).from("203.0.113.5")
			<-start
			statuses <- c.login("ada@example.com", "wrong password!")
		}()
	}
	owner := make(chan *response, 1)
	go func() {
		c := tb.client(t).from("198.51.100.7")
		<-start
		owner <- c.login("ada@example.com", testPassword)
	}()
	close(start)
	wg.Wait()
	close(statuses)

	counts := map[int]int{}
	for res := range statuses {
		counts[res.StatusCode]++
		if res.StatusCode == http.StatusTooManyRequests {
			waited(t, res, 60)
		}
	}
	require.Equal(t, map[int]int{http.StatusUnauthorized: 5, http.StatusTooManyRequests: guesses - 5}, counts,
		"exactly the free attempts reach the password check")
	res := <-owner
	require.Equal(t, http.StatusOK, res.StatusCode, "the owner from another client is not affected: %s", res.body)

	// The right password from the attacking client is refused too: guessing
	// faster gains nothing.
	res = tb.client(t).from("203.0.113.5").login("ada@example.com", testPassword)
	require.Equal(t, http.StatusTooManyRequests, res.StatusCode)
	require.Equal(t, 5, tb.count(t, "SELECT failures FROM login_throttle WHERE client = '203.0.113.5' AND account = 'ada@example.com'"))

	// And the owner can go on signing in and out from their own client.
	res = tb.client(t).from("198.51.100.7").login("ADA@example.com", testPassword)
	require.Equal(t, http.StatusOK, res.StatusCode)
}

func TestLoginThrottleGrowingDelay(t *testing.T) {
	t.Parallel()
	// Minutes rather than seconds, so that a slow machine cannot blur the
	// doubling; the default LOGIN_MAX_DELAY (15m) caps it.
	tb := setup(t, behindProxy, func(cfg *config.Config) { cfg.LoginFreeAttempts = 3; cfg.LoginDelay = time.Minute })
	tb.userWithRole(t, "ada@example.com", auth.RoleContributor)
	c := tb.client(t).from("203.0.113.9")
	for range 3 {
		require.Equal(t, http.StatusUnauthorized, c.login("ada@example.com", "wrong password!").StatusCode)
	}
	// Waiting out each delay (by moving it to now) lets one more guess
	// through, and the next delay is twice as long.
	waitOut := func() {
		_, err := tb.pool.Exec(context.Background(), "UPDATE login_throttle SET next_allowed_at = now() WHERE client = '203.0.113.9'")
		require.NoError(t, err)
	}
	for _, want := range []int{60, 120, 240, 480, 900, 900} {
		waited(t, c.login("ada@example.com", "wrong password!"), want)
		waitOut()
		require.Equal(t, http.StatusUnauthorized, c.login("ada@example.com", "wrong password!").StatusCode)
	}
	waited(t, c.login("ada@example.com", testPassword), 900) // the right password waits too

	// A success after the wait clears the pair's count.
	waitOut()
	require.Equal(t, http.StatusOK, c.login("ada@example.com", testPassword).StatusCode)
	require.Equal(t, 0, tb.count(t, "SELECT count(*) FROM login_throttle WHERE account = 'ada@example.com'"))
	require.Equal(t, http.StatusUnauthorized, c.login("ada@example.com", "wrong password!").StatusCode, "counting starts again")

	// The HTML form says the same with the same header.
	for range 3 {
		c.login("ada@example.com", "wrong password!")
	}
	page := tb.client(t).from("203.0.113.9")
	res := page.form("/login", map[string][]string{"email": {"ada@example.com"}, "password": {"wrong password!"}})
	require.Equal(t, http.StatusTooManyRequests, res.StatusCode)
	require.NotEmpty(t, res.Header.Get("Retry-After"))
	require.Contains(t, res.doc(t).Find(".form-error, [role=alert]").Text(), "Too many failed sign-in attempts")
}

func TestLoginThrottlePerClient(t *testing.T) {
	t.Parallel()
	tb := setup(t, behindProxy, func(cfg *config.Config) { cfg.LoginFreeAttemptsPerClient = 5; cfg.LoginDelay = time.Minute })
	tb.userWithRole(t, "ada@example.com", auth.RoleContributor)
	// One client trying many accounts is slowed down as a whole.
	attacker := tb.client(t).from("203.0.113.5")
	var last *response
	for i := range 8 {
		last = attacker.login("nobody"+strconv.Itoa(i)+"@example.com", "wrong password!")
	}
	require.Equal(t, http.StatusTooManyRequests, last.StatusCode)
	require.Equal(t, http.StatusTooManyRequests, attacker.login("ada@example.com", testPassword).StatusCode)
	// Everyone else is not.
	require.Equal(t, http.StatusUnauthorized, tb.client(t).from("198.51.100.1").login("nobody0@example.com", "wrong password!").StatusCode)
	require.Equal(t, http.StatusOK, tb.client(t).from("198.51.100.2").login("ada@example.com", testPassword).StatusCode)
}

func TestForwardedForIgnoredFromUntrustedPeer(t *testing.T) {
	t.Parallel()
	tb := setup(t, func(cfg *config.Config) { cfg.LoginFreeAttempts = 3; cfg.LoginDelay = time.Minute })
	tb.userWithRole(t, "ada@example.com", auth.RoleContributor)
	for i := range 3 {
		// A different forwarded address each time changes nothing: the
		// peer (loopback) is not a trusted proxy.
		res := tb.client(t).from("203.0.113."+strconv.Itoa(i)).login("ada@example.com", "wrong password!")
		require.Equal(t, http.StatusUnauthorized, res.StatusCode)
	}
	res := tb.client(t).from("198.51.100.7").login("ada@example.com", testPassword)
	require.Equal(t, http.StatusTooManyRequests, res.StatusCode, "X-Forwarded-For from an untrusted peer is not believed")
	require.Equal(t, 1, tb.count(t, "SELECT count(*) FROM login_throttle WHERE client = '127.0.0.1' AND account = 'ada@example.com'"))

	// Behind a trusted proxy the forwarded address is the one recorded.
	tb2 := setup(t, behindProxy)
	tb2.userWithRole(t, "bob@example.com", auth.RoleContributor)
	res = tb2.client(t).from("6.6.6.6, 198.51.100.7").login("bob@example.com", testPassword)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, 1, tb2.count(t, "SELECT count(*) FROM sessions WHERE ip = '198.51.100.7'"), "the right-most untrusted hop, not the spoofable left one")
}

func TestSignupThrottle(t *testing.T) {
	t.Parallel()
	tb := setup(t, behindProxy, func(cfg *config.Config) { cfg.SignupMaxPerClient = 3 })
	tb.userWithRole(t, "admin@example.com", auth.RoleAdmin)
	signup := func(from, email string) *response {
		return tb.client(t).from(from).json(http.MethodPost, "/api/v1/auth/signup", map[string]string{
			"email": email, "password": testPassword, "name": "N",
		})
	}
	for i := range 3 {
		require.Equal(t, http.StatusCreated, signup("203.0.113.5", "u"+strconv.Itoa(i)+"@example.com").StatusCode)
	}
	before := tb.countUsers(t)
	res := signup("203.0.113.5", "u9@example.com")
	waited(t, res, 3600)
	require.Equal(t, before, tb.countUsers(t))
	require.Equal(t, http.StatusCreated, signup("198.51.100.7", "u9@example.com").StatusCode, "another client is not affected")
}

func TestSignupClosed(t *testing.T) {
	t.Parallel()
	tb := setup(t, func(cfg *config.Config) { cfg.SignupOpen = false })

	// A fresh closed site: only the setup code gets in.
	page := tb.client(t).get("/signup")
	require.Equal(t, http.StatusOK, page.StatusCode)
	_, required := page.doc(t).Find(`input[name="setup_code"]`).Attr("required")
	require.True(t, required)
	c := tb.client(t)
	res := c.json(http.MethodPost, "/api/v1/auth/signup", map[string]string{"email": "x@example.com", "password": testPassword, "name": "X"})
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	code, _ := res.apiError(t)
	require.Equal(t, "signup_closed", code)
	admin := tb.client(t)
	admin.signup("admin@example.com", "Admin")
	require.Equal(t, "admin", admin.get("/api/v1/me").json(t)["user"].(map[string]any)["role"])

	// With an admin, sign-up is closed for everybody, page and API.
	res = tb.client(t).json(http.MethodPost, "/api/v1/auth/signup", map[string]string{"email": "x@example.com", "password": testPassword, "name": "X"})
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	require.Contains(t, string(res.body), "ask an admin")
	page = tb.client(t).get("/signup")
	require.Equal(t, http.StatusForbidden, page.StatusCode)
	require.Contains(t, page.doc(t).Find("main").Text(), "Self sign-up is closed")
	res = tb.client(t).form("/signup", map[string][]string{"email": {"x@example.com"}, "password": {testPassword}, "name": {"X"}})
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	require.Equal(t, 1, tb.countUsers(t))

	// Admins make the accounts.
	res = admin.json(http.MethodPost, "/api/v1/users", map[string]string{"email": "rev@example.com", "password": testPassword, "name": "Rev", "role": "reviewer"})
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	require.Equal(t, "reviewer", res.json(t)["user"].(map[string]any)["role"])
	require.Equal(t, http.StatusOK, tb.client(t).login("rev@example.com", testPassword).StatusCode)
	res = admin.json(http.MethodPost, "/api/v1/users", map[string]string{"email": "bad", "password": testPassword, "name": "Bad"})
	require.Equal(t, http.StatusBadRequest, res.StatusCode)
	_, field := res.apiError(t)
	require.Equal(t, "email", field)

	// And on the users page.
	res = admin.form("/admin/users", map[string][]string{"email": {"pat@example.com"}, "name": {"Pat"}, "password": {testPassword}, "role": {"premium"}})
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	require.Contains(t, res.doc(t).Find("#user-created").Text(), "pat@example.com")
	res = tb.client(t).login("pat@example.com", testPassword)
	require.Equal(t, "premium", res.json(t)["user"].(map[string]any)["role"])
	before := tb.countUsers(t)
	res = admin.form("/admin/users", map[string][]string{"email": {"pat@example.com"}, "name": {"Pat"}, "password": {testPassword}, "role": {"premium"}})
	require.Equal(t, http.StatusConflict, res.StatusCode)
	require.Equal(t, 1, res.doc(t).Find("#email-error").Length())
	require.Equal(t, before, tb.countUsers(t))
}

func TestFirstAdminWithSetupCode(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	signup := func(email, code string) *response {
		return tb.client(t).json(http.MethodPost, "/api/v1/auth/signup", map[string]string{
			"email": email, "password": testPassword, "name": "N", "setup_code": code,
		})
	}
	// Two replicas started: each printed its own code; both work until one
	// of them has been used.
	first, second := tb.setupCode(t), tb.setupCode(t)
	require.Regexp(t, `^[A-Z2-7]{4}(-[A-Z2-7]{4}){5}$`, first)
	require.NotEqual(t, first, second)
	require.Equal(t, 2, tb.count(t, "SELECT count(*) FROM setup_codes"))

	// The sign-up page asks for it while there is no admin.
	require.Equal(t, 1, tb.client(t).get("/signup").doc(t).Find(`input[name="setup_code"]`).Length())

	// The first visitor without a code is a contributor.
	res := signup("visitor@example.com", "")
	require.Equal(t, http.StatusCreated, res.StatusCode)
	require.Equal(t, "contributor", res.json(t)["user"].(map[string]any)["role"])

	// A wrong code: 403 naming the field, no account.
	before := tb.countUsers(t)
	res = signup("eve@example.com", "AAAA-BBBB-CCCC-DDDD-EEEE-FFFF")
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	code, field := res.apiError(t)
	require.Equal(t, "invalid_setup_code", code)
	require.Equal(t, "setup_code", field)
	require.Equal(t, before, tb.countUsers(t))

	// The right one, typed in lower case without dashes, makes an admin.
	res = signup("ada@example.com", strings.ToLower(strings.ReplaceAll(second, "-", "")))
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", res.body)
	require.Equal(t, "admin", res.json(t)["user"].(map[string]any)["role"])

	// Then every code is spent, and no new one is made.
	for _, c := range []string{second, first} {
		res = signup("mallory@example.com", c)
		require.Equal(t, http.StatusForbidden, res.StatusCode)
		_, field := res.apiError(t)
		require.Equal(t, "setup_code", field)
	}
	require.Equal(t, 0, tb.count(t, "SELECT count(*) FROM setup_codes"))
	require.Empty(t, tb.setupCode(t))
	require.Equal(t, 0, tb.client(t).get("/signup").doc(t).Find(`input[name="setup_code"]`).Length())

	// The form path: a wrong code is shown beside the field.
	tb2 := setup(t)
	tb2.setupCode(t)
	c := tb2.client(t)
	res = c.form("/signup", map[string][]string{"email": {"ada@example.com"}, "password": {testPassword}, "name": {"Ada"}, "setup_code": {"nope"}})
	require.Equal(t, http.StatusForbidden, res.StatusCode)
	require.Equal(t, 1, res.doc(t).Find("#setup_code-error").Length())
	require.Equal(t, 0, tb2.countUsers(t))
}
