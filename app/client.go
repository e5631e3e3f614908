package app

import (
	"net/netip"

	"github.com/gofiber/fiber/v2"

	"github.com/deepimageshub/imagehub/clientip"
)

// clientAddr is the address a request came from: the TCP peer, or what a
// trusted proxy (TRUSTED_PROXIES) said in X-Forwarded-For. Use it, never
// c.IP() or the header itself, wherever an address is counted or recorded.
func (s *Server) clientAddr(c *fiber.Ctx) netip.Addr {
	peer, _ := netip.AddrFromSlice(c.Context().RemoteIP())
	var xff []string
	for _, v := range c.Request().Header.PeekAll(fiber.HeaderXForwardedFor) {
		xff = append(xff, string(v))
	}
	return s.clientIPs.Client(peer, xff)
}

// clientKey is the client as throttles count it (see clientip.Key).
func (s *Server) clientKey(c *fiber.Ctx) string { return clientip.Key(s.clientAddr(c)) }
