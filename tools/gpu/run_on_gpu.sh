#!/usr/bin/env bash
# On the GPU machine, from the repository root with .gpu/ beside it (see build_and_pack.sh): runs every
# GPU test, the main job, and kerascpp's and PyTorch's benchmark models in the same call, logs under
# $OUT, and prints a short table last (ratios kerascpp / PyTorch). Builds nothing. About 6 minutes.
set -u
out="${OUT:-/tmp/kerascpp-gpu}"
mkdir -p "$out"
# Unpack the programs; the data travelled beside them.
pack=/tmp/kerascpp-gpu-pack
rm -rf "$pack" && mkdir -p "$pack" && xz -dc .gpu/payload.tar.xz | tar -C "$pack" -xf -
export KERASCPP_DATASETS_DIR="$PWD/.gpu/data"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$out/gpu.txt" 2>&1
echo "profilers: $(command -v perf nsys ncu | tr "\n" " ")" >> "$out/gpu.txt"
stage() { echo "$(date +%T) $*" >> "$out/stages.txt"; }
stage tests
{ echo "== tests (all but the registry's broken-plugin folder, which lives on the build machine)"
  timeout 240 "$pack/run.sh" kerascpp_tests "~[registry]" --durations yes; echo "tests rc=$?"
  echo "== NCCL, one rank"; timeout 60 "$pack/run.sh" kerascpp_tests "[nccl]" -s 2>&1 | tail -4
  echo "== auto picks cuda"; KERASCPP_LOG_LEVEL=info timeout 60 "$pack/run.sh" fit_synthetic 2>&1 | tail -3; } > "$out/tests.txt" 2>&1
