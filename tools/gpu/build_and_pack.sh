#!/usr/bin/env bash
# On a build machine: builds Release with the CUDA plugin and packs everything the GPU machine needs
# into .gpu/ (kept out of git). Then, from the repository root on the GPU machine:
#   tools/gpu/run_on_gpu.sh        (writes logs under $OUT and prints a short table last)
set -euo pipefail
cd "$(dirname "$0")/../.."
tools/build.sh
rm -rf .gpu
tools/gpu/pack.sh .gpu build/bin/kerascpp_tests build/bin/bench_gpu build/bin/fit_synthetic \
  build/lib/libkerascpp.so.0 build/lib/libkerascpp_backend_cpu.so build/lib/libkerascpp_backend_cuda.so
if [ -f ../shared/bench/torch_gpu_ref.py ]; then cp ../shared/bench/torch_gpu_ref.py .gpu/; fi
du -sh .gpu
