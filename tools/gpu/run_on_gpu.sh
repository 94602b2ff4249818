#!/usr/bin/env bash
# On the GPU machine, from the repository root with .gpu/ beside it (see build_and_pack.sh): runs every
# GPU test, the benchmark models of kerascpp and PyTorch in the same call, the main job and the
# recorded-step checks, then prints a short table (ratios kerascpp / PyTorch). Builds nothing.
# The whole run fits in KERASCPP_GPU_RUN_S seconds (default 400): each stage gets what is left, in order
# of importance, and is skipped when too little is. A device call returns at most 8 files, so every log
# ends up in $OUT/logs.tar.gz, and the summary in $OUT/summary.txt.
set -u
out="${OUT:-/tmp/kerascpp-gpu}"
run_s=${KERASCPP_GPU_RUN_S:-400}
logs=/tmp/kerascpp-gpu-logs
rm -rf "$logs" && mkdir -p "$out" "$logs"
pack=/tmp/kerascpp-gpu-pack
rm -rf "$pack" && mkdir -p "$pack" && xz -dc .gpu/payload.tar.xz | tar -C "$pack" -xf -
export KERASCPP_DATASETS_DIR="$PWD/.gpu/data"

# Seconds a stage may take: at most $1, and never into the 25 s kept for the summary.
cap() { local left=$((run_s - SECONDS - 25)); echo $(( $1 < left ? $1 : left )); }
stage() { echo "$(date +%T) +${SECONDS}s $*" >> "$logs/stages.txt"; }
# KERASCPP_GPU_SKIP="torch graphs ..." leaves those stages out (a short rerun after a fix).
skipped() { [[ " ${KERASCPP_GPU_SKIP:-} " == *" $1 "* ]] && echo "$(date +%T) skipped $1" >> "$logs/stages.txt"; }
# Runs "$@" under a timeout of at most $1 seconds; skipped (and said so) when under 8 s are left.
bounded() {
  local t; t=$(cap "$1"); shift
  if [ "$t" -lt 8 ]; then echo "skipped: no time left for $*"; return 99; fi
  timeout -k 5 "$t" "$@"
}

# The test cases matching a Catch2 spec, in order. A crash or a hang ends the binary, not the stage:
# the case that was running is recorded as CRASHED and the run goes on with the next one.
run_tests() {  # name spec max_s
  local name=$1 spec=$2 until=$((SECONDS + $(cap "$3")))
  local todo="$logs/$name.todo" log="$logs/tests_$name.txt" round=0 rc
  "$pack/run.sh" kerascpp_tests "$spec" --list-test-names-only | sed '/^$/d' > "$todo"
  echo "== $name: $(wc -l < "$todo") test cases" >> "$log"
  while [ -s "$todo" ] && [ $((until - SECONDS)) -gt 8 ]; do
    round=$((round + 1))
    # One exact name per line: Catch2 reads each line of -f as a spec, so its special characters are escaped.
    sed -e 's/[][\\,*~"]/\\&/g' "$todo" > "$todo.spec"
    timeout -k 5 $((until - SECONDS)) "$pack/run.sh" kerascpp_tests -f "$todo.spec" --durations yes > "$log.$round" 2>&1
    rc=$?
    cat "$log.$round" >> "$log"
    # Finished cases print "<seconds> s: <name>". Catch2 reports a signal as the failure of the case
    # that raised it (and times it); a hang or a kill leaves the running case untimed.
    local timed drop
    timed=$(grep -cE "^[0-9]+\.[0-9]+ s: " "$log.$round")
    if grep -q "due to a fatal error condition" "$log.$round"; then drop=$timed
    elif grep -qE "^test cases:|All tests passed" "$log.$round"; then echo "$name rc=$rc" >> "$log"; return
    else drop=$((timed + 1)); fi
    echo "CRASHED (rc=$rc, round $round): $(sed -n "${drop}p" "$todo")" | tee -a "$log" >> "$logs/crashed.txt"
    sed -i "1,${drop}d" "$todo"
  done
  [ -s "$todo" ] && echo "NOT RUN ($name, no time left): $(wc -l < "$todo") test cases" | tee -a "$log" >> "$logs/crashed.txt"
  echo "$name rc=incomplete" >> "$log"
}

