#!/usr/bin/env bash
# Makes .venv-keras: Python Keras 3 (JAX backend, CPU) and h5py from PyPI, for the interop test that
# loads the files kerascpp writes into Python Keras. kerascpp itself never needs Python. Without
# network access it says so and leaves the interop test to skip.
set -uo pipefail
cd "$(dirname "$0")/.."
venv="${KERASCPP_KERAS_VENV:-.venv-keras}"
if [ -x "$venv/bin/python" ] && KERAS_BACKEND=jax "$venv/bin/python" -c "import keras, jax, h5py" 2>/dev/null; then
  echo "setup-python-keras: $venv ready"
  exit 0
fi
if ! python3 -m venv "$venv"; then
  echo "setup-python-keras: cannot create $venv (python3-venv missing?); the interop test will skip"
  exit 0
fi
if ! "$venv/bin/pip" install -q --disable-pip-version-check "keras>=3.8" "jax[cpu]" h5py; then
  echo "setup-python-keras: pip install failed (no network?); the interop test will skip"
  exit 0
fi
echo "setup-python-keras: $venv ready ($(KERAS_BACKEND=jax "$venv/bin/python" -c 'import keras; print("keras", keras.__version__)'))"
