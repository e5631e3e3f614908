package app

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/blob"
	"github.com/deepimageshub/imagehub/config"
	"github.com/deepimageshub/imagehub/dbtest"
	"github.com/deepimageshub/imagehub/sso/ssotest"
)

// oidcBundle is a server signing in through a real OpenID provider.
type oidcBundle struct {
	*testBundle
	op *ssotest.Provider
}

// setupOIDC starts the provider with users, then the server configured for
// it (OIDC_* from env, read through config.Load like serve does).
func setupOIDC(t *testing.T, users []ssotest.User, env map[string]string) *oidcBundle {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	base := "http://" + ln.Addr().String()
	op := ssotest.Start(t, ssotest.Options{RedirectURIs: []string{base + oidcCallbackPath}, Users: users})
	vars := map[string]string{
		"BASE_URL": base, "OIDC_ISSUER": op.Issuer, "OIDC_NAME": "Test IdP",
		"OIDC_CLIENT_ID": ssotest.ClientID, "OIDC_CLIENT_SECRET": ssotest.ClientSecret,
	}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := config.Load(func(k string) string { return vars[k] })
	require.NoError(t, err)
	cfg.PasswordHashCost = auth.MinPasswordCost
	blobs, err := blob.Open(context.Background(), "file://"+t.TempDir())
	require.NoError(t, err)
	return &oidcBundle{testBundle: startBundleOn(t, cfg, dbtest.NewPool(t), blobs, ln), op: op}
}

// begin starts a sign-in and returns the provider's authorization URL.
func (b *oidcBundle) begin(t *testing.T, c *client, next string) *url.URL {
	t.Helper()
	path := oidcLoginPath
	if next != "" {
		path += "?" + url.Values{"next": {next}}.Encode()
	}
	res := c.get(path)
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "%s", res.body)
	u, err := url.Parse(res.Header.Get("Location"))
	require.NoError(t, err)
	return u
}

// atProvider logs in at the provider's login page and returns where it sends
// the browser back to (the callback, with code and state).
func (b *oidcBundle) atProvider(t *testing.T, c *client, authURL *url.URL, username string) string {
	t.Helper()
	back, err := b.op.Login(context.Background(), c.http, authURL.String(), username, "provider-pass")
	require.NoError(t, err, "provider logs: %s", b.op.Logs())
	require.Equal(t, oidcCallbackPath, back.Path, "sent back to %s", back)
	return back.RequestURI()
}

// signIn runs the whole flow and returns the callback's answer.
func (b *oidcBundle) signIn(t *testing.T, c *client, username, next string) *response {
	t.Helper()
	return c.get(b.atProvider(t, c, b.begin(t, c, next), username))
}

// me returns the signed-in user as the API shows it, or nil when the
// client is not signed in.
func me(t *testing.T, c *client) map[string]any {
	t.Helper()
	res := c.get("/api/v1/me")
	if res.StatusCode == http.StatusUnauthorized {
		return nil
	}
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", res.body)
	return res.json(t)["user"].(map[string]any)
}

func opUser(username, email, lastName string, verified bool) ssotest.User {
	return ssotest.User{Username: username, Password: "provider-pass", FirstName: "Test", LastName: lastName, Email: email, EmailVerified: verified}
}

var roleByFamilyName = map[string]string{"OIDC_ROLE_CLAIM": "family_name", "OIDC_ROLE_MAP": "Admins:admin,Reviewers:reviewer"}

