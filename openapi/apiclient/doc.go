// Package apiclient is a Go client of the HTTP API, generated from the
// OpenAPI description (GET /api/v1/openapi.json) by oapi-codegen, pinned in
// tools/go.mod. Do not edit apiclient.gen.go: change openapi/*.yaml and run
// `make generate`; `make check-generated` fails when it is stale.
//
// It is here as proof that a client generated from the description works:
// app's TestGeneratedClient drives a hub with it, so a description that
// generates no client, or one whose types do not decode the hub's answers,
// fails the tests. Go programs may use it too.
package apiclient
