#!/usr/bin/env bash
# oai's training speed next to JAX's and PyTorch's on this machine, in one go: the train bench's
# two workloads (benches/src/lib.rs) in oai (`train_speed`, release build), in JAX
# (jax_train.py, CPU) and in PyTorch (torch_train.py, CPU: eager and torch.compile, PyTorch's
# default threads and threads pinned to the cores), short runs (ROUNDS rounds of STEPS steps)
# and one long run (LONG steps), then one table (compare.py) of best and median steps/s and oai's
# verifiable, logged step over the fastest baseline. Not part of the test command.
#
# Usage: benches/baselines/train_vs_baselines.sh [ROUNDS [STEPS [LONG]]]
#        (default 7 rounds of 20 steps, and 1 round of 2,000 steps; LONG 0 skips the long run)
# env JAX_VENV, TORCH_VENV: the virtualenvs to install JAX and PyTorch into (default
# target/jax-venv, target/torch-venv; PyTorch from PyPI brings its CUDA wheels, ~5.4 GB)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-7}" steps="${2:-20}" long="${3:-2000}"
jax_venv="${JAX_VENV:-target/jax-venv}" torch_venv="${TORCH_VENV:-target/torch-venv}"
for venv in "$jax_venv" "$torch_venv"; do
  [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
done
"$jax_venv/bin/pip" install --quiet "jax[cpu]==0.10.2" "numpy<3"
"$torch_venv/bin/pip" install --quiet "torch==2.15.0" "numpy<3"
cargo build --release --quiet -p oai-benches --bin train_speed
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT

run() { # ROUNDS STEPS [OAI_CONFIG]: every framework and configuration (of oai's, those whose
  # name starts with OAI_CONFIG), into $out/ROUNDSxSTEPS.jsonl
  local r="$1" s="$2" f="$out/$1x$2.jsonl"
  echo "oai: $r round(s) of $s steps per trainer" >&2
  target/release/train_speed "$r" "$s" all "${3:-}" >>"$f"
  echo "JAX: the same" >&2
  "$jax_venv/bin/python" benches/baselines/jax_train.py --rounds "$r" --steps "$s" >>"$f"
  for flags in "" "--pin" "--compile" "--compile --pin"; do
    echo "PyTorch ${flags:-eager}: the same" >&2
    # shellcheck disable=SC2086 # the flags are words
    "$torch_venv/bin/python" benches/baselines/torch_train.py --rounds "$r" --steps "$s" $flags >>"$f"
  done
}

run "$rounds" "$steps"
# the long run: of oai's configurations only what a node runs
[[ "$long" == 0 ]] || run 1 "$long" "verifiable, logged"
"$torch_venv/bin/python" benches/baselines/compare.py "$out"/*.jsonl
echo "(on $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
