#!/usr/bin/env bash
# onnxruntime.sh: install ONNX Runtime's shared library, which `imagehub worker
# --onnx` and the tests of worker/onnxworker load, into the git-ignored
# .bin/onnxruntime/ when it is not there yet. `make onnxruntime` (and so
# `make test`) runs it; the program itself never downloads anything.
#
# github.com/yalue/onnxruntime_go v1.27.0 is written against the C API of ONNX
# Runtime 1.24.1. Microsoft's own CPU build of that release ships inside the
# npm package onnxruntime-node@1.24.1 (bin/napi-v6/<os>/<arch>/); we take the
# tarball from the npm registry, check it against the integrity hash the
# registry publishes for that version (pinned below), and extract the one
# library for this machine.
#
#   scripts/onnxruntime.sh          install when missing; prints the library's path
#   scripts/onnxruntime.sh path     print the path it installs to
set -euo pipefail

version=1.24.1
tarball=https://registry.npmjs.org/onnxruntime-node/-/onnxruntime-node-$version.tgz
integrity=sha512-Ex/oUXKdhDoxvlNxBT3oYtW0MH88yYpPlXQeVQUXpcJQmN24usd/8RCoPLN5kCHwDsiZ+nqsnjciyFRl423dQw==

root=$(cd "$(dirname "$0")/.." && pwd)
dir=$root/.bin/onnxruntime

die() { echo "onnxruntime: $*" >&2; exit 1; }

case "$(uname -s)/$(uname -m)" in
Linux/x86_64) member=linux/x64/libonnxruntime.so.1 lib=libonnxruntime.so.1 ;;
Linux/aarch64 | Linux/arm64) member=linux/arm64/libonnxruntime.so.1 lib=libonnxruntime.so.1 ;;
Darwin/arm64) member=darwin/arm64/libonnxruntime.$version.dylib lib=libonnxruntime.dylib ;;
*) die "onnxruntime-node@$version has no library for $(uname -s) $(uname -m); build ONNX Runtime $version and set ONNXRUNTIME_LIB to it" ;;
esac

if [ "${1:-}" = path ]; then
	echo "$dir/$lib"
	exit 0
fi
if [ -f "$dir/$lib" ]; then
	echo "$dir/$lib"
	exit 0
fi

command -v curl >/dev/null || die "curl is needed to fetch onnxruntime-node@$version from the npm registry"
command -v openssl >/dev/null || die "openssl is needed to check the download's integrity hash"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "onnxruntime: fetching $tarball" >&2
curl -fsSL --retry 3 -o "$tmp/ort.tgz" "$tarball" || die "error fetching $tarball"
got=sha512-$(openssl dgst -sha512 -binary "$tmp/ort.tgz" | base64 | tr -d '\n')
[ "$got" = "$integrity" ] || die "onnxruntime-node-$version.tgz has integrity $got, not the registry's $integrity"
tar -xzf "$tmp/ort.tgz" -C "$tmp" "package/bin/napi-v6/$member" || die "the tarball has no bin/napi-v6/$member"
mkdir -p "$dir"
# Moved into place last, so that an interrupted install leaves nothing that
# looks installed.
mv "$tmp/package/bin/napi-v6/$member" "$dir/$lib.part"
mv "$dir/$lib.part" "$dir/$lib"
echo "$dir/$lib"