// TestOIDCSignIn: a new verified email gets an account with the role its
// claim maps to, and lands on next, signed in; the request to the provider
// carries PKCE S256, a state and a nonce.
func TestOIDCSignIn(t *testing.T) {
	t.Parallel()
	b := setupOIDC(t, []ssotest.User{opUser("ada", "Ada@Example.com", "Reviewers", true)}, roleByFamilyName)
	c := b.client(t)

	authURL := b.begin(t, c, "/uploads")
	q := authURL.Query()
	require.Equal(t, b.op.Issuer+"auth", authURL.Scheme+"://"+authURL.Host+authURL.Path)
	require.Equal(t, "S256", q.Get("code_challenge_method"))
	require.Len(t, q.Get("code_challenge"), 43)
	require.Len(t, q.Get("state"), 43)
	require.Len(t, q.Get("nonce"), 43)
	require.Equal(t, "code", q.Get("response_type"))
	require.Equal(t, "openid email profile", q.Get("scope"))
	require.Equal(t, b.base+oidcCallbackPath, q.Get("redirect_uri"))
	require.NotContains(t, authURL.RawQuery, "code_verifier")

	res := c.get(b.atProvider(t, c, authURL, "ada"))
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "%s", res.body)
	require.Equal(t, "/uploads", res.Header.Get("Location"))
	u := me(t, c)
	require.NotNil(t, u, "not signed in after the callback")
	require.Equal(t, "Ada@Example.com", u["email"], "the email as the provider has it (matched without case)")
	require.Equal(t, "Test Reviewers", u["name"])
	require.Equal(t, "reviewer", u["role"])
	require.Equal(t, 1, b.countUsers(t))
	require.Equal(t, 0, b.count(t, "SELECT count(*) FROM oidc_logins"), "the attempt is used up")

	// The account has no password: the password form cannot sign in as it.
	res = b.client(t).json(http.MethodPost, "/api/v1/auth/login", map[string]string{"email": "ada@example.com", "password": "provider-pass"})
	require.Equal(t, http.StatusUnauthorized, res.StatusCode, "%s", res.body)

	// Signing in again finds the same account.
	c2 := b.client(t)
	res = b.signIn(t, c2, "ada", "")
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "%s", res.body)
	require.Equal(t, "/", res.Header.Get("Location"))
	require.Equal(t, u["id"], me(t, c2)["id"])
	require.Equal(t, 1, b.countUsers(t))
}

// TestOIDCMatchesExistingAccount: an account made with a password is found
// by its (verified) email, whatever its case, and keeps its hand-given role.
func TestOIDCMatchesExistingAccount(t *testing.T) {
	t.Parallel()
	b := setupOIDC(t, []ssotest.User{opUser("grace", "GRACE@example.com", "Nobody", true)}, roleByFamilyName)
	_, grace := b.userWithRole(t, "grace@example.com", auth.RolePremium)
	c := b.client(t)
	res := b.signIn(t, c, "grace", "/datasets")
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "%s", res.body)
	require.Equal(t, "/datasets", res.Header.Get("Location"))
	u := me(t, c)
	require.Equal(t, grace.ID.String(), u["id"])
	require.Equal(t, "premium", u["role"], "a role given by hand is not lowered by the claim")
	require.Equal(t, 1, b.countUsers(t))
}

// TestOIDCRoleMapping: the claim raises a role at each sign-in, lowers only
// what it granted itself, and never demotes the last admin. The example
// provider sends no group claim, so two provider users share one email and
// differ in family_name.
func TestOIDCRoleMapping(t *testing.T) {
	t.Parallel()
	b := setupOIDC(t, []ssotest.User{
		opUser("bob-admin", "bob@example.com", "Admins", true),
		opUser("bob-plain", "bob@example.com", "Plain", true),
		opUser("carol-reviewer", "carol@example.com", "Reviewers", true),
	}, roleByFamilyName)
	role := func(email string) auth.Role {
		u, err := b.q.UserGetByEmail(context.Background(), b.pool, email)
		require.NoError(t, err)
		return u.Role
	}
	signIn := func(username string) {
		res := b.signIn(t, b.client(t), username, "")
		require.Equal(t, http.StatusSeeOther, res.StatusCode, "%s: %s", username, res.body)
	}

	// Bob is the only admin, through the claim: losing the group keeps him
	// admin, so the hub always has one.
	signIn("bob-admin")
	require.Equal(t, auth.RoleAdmin, role("bob@example.com"))
	signIn("bob-plain")
	require.Equal(t, auth.RoleAdmin, role("bob@example.com"), "the last admin is never demoted")

	// With another admin, the claim takes back the role it granted.
	b.userWithRole(t, "root@example.com", auth.RoleAdmin)
	signIn("bob-admin")
	signIn("bob-plain")
	require.Equal(t, auth.RoleContributor, role("bob@example.com"))
	signIn("bob-admin")
	require.Equal(t, auth.RoleAdmin, role("bob@example.com"), "the claim raises at each sign-in")

	// Carol was a contributor made by hand: the claim raises her.
	b.userWithRole(t, "carol@example.com", auth.RoleContributor)
	signIn("carol-reviewer")
	require.Equal(t, auth.RoleReviewer, role("carol@example.com"))
	require.Equal(t, 3, b.countUsers(t))
}

