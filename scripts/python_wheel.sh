#!/usr/bin/env bash
# Build the `oai` Python wheel with maturin, install it into a fresh virtualenv (so a file
# missing from the wheel fails), run its pytest suite, check the stub (mypy's stubtest) and run
# the Python examples.
#
# Usage: scripts/python_wheel.sh [WORK_DIR] [PROFILE]   (defaults: target/python, release)
# CI passes the dev profile: it shares the target dir the test command built.
# The digits example reads $OAI_DIGITS (scripts/fetch_training_data.sh); without it, it is
# skipped with a note.
set -euo pipefail
work="${1:-target/python}"
profile="${2:-release}"
root="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$work"
work="$(cd "$work" && pwd)"
t0=$(date +%s)
if [[ ! -x "$work/build/bin/maturin" ]]; then
  python3 -m venv "$work/build"
  "$work/build/bin/pip" install --quiet "maturin==1.16.0"
fi
rm -rf "$work/wheels"
(cd "$root" && "$work/build/bin/maturin" build --profile "$profile" \
  -m bindings-python/Cargo.toml -o "$work/wheels" -i python3 --quiet)
wheel="$(ls "$work"/wheels/oai-*.whl)"
echo "built $(basename "$wheel") in $(( $(date +%s) - t0 )) s"
rm -rf "$work/venv"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet "$wheel" "pytest==8.4.2" "safetensors==0.8.0" "mypy==1.19.1"
# run from outside the source tree: the tests import the installed wheel, not python/oai
cd "$work"
rm -rf "$work/example-store" "$work/digits-store"   # the examples start from empty stores
"$work/venv/bin/python" -m pytest -q -p no:cacheprovider "$root/bindings-python/tests"
# the hand-written stub of the native module against the module itself (names, signatures,
# defaults); PEP 800's @disjoint_base is not written: every class is @final, which says more
"$work/venv/bin/python" -m mypy.stubtest oai._native --ignore-disjoint-bases \
  --allowlist "$root/bindings-python/stubtest-allowlist.txt"
"$work/venv/bin/python" "$root/examples/python/dataset_fork.py" "$work/example-store"
if [[ -n "${OAI_DIGITS:-}" ]]; then
  "$work/venv/bin/python" "$root/examples/python/train_digits.py" "$OAI_DIGITS" "$work/digits-store"
elif [[ -n "${OAI_REQUIRE_REAL:-}" ]]; then
  echo "OAI_DIGITS is not set (scripts/fetch_training_data.sh)" >&2; exit 1
else
  echo "skipping examples/python/train_digits.py: OAI_DIGITS is not set"
fi
"$work/venv/bin/python" "$root/examples/python/overhead.py" 100
echo "python stage: $(( $(date +%s) - t0 )) s"
