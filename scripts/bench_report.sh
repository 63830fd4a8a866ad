#!/usr/bin/env bash
# The bench report in one command: runs the benches the issues asked for (data, train, rag,
# chain),
# each printing its side-by-side figures and recording them as rows (ours next to the baseline
# measured in the same run), then prints one table of the ratios and writes it as a docs page.
# Criterion's own measurements are skipped; run a bench alone for those.
#
# Usage: scripts/bench_report.sh [OUT.md]      (default: docs/benchmarks.md)
# Env:   the benches' own: OAI_BENCH_MB (data, default 100), OAI_BENCH_STEPS (train, default
#        20 a round), OAI_BENCH_VECTORS (rag search, default here 20000), OAI_MINILM and
#        OAI_WORDNET (rag's model and search rows; absent without them), OAI_TEXT.
# Takes a release build (~15 min on 2 cores the first time) and a few minutes of benches.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${1:-docs/benchmarks.md}"
rows="$root/target/bench-report.jsonl"
mkdir -p target
rm -f "$rows"
export OAI_BENCH_REPORT="$rows" OAI_BENCH_VECTORS="${OAI_BENCH_VECTORS:-20000}"
cargo bench -p oai-benches --bench data --bench train --bench rag --bench chain
commit="$(git rev-parse --short HEAD)"
git diff --quiet HEAD -- crates benches || commit="$commit with uncommitted changes"
BENCH_COMMIT="$commit" BENCH_DATE="$(date -u +%F)" \
  cargo run --release -q -p oai-benches --bin bench_report -- "$rows" "$out"