finish() {
  stage done
  {
    echo "---- summary"
    cat "$logs/gpu.txt" "$logs/stages.txt"
    for f in "$logs"/tests_*.txt; do grep -E "^== |test cases|assertions|case\(s\) skipped|rc=|CRASHED|NOT RUN" "$f" | head -12; done
    grep -h -B2 -A12 "FAILED:" "$logs"/tests_*.txt | cut -c1-200 | head -150
    grep -E "Test accuracy|main job" "$logs/main_job.txt" 2>/dev/null
    grep -E "rc=|Test accuracy" "$logs/text_classifier.txt" 2>/dev/null
    cut -c1-220 "$logs/fit_synthetic.txt" "$logs/imdb_torch_cudnn.txt" "$logs/graphs.txt" "$logs/mixed_emulated.txt" 2>/dev/null
    echo "op by op (KERASCPP_CUDA_GRAPHS=0):"; grep "^{\"model" "$logs/models_op_by_op.txt" 2>/dev/null | cut -c1-200
    python3 - "$logs/models_kerascpp.txt" "$logs/torch_peak_memory.txt" <<'PY'
import json, sys
print("peak tensor memory, MB (kerascpp: since the model was made; PyTorch: ResNet50 only)")
for path in sys.argv[1:]:
    try:
        for line in open(path):
            if line.startswith("{") and "peak_mb" in line:
                r = json.loads(line)
                print(f"  {path.split('/')[-1]:24} {r['model']:18} bf16={r.get('amp_bf16')} b{r.get('batch')}: {r['peak_mb']}")
    except Exception as e: print(path, e)
PY
    grep -v "^\[kerascpp\]" "$logs/bench_cuda_tf32.txt" 2>/dev/null | head -6
    grep -v "^\[kerascpp\]" "$logs/layer_times.txt" 2>/dev/null | head -14
    cat "$logs/layer_times_resnet50.txt" 2>/dev/null
    grep "^{" "$logs/data_parallel.txt" 2>/dev/null | cut -c1-240
    tail -2 "$logs/ncu_resnet50.err" 2>/dev/null
    python3 - "$logs/ncu_resnet50.csv" <<'PY'
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
    python3 - "$logs/models_kerascpp.txt" "$logs/models_torch.txt" <<'PY'
import json, sys
def rows(path):
    out = {}
    try:
        for line in open(path):
            if line.startswith("{"):
                r = json.loads(line)
                if "model" in r: out.setdefault((r["model"], r.get("amp_bf16", False)), r)
                else: print(path.split("/")[-1], line.strip()[:200])
            elif "rc=" in line or "rror" in line: print(path.split("/")[-1], line.strip()[:200])
    except Exception as e: print(path, e)
    return out
k, t = rows(sys.argv[1]), rows(sys.argv[2])
print(f"{'model':16} {'kerascpp':>12} {'pytorch':>12} {'ratio':>7}")
for key in sorted(set(k) | set(t)):
    a, b = k.get(key, {}), t.get(key, {})
    name = key[0] + (" bf16" if key[1] else "")
    if "error" in a: print(f"{name:16} error: {a['error'][:150]}"); continue
    if "latency_ms" in a or "latency_ms" in b:
        x, y = a.get("latency_ms"), b.get("latency_ms")
        print(f"{name:16} {x or '-':>12} {y or '-':>12} {(x / y if x and y else float('nan')):7.2f}  latency ms, kerascpp/torch (lower is better)", a.get("host_queue_ms", ""))
    else:
        x, y = a.get("train_samples_per_s"), b.get("train_samples_per_s")
        print(f"{name:16} {x or '-':>12} {y or '-':>12} {(x / y if x and y else float('nan')):7.2f}  samples/s")
PY
  } > "$logs/summary.txt" 2>&1
  cp "$logs/summary.txt" "$out/summary.txt"
  tar -C "$logs" -czf "$out/logs.tar.gz" .
  cat "$logs/summary.txt"
}
trap 'finish; exit 143' TERM

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv > "$logs/gpu.txt" 2>&1
echo "profilers: $(command -v perf nsys ncu | tr "\n" " ")" >> "$logs/gpu.txt"

