#!/usr/bin/env bash
# On the GPU machine, from the repository root with .gpu/ beside it (see build_and_pack.sh): runs every
# GPU test, the main job and the benchmarks once, logs under $OUT, and prints a short table last.
# Builds nothing.
set -u
out="${OUT:-/tmp/kerascpp-gpu}"
mkdir -p "$out"
# Unpack the programs; the data travelled beside them.
pack=/tmp/kerascpp-gpu-pack
rm -rf "$pack" && mkdir -p "$pack" && xz -dc .gpu/payload.tar.xz | tar -C "$pack" -xf -
export KERASCPP_DATASETS_DIR="$PWD/.gpu/data"
run() { "$pack/run.sh" "$@"; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/gpu.txt" 2>&1
{ echo "== tests (all but the registry's broken-plugin folder, which lives on the build machine)"
  timeout 300 "$pack/run.sh" kerascpp_tests "~[registry]" --durations yes; echo "tests rc=$?"
  echo "== NCCL, one rank"; timeout 60 "$pack/run.sh" kerascpp_tests "[nccl]" -s 2>&1 | tail -4
  echo "== auto picks cuda"; KERASCPP_LOG_LEVEL=info timeout 60 "$pack/run.sh" fit_synthetic 2>&1 | tail -3; } > "$out/tests.txt" 2>&1
# The main job on the GPU (auto picks cuda), timed.
start=$SECONDS
timeout 300 "$pack/run.sh" fashion_mnist 12 > "$out/main_job.txt" 2>&1; echo "main job rc=$?" >> "$out/main_job.txt"
echo "main job wall $((SECONDS - start)) s" >> "$out/main_job.txt"
# The sequence examples: the video question-answering model (InceptionV3 over frames) and a text classifier.
start=$SECONDS
timeout 180 "$pack/run.sh" video_qa 8 64 3 > "$out/video_qa.txt" 2>&1; echo "video_qa rc=$? wall $((SECONDS - start)) s" >> "$out/video_qa.txt"
start=$SECONDS
timeout 120 "$pack/run.sh" text_classifier 4 > "$out/text_classifier.txt" 2>&1; echo "text_classifier rc=$? wall $((SECONDS - start)) s" >> "$out/text_classifier.txt"
timeout 120 "$pack/run.sh" bench_gpu cuda > "$out/bench_cuda_tf32.txt" 2>&1
# Data parallel through NCCL with one rank: backward time, overlap counters, predicted 8-GPU scaling.
KERASCPP_LOG_LEVEL=warn timeout 120 "$pack/run.sh" bench_data_parallel resnet50 128 10 nccl > "$out/bench_data_parallel.txt" 2>&1
# Where ResNet50's training step goes, per layer class (no Nsight Systems on that machine).
KERASCPP_LOG_LEVEL=warn timeout 120 "$pack/run.sh" bench_layer_times resnet50 64 3 > "$out/bench_layer_times.txt" 2>&1
KERASCPP_TF32=0 timeout 120 "$pack/run.sh" bench_gpu cuda > "$out/bench_cuda_fp32.txt" 2>&1
if [ -f .gpu/torch_gpu_ref.py ]; then
  # Only the fmnist_cnn reference: the other models need the frontend issues.
  (cd .gpu && timeout 180 python3 -c "
import torch, torch_gpu_ref as r
torch.manual_seed(0); torch.backends.cudnn.benchmark = True
import json; print(json.dumps({'torch': torch.__version__, 'gpu': torch.cuda.get_device_name(0)}))
m = r.KerasCNN().to('cuda')
r.train_bench('fmnist_cnn', m, [torch.rand(128, 1, 28, 28, device='cuda')], torch.randint(0, 10, (128,), device='cuda'), r.F.cross_entropy, n=50)
") > "$out/torch_ref.txt" 2>&1
fi
echo "---- summary"
cat "$out/gpu.txt"
grep -E "test cases|assertions|skipped|tests rc|FAILED|using backend" "$out/tests.txt" | head -20
sed -n "/== NCCL, one rank/,/== auto picks/p" "$out/tests.txt" | head -6
grep -E "Test accuracy|main job" "$out/main_job.txt"
grep "s/step" "$out/main_job.txt" | tail -2 | cut -c1-160
grep -E "rc=|loss .* ->|Total params|Test accuracy" "$out/video_qa.txt" "$out/text_classifier.txt"
grep "s/step" "$out/video_qa.txt" | tail -1 | cut -c1-160
cat "$out/bench_layer_times.txt" "$out/bench_data_parallel.txt" "$out/bench_cuda_tf32.txt" "$out/bench_cuda_fp32.txt" "$out/torch_ref.txt" 2>/dev/null | grep -v "^\[kerascpp\]" | head -20