// TestOIDCRoleFromArrayClaim maps a claim that is an array of strings (amr,
// ["pwd"] after a password login at the provider).
func TestOIDCRoleFromArrayClaim(t *testing.T) {
	t.Parallel()
	b := setupOIDC(t, []ssotest.User{{Username: "dan", Password: "provider-pass", Email: "dan@example.com", EmailVerified: true}},
		map[string]string{"OIDC_ROLE_CLAIM": "amr", "OIDC_ROLE_MAP": "otp:admin,pwd:premium"})
	c := b.client(t)
	res := b.signIn(t, c, "dan", "")
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "%s", res.body)
	require.Equal(t, "premium", me(t, c)["role"])
	require.Equal(t, "dan", me(t, c)["name"], "no name at the provider: the preferred username")
}

// TestOIDCUnverifiedEmailRefused: an unverified email signs nobody in and
// makes no account, even when an account has that email.
func TestOIDCUnverifiedEmailRefused(t *testing.T) {
	t.Parallel()
	b := setupOIDC(t, []ssotest.User{
		opUser("eve", "eve@example.com", "Admins", false),
		opUser("mallory", "victim@example.com", "Admins", false),
	}, roleByFamilyName)
	b.userWithRole(t, "victim@example.com", auth.RoleContributor)
	for _, username := range []string{"eve", "mallory"} {
		c := b.client(t)
		res := b.signIn(t, c, username, "")
		require.Equal(t, http.StatusForbidden, res.StatusCode, "%s", res.body)
		require.Contains(t, string(res.body), "is not verified")
		require.Nil(t, me(t, c), "%s got a session", username)
	}
	require.Equal(t, 1, b.countUsers(t))
	victim, err := b.q.UserGetByEmail(context.Background(), b.pool, "victim@example.com")
	require.NoError(t, err)
	require.Equal(t, auth.RoleContributor, victim.Role)
}

// TestOIDCStateMismatch: a callback must come back to the browser that
// started it, with its state, once.
func TestOIDCStateMismatch(t *testing.T) {
	t.Parallel()
	b := setupOIDC(t, []ssotest.User{opUser("ada", "ada@example.com", "", true)}, nil)
	a := b.client(t)
	callback := b.atProvider(t, a, b.begin(t, a, ""), "ada")

	// Another browser (login CSRF: the attacker's code in the victim's
	// browser) has no cookie for it.
	other := b.client(t)
	other.get("/login")
	res := other.get(callback)
	require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s", res.body)
	require.Contains(t, string(res.body), "started in another browser")
	require.Nil(t, me(t, other))

	// Another browser that started an attempt of its own: its cookie does
	// not match this state.
	b.begin(t, other, "")
	res = other.get(callback)
	require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s", res.body)
	require.Nil(t, me(t, other))

	// The right browser with a changed state.
	u, err := url.Parse(callback)
	require.NoError(t, err)
	q := u.Query()
	q.Set("state", q.Get("state")+"x")
	res = a.get(u.Path + "?" + q.Encode())
	require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s", res.body)
	require.Nil(t, me(t, a))
	require.Equal(t, 0, b.countUsers(t))

	// A fresh attempt in the right browser works, and its callback is
	// single use.
	callback = b.atProvider(t, a, b.begin(t, a, ""), "ada")
	res = a.get(callback)
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "%s", res.body)
	require.NotNil(t, me(t, a))
	jar, _ := url.Parse(b.base + "/auth/oidc/")
	for _, ck := range a.http.Jar.Cookies(jar) {
		require.NotEqual(t, oidcCookie, ck.Name, "the state cookie is cleared after the callback")
	}
	res = a.get(callback)
	require.Equal(t, http.StatusBadRequest, res.StatusCode, "a replayed callback: %s", res.body)
}

// TestOIDCNonceMismatch: an ID token issued for another nonce is refused,
// even with the right state and PKCE verifier.
func TestOIDCNonceMismatch(t *testing.T) {
	t.Parallel()
	b := setupOIDC(t, []ssotest.User{opUser("ada", "ada@example.com", "", true)}, nil)
	c := b.client(t)
	authURL := b.begin(t, c, "")
	q := authURL.Query()
	q.Set("nonce", "a-nonce-from-another-attempt")
	authURL.RawQuery = q.Encode()
	res := c.get(b.atProvider(t, c, authURL, "ada"))
	require.Equal(t, http.StatusBadRequest, res.StatusCode, "%s", res.body)
	require.Contains(t, string(res.body), "belongs to another attempt")
	require.Nil(t, me(t, c))
	require.Equal(t, 0, b.countUsers(t))
}

