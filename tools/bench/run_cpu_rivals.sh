#!/usr/bin/env bash
# fmnist_cnn on the CPU, side by side in one run: kerascpp, Python Keras 3 (JAX) and PyTorch, newest
# from PyPI in a virtual environment this script makes, all on 2 threads. Prints each framework's JSON
# line, then the ratios. The reference scripts come from ../shared/bench (the workplace's rivals).
set -euo pipefail
cd "$(dirname "$0")/../.."
venv="${KERASCPP_BENCH_VENV:-.venv-bench}"
refs="${KERASCPP_BENCH_REFS:-../shared/bench}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q keras jax jaxlib torch
fi
threads=2
out=$(mktemp -d)
# /usr/bin/time reports each process's peak resident memory.
OMP_NUM_THREADS=$threads /usr/bin/time -f '%M' -o "$out/kcpp.mem" build/bin/bench_fmnist_cpu 2>/dev/null | tee "$out/kcpp.json"
XLA_FLAGS="--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads=$threads" KERAS_BACKEND=jax \
  /usr/bin/time -f '%M' -o "$out/keras.mem" taskset -c 0,1 "$venv/bin/python" "$refs/keras_ref.py" fmnist_cnn 2>/dev/null | tee "$out/keras.json"
OMP_NUM_THREADS=$threads /usr/bin/time -f '%M' -o "$out/torch.mem" "$venv/bin/python" "$refs/torch_cpu_ref.py" fmnist_cnn --threads $threads 2>/dev/null | tee "$out/torch.json"
"$venv/bin/python" - "$out" <<'PY'
import json, sys, os
d = sys.argv[1]
r = {k: json.loads(open(os.path.join(d, k + ".json")).read().strip().splitlines()[-1]) for k in ("kcpp", "keras", "torch")}
mem = {k: int(open(os.path.join(d, k + ".mem")).read().split()[-1]) / 1024 for k in r}
for k in ("keras", "torch"):
    print(f"kerascpp / {k}: train {r['kcpp']['train_samples_per_s'] / r[k]['train_samples_per_s']:.2f}x, "
          f"predict {r['kcpp']['infer_samples_per_s'] / r[k]['infer_samples_per_s']:.2f}x, "
          f"peak memory {mem['kcpp']:.0f} MB vs {mem[k]:.0f} MB")
PY
