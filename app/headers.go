package app

import (
	"context"
	"net/url"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/deepimageshub/imagehub/static"
)

// securityPolicy is the set of headers every answer carries.
type securityPolicy struct {
	// pageCSP is the Content-Security-Policy of every page: scripts and
	// styles only from static files of this site, nothing may frame it.
	pageCSP string
	// reviewCSP is the review screen's: pageCSP and the one inline script
	// it has, its import map, allowed by its hash (Chromium takes import
	// maps only inline).
	reviewCSP string
	// consoleCSP is the job console's (riverui, a React app built by
	// others): as strict as it runs under.
	consoleCSP string
	// docsCSP is the API docs page's (Swagger UI): pageCSP, and the data:
	// URIs of the icons its stylesheet holds.
	docsCSP string
	// hsts is the Strict-Transport-Security value; empty unless BASE_URL
	// is https.
	hsts string
}

// newSecurityPolicy builds the headers for a deployment. imageOrigin is
// where browsers fetch images from when the blob store hands out presigned
// URLs (S3); empty when the hub serves them itself.
func newSecurityPolicy(baseURL, imageOrigin string) securityPolicy {
	img := "'self'"
	if imageOrigin != "" {
		img += " " + imageOrigin
	}
	common := []string{
		"default-src 'self'",
		"img-src " + img,
		"object-src 'none'",
		"base-uri 'none'",
		"form-action 'self'",
		"frame-ancestors 'none'",
	}
	p := securityPolicy{
		pageCSP:   strings.Join(append([]string{"script-src 'self'", "style-src 'self'"}, common...), "; "),
		reviewCSP: strings.Join(append([]string{"script-src 'self' " + static.ImportMapSource(), "style-src 'self'"}, common...), "; "),
		// riverui's libraries (goober, next-themes, React's hoisted styles)
		// add <style> elements: inline styles, but scripts stay 'self'.
		consoleCSP: strings.Join(append([]string{"script-src 'self'", "style-src 'self' 'unsafe-inline'"}, common...), "; "),
	}
	docs := append([]string{"script-src 'self'", "style-src 'self'"}, common...)
	for i, d := range docs {
		if strings.HasPrefix(d, "img-src ") {
			docs[i] = d + " data:"
		}
	}
	p.docsCSP = strings.Join(docs, "; ")
	if u, err := url.Parse(baseURL); err == nil && u.Scheme == "https" {
		p.hsts = "max-age=31536000"
	}
	return p
}

// presignedOrigin is the origin (scheme://host) of the blob store's
// presigned URLs, or "" when it has none. Presigning is done locally, so
// this reaches no server.
func (s *Server) presignedOrigin() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	raw, ok, err := s.blobs.URL(ctx, "csp-probe", time.Minute)
	if err != nil || !ok {
		if err != nil {
			s.logger.Warn("cannot tell where the blob store's presigned URLs point; images from it may be blocked by the pages' CSP", "error", err)
		}
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// securityHeaders sets the headers every answer carries, before anything
// else runs so that error pages have them too: no MIME sniffing, no
// referrer to other sites, no framing, the page CSP, and HSTS behind https.
// The job console replaces the CSP with its own.
func (s *Server) securityHeaders(c *fiber.Ctx) error {
	h := &c.Response().Header
	h.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	h.Set(fiber.HeaderReferrerPolicy, "same-origin")
	h.Set(fiber.HeaderXFrameOptions, "DENY")
	h.Set(fiber.HeaderContentSecurityPolicy, s.security.pageCSP)
	if s.security.hsts != "" {
		h.Set(fiber.HeaderStrictTransportSecurity, s.security.hsts)
	}
	return c.Next()
}
