#!/usr/bin/env bash
# Check that the workspace (every crate and target: oai-train, the `cuda_bits` bench, the `oai`
# command) builds with the `cuda` feature, on a machine without a GPU or a CUDA install: nvcc,
# its headers and libraries come from pinned PyPI wheels in a virtualenv.
# candle's kernels are compiled to PTX/cubins by its build script, so this takes minutes.
# The features are the test command's plus `cuda`: after `cargo clippy` with the same features
# only candle and what depends on it are checked again (a subset of packages would resolve the
# dependencies' features anew and check most of them a second time).
#
# Usage: scripts/check_cuda.sh [VENV_DIR] [--install-only]   (default: target/nvcc-venv)
# --install-only fills the virtualenv and stops (CI downloads it while it compiles other things).
set -euo pipefail
venv="${1:-target/nvcc-venv}"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
# One CUDA release for every part (cudarc 0.19 knows CUDA up to 13.4; ptxas must match nvvm).
"$venv/bin/pip" install --quiet "nvidia-cuda-nvcc==13.2.86" "nvidia-cuda-crt==13.2.86" \
  "nvidia-cuda-runtime==13.2.*" "nvidia-nvvm==13.2.86" "nvidia-cuda-cccl==13.2.86"
[[ "${2:-}" == "--install-only" ]] && exit 0
cuda="$(cd "$venv" && pwd)/$(cd "$venv" && ls -d lib/python3*/site-packages/nvidia/cu13)"
export PATH="$cuda/bin:$PATH" CUDA_ROOT="$cuda" CUDA_PATH="$cuda" CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
nvcc --version | tail -1
# One invocation: each separate one resolves features anew and compiles candle's kernels again.
cargo check --workspace --all-targets \
  --features oai/ipfs,oai/qdrant,oai/federation,oai/alloy,oai/cuda,oai-benches/cuda,oai-cli/cuda
