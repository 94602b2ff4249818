#!/usr/bin/env bash
# Configures and builds kerascpp (Release) into ./build, or the folder given as $BUILD_DIR.
# Extra arguments go to cmake, e.g. tools/build.sh -DKERASCPP_SANITIZE=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${BUILD_DIR:-build}"
cuda_args=()
# Use the CUDA toolkit where it is installed outside PATH.
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  cuda_args=(-DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc)
fi
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" "${cuda_args[@]}" "$@"
cmake --build "$build_dir" -j"$(nproc)"
