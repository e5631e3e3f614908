package app

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/browsertest"
	"github.com/deepimageshub/imagehub/sso/ssotest"
)

// TestOIDCSignInInBrowser opens the sign-in page in Chromium, clicks "Sign in
// with …", logs in on the provider's own login page and lands back on next,
// signed in as a new account with the role the claim maps to.
func TestOIDCSignInInBrowser(t *testing.T) {
	t.Parallel()
	b := setupOIDC(t, []ssotest.User{opUser("dana", "dana@example.com", "Admins", true)}, roleByFamilyName)
	ctx := browsertest.New(t)

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(b.base+"/login?next=/admin/users"),
		chromedp.WaitVisible(`#sso-login`),
	))
	browsertest.Screenshot(t, ctx, "oidc-login-page")
	text, err := chromedp.Run(ctx, chromedp.Text(`#sso-login`))
	require.NoError(t, err)
	require.Equal(t, "Sign in with Test IdP", text)
	require.NoError(t, chromedp.Do(ctx, chromedp.Click(`#sso-login`)))

	// The provider's login page, on its own origin.
	browsertest.WaitFor(t, ctx, `location.href.startsWith(`+jsString(b.op.Issuer+"login/username")+`) && !!document.querySelector('#username')`,
		`location.href`, 15*time.Second)
	browsertest.Screenshot(t, ctx, "oidc-provider-login")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(`#username`, "dana"),
		chromedp.SendKeys(`#password`, "provider-pass"),
		chromedp.Click(`button[type=submit]`),
	))

	// Back on the hub, on next, signed in as an admin.
	browsertest.WaitFor(t, ctx, `location.href === `+jsString(b.base+"/admin/users"), `location.href + ' ' + document.title`, 15*time.Second)
	browsertest.WaitFor(t, ctx, `document.body.textContent.includes('dana@example.com')`, `document.body.innerText`, 5*time.Second)
	browsertest.Screenshot(t, ctx, "oidc-signed-in")
	u, err := b.q.UserGetByEmail(context.Background(), b.pool, "dana@example.com")
	require.NoError(t, err)
	require.Equal(t, auth.RoleAdmin, u.Role)
	require.Equal(t, "Test Admins", u.Name)
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
