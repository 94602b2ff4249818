#!/usr/bin/env bash
# CTest driver: Python Keras writes weight files in the layout of Keras' ImageNet files for
# keras.applications into a scratch KERAS_HOME, then kerascpp's applications load them with
# weights="imagenet" and must predict what Keras predicted. Exits 77 (skipped) without Python Keras.
set -euo pipefail
tests="$1" home="$2" python="${3:-}"
if [ -z "$python" ] || ! KERAS_BACKEND=jax "$python" -c "import keras, jax, h5py" 2>/dev/null; then
  echo "skipped: no Python Keras (run tools/setup-python-keras.sh, then reconfigure)"
  exit 77
fi
rm -rf "$home" && mkdir -p "$home"
KERAS_BACKEND=jax JAX_PLATFORMS=cpu "$python" "$(dirname "$0")/write_application_weights.py" "$home"
KERAS_HOME="$home" KERASCPP_LOG_LEVEL=warn "$tests" "[.application-weights]"
rm -rf "$home"  # about 190 MB
