package static

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http/httptest"
	"os"
	"regexp"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/require"
)

// TestImportMap: every module the review screen's modules import, by a
// static or a dynamic import, is in the import map, and each URL of the map
// serves that module as JavaScript, cacheable for a year; the CSP source is
// the hash of the map's exact text.
func TestImportMap(t *testing.T) {
	var m struct {
		Imports map[string]string `json:"imports"`
	}
	require.NoError(t, json.Unmarshal([]byte(ImportMap()), &m))
	require.Contains(t, m.Imports, "review/main.js")
	require.Contains(t, m.Imports, "rle.js")
	require.Len(t, ModulePaths(), len(m.Imports))

	a := fiber.New()
	a.Get(Prefix+"*", Handler)
	spec := regexp.MustCompile(`(?m)(?:^import .* from |\bimport\()"([^"]+)"`)
	for name, url := range m.Imports {
		require.Equal(t, Path(name), url)
		res, err := a.Test(httptest.NewRequest("GET", url, nil))
		require.NoError(t, err)
		require.Equal(t, 200, res.StatusCode, url)
		require.Contains(t, res.Header.Get("Content-Type"), "javascript", url)
		require.Equal(t, "public, max-age=31536000, immutable", res.Header.Get("Cache-Control"), url)
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		for _, s := range spec.FindAllStringSubmatch(string(body), -1) {
			require.Contains(t, m.Imports, s[1], "%s imports %s, which the import map lacks", name, s[1])
		}
	}
	sum := sha256.Sum256([]byte(ImportMap()))
	require.Equal(t, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'", ImportMapSource())
	_, err := files.Open("test/rle.test.js")
	require.Error(t, err, "the Node tests are not served")
}

// TestAPIDocsAssets: Swagger UI is served from the gzipped copy, compressed
// to clients that take gzip and inflated for the others; and the copy is
// the swagger-ui-dist release package.json pins, where node_modules holds
// it (make test installs it; `make apidocs` refreshes the copy).
func TestAPIDocsAssets(t *testing.T) {
	a := fiber.New()
	a.Get(Prefix+"*", Handler)
	url := Path("apidocs/swagger-ui-bundle.js")
	req := httptest.NewRequest("GET", url, nil)
	req.Header.Set("Accept-Encoding", "gzip, br")
	res, err := a.Test(req)
	require.NoError(t, err)
	require.Equal(t, 200, res.StatusCode)
	require.Equal(t, "gzip", res.Header.Get("Content-Encoding"))
	require.Contains(t, res.Header.Get("Content-Type"), "javascript")
	zr, err := gzip.NewReader(res.Body)
	require.NoError(t, err)
	gunzipped, err := io.ReadAll(zr)
	require.NoError(t, err)

	res, err = a.Test(httptest.NewRequest("GET", url, nil))
	require.NoError(t, err)
	require.Empty(t, res.Header.Get("Content-Encoding"))
	plain, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, gunzipped, plain)
	require.Contains(t, string(plain[:2000]), "SwaggerUIBundle")

	installed, err := os.ReadFile("../node_modules/swagger-ui-dist/swagger-ui-bundle.js")
	if errors.Is(err, fs.ErrNotExist) {
		t.Log("node_modules/swagger-ui-dist is not installed: the copy is not compared")
		return
	}
	require.NoError(t, err)
	require.True(t, bytes.Equal(installed, plain), "static/apidocs is not the swagger-ui-dist of package.json: run make apidocs")
	css, err := os.ReadFile("../node_modules/swagger-ui-dist/swagger-ui.css")
	require.NoError(t, err)
	ours, err := files.ReadFile("apidocs/swagger-ui.css")
	require.NoError(t, err)
	require.True(t, bytes.Equal(css, ours), "static/apidocs/swagger-ui.css differs from node_modules': run make apidocs")
}
