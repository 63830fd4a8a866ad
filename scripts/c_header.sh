#!/usr/bin/env bash
# Generate bindings-c/include/oai.h from bindings-c/src with cbindgen (pinned), or with --check
# fail when the committed header differs from what the sources generate (CI does this).
#
# Usage: scripts/c_header.sh [--check]
# Env:   CBINDGEN  the cbindgen binary (default: installed under target/tools on first use)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version=0.29.2
cbindgen="${CBINDGEN:-$root/target/tools/bin/cbindgen}"
if [[ ! -x "$cbindgen" ]] || ! "$cbindgen" --version | grep -q "$version"; then
  cargo install --quiet --locked cbindgen --version "$version" --root "$root/target/tools"
  cbindgen="$root/target/tools/bin/cbindgen"
fi
header="$root/bindings-c/include/oai.h"
out="$(mktemp)"
trap 'rm -f "$out"' EXIT
(cd "$root" && "$cbindgen" --quiet --config bindings-c/cbindgen.toml --crate oai-c \
  --output "$out" bindings-c)
if [[ "${1:-}" == "--check" ]]; then
  if ! diff -u "$header" "$out"; then
    echo "bindings-c/include/oai.h is stale: run scripts/c_header.sh and commit it" >&2
    exit 1
  fi
  echo "bindings-c/include/oai.h is up to date"
else
  cp "$out" "$header"
  echo "wrote $header"
fi
