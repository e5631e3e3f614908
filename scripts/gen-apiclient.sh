#!/usr/bin/env bash
# gen-apiclient.sh [OUT]: generate the Go client of the API (openapi/apiclient)
# from the assembled description, into OUT (default the package's own file).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=${1:-openapi/apiclient/apiclient.gen.go}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
go run ./openapi/internal/describe >"$scratch/openapi.json"
go tool -modfile=tools/go.mod oapi-codegen -config openapi/apiclient/oapi-codegen.yaml -o "$out" "$scratch/openapi.json"
