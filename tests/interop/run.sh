#!/usr/bin/env bash
# CTest driver: kerascpp-model converts Python Keras' fixtures (re-serializing them with kerascpp's
# writers), then Python Keras loads what kerascpp wrote. Exits 77 (skipped) without Python Keras.
set -euo pipefail
tool="$1" fixtures="$2" out="$3" python="${4:-}" compat="${5:-}"
if [ -z "$python" ] || ! KERAS_BACKEND=jax "$python" -c "import keras, jax, h5py" 2>/dev/null; then
  echo "skipped: no Python Keras (run tools/setup-python-keras.sh, then reconfigure)"
  exit 77
fi
rm -rf "$out" && mkdir -p "$out"
names=(cnn functional sequence image video_qa compiled_multi compiled_binary)
for n in "${names[@]}"; do
  for ext in .keras .h5 .weights.h5; do
    KERASCPP_LOG_LEVEL=warn "$tool" convert "$fixtures/$n.keras" "$out/$n$ext" >/dev/null
  done
done
# A mixed_float16 model with its LossScaleOptimizer state.
KERASCPP_LOG_LEVEL=warn "$tool" convert "$fixtures/mixed_float16.keras" "$out/mixed_float16.keras" >/dev/null
# The keras-compat models (options the differential check found missing), re-serialized by kerascpp.
if [ -n "$compat" ]; then
  mkdir -p "$out/compat"
  for f in "$compat"/*.keras; do
    KERASCPP_LOG_LEVEL=warn "$tool" convert "$f" "$out/compat/$(basename "$f")" >/dev/null
  done
fi
KERASCPP_COMPAT_FIXTURES="$compat" KERASCPP_COMPAT_OUT="$out/compat" KERAS_BACKEND=jax JAX_PLATFORMS=cpu \
  "$python" "$(dirname "$0")/check_keras_loads_kerascpp.py" "$fixtures" "$out" "${names[@]}"
