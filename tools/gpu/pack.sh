#!/bin/bash
# Copied from the workplace device recipe (shared/device/pack.sh) so the project carries its own.
# pack.sh OUTDIR FILE...
# Copies programs and libraries built here, plus the shared libraries they need that the GPU machine
# lacks, into OUTDIR (bin/ for executables, lib/ for libraries), so that OUTDIR can travel with a device
# call (name it in `carry`; keep it under 64 MiB). The GPU machine already has glibc, libstdc++, libgomp,
# the CUDA 13 runtime, cuBLAS, cuDNN 9 and NCCL 2 in its system paths; everything else (oneDNN, spdlog,
# fmt, HDF5, libzip, OpenMPI, ...) is copied. Plugins loaded with dlopen are not found by ldd: pass them
# as FILE too. On the GPU machine run:  OUTDIR/run.sh PROGRAM [ARGS]
set -euo pipefail
out=$1; shift
mkdir -p "$out/bin" "$out/lib"
skip='^(linux-vdso|ld-linux|libc\.so|libm\.so|libdl\.so|librt\.so|libpthread\.so|libstdc\+\+|libgcc_s|libgomp|libcuda\.so|libcudart|libcublas|libcublasLt|libcudnn|libnccl|libnvrtc|libnvJitLink|libcurand|libcufft|libcusparse|libcusolver)'
for f in "$@"; do
  case "$(file -bL "$f")" in
    *"shared object"*) cp -L "$f" "$out/lib/" ;;
    *) cp -L "$f" "$out/bin/" ;;
  esac
  ldd "$f" | awk '/=> \// {print $1, $3}' | while read -r name path; do
    [[ $name =~ $skip ]] && continue
    [[ $path == "$PWD"/* ]] && continue   # the project's own libraries: pass them as FILE
    cp -Ln "$path" "$out/lib/$name" 2>/dev/null || true
  done
done
cat > "$out/run.sh" <<'RUN'
#!/bin/bash
here=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export KERASCPP_BACKEND_PATH="${KERASCPP_BACKEND_PATH:-$here/lib}"
prog=$1; shift
[[ $prog == */* ]] || prog="$here/bin/$prog"
exec "$prog" "$@"
RUN
chmod +x "$out/run.sh"
du -sh "$out"
