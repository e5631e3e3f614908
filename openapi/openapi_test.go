package openapi

import (
	"context"
	"testing"
	"testing/fstest"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/require"
)

// TestDescriptionIsValid loads the assembled description as OpenAPI 3.1 and
// checks it against the specification (every $ref resolves, every path
// parameter is declared, schemas are well formed).
func TestDescriptionIsValid(t *testing.T) {
	t.Parallel()
	b, err := JSON()
	require.NoError(t, err)
	doc, err := openapi3.NewLoader().LoadFromData(b)
	require.NoError(t, err)
	require.True(t, doc.IsOpenAPI31OrLater(), "the description says it is %s", doc.OpenAPI)
	require.NoError(t, doc.Validate(context.Background()))
	require.NotNil(t, doc.Paths.Find("/api/v1/images/{id}"), "an area's paths are merged in")
	require.Contains(t, doc.Components.Schemas, "Problem", "base.yaml's components are kept")
	require.Contains(t, doc.Components.Schemas, "Dataset", "an area's components are merged in")
}

// TestOperationIDs: every operation has an operationId, unique and in
// lowerCamelCase, the names generated clients give their methods
// (listImages, createLabel, …; see openapi/apiclient).
func TestOperationIDs(t *testing.T) {
	t.Parallel()
	b, err := JSON()
	require.NoError(t, err)
	doc, err := openapi3.NewLoader().LoadFromData(b)
	require.NoError(t, err)
	seen := map[string]string{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			where := method + " " + path
			require.Regexp(t, `^[a-z][a-zA-Z0-9]*$`, op.OperationID, "%s: operationId", where)
			require.NotContains(t, seen, op.OperationID, "%s repeats the operationId of %s", where, seen[op.OperationID])
			seen[op.OperationID] = where
		}
	}
}

// TestAssembleRefusesDuplicates: two files defining one method of a path,
// or one component, is an error rather than one silently winning.
func TestAssembleRefusesDuplicates(t *testing.T) {
	t.Parallel()
	base := &fstest.MapFile{Data: []byte("openapi: 3.1.0\npaths: {}\n")}
	for name, second := range map[string]string{
		"path":      "paths:\n  /a:\n    get: {summary: two}\n",
		"component": "components:\n  schemas:\n    A: {type: string}\n",
	} {
		t.Run(name, func(t *testing.T) {
			fsys := fstest.MapFS{
				"base.yaml": base,
				"a.yaml":    {Data: []byte("paths:\n  /a:\n    get: {summary: one}\ncomponents:\n  schemas:\n    A: {type: integer}\n")},
				"b.yaml":    {Data: []byte(second)},
			}
			_, err := assemble(fsys)
			require.ErrorContains(t, err, "defined twice")
		})
	}
	t.Run("methods of one path from two files", func(t *testing.T) {
		fsys := fstest.MapFS{
			"base.yaml": base,
			"a.yaml":    {Data: []byte("paths:\n  /a:\n    get: {summary: one}\n")},
			"b.yaml":    {Data: []byte("paths:\n  /a:\n    post: {summary: two}\n")},
		}
		doc, err := assemble(fsys)
		require.NoError(t, err)
		require.Len(t, doc["paths"].(map[string]any)["/a"], 2)
	})
	t.Run("a key that belongs in base.yaml", func(t *testing.T) {
		fsys := fstest.MapFS{"base.yaml": base, "a.yaml": {Data: []byte("info: {title: x}\n")}}
		_, err := assemble(fsys)
		require.ErrorContains(t, err, "only paths and components")
	})
}

func TestTemplate(t *testing.T) {
	t.Parallel()
	require.Equal(t, "/api/v1/datasets/{}/versions/{}", Template("/api/v1/datasets/:id/versions/:n"))
	require.Equal(t, "/api/v1/datasets/{}/versions/{}", Template("/api/v1/datasets/{id}/versions/{n}"))
	require.Equal(t, "/api/v1/review/next", Template("/api/v1/review/next"))
}
