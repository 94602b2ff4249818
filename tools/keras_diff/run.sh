#!/usr/bin/env bash
# The random differential check: Python Keras 3 saves COUNT random small models (generate.py: one
# layer kind each, random options, weights and inputs) with its predictions; kerascpp (keras_diff)
# loads each and compares. Lists every model kerascpp refuses or computes differently. Needs
# .venv-keras (tools/setup-python-keras.sh) and a build (tools/build.sh).
#   tools/keras_diff/run.sh [COUNT=200] [SEED=1] [BUILD_DIR=build]
set -euo pipefail
cd "$(dirname "$0")/../.."
count="${1:-200}" seed="${2:-1}" build="${3:-build}"
out="$build/keras_diff/seed$seed"
rm -rf "$out" && mkdir -p "$out"
KERAS_BACKEND=jax JAX_PLATFORMS=cpu .venv-keras/bin/python tools/keras_diff/generate.py "$count" "$out" "$seed" \
  2> "$out/generate.log"
KERASCPP_LOG_LEVEL=error "$build/bin/keras_diff" "$out"
