#!/usr/bin/env bash
# Prepare the real data the oai-train tests and examples use, from Python packages only (no
# dataset downloads): scikit-learn's bundled digits (read from its wheel, not installed) and
# CPython's pydoc topics; plus a virtualenv with the `safetensors` package that checks our
# checkpoints load in Python.
#
# Usage: scripts/fetch_training_data.sh [DIR]     (default: target/data)
# Prints the environment to export; the tests read OAI_DIGITS, OAI_TEXT and OAI_PYTHON.
set -euo pipefail
dir="${1:-target/data}"
mkdir -p "$dir/wheels"
dir="$(cd "$dir" && pwd)"
here="$(cd "$(dirname "$0")" && pwd)"
python3 -m pip download --quiet --no-deps --only-binary=:all: "scikit-learn==1.9.1" -d "$dir/wheels"
python3 "$here/export_training_data.py" "$dir" --wheel "$(ls "$dir"/wheels/scikit_learn-1.9.1-*.whl | head -1)" >&2
if [[ ! -x "$dir/venv/bin/python" ]]; then
  python3 -m venv "$dir/venv"
fi
"$dir/venv/bin/pip" install --quiet "safetensors==0.8.0" numpy
echo "export OAI_DIGITS=$dir/digits.csv OAI_TEXT=$dir/pydoc_topics.txt OAI_PYTHON=$dir/venv/bin/python"
