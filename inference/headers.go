package inference

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/deepimageshub/imagehub/oip"
)

// Headers are request headers an endpoint needs on every request: a bearer
// token, an API key, a Host for a KServe ingress. Their values are secrets:
// they are sent, never shown. String, GoString and LogValue give the names
// only, so that a Headers printed by mistake leaks nothing.
type Headers map[string]string

// MaxHeaders bounds the headers of one model; MaxHeaderBytes one value.
const (
	MaxHeaders     = 32
	MaxHeaderBytes = 8 << 10
)

// refusedHeaders are headers the hub will not send for someone: the
// hop-by-hop ones (RFC 9110 §7.6.1) and those that describe the body, which
// the hub sets itself.
var refusedHeaders = []string{
	"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer",
	"Transfer-Encoding", "Upgrade", "Content-Length", "Content-Type", "Content-Encoding", "Accept-Encoding",
	"Expect", http.CanonicalHeaderKey(oip.HeaderJSONLength),
}

// Check reports what is wrong with h, in words for the admin, or "" when
// nothing is. Values are never quoted in the message.
func (h Headers) Check() string {
	if len(h) > MaxHeaders {
		return fmt.Sprintf("At most %d headers.", MaxHeaders)
	}
	seen := map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(h)) {
		v := h[name]
		canon := http.CanonicalHeaderKey(name)
		switch {
		case !httpguts.ValidHeaderFieldName(name):
			return fmt.Sprintf("%q is not a valid header name.", clip(name))
		case slices.Contains(refusedHeaders, canon):
			return fmt.Sprintf("%s is a header the hub sets itself or that only applies to one connection; it cannot be set per endpoint.", canon)
		case seen[canon]:
			return fmt.Sprintf("%s is given twice.", canon)
		case v == "" || len(v) > MaxHeaderBytes || !httpguts.ValidHeaderFieldValue(v) || strings.TrimSpace(v) != v:
			return fmt.Sprintf("The value of %s must be 1 to %d bytes without line breaks, control characters or surrounding spaces.", canon, MaxHeaderBytes)
		case canon == "Host" && strings.ContainsAny(v, "/ @"):
			return "Host is a host name and optional port, such as model.default.example.com."
		}
		seen[canon] = true
	}
	return ""
}

// Names are the header names, canonical and sorted: what may be shown.
func (h Headers) Names() []string {
	out := make([]string, 0, len(h))
	for k := range h {
		out = append(out, http.CanonicalHeaderKey(k))
	}
	slices.Sort(out)
	return out
}

// apply sets the headers on req; Host goes to req.Host, which is what Go's
// client sends as the Host header.
func (h Headers) apply(req *http.Request) {
	for k, v := range h {
		if http.CanonicalHeaderKey(k) == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
}

// scrub takes the header values out of what a server said in a failed
// answer: a server that echoes a token in its error body must not make the
// token appear in the run's record, a page or a log line. The whole value
// goes, and each of its words of 8 bytes or more (a token without its
// "Bearer").
func (h Headers) scrub(err error) error {
	if err == nil || len(h) == 0 {
		return err
	}
	var (
		c *Contract
		b *Busy
		r *Retryable
	)
	switch {
	case errors.As(err, &c):
		c.Message = h.redact(c.Message)
	case errors.As(err, &b):
		b.Message = h.redact(b.Message)
	case errors.As(err, &r) && r.Err != nil:
		if s := r.Err.Error(); h.redact(s) != s {
			r.Err = errors.New(h.redact(s))
		}
	}
	return err
}

func (h Headers) redact(s string) string {
	for _, v := range h {
		parts := append([]string{v}, strings.Fields(v)...)
		for _, p := range parts {
			if len(p) >= 8 || p == v && len(p) > 0 {
				s = strings.ReplaceAll(s, p, "[redacted]")
			}
		}
	}
	return s
}

func (h Headers) redacted() string {
	if len(h) == 0 {
		return "{}"
	}
	return "{" + strings.Join(h.Names(), ": [redacted], ") + ": [redacted]}"
}

// String gives the names only.
func (h Headers) String() string { return h.redacted() }

// GoString gives the names only, for %#v.
func (h Headers) GoString() string { return h.redacted() }

// MarshalJSON gives the names only, each with "[redacted]", so that a
// Headers inside a value encoded for a log or an answer leaks nothing. The
// one place that stores them encodes map[string]string(h) instead.
func (h Headers) MarshalJSON() ([]byte, error) {
	out := make(map[string]string, len(h))
	for _, n := range h.Names() {
		out[n] = "[redacted]"
	}
	return json.Marshal(out)
}

// LogValue gives the names only, for slog.
func (h Headers) LogValue() slog.Value { return slog.StringValue(h.redacted()) }
