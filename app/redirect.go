package app

import (
	"net/url"
	"strings"
	"unicode"
)

// safeNext is where a redirect whose target came from the request may go
// (the next= of the sign-in page, and any other): next itself when it is a
// path on this site, else "/". Every redirect built from user input goes
// through it.
func safeNext(next string) string {
	if !isLocalPath(next) {
		return "/"
	}
	return next
}

// maxNextLen bounds a redirect target: longer ones are not links of ours.
const maxNextLen = 2048

// isLocalPath reports whether p is a same-origin path, as a browser would
// read it in a Location header: it starts with a single "/" (not "//" or
// "/\", which browsers take for another host), has no scheme or host, and
// holds no backslash or control character (CR and LF would end the header
// and start another; browsers drop tab, CR and LF from URLs, so
// "/\t/evil.example" is "//evil.example"). The same holds after each round
// of percent-decoding, so that no decoding further down the line turns it
// into something else; what is still encoded after three rounds is refused.
func isLocalPath(p string) bool {
	if len(p) > maxNextLen {
		return false
	}
	s := p
	for round := 0; ; round++ {
		if !localShape(s) {
			return false
		}
		d, err := url.PathUnescape(s)
		if err != nil {
			return false
		}
		if d == s {
			break
		}
		if round == 3 {
			return false
		}
		s = d
	}
	u, err := url.Parse(p)
	return err == nil && u.Scheme == "" && u.Host == "" && u.User == nil && u.Opaque == "" &&
		strings.HasPrefix(u.Path, "/")
}

// localShape checks the characters of a path, encoded or not.
func localShape(s string) bool {
	if !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") || strings.HasPrefix(s, `/\`) {
		return false
	}
	for _, r := range s {
		if r == '\\' || unicode.IsControl(r) || r == unicode.ReplacementChar {
			return false
		}
	}
	return true
}
