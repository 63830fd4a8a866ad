#!/usr/bin/env bash
# Fuzz every decoder that reads bytes from a peer or a store (fuzz/fuzz_targets: CAR, dag-pb /
# UnixFS, DAG-CBOR objects, safetensors checkpoints, the federation's gRPC messages) with
# cargo-fuzz (libFuzzer), SECONDS each (default 30), each over a copy of its committed corpus
# (fuzz/corpus/TARGET), so the tree stays as it was. A crash fails the run; libFuzzer leaves
# the input under fuzz/artifacts/TARGET to reproduce it:
#   RUSTC_BOOTSTRAP=1 cargo fuzz run -s none --dev TARGET fuzz/artifacts/TARGET/crash-...
# RUSTC_BOOTSTRAP lets the machine's one stable toolchain take the flags cargo-fuzz passes;
# no sanitizer is used (`-s none`), coverage guidance is kept.
# Usage: scripts/fuzz.sh [SECONDS] [TOOLS_DIR]   (cargo-fuzz is installed into TOOLS_DIR/bin)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
secs="${1:-30}"
tools="${2:-$root/.ci/tmp/tools}"
export PATH="$tools/bin:$PATH"
command -v cargo-fuzz >/dev/null \
  || cargo install --quiet --locked cargo-fuzz --version 0.13.2 --root "$tools"
export RUSTC_BOOTSTRAP=1
cd "$root/fuzz"
s=$(date +%s)
cargo fuzz build -s none --dev
echo "fuzz targets built in $(( $(date +%s) - s )) s"
for target in $(cargo fuzz list); do
  work="$(mktemp -d)"
  cp -r "corpus/$target/." "$work/"
  s=$(date +%s)
  rc=0
  cargo fuzz run -s none --dev "$target" "$work" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 \
    >"$work.log" 2>&1 || rc=$?
  grep -E "^stat::(number_of_executed_units|peak_rss_mb)|ERROR|panicked|SUMMARY|Test unit written" \
    "$work.log" || true
  [[ $rc == 0 ]] || tail -40 "$work.log"
  rm -rf "$work" "$work.log"
  echo "fuzz $target: ${secs} s asked, $(( $(date +%s) - s )) s taken, rc $rc"
  [[ $rc == 0 ]] || { echo "fuzz $target found a failing input (fuzz/artifacts/$target)"; exit 1; }
done
