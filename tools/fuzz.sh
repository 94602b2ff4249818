#!/usr/bin/env bash
# Builds the libFuzzer targets of the file readers with clang (ASan + UBSan) into build-fuzz and
# runs each for SECONDS (default 60) from the seed corpus: the Keras files in tests/fixtures and
# the regression inputs in tests/fuzz/regressions. Findings land in build-fuzz/findings/; copy a
# reproducer into tests/fuzz/regressions/ once fixed (the regression test replays that folder).
#   tools/fuzz.sh [SECONDS] [TARGET...]      targets: keras h5 json
# FUZZ_RUNS=N replaces the time limit with N inputs per target from a fixed seed: a deterministic,
# bounded run (what CI does).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("${@:-keras h5 json}")
read -r -a targets <<<"${targets[*]}"
build_dir="${FUZZ_BUILD_DIR:-build-fuzz}"
CC=clang CXX=clang++ cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKERASCPP_FUZZ=ON \
  -DKERASCPP_BUILD_TESTS=OFF -DKERASCPP_BUILD_TOOLS=OFF -DKERASCPP_WITH_CUDA=OFF >/dev/null
cmake --build "$build_dir" -j"$(nproc)" --target fuzz_keras fuzz_h5 fuzz_json kerascpp_backend_cpu
mkdir -p "$build_dir/findings"
status=0
for t in "${targets[@]}"; do
  corpus="$build_dir/corpus/$t"
  mkdir -p "$corpus"
  case "$t" in
    keras) cp -n tests/fixtures/keras-saved/*.keras tests/fixtures/keras-real/*.keras tests/fixtures/hostile/*.keras "$corpus"/ ;;
    h5) cp -n tests/fixtures/keras-saved/*.h5 tests/fixtures/keras2-saved/*.h5 tests/fixtures/hostile/*.h5 "$corpus"/ ;;
    json) cp -n tests/fixtures/keras-saved/*.json tests/fixtures/keras2-saved/*.json "$corpus"/ ;;
  esac
  [ -d "tests/fuzz/regressions/$t" ] && cp -n "tests/fuzz/regressions/$t"/* "$corpus"/ 2>/dev/null || true
  echo "fuzz_$t: ${FUZZ_RUNS:-${seconds}s}${FUZZ_RUNS:+ runs from seed 1} on $(ls "$corpus" | wc -l) seed files"
  # The loaders are single-threaded here; leaks are findings (detect_leaks on).
  if [ -n "${FUZZ_RUNS:-}" ]; then limit=(-runs="$FUZZ_RUNS" -seed=1); else limit=(-max_total_time="$seconds"); fi
  if ! OMP_NUM_THREADS=1 ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
      LSAN_OPTIONS=suppressions="$PWD/tests/fuzz/lsan.supp" \
      "$build_dir/bin/fuzz_$t" "$corpus" "${limit[@]}" -rss_limit_mb=4096 -max_len=262144 \
      -artifact_prefix="$build_dir/findings/$t-" -print_final_stats=1 2>"$build_dir/fuzz_$t.log"; then
    echo "fuzz_$t: FINDING (see $build_dir/fuzz_$t.log and $build_dir/findings/)"
    tail -40 "$build_dir/fuzz_$t.log"
    status=1
  fi
  grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|^#[0-9]+ *DONE" "$build_dir/fuzz_$t.log" | sed "s/^/fuzz_$t: /" || true
done
exit $status
