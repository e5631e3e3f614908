// Package static embeds the site's CSS, scripts and images and serves each
// under a path that carries a hash of its content, so browsers may cache them
// for a year and still see every change at once.
//
// htmx.min.js is htmx 2.0.11 from the htmx.org npm package, unmodified
// (licence in htmx.LICENSE.txt).
//
// apidocs/ is Swagger UI from the swagger-ui-dist npm package (pinned in
// package.json; `make apidocs` copies it here): swagger-ui.css as is, and
// swagger-ui-bundle.js gzipped (1.7 MB, 0.46 MB so) as
// swagger-ui-bundle.js.gz. A file NAME.gz is served as NAME, compressed to
// clients that accept gzip and inflated for the others.
//
// The review screen is native ES modules (review/*.js and rle.js). They
// import each other by their path here ("review/queue.js"), and ImportMap
// maps each path to its hashed URL: a module's URL changes with its
// content, and the page (never cached) carries the map.
package static

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"path"
	"sort"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// The Node tests of static/test/ are not served.
//
//go:embed *.css *.js *.svg review/*.js apidocs/*.css apidocs/*.js.gz
var files embed.FS

// Prefix is where static files are served.
const Prefix = "/static/"

type asset struct {
	body        []byte
	contentType string
	hashedPath  string
	// gzipped: body is gzip of the file (it was embedded as NAME.gz).
	gzipped bool
}

// byName, byHashedPath and the import map are computed once from the
// embedded files; they are derived data, not configuration.
var (
	byName, byHashedPath       = index()
	importMap, importMapSHA256 = buildImportMap()
)

func index() (map[string]*asset, map[string]*asset) {
	names, hashed := map[string]*asset{}, map[string]*asset{}
	err := fs.WalkDir(files, ".", func(name string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		body, err := files.ReadFile(name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		gzipped := strings.HasSuffix(name, ".gz")
		name = strings.TrimSuffix(name, ".gz")
		a := &asset{
			body:        body,
			contentType: mime.TypeByExtension(path.Ext(name)),
			hashedPath:  Prefix + hex.EncodeToString(sum[:5]) + "/" + name,
			gzipped:     gzipped,
		}
		if a.contentType == "" {
			a.contentType = "application/octet-stream"
		}
		names[name] = a
		hashed[a.hashedPath] = a
		return nil
	})
	if err != nil {
		panic("static: " + err.Error())
	}
	return names, hashed
}

// modules are the files the review screen's import map names: its modules
// and the RLE codec they import.
func modules() []string {
	var out []string
	for name := range byName {
		if strings.HasPrefix(name, "review/") && strings.HasSuffix(name, ".js") || name == "rle.js" {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func buildImportMap() (string, string) {
	imports := map[string]string{}
	for _, name := range modules() {
		imports[name] = byName[name].hashedPath
	}
	// encoding/json sorts the keys, so the map and its hash are stable.
	b, err := json.Marshal(map[string]any{"imports": imports})
	if err != nil {
		panic("static: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return string(b), "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// ImportMap is the JSON of the review screen's import map, for an inline
// <script type="importmap"> (Chromium reads import maps only inline). Its
// text is exactly what ImportMapSource hashes.
func ImportMap() string { return importMap }

// ImportMapSource is the CSP source ('sha256-…') that allows the inline
// import map of ImportMap and nothing else inline.
func ImportMapSource() string { return importMapSHA256 }

// ModulePaths are the hashed URLs of the review screen's modules, for
// <link rel="modulepreload">, so the browser fetches them all at once
// rather than one level of imports after another.
func ModulePaths() []string {
	var out []string
	for _, name := range modules() {
		out = append(out, byName[name].hashedPath)
	}
	return out
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
	if a.gzipped {
		c.Vary(fiber.HeaderAcceptEncoding)
		if !strings.Contains(c.Get(fiber.HeaderAcceptEncoding), "gzip") {
			body, err := inflate(a.body)
			if err != nil {
				return err
			}
			return c.Send(body)
		}
		c.Set(fiber.HeaderContentEncoding, "gzip")
	}
	return c.Send(a.body)
}

// inflate is the file a gzipped asset holds, for the rare client that does
// not take gzip (every browser does).
func inflate(gz []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		return nil, fmt.Errorf("error reading a gzipped static file: %w", err)
	}
	return io.ReadAll(zr)
}
