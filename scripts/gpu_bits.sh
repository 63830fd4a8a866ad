#!/usr/bin/env bash
# Measure how repeatable native CUDA training is and how far its bits are from the CPU's
# (benches/benches/cuda_bits.rs; results go to docs/training.md, "GPUs").
#
#   scripts/gpu_bits.sh build [DIR]        on a build machine with Rust, no GPU needed: builds the
#                                          bench with `--features cuda` and writes DIR/cuda_bits.gz
#                                          (default DIR: target/gpu-bits)
#   scripts/gpu_bits.sh run [DIR] [OUT]    on the GPU machine, no Rust needed: runs that binary
#                                          twice, compares the two processes' log roots and writes
#                                          OUT/cuda_bits.1.txt, OUT/cuda_bits.2.txt (default OUT: DIR)
#
# Build: nvcc comes from pinned PyPI wheels (CUDA_WHEELS, default 13.0.88: candle's kernels are
# PTX that the GPU's driver compiles, so the PTX must not be newer than the driver; 13.0 suits
# drivers 580+). The binary links dynamically against libcuda, the CUDA runtime, cuBLAS,
# cuBLASLt, cuRAND and NVRTC; the build machine has only the runtime (from the wheels), so the
# others are stand-ins generated from cudarc's bindings (every function, empty, under the real
# soname), and the loader binds every symbol to the real libraries on the GPU machine.
#
# Run: the libraries are looked up in the loader's cache and under /usr and /opt (PyTorch's
# wheels carry the CUDA runtime, cuBLAS and cuRAND); OAI_BITS_STEPS sets the steps per run
# (default 30).
set -euo pipefail
cmd="${1:-}"
dir="${2:-target/gpu-bits}"
# What the binary loads (its NEEDED entries, and cuBLASLt, which cuBLAS loads); NVRTC is linked
# but never needed, so the linker drops it.
libs=(libcuda.so.1 libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10)

# The cudarc version in Cargo.lock.
cudarc_version() {
  awk '/^name = "cudarc"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

build() {
  local venv="target/nvcc13.0-venv" version="${CUDA_WHEELS:-13.0.88}"
  [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "nvidia-cuda-nvcc==$version" "nvidia-cuda-crt==$version" \
    "nvidia-nvvm==$version" "nvidia-cuda-runtime==$version" "nvidia-cuda-cccl==13.0.85"
  local cuda
  cuda="$(cd "$venv" && pwd)/$(cd "$venv" && ls -d lib/python3*/site-packages/nvidia/cu13)"
  local stubs cudarc
  stubs="$(pwd)/target/gpu-bits-stubs"
  cudarc="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-"$(cudarc_version)" | head -1)"
  mkdir -p "$stubs/lib"
  for pair in driver:libcuda.so.1 cublas:libcublas.so.13 cublaslt:libcublasLt.so.13 \
    curand:libcurand.so.10 nvrtc:libnvrtc.so.13; do
    local module="${pair%%:*}" soname="${pair#*:}"
    grep -ohE 'pub unsafe fn [A-Za-z0-9_]+' "$cudarc/src/$module/sys/mod.rs" | sort -u |
      sed 's/pub unsafe fn \(.*\)/void \1(void) {}/' > "$stubs/$module.c"
    cc -shared -fPIC -Wl,-soname,"$soname" -o "$stubs/lib/${soname%.so.*}.so" "$stubs/$module.c"
  done
  # candle's kernels also link the CUDA runtime, which the nvcc wheels carry.
  ln -sf "$cuda/lib/libcudart.so.13" "$stubs/lib/libcudart.so"
  # cudarc searches the lib/ of every one of these for the libraries it links.
  export PATH="$cuda/bin:$PATH" CUDA_ROOT="$cuda" CUDA_PATH="$cuda" CUDA_HOME="$stubs"
  export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
  export CARGO_TARGET_DIR="target/gpu-bits-target"
  nvcc --version | tail -1
  local exe
  exe="$(cargo bench -p oai-benches --features cuda --bench cuda_bits --no-run \
    --message-format=json | sed -n 's/.*"executable":"\([^"]*cuda_bits[^"]*\)".*/\1/p' | tail -1)"
  # Stripped and compressed (candle's PTX makes it ~50 MB, ~13 MB gzipped) to travel light.
  mkdir -p "$dir"
  strip -o "$dir/cuda_bits" "$exe"
  gzip -9 -f "$dir/cuda_bits"
  ls -l "$dir/cuda_bits.gz"
}

run() {
  local out="${3:-$dir}" paths=() lib found
  for lib in "${libs[@]}"; do
    found="$(ldconfig -p | awk -v l="$lib" '$1 == l { print $NF; exit }')"
    [[ -n "$found" ]] || found="$(find /usr /opt -name "$lib" 2>/dev/null | head -1)"
    [[ -n "$found" ]] || { echo "gpu_bits: $lib not found on this machine" >&2; exit 1; }
    paths+=("$(dirname "$found")")
  done
  export LD_LIBRARY_PATH
  LD_LIBRARY_PATH="$(printf '%s\n' "${paths[@]}" | awk '!seen[$0]++' | paste -sd:)${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  mkdir -p "$out"
  local exe
  exe="$(mktemp -d)/cuda_bits"
  gzip -dc "$dir/cuda_bits.gz" > "$exe"
  chmod +x "$exe"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
  for i in 1 2; do
    "$exe" | tee "$out/cuda_bits.$i.txt"
  done
  if diff <(grep ^FINGERPRINT "$out/cuda_bits.1.txt") <(grep ^FINGERPRINT "$out/cuda_bits.2.txt"); then
    echo "two processes: every run's log root is the same"
  else
    echo "two processes: log roots differ (lines above)"
  fi
}

case "$cmd" in
  build) build ;;
  run) run "$@" ;;
  *) sed -n '2,21p' "$0"; exit 2 ;;
esac
