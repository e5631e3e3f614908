package config

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/auth"
)

func load(vars map[string]string) (Config, error) {
	return Load(func(k string) string { return vars[k] })
}

// TestOIDCConfig: OIDC is off unless OIDC_ISSUER is set; set, it needs the
// client's id and secret; the role map is parsed at the last colon.
func TestOIDCConfig(t *testing.T) {
	t.Parallel()
	cfg, err := load(nil)
	require.NoError(t, err)
	require.Empty(t, cfg.OIDCIssuer)

	base := map[string]string{"OIDC_ISSUER": "https://id.example.com/realms/hub", "OIDC_CLIENT_ID": "imagehub", "OIDC_CLIENT_SECRET": "s3cret"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	cfg, err = load(with("OIDC_ROLE_CLAIM", "groups", "OIDC_ROLE_MAP", "imagehub-admins:admin, urn:corp:reviewers:reviewer,"))
	require.NoError(t, err)
	require.Equal(t, map[string]auth.Role{"imagehub-admins": auth.RoleAdmin, "urn:corp:reviewers": auth.RoleReviewer}, cfg.OIDCRoles)
	require.Equal(t, "openid email profile", cfg.OIDCScopes)

	for _, tc := range []struct {
		vars map[string]string
		err  string
	}{
		{map[string]string{"OIDC_CLIENT_ID": "x"}, "need OIDC_ISSUER"},
		{with("OIDC_ISSUER", "id.example.com"), "OIDC_ISSUER"},
		{with("OIDC_CLIENT_SECRET", ""), "OIDC_CLIENT_SECRET"},
		{with("OIDC_SCOPES", "email profile"), "OIDC_SCOPES"},
		{with("OIDC_ROLE_CLAIM", "groups"), "OIDC_ROLE_MAP"},
		{with("OIDC_ROLE_CLAIM", "groups", "OIDC_ROLE_MAP", "admins:root"), `"admins:root"`},
		{with("OIDC_ROLE_CLAIM", "groups", "OIDC_ROLE_MAP", "admins"), `"admins"`},
	} {
		_, err := load(tc.vars)
		require.ErrorContains(t, err, tc.err, "%v", tc.vars)
	}
}
