package clientip_test

import (
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/deepimageshub/imagehub/clientip"
)

func TestClient(t *testing.T) {
	t.Parallel()
	r, err := clientip.New([]string{"10.0.0.0/8", " 192.168.1.7 ", "2001:db8::/32"})
	require.NoError(t, err)
	none, err := clientip.New(nil)
	require.NoError(t, err)

	cases := []struct {
		name string
		r    *clientip.Resolver
		peer string
		xff  []string
		want string
	}{
		{"no proxies trusted: the peer, whatever it says", none, "10.1.1.1", []string{"1.2.3.4"}, "10.1.1.1"},
		{"untrusted peer", r, "8.8.8.8", []string{"1.2.3.4"}, "8.8.8.8"},
		{"trusted peer, no header", r, "10.1.1.1", nil, "10.1.1.1"},
		{"one trusted hop", r, "10.1.1.1", []string{"1.2.3.4"}, "1.2.3.4"},
		{"spoofed left entries are skipped", r, "10.1.1.1", []string{"6.6.6.6, 1.2.3.4"}, "1.2.3.4"},
		{"two trusted hops", r, "10.1.1.1", []string{"6.6.6.6, 1.2.3.4, 10.2.2.2"}, "1.2.3.4"},
		{"several headers", r, "10.1.1.1", []string{"6.6.6.6", "1.2.3.4, 192.168.1.7"}, "1.2.3.4"},
		{"single trusted address", r, "192.168.1.7", []string{"5.5.5.5"}, "5.5.5.5"},
		{"neighbour of a single address is not trusted", r, "192.168.1.8", []string{"5.5.5.5"}, "192.168.1.8"},
		{"garbage stops at the proxy", r, "10.1.1.1", []string{"1.2.3.4, nonsense"}, "10.1.1.1"},
		{"all trusted: the leftmost", r, "10.1.1.1", []string{"10.3.3.3, 10.2.2.2"}, "10.3.3.3"},
		{"port and brackets", r, "10.1.1.1", []string{"[2a00:1::5]:443"}, "2a00:1::5"},
		{"ipv4 with port", r, "10.1.1.1", []string{"1.2.3.4:5678"}, "1.2.3.4"},
		{"mapped peer", r, "::ffff:10.1.1.1", []string{"1.2.3.4"}, "1.2.3.4"},
		{"ipv6 proxy", r, "2001:db8::1", []string{"1.2.3.4"}, "1.2.3.4"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.r.Client(netip.MustParseAddr(tc.peer), tc.xff)
			require.Equal(t, tc.want, got.String())
		})
	}
}

func TestNewRefusesBadCIDR(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"10.0.0.0/33", "not-an-address", "10.0.0.0/8/1"} {
		_, err := clientip.New([]string{bad})
		require.Error(t, err, bad)
		require.Contains(t, err.Error(), bad)
	}
}

func TestKey(t *testing.T) {
	t.Parallel()
	require.Equal(t, "1.2.3.4", clientip.Key(netip.MustParseAddr("1.2.3.4")))
	require.Equal(t, "1.2.3.4", clientip.Key(netip.MustParseAddr("::ffff:1.2.3.4")))
	require.Equal(t, "2a00:1:2:3::/64", clientip.Key(netip.MustParseAddr("2a00:1:2:3:4:5:6:7")))
}
