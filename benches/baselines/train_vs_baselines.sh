#!/usr/bin/env bash
# oai's training speed next to JAX's on this machine, in one go: the train bench's two workloads
# (benches/src/lib.rs) in oai (`train_speed`, release build) and in JAX (jax_train.py, CPU),
# then one table of steps/s and the ratio for each. Not part of the test command.
#
# Usage: benches/baselines/train_vs_jax.sh [ROUNDS [STEPS]]   (default 7 rounds of 20 steps)
# env JAX_VENV: the virtualenv to install JAX into (default target/jax-venv)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-7}" steps="${2:-20}"
venv="${JAX_VENV:-target/jax-venv}"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet "jax[cpu]==0.10.2" "numpy<3"
cargo build --release --quiet -p oai-benches --bin train_speed
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
echo "oai: $rounds rounds of $steps steps per trainer" >&2
target/release/train_speed "$rounds" "$steps" | tee "$out/oai.jsonl"
echo "JAX: the same" >&2
"$venv/bin/python" benches/baselines/jax_train.py --rounds "$rounds" --steps "$steps" --oai "$out/oai.jsonl"
