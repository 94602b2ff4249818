#!/usr/bin/env bash
# One benchmark model on the CPU, side by side in one run: kerascpp, Python Keras 3 (JAX) and PyTorch,
# newest from PyPI in a virtual environment this script makes, all on 2 threads. Prints each
# framework's JSON line, then the ratios. The reference scripts come from ../shared/bench.
#   tools/bench/run_cpu_rivals.sh [fmnist_cnn (default) | imdb_lstm | video_qa | resnet50_infer | transformer |
#                                  resnet50_train]
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${KERASCPP_BENCH_VENV:-.venv-bench}"
refs="${KERASCPP_BENCH_REFS:-../shared/bench}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q keras jax jaxlib torch torchvision
fi
model="${1:-fmnist_cnn}"
# The rivals: ../shared/bench's scripts, or ours for the models they lack (transformer, resnet50_train).
keras_ref=("$refs/keras_ref.py" "$model") torch_ref=("$refs/torch_cpu_ref.py" "$model")
case "$model" in
  fmnist_cnn) kcpp=(build/bin/bench_fmnist_cpu) ;;
  imdb_lstm | video_qa | resnet50_infer) kcpp=(build/bin/bench_models_cpu "$model") ;;
  transformer)
    kcpp=(build/bin/bench_models_cpu transformer)
    keras_ref=(tools/bench/transformer_ref.py keras) torch_ref=(tools/bench/transformer_ref.py torch) ;;
  resnet50_train)
    kcpp=(build/bin/bench_models_cpu resnet50_train)
    keras_ref=(tools/bench/resnet50_train_ref.py keras) torch_ref=(tools/bench/resnet50_train_ref.py torch) ;;
  *) echo "unknown model '$model': expected fmnist_cnn, imdb_lstm, video_qa, resnet50_infer, transformer or resnet50_train" >&2
     exit 2 ;;
esac
threads=2
out=$(mktemp -d)
# /usr/bin/time reports each process's peak resident memory.
OMP_NUM_THREADS=$threads /usr/bin/time -f '%M' -o "$out/kcpp.mem" "${kcpp[@]}" 2>/dev/null | tee "$out/kcpp.json"
XLA_FLAGS="--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads=$threads" KERAS_BACKEND=jax \
  /usr/bin/time -f '%M' -o "$out/keras.mem" taskset -c 0,1 "$venv/bin/python" "${keras_ref[@]}" 2>/dev/null | tee "$out/keras.json"
OMP_NUM_THREADS=$threads /usr/bin/time -f '%M' -o "$out/torch.mem" "$venv/bin/python" "${torch_ref[@]}" --threads $threads 2>/dev/null | tee "$out/torch.json"
"$venv/bin/python" - "$out" <<'PY'
import json, sys, os
d = sys.argv[1]
r = {k: json.loads(open(os.path.join(d, k + ".json")).read().strip().splitlines()[-1]) for k in ("kcpp", "keras", "torch")}
mem = {k: int(open(os.path.join(d, k + ".mem")).read().split()[-1]) / 1024 for k in r}
for k in ("keras", "torch"):
    if "latency_ms" in r[k]:
        print(f"kerascpp / {k}: batch-1 latency {r['kcpp']['latency_ms'] / r[k]['latency_ms']:.2f}x "
              f"({r['kcpp']['latency_ms']:.1f} ms vs {r[k]['latency_ms']:.1f} ms), "
              f"peak memory {mem['kcpp']:.0f} MB vs {mem[k]:.0f} MB")
        continue
    parts = [f"{what} {r['kcpp'][key] / r[k][key]:.2f}x" for what, key in
             (("train", "train_samples_per_s"), ("predict", "infer_samples_per_s")) if key in r[k] and key in r['kcpp']]
    print(f"kerascpp / {k}: {', '.join(parts)}, peak memory {mem['kcpp']:.0f} MB vs {mem[k]:.0f} MB")
PY
