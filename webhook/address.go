package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/deepimageshub/imagehub/problem"
)

// MaxURLLength caps an endpoint's URL.
const MaxURLLength = 2000

// checkURL refuses what can never be a webhook receiver: anything but an
// absolute http or https URL with a host, and, unless allowPrivate, a host
// that names this machine or a private network outright. A name that
// resolves to such an address is refused at each delivery instead
// (guardedTransport), where the address actually dialled is known.
func checkURL(raw string, allowPrivate bool) (string, error) {
	bad := func(msg string) error { return problem.BadInput("invalid_url", "url", msg) }
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", problem.BadInput("missing_field", "url", "Give the URL that should receive the events.")
	}
	if len(raw) > MaxURLLength {
		return "", bad(fmt.Sprintf("The URL is at most %d characters.", MaxURLLength))
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "" {
		return "", bad("The URL must be an absolute http:// or https:// URL with a host.")
	}
	if u.Fragment != "" {
		return "", bad("The URL must not have a #fragment.")
	}
	if allowPrivate {
		return u.String(), nil
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return "", bad("The URL names this machine; webhooks go to public addresses (WEBHOOK_ALLOW_PRIVATE=true allows others).")
	}
	if ip, err := netip.ParseAddr(host); err == nil && !public(ip) {
		return "", bad("The URL names a private, loopback or link-local address; webhooks go to public addresses (WEBHOOK_ALLOW_PRIVATE=true allows others).")
	}
	return u.String(), nil
}

// cgnat is the carrier-grade NAT range, private in practice though
// netip.Addr.IsPrivate does not say so.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// public reports whether ip is an address on the public internet: not
// loopback, private, link-local (cloud metadata lives at 169.254.169.254),
// multicast or unspecified.
func public(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsValid() && !ip.IsLoopback() && !ip.IsPrivate() && !ip.IsLinkLocalUnicast() &&
		!ip.IsLinkLocalMulticast() && !ip.IsInterfaceLocalMulticast() && !ip.IsMulticast() &&
		!ip.IsUnspecified() && !cgnat.Contains(ip) && !(ip.Is4() && ip.As4()[0] == 0)
}

var errPrivateAddress = errors.New("the endpoint's address is private, loopback or link-local (WEBHOOK_ALLOW_PRIVATE is off)")

// newHTTPClient is the client deliveries are sent with: no proxy from the
// environment, no redirects followed (a 3xx is a failure, so a receiver
// cannot bounce the hub to an internal address), and unless allowPrivate
// every address dialled is checked after name resolution, which also
// defeats a name that resolves to a public address once and a private one
// the next time.
func newHTTPClient(timeout time.Duration, allowPrivate bool) *http.Client {
	d := &net.Dialer{Timeout: timeout}
	if !allowPrivate {
		d.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !public(ap.Addr()) {
				return errPrivateAddress
			}
			return nil
		}
	}
	t := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport: t,
		Timeout:   timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
