// Package clientip works out which client address a request came from: the
// TCP peer, or, when the peer is a proxy we were told to trust, the address
// that proxy (and any trusted proxy before it) put in X-Forwarded-For.
//
// Throttling and audit records key on this address, so a client must not be
// able to choose it: a forwarded address is believed only when every hop to
// its right is a trusted proxy.
package clientip

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Resolver knows which proxies are trusted. The zero Resolver trusts none.
type Resolver struct {
	trusted []netip.Prefix
}

// New returns a Resolver trusting the proxies in cidrs ("10.0.0.0/8",
// "2001:db8::/32"; a bare address means just that address).
func New(cidrs []string) (*Resolver, error) {
	r := &Resolver{}
	for _, s := range cidrs {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("error parsing trusted proxy %q: want a CIDR like 10.0.0.0/8", s)
			}
			a = a.Unmap()
			r.trusted = append(r.trusted, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("error parsing trusted proxy %q: want a CIDR like 10.0.0.0/8", s)
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		r.trusted = append(r.trusted, p.Masked())
	}
	return r, nil
}

func (r *Resolver) isTrusted(a netip.Addr) bool {
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Client returns the client address of a request from peer carrying the
// given X-Forwarded-For header values (all of them, in order). The chain is
// walked from the right, skipping trusted proxies; the first address that is
// not a trusted proxy is the client. A malformed entry stops the walk at the
// proxy that passed it on.
func (r *Resolver) Client(peer netip.Addr, xff []string) netip.Addr {
	peer = peer.Unmap()
	if !r.isTrusted(peer) {
		return peer
	}
	var hops []string
	for _, h := range xff {
		hops = append(hops, strings.Split(h, ",")...)
	}
	cur := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			return cur
		}
		cur = a
		if !r.isTrusted(a) {
			return a
		}
	}
	return cur
}

// parseHop reads one X-Forwarded-For entry: an address, perhaps with a port
// or in brackets.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		if a, err := netip.ParseAddr(host); err == nil {
			return a.Unmap(), true
		}
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil {
			return a.Unmap(), true
		}
	}
	return netip.Addr{}, false
}

// Key is the address as throttles count it: an IPv4 address itself, an IPv6
// address by its /64, since one subscriber is usually given a whole /64.
func Key(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}
