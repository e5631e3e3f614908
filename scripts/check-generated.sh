#!/usr/bin/env bash
# check-generated.sh: regenerate templ, sqlc and the API client
# (openapi/apiclient) in a scratch copy and compare them with the tree, so
# that stale generated code fails `make test`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

stale=0
# sqlc has its own comparison.
if ! go tool -modfile=tools/go.mod sqlc -f sqlc.yaml diff >"$scratch/sqlc.diff" 2>&1; then
  cat "$scratch/sqlc.diff" >&2
  stale=1
fi
# templ: generate from a copy of views/ and compare the generated files.
# Run from the scratch root so file names in the output match (views/x.templ).
templ=$(go tool -n templ)
cp -r views "$scratch/views"
rm -f "$scratch"/views/*_templ.go # templ skips outputs newer than their source
(cd "$scratch" && "$templ" generate -path views >/dev/null 2>&1)
for f in "$scratch"/views/*_templ.go; do
  if ! cmp -s "$f" "views/$(basename "$f")"; then
    echo "stale: views/$(basename "$f")" >&2
    stale=1
  fi
done
for f in views/*_templ.go; do
  [ -f "$scratch/views/$(basename "$f")" ] || { echo "orphan: $f (its .templ file is gone)" >&2; stale=1; }
done
# The Go client generated from the OpenAPI description.
scripts/gen-apiclient.sh "$scratch/apiclient.gen.go"
if ! cmp -s "$scratch/apiclient.gen.go" openapi/apiclient/apiclient.gen.go; then
  echo "stale: openapi/apiclient/apiclient.gen.go" >&2
  stale=1
fi
if [ "$stale" = 1 ]; then
  echo "generated code is stale: run make generate" >&2
  exit 1
fi
echo "generated code is up to date"