# 1. Correctness: the CUDA parity and device cases first, then every other case on the default backend
# (auto: CUDA). The registry's broken-plugin folder lives on the build machine.
stage tests cuda
run_tests cuda "[cuda]" 90
stage tests all
run_tests all "~[registry]~[cuda]" 170
stage auto picks cuda
KERASCPP_LOG_LEVEL=info bounded 30 "$pack/run.sh" fit_synthetic > "$logs/fit_synthetic.all" 2>&1
{ grep -E "cuDNN|using backend|rror" "$logs/fit_synthetic.all" | head -4; tail -2 "$logs/fit_synthetic.all"; } > "$logs/fit_synthetic.txt"

# 2. The benchmark models, kerascpp (recorded steps as the default, auto, decides; then op by op) and
# PyTorch (../shared/bench/torch_gpu_ref.py), one after the other.
stage kerascpp models
KERASCPP_LOG_LEVEL=warn bounded 110 "$pack/run.sh" bench_models_gpu all > "$logs/models_kerascpp.txt" 2>&1
echo "rc=$?" >> "$logs/models_kerascpp.txt"
KERASCPP_CUDA_GRAPHS=0 KERASCPP_LOG_LEVEL=warn bounded 60 "$pack/run.sh" bench_models_gpu all > "$logs/models_op_by_op.txt" 2>&1
stage torch models
if ! skipped torch && [ -f .gpu/torch_gpu_ref.py ]; then
  (cd .gpu && PYTHONUNBUFFERED=1 bounded 110 python3 torch_gpu_ref.py) > "$logs/models_torch.txt" 2>&1
fi

# 2a. Peak memory of ResNet50's training steps in PyTorch, with the reference's own step
# (kerascpp's is the "peak_mb" of its benchmark lines).
stage torch peak memory
if ! skipped torch && [ -f .gpu/torch_gpu_ref.py ]; then
  (cd .gpu && PYTHONUNBUFFERED=1 bounded 40 python3 ../tools/gpu/torch_peak_memory.py) 2>&1 | grep -E "peak_mb|rror" > "$logs/torch_peak_memory.txt"
fi

# 2b. imdb_lstm's step is spent inside cuDNN's RNN calls (run 27), and this machine's cuDNN (9.14) is
# older than PyTorch's (9.19): the same benchmark again on PyTorch's cuDNN, which the plugin then loads.
stage imdb_lstm on torch cudnn
skipped torch_cudnn || {
  python3 -c 'import torch; print("torch", torch.__version__, "cudnn", torch.backends.cudnn.version())' 2>&1
  dir=$(python3 - <<'PY' 2>/dev/null
import glob, os, site
for root in site.getsitepackages():
    for f in glob.glob(os.path.join(root, "nvidia", "**", "libcudnn.so.9"), recursive=True):
        print(os.path.dirname(os.path.realpath(f))); raise SystemExit
PY
)
  echo "torch's cudnn: ${dir:-not found}"
  [ -n "$dir" ] && LD_LIBRARY_PATH="$dir" KERASCPP_LOG_LEVEL=info bounded 40 "$pack/run.sh" bench_models_gpu imdb_lstm 2>&1 | grep -E "cuDNN|^\{|rror" | cut -c1-240
} > "$logs/imdb_torch_cudnn.txt" 2>&1

# 3. The main job on the GPU (auto picks cuda), timed.
stage main job
skipped main || {
start=$SECONDS
bounded 60 "$pack/run.sh" fashion_mnist 12 > "$logs/main_job.txt" 2>&1; echo "main job rc=$?" >> "$logs/main_job.txt"
echo "main job wall $((SECONDS - start)) s" >> "$logs/main_job.txt"
}