# The benchmark models, kerascpp then PyTorch (../shared/bench/torch_gpu_ref.py), one after the other.
stage kerascpp models
KERASCPP_LOG_LEVEL=warn timeout 200 "$pack/run.sh" bench_models_gpu all > "$out/models_kerascpp.txt" 2>&1
echo "rc=$?" >> "$out/models_kerascpp.txt"
stage kerascpp mixed_bfloat16 models
KERASCPP_LOG_LEVEL=warn timeout 120 "$pack/run.sh" bench_models_gpu mixed >> "$out/models_kerascpp.txt" 2>&1
echo "mixed rc=$?" >> "$out/models_kerascpp.txt"
# What the native float16/bfloat16 kernels bring: ResNet50 under mixed_bfloat16 with every op on float32 copies.
echo "resnet50_bf16 with KERASCPP_NATIVE_LOW_PRECISION=0: $(KERASCPP_NATIVE_LOW_PRECISION=0 KERASCPP_LOG_LEVEL=warn timeout 60 "$pack/run.sh" bench_models_gpu resnet50_bf16 2>&1 | tail -1)" > "$out/mixed_emulated.txt"
# Recorded steps (KERASCPP_CUDA_GRAPHS=1): training steps and inference calls replayed as one launch.
for model in fmnist_cnn imdb_lstm video_qa resnet50_infer; do
  # debug: a refused recording says why (a conditional node the driver refused, a read mid-step).
  echo "$model graphs: $(KERASCPP_CUDA_GRAPHS=1 KERASCPP_LOG_LEVEL=debug timeout 60 "$pack/run.sh" bench_models_gpu $model 2>&1 | grep -E "not recorded|not replayed|^\{" | sort -u | tail -3 | tr '\n' ' ')"
done > "$out/graphs.txt"
# auto: kept where the first replay beat a step op by op (fmnist should keep it, resnet50 b128 may not).
for model in fmnist_cnn resnet50; do
  echo "$model graphs=auto: $(KERASCPP_CUDA_GRAPHS=auto KERASCPP_LOG_LEVEL=debug timeout 60 "$pack/run.sh" bench_models_gpu $model 2>&1 | grep -E "not replayed|^\{" | tail -2 | tr '\n' ' ')"
done >> "$out/graphs.txt"
# cuDNN RNN settings side by side on imdb_lstm (the default: standard algorithm, batch-major).
for setting in "standard batch_major" "standard seq_major" "static batch_major"; do
  set -- $setting
  echo "$1 $2: $(KERASCPP_CUDNN_RNN_ALGO=$1 KERASCPP_CUDNN_RNN_LAYOUT=$2 KERASCPP_LOG_LEVEL=warn timeout 60 "$pack/run.sh" bench_models_gpu imdb_lstm 2>&1 | tail -1)"
done > "$out/rnn_algorithms.txt"
stage torch models
if [ -f .gpu/torch_gpu_ref.py ]; then
  (cd .gpu && PYTHONUNBUFFERED=1 timeout 200 python3 torch_gpu_ref.py) > "$out/models_torch.txt" 2>&1
fi
# The main job on the GPU (auto picks cuda), timed; the text classifier runs its LSTM on cuDNN.
stage main job
start=$SECONDS
timeout 120 "$pack/run.sh" fashion_mnist 12 > "$out/main_job.txt" 2>&1; echo "main job rc=$?" >> "$out/main_job.txt"
echo "main job wall $((SECONDS - start)) s" >> "$out/main_job.txt"
stage text_classifier
timeout 90 "$pack/run.sh" text_classifier 4 > "$out/text_classifier.txt" 2>&1; echo "text_classifier rc=$?" >> "$out/text_classifier.txt"
stage ops bench
timeout 60 "$pack/run.sh" bench_gpu cuda > "$out/bench_cuda_tf32.txt" 2>&1
stage layer times
# Where InceptionV3's (video_qa's frozen CNN) step goes, per layer class.
KERASCPP_LOG_LEVEL=warn timeout 60 "$pack/run.sh" bench_layer_times inception_v3 64 2 > "$out/layer_times.txt" 2>&1
stage ncu
# How close ResNet50's batch-norm, pooling and elementwise kernels come to the memory bandwidth
# (bench_layer_times says batch norm takes 3x what the bandwidth allows); needs counter access.
# Only while the run is young: the summary below must still print inside the caller's limit.
if command -v ncu >/dev/null && [ "$SECONDS" -lt 300 ]; then
  KERASCPP_LOG_LEVEL=warn timeout 90 ncu --target-processes all --kernel-name "regex:bn_|pool_|unary|binary|bias_act|reduce_" \
    --launch-skip 400 --launch-count 40 --section SpeedOfLight --csv \
    "$pack/run.sh" bench_layer_times resnet50 64 1 > "$out/ncu_resnet50.csv" 2> "$out/ncu_resnet50.err"
  echo "ncu rc=$?" >> "$out/ncu_resnet50.err"
fi
stage data parallel
# One GPU: the NCCL reducer's step and the scaling it predicts. Several: MirroredStrategy over all of them.
gpus=$(nvidia-smi -L 2>/dev/null | grep -c "^GPU")
{ KERASCPP_LOG_LEVEL=warn timeout 60 "$pack/run.sh" bench_data_parallel resnet50 64 10
  if [ "$gpus" -ge 2 ]; then
    KERASCPP_LOG_LEVEL=warn timeout 90 "$pack/run.sh" bench_data_parallel resnet50 64 10 auto --mirrored all
  fi; } > "$out/data_parallel.txt" 2>&1
stage done
echo "---- summary"
cat "$out/gpu.txt" "$out/stages.txt"
grep -E "test cases|assertions|skipped|tests rc|FAILED|using backend" "$out/tests.txt" | head -20
sed -n "/== NCCL, one rank/,/== auto picks/p" "$out/tests.txt" | head -6
grep -E "Test accuracy|main job" "$out/main_job.txt"
grep -E "rc=|Test accuracy" "$out/text_classifier.txt"
grep -v "^\[kerascpp\]" "$out/bench_cuda_tf32.txt" | head -6
cut -c1-220 "$out/rnn_algorithms.txt"
cut -c1-220 "$out/graphs.txt"
cut -c1-220 "$out/mixed_emulated.txt"
grep -v "^\[kerascpp\]" "$out/layer_times.txt" | head -14
grep -E "mirrored|MirroredStrategy" "$out/tests.txt" | head -4
grep "^{" "$out/data_parallel.txt" | cut -c1-240
tail -2 "$out/ncu_resnet50.err" 2>/dev/null
python3 - "$out/ncu_resnet50.csv" <<'PY'
import csv, sys, collections
try: rows = list(csv.DictReader(l for l in open(sys.argv[1]) if l.startswith('"')))
except Exception as e: print("ncu:", e); sys.exit()
k = collections.defaultdict(lambda: collections.defaultdict(list))
for r in rows:
    scale = {"nsecond": 1e-3, "msecond": 1e3}.get(r["Metric Unit"], 1.0)  # durations in us
    name = r["Kernel Name"].replace("(anonymous namespace)::", "").replace("keras::cuda::kernels::", "")
    k[name.replace("void ", "").split("(")[0][:60]][r["Metric Name"]].append(scale * float(r["Metric Value"].replace(",", "") or 0))
print(f"{'ncu kernel':60} {'n':>3} {'us avg':>8} {'mem %':>6} {'sm %':>6}")
for name, m in sorted(k.items(), key=lambda kv: -sum(kv[1].get("Duration", [0]))):
    d, mem, sm = m.get("Duration", [0]), m.get("Memory Throughput", [0]), m.get("Compute (SM) Throughput", [0])
    print(f"{name:60} {len(d):3} {sum(d) / len(d):8.1f} {sum(mem) / len(mem):6.1f} {sum(sm) / len(sm):6.1f}")
PY
python3 - "$out/models_kerascpp.txt" "$out/models_torch.txt" <<'PY'
import json, sys
def rows(path):
    out = {}
    try:
        for line in open(path):
            if line.startswith("{"):
                r = json.loads(line)
                if "model" in r: out.setdefault((r["model"], r.get("amp_bf16", False)), r)
                else: print(path.split("/")[-1], line.strip())
    except Exception as e: print(path, e)
    return out
k, t = rows(sys.argv[1]), rows(sys.argv[2])
print(f"{'model':16} {'kerascpp':>12} {'pytorch':>12} {'ratio':>7}")
for key in sorted(set(k) | set(t)):
    a, b = k.get(key, {}), t.get(key, {})
    name = key[0] + (" bf16" if key[1] else "")
    if "error" in a: print(f"{name:16} error: {a['error'][:100]}"); continue
    if "latency_ms" in a or "latency_ms" in b:
        x, y = a.get("latency_ms"), b.get("latency_ms")
        print(f"{name:16} {x or '-':>12} {y or '-':>12} {(x / y if x and y else float('nan')):7.2f}  latency ms, ratio kerascpp/torch (lower is better)")
    else:
        x, y = a.get("train_samples_per_s"), b.get("train_samples_per_s")
        print(f"{name:16} {x or '-':>12} {y or '-':>12} {(x / y if x and y else float('nan')):7.2f}  samples/s")
PY
