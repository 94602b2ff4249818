#!/usr/bin/env bash
# On a build machine: builds Release with the CUDA plugin and packs what the GPU machine needs into
# .gpu/ (kept out of git, under the 64 MiB a device call carries): the programs and libraries as one
# xz archive, Fashion-MNIST, and PyTorch's reference script. Then, on the GPU machine, from the
# repository root: tools/gpu/run_on_gpu.sh (logs under $OUT, a short table last).
set -euo pipefail
cd "$(dirname "$0")/../.."
tools/build.sh
stage=build/gpu-stage
rm -rf "$stage" .gpu
tools/gpu/pack.sh "$stage" build/bin/kerascpp_tests build/bin/bench_gpu build/bin/fit_synthetic build/bin/fashion_mnist build/bin/video_qa build/bin/text_classifier build/bin/bench_models_gpu build/bin/bench_data_parallel build/bin/bench_layer_times \
  build/lib/libkerascpp.so.0 build/lib/libkerascpp_backend_cpu.so build/lib/libkerascpp_backend_cuda.so \
  build/lib/libkerascpp_comm_nccl.so
mkdir -p .gpu/data/fashion-mnist
tar -C "$stage" -cf - . | xz -T0 -6 > .gpu/payload.tar.xz
cp /usr/share/datasets/fashion-mnist/*.gz .gpu/data/fashion-mnist/
mkdir -p .gpu/fixtures && cp tests/fixtures/*.json .gpu/fixtures/
if [ -f ../shared/bench/torch_gpu_ref.py ]; then cp ../shared/bench/torch_gpu_ref.py .gpu/; fi
du -sh .gpu
