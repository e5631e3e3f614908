// Package openapi holds the OpenAPI 3.1 description of the HTTP API (every
// /api/v1 route of app/routes.go), served at GET /api/v1/openapi.json and
// rendered at /api/docs.
//
// The description is written as YAML, one file per area of the API
// (accounts.yaml, images.yaml, datasets.yaml, …), so that a change to one
// area touches one file. base.yaml holds the frame: info, the auth schemes,
// the error shape, the paging parameters and the shared schemas. Every other
// file holds only `paths:` and, when it needs its own, `components:`; JSON
// merges them all into one document, refusing a path, method or component
// that two files both define.
//
// To add a route: add its path (with `{name}` for each `:name` of the
// Fiber path) and method to the area's file, or to a new file here for a
// new area; app's TestOpenAPIRoutes fails until the route table and the
// description agree, and every request and response of the app tests is
// validated against it (app/openapi_check_test.go).
//
// It is OpenAPI 3.1: schemas are JSON Schema 2020-12, a value that may be
// null is typed [T, "null"] (3.0's nullable means nothing here), and the
// files are read as YAML 1.2, so a parameter named n or y stays a string.
package openapi

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

//go:embed *.yaml
var files embed.FS

// baseFile is the frame the other files add to.
const baseFile = "base.yaml"

// JSON returns the whole description as JSON. It is assembled once, on the
// first call; an error is a broken file of this package, which the tests
// catch.
func JSON() ([]byte, error) { return assembled() }

var assembled = sync.OnceValues(func() ([]byte, error) {
	doc, err := assemble(files)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("error writing the description as JSON (is a key not a string? quote status codes): %w", err)
	}
	return b, nil
})

// assemble merges base.yaml and every other YAML file of fsys into one
// document.
func assemble(fsys fs.FS) (map[string]any, error) {
	doc, err := readYAML(fsys, baseFile)
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(fsys, "*.yaml")
	if err != nil {
		return nil, fmt.Errorf("error listing the description's files: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		if name == baseFile {
			continue
		}
		part, err := readYAML(fsys, name)
		if err != nil {
			return nil, err
		}
		if err := merge(doc, part, name); err != nil {
			return nil, err
		}
	}
	return doc, nil
}

func readYAML(fsys fs.FS, name string) (map[string]any, error) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return nil, fmt.Errorf("error reading %s: %w", name, err)
	}
	// YAML 1.2 (yaml/v3): a parameter named n stays the string "n", where
	// YAML 1.1 parsers read false. Keys must be strings: quote status codes.
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("error parsing %s: %w", name, err)
	}
	return m, nil
}

// merge adds one area's paths and components to doc.
func merge(doc, part map[string]any, name string) error {
	for key, v := range part {
		switch key {
		case "paths", "components":
		default:
			return fmt.Errorf("%s: only paths and components belong in an area's file, not %q (the rest is base.yaml's)", name, key)
		}
		section, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: %s is not a mapping", name, key)
		}
		target := child(doc, key)
		// paths/{path}/{method} and components/{kind}/{name}: two levels,
		// each entry of the second defined once.
		for k1, v1 := range section {
			inner, ok := v1.(map[string]any)
			if !ok {
				return fmt.Errorf("%s: %s.%s is not a mapping", name, key, k1)
			}
			t1 := child(target, k1)
			for k2, v2 := range inner {
				if _, dup := t1[k2]; dup {
					return fmt.Errorf("%s: %s.%s.%s is defined twice", name, key, k1, k2)
				}
				t1[k2] = v2
			}
		}
	}
	return nil
}

func child(m map[string]any, key string) map[string]any {
	c, ok := m[key].(map[string]any)
	if !ok {
		c = map[string]any{}
		m[key] = c
	}
	return c
}

// Template turns a Fiber route path (/api/v1/images/:id) into the
// description's (/api/v1/images/{id}) with the parameter names left out
// ({}), so that the two can be compared whatever each names them.
func Template(path string) string {
	parts := strings.Split(path, "/")
	for i, p := range parts {
		if strings.HasPrefix(p, ":") || strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			parts[i] = "{}"
		}
	}
	return strings.Join(parts, "/")
}
