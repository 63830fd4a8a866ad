#!/usr/bin/env bash
# oai's generation speed next to llama.cpp's on this machine, in one go: `generate_speed`
# (release build; oai on the file's blocks and on the f32 weights imported from it, candle's
# quantized_llama) and llama.cpp through llama-cpp-python (built from source for this CPU by
# pip), on the same GGUF file and the same prompt token ids, the same threads (the pool's: all
# cores), greedy, best of ROUNDS rounds. Not part of the test command.
#
# Usage: benches/baselines/generate_vs_llamacpp.sh [GGUF [NEW [ROUNDS]]]
#        (GGUF defaults to $OAI_SMOLLM2, from scripts/fetch_models.sh; 80 new tokens, 3 rounds)
# env LLAMACPP_VENV: the virtualenv to build llama-cpp-python into (default target/llamacpp-venv;
# the build compiles llama.cpp, ~10 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/../.."
gguf="${1:-${OAI_SMOLLM2:?a GGUF file: the first argument or OAI_SMOLLM2}}"
new="${2:-80}" rounds="${3:-3}"
venv="${LLAMACPP_VENV:-target/llamacpp-venv}"
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet "llama-cpp-python==0.3.36" "numpy<3"
cargo build --release --quiet -p oai-benches --bin generate_speed
out="$(target/release/generate_speed "$gguf" "$new" "$rounds")"
echo "$out"
ids="$(sed -n 's/^prompt ids: //p' <<<"$out")"
"$venv/bin/python" benches/baselines/llamacpp_generate.py "$gguf" "$ids" "$new" "$rounds" "$(nproc)"