// TestOIDCProviderRefusal: the provider's error comes back as a refusal.
func TestOIDCProviderRefusal(t *testing.T) {
	t.Parallel()
	b := setupOIDC(t, []ssotest.User{opUser("ada", "ada@example.com", "", true)}, nil)
	c := b.client(t)
	authURL := b.begin(t, c, "")
	q := authURL.Query()
	q.Set("response_type", "token") // not allowed for this client: the provider answers with an error
	authURL.RawQuery = q.Encode()
	back, err := b.op.Login(context.Background(), c.http, authURL.String(), "ada", "provider-pass")
	require.NoError(t, err)
	require.NotEmpty(t, back.Query().Get("error"), "provider sent %s", back)
	res := c.get(back.RequestURI())
	require.Equal(t, http.StatusUnauthorized, res.StatusCode, "%s", res.body)
	require.Contains(t, string(res.body), "Test IdP did not sign you in")
	require.Nil(t, me(t, c))
}

// TestOIDCDisabled: without OIDC_ISSUER there is no button and no route.
func TestOIDCDisabled(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	c := tb.client(t)
	res := c.get("/login")
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Zero(t, res.doc(t).Find("#sso-login").Length())
	for _, path := range []string{oidcLoginPath, oidcCallbackPath + "?state=x&code=y"} {
		res = c.get(path)
		require.Equal(t, http.StatusNotFound, res.StatusCode, path)
	}
}

// TestOIDCLoginPageButton: the button carries next to the provider.
func TestOIDCLoginPageButton(t *testing.T) {
	t.Parallel()
	b := setupOIDC(t, nil, nil)
	res := b.client(t).get("/login?next=/review")
	require.Equal(t, http.StatusOK, res.StatusCode)
	a := res.doc(t).Find("a#sso-login")
	require.Equal(t, "Sign in with Test IdP", a.Text())
	href, _ := a.Attr("href")
	require.Equal(t, oidcLoginPath+"?next=%2Freview", href)
}

// TestOIDCProviderDownAtStart: the server starts while the provider is
// down, answers 503 for the provider's sign-in meanwhile, and finds the
// provider once it is up.
func TestOIDCProviderDownAtStart(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	base := "http://" + ln.Addr().String()
	op := ssotest.Start(t, ssotest.Options{RedirectURIs: []string{base + oidcCallbackPath}, Users: []ssotest.User{opUser("ada", "ada@example.com", "", true)}})
	op.Stop()
	vars := map[string]string{
		"BASE_URL": base, "OIDC_ISSUER": op.Issuer, "OIDC_NAME": "Test IdP",
		"OIDC_CLIENT_ID": ssotest.ClientID, "OIDC_CLIENT_SECRET": ssotest.ClientSecret,
	}
	cfg, err := config.Load(func(k string) string { return vars[k] })
	require.NoError(t, err)
	cfg.PasswordHashCost = auth.MinPasswordCost
	blobs, err := blob.Open(context.Background(), "file://"+t.TempDir())
	require.NoError(t, err)
	tb := startBundleOn(t, cfg, dbtest.NewPool(t), blobs, ln)
	c := tb.client(t)
	require.Equal(t, http.StatusOK, c.get("/login").StatusCode)
	res := c.get(oidcLoginPath)
	require.Equal(t, http.StatusServiceUnavailable, res.StatusCode, "%s", res.body)
	require.Contains(t, string(res.body), "cannot be reached right now")
	require.NotEmpty(t, res.Header.Get("Retry-After"))

	op.Restart(t)
	ob := &oidcBundle{testBundle: tb, op: op}
	require.Eventually(t, func() bool { return c.get(oidcLoginPath).StatusCode == http.StatusSeeOther }, 15*time.Second, 250*time.Millisecond)
	res = ob.signIn(t, c, "ada", "")
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "%s", res.body)
	require.Equal(t, "ada@example.com", me(t, c)["email"])
}
