package app

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
)

// redirectCorpus is next= as it appears in a link (one round of URL
// encoding, which the server undoes), and where the sign-in must send the
// browser: "/" for anything that is not a path on this site.
var redirectCorpus = []struct{ query, want string }{
	// Header injection and control characters.
	{"/%0d%0aX-Injected:%201", "/"},
	{"/%0aX-Injected:%201", "/"},
	{"/%0dX-Injected:%201", "/"},
	{"/images%0d%0aSet-Cookie:%20a=b", "/"},
	{"/%09/evil.example", "/"},
	{"/%00", "/"},
	{"/%7f", "/"},
	{"/%c2%85evil", "/"}, // NEL, a C1 control
	{"/%ff", "/"},        // not UTF-8
	// Backslashes, which browsers read as slashes.
	{"/%5Cevil.example", "/"},
	{"%5C%5Cevil", "/"},
	{"/images/%5C", "/"},
	// Another host.
	{"//evil.example", "/"},
	{"///evil", "/"},
	{"//evil.example/images", "/"},
	{"/%2F/evil", "/"},
	// Schemes.
	{"https://evil", "/"},
	{"http:evil", "/"},
	{"HTTPS:evil", "/"},
	{"javascript:alert(1)", "/"},
	{"JavaScript:alert(1)", "/"},
	{"data:text/html,x", "/"},
	// Encoded, once, twice, three and four times.
	{"%2F%2Fevil", "/"},
	{"/%255Cevil", "/"},
	{"/%250d%250aX-Injected:%25201", "/"},
	{"/%252F%252Fevil", "/"},
	{"/%25252F%25252Fevil", "/"},
	{"/%2525252F%2525252Fevil", "/"},
	{"/%ZZ", "/"},
	// Not a path of ours.
	{"images/abc", "/"},
	{"evil.example", "/"},
	{"", "/"},
	{"%20/images", "/"},
	{"/" + strings.Repeat("a", 3000), "/"},
	// Paths of this site, kept as they are.
	{"/", "/"},
	{"/uploads", "/uploads"},
	{"%2Fimages%2Fabc%3Fx%3D1", "/images/abc?x=1"},
	{"%2Freview%3Flabel%3Dcat%26campaign_id%3D7", "/review?label=cat&campaign_id=7"},
	{"%2Fdatasets%2F1%2Fversions%2F2%23exports", "/datasets/1/versions/2#exports"},
	{"%2Fimages%3Fq%3Da%2520b", "/images?q=a%20b"},
}

func TestRedirectSafeNext(t *testing.T) {
	t.Parallel()
	for _, tc := range redirectCorpus {
		next, err := url.QueryUnescape(tc.query)
		if err != nil {
			next = tc.query // sent as is; the server would see it so
		}
		require.Equal(t, tc.want, safeNext(next), "next=%s", tc.query)
	}
	// Characters no link can carry, as the server might get them.
	for _, bad := range []string{"/\r\nX-Injected: 1", "/\t/evil", "/\\evil", `\\evil`, "/a\x00", "/\u0085", "/a\\b"} {
		require.Equal(t, "/", safeNext(bad), "%q", bad)
	}
}

// TestRedirectNext follows next= through the real server: a signed-in user
// opening /login?next=… and a sign-in form posted with next=…; the answer
// never carries an injected header and always points at this site.
func TestRedirectNext(t *testing.T) {
	t.Parallel()
	tb := setup(t)
	signedIn, _ := tb.userWithRole(t, "carl@example.com", auth.RoleContributor)
	anonymous := tb.client(t)
	base, err := url.Parse(tb.base)
	require.NoError(t, err)

	check := func(t *testing.T, res *response, want string) {
		t.Helper()
		require.Equal(t, http.StatusSeeOther, res.StatusCode, "%.300s", res.body)
		for k := range res.Header {
			require.NotEqual(t, "X-Injected", k)
		}
		require.NotContains(t, res.Header.Get("Set-Cookie"), "a=b")
		loc := res.Header.Get("Location")
		require.Equal(t, want, loc)
		u, err := base.Parse(loc)
		require.NoError(t, err)
		require.Equal(t, base.Host, u.Host, "Location %q leaves the site", loc)
		require.Equal(t, base.Scheme, u.Scheme)
	}
	for _, tc := range redirectCorpus {
		t.Run(tc.query, func(t *testing.T) {
			check(t, signedIn.get("/login?next="+tc.query), tc.want)

			// The sign-in page carries only a safe next in its form.
			page := anonymous.get("/login?next=" + tc.query)
			require.Equal(t, http.StatusOK, page.StatusCode)
			field, _ := page.doc(t).Find(`input[name="next"]`).Attr("value")
			require.Equal(t, tc.want, field)

		})
	}
	// The form posted with next (as an attacker's page would), one of each
	// kind: each sign-in costs a bcrypt.
	for _, query := range []string{"/%0d%0aX-Injected:%201", "/%09/evil.example", "/%5Cevil.example", "//evil.example",
		"HTTPS:evil", "%2F%2Fevil", "/%250d%250aX-Injected:%25201", "images/abc", "%2Fimages%2Fabc%3Fx%3D1"} {
		t.Run("sign-in form with "+query, func(t *testing.T) {
			next, err := url.QueryUnescape(query)
			require.NoError(t, err)
			want := "/"
			if query == "%2Fimages%2Fabc%3Fx%3D1" {
				want = "/images/abc?x=1"
			}
			c := tb.client(t)
			check(t, c.form("/login", url.Values{"email": {"carl@example.com"}, "password": {testPassword}, "next": {next}}), want)
		})
	}
}
