#!/usr/bin/env bash
# Installs everything kerascpp needs to build and test on Debian 12, from Debian's registry.
# The CUDA toolkit (for the optional GPU plugin) is not a Debian package here: where
# /usr/local/cuda exists it is used, elsewhere the CUDA plugin is skipped.
# ocl-icd-opencl-dev: Debian's oneDNN CMake package requires OpenCL (its GPU runtime), and apt
# only recommends it, so --no-install-recommends leaves it out.
set -euo pipefail
packages=(build-essential cmake pkg-config git
          libdnnl-dev ocl-icd-opencl-dev libspdlog-dev libfmt-dev catch2 libhdf5-dev nlohmann-json3-dev libzip-dev
          libopenmpi-dev openmpi-bin zlib1g-dev time dataset-fashion-mnist python3-venv
          clang libclang-rt-14-dev)
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "install-deps: all packages present"
fi