# 4. Recorded steps (KERASCPP_CUDA_GRAPHS=1): training steps and inference calls replayed as one launch.
stage graphs
skipped graphs || for model in fmnist_cnn imdb_lstm video_qa resnet50; do
  # debug: a refused recording says why (a conditional node the driver refused, a read mid-step).
  echo "$model graphs: $(KERASCPP_CUDA_GRAPHS=1 KERASCPP_LOG_LEVEL=debug bounded 40 "$pack/run.sh" bench_models_gpu $model 2>&1 | grep -E "not recorded|not replayed|rror|skipped|^\{" | sort -u | tail -3 | tr '\n' ' ')"
done > "$logs/graphs.txt"

# 5. Every test case again with every step recorded that can be (KERASCPP_CUDA_GRAPHS=1): the model
# tests' expectations were computed op by op. (The cuDNN RNN layouts, compared in run 24, are no
# longer run: seq_major and batch_major took the same time.)
stage tests graphs
skipped tests_graphs || KERASCPP_CUDA_GRAPHS=1 run_tests graphs "~[registry]~[cuda]" 90

# 6. Mixed precision, and what the native float16/bfloat16 kernels bring against float32 copies.
stage kerascpp mixed_bfloat16 models
KERASCPP_LOG_LEVEL=warn bounded 80 "$pack/run.sh" bench_models_gpu mixed >> "$logs/models_kerascpp.txt" 2>&1
echo "mixed rc=$?" >> "$logs/models_kerascpp.txt"
echo "resnet50_bf16 with KERASCPP_NATIVE_LOW_PRECISION=0: $(KERASCPP_NATIVE_LOW_PRECISION=0 KERASCPP_LOG_LEVEL=warn bounded 40 "$pack/run.sh" bench_models_gpu resnet50_bf16 2>&1 | tail -1)" > "$logs/mixed_emulated.txt"

# 7. Whatever time is left: the text classifier, the op benchmark, per-layer times, data parallel.
stage text_classifier
skipped text_classifier || bounded 40 "$pack/run.sh" text_classifier 4 > "$logs/text_classifier.txt" 2>&1; echo "text_classifier rc=$?" >> "$logs/text_classifier.txt"
stage ops bench
skipped ops || bounded 30 "$pack/run.sh" bench_gpu cuda > "$logs/bench_cuda_tf32.txt" 2>&1
stage layer times
# Where InceptionV3's (video_qa's frozen CNN) step goes, per layer class.
skipped layers || KERASCPP_LOG_LEVEL=warn bounded 40 "$pack/run.sh" bench_layer_times inception_v3 64 2 > "$logs/layer_times.txt" 2>&1
# ResNet50 per layer class in float32 and under mixed_bfloat16 (run 27: bfloat16 brought kerascpp 1.4x, PyTorch 2.2x).
skipped layers || for policy in float32 mixed_bfloat16; do
  KERASCPP_LOG_LEVEL=warn bounded 40 "$pack/run.sh" bench_layer_times resnet50 128 2 $policy | grep -E '"(model|class)"'
done > "$logs/layer_times_resnet50.txt" 2>&1
stage data parallel
skipped data_parallel || KERASCPP_LOG_LEVEL=warn bounded 40 "$pack/run.sh" bench_data_parallel resnet50 64 10 > "$logs/data_parallel.txt" 2>&1
# How close ResNet50's batch-norm, pooling and elementwise kernels come to the memory bandwidth
# (needs counter access; ncu replays each kernel, so only 40 launches after the first 400).
stage ncu
if ! skipped ncu && command -v ncu >/dev/null; then
  KERASCPP_LOG_LEVEL=warn bounded 100 ncu --target-processes all --kernel-name "regex:bn_|pool_|unary|binary|bias_act|reduce_|cast_" \
    --launch-skip 400 --launch-count 40 --section SpeedOfLight --csv \
    "$pack/run.sh" bench_layer_times resnet50 64 1 > "$logs/ncu_resnet50.csv" 2> "$logs/ncu_resnet50.err"
  echo "ncu rc=$?" >> "$logs/ncu_resnet50.err"
fi
finish
