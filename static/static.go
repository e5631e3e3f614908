// Package static embeds the site's CSS, scripts and images and serves each
// under a path that carries a hash of its content, so browsers may cache them
// for a year and still see every change at once.
//
// htmx.min.js is htmx 2.0.11 from the htmx.org npm package, unmodified
// (licence in htmx.LICENSE.txt).
package static

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"path"
	"strings"

	"github.com/gofiber/fiber/v2"
)

//go:embed *.css *.js *.svg
var files embed.FS

// Prefix is where static files are served.
const Prefix = "/static/"

type asset struct {
	body        []byte
	contentType string
	hashedPath  string
}

// byName and byHashedPath are computed once from the embedded files; they are
// derived data, not configuration.
var byName, byHashedPath = index()

func index() (map[string]*asset, map[string]*asset) {
	names, hashed := map[string]*asset{}, map[string]*asset{}
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		panic("static: " + err.Error())
	}
	for _, e := range entries {
		body, err := files.ReadFile(e.Name())
		if err != nil {
			panic("static: " + err.Error())
		}
		sum := sha256.Sum256(body)
		a := &asset{
			body:        body,
			contentType: mime.TypeByExtension(path.Ext(e.Name())),
			hashedPath:  Prefix + hex.EncodeToString(sum[:5]) + "/" + e.Name(),
		}
		if a.contentType == "" {
			a.contentType = "application/octet-stream"
		}
		names[e.Name()] = a
		hashed[a.hashedPath] = a
	}
	return names, hashed
}

// Path returns the URL path of an embedded file, with its content hash.
// It panics on a name that is not embedded: that is a bug caught by any test
// that renders the page.
func Path(name string) string {
	a, ok := byName[name]
	if !ok {
		panic("static: no file " + name)
	}
	return a.hashedPath
}

// Handler serves the embedded files under Prefix. A path whose hash is stale
// gets 404, never another version of the file.
func Handler(c *fiber.Ctx) error {
	a, ok := byHashedPath[c.Path()]
	if !ok {
		return fiber.ErrNotFound
	}
	c.Set(fiber.HeaderCacheControl, "public, max-age=31536000, immutable")
	c.Set(fiber.HeaderContentType, a.contentType)
	if strings.HasPrefix(a.contentType, "text/") || strings.Contains(a.contentType, "javascript") {
		c.Set("X-Content-Type-Options", "nosniff")
	}
	return c.Send(a.body)
}
