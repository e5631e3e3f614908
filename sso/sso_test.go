package sso

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
)

func parseClaims(t *testing.T, s string) claims {
	t.Helper()
	var c claims
	require.NoError(t, json.Unmarshal([]byte(s), &c))
	return c
}

// TestRoleClaim: a role claim is a string or an array of strings, found by
// name or by a dotted path; the highest mapped value wins, and values that
// map to nothing (or are not strings) give contributor.
func TestRoleClaim(t *testing.T) {
	t.Parallel()
	s := &Service{set: Settings{RoleMap: map[string]auth.Role{
		"imagehub-admins": auth.RoleAdmin, "imagehub-reviewers": auth.RoleReviewer, "urn:corp:premium": auth.RolePremium,
	}}}
	for _, tc := range []struct {
		name, claims, claim string
		want                auth.Role
	}{
		{"string", `{"groups": "imagehub-reviewers"}`, "groups", auth.RoleReviewer},
		{"array, highest wins", `{"groups": ["staff", "imagehub-reviewers", "imagehub-admins"]}`, "groups", auth.RoleAdmin},
		{"value with colons", `{"groups": ["urn:corp:premium"]}`, "groups", auth.RolePremium},
		{"nested path", `{"realm_access": {"roles": ["imagehub-admins"]}}`, "realm_access.roles", auth.RoleAdmin},
		{"dotted name first", `{"a.b": "imagehub-reviewers", "a": {"b": "imagehub-admins"}}`, "a.b", auth.RoleReviewer},
		{"nothing maps", `{"groups": ["staff"]}`, "groups", auth.RoleContributor},
		{"claim missing", `{}`, "groups", auth.RoleContributor},
		{"not strings", `{"groups": [1, true, {"x": "imagehub-admins"}]}`, "groups", auth.RoleContributor},
		{"an object", `{"groups": {"imagehub-admins": true}}`, "groups", auth.RoleContributor},
		{"case matters", `{"groups": "IMAGEHUB-ADMINS"}`, "groups", auth.RoleContributor},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, s.mapRole(parseClaims(t, tc.claims).strings(tc.claim)))
		})
	}
}

// TestEmailVerified: only true (or the string "true" some providers send)
// counts as verified.
func TestEmailVerified(t *testing.T) {
	t.Parallel()
	for claims, want := range map[string]bool{
		`{"email_verified": true}`:    true,
		`{"email_verified": "true"}`:  true,
		`{"email_verified": false}`:   false,
		`{"email_verified": "false"}`: false,
		`{"email_verified": 1}`:       false,
		`{}`:                          false,
	} {
		require.Equal(t, want, parseClaims(t, claims).verified("email_verified"), claims)
	}
}

// TestDisplayName: the new account's name comes from the first claim that
// has one, cleaned of control characters and cut to 100 characters.
func TestDisplayName(t *testing.T) {
	t.Parallel()
	long := ""
	for range 30 {
		long += "Ada "
	}
	for claims, want := range map[string]string{
		`{"name": "Ada Lovelace", "given_name": "X"}`:   "Ada Lovelace",
		`{"given_name": "Ada", "family_name": "King"}`:  "Ada King",
		`{"name": " \n ", "preferred_username": "ada"}`: "ada",
		`{"name": "Ada\r\nX-Injected: 1"}`:              "Ada X-Injected: 1",
		`{}`:                                            "ada.k",
		`{"name": "` + long + `"}`:                      long[:99],
	} {
		require.Equal(t, want, parseClaims(t, claims).displayName("ada.k@example.com"), claims)
	}
}

// TestErrorCode: the provider's error code, which came through the URL, is
// shown only as lower-case letters, digits and underscores.
func TestErrorCode(t *testing.T) {
	t.Parallel()
	require.Equal(t, "access_denied", errorCode("access_denied"))
	require.Equal(t, "scriptalert1script", errorCode("<script>alert(1)</script>"))
	require.Equal(t, "unknown error", errorCode("%%%"))
}
