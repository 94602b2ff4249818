#!/usr/bin/env bash
# launch_local.sh N PORT PROGRAM [ARGS...]: starts N ranks of PROGRAM on this machine with the
# torchrun-style variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), as a launcher
# without MPI would. When one rank fails, the others get LAUNCH_GRACE seconds (default 3) to notice
# and end by themselves, then are stopped, as torchrun's agent does. The exit status is the first
# failure's (0 when every rank succeeds).
set -u
n=$1 port=$2; shift 2
grace=${LAUNCH_GRACE:-3}
pids=()
for ((r = 0; r < n; ++r)); do
  RANK=$r WORLD_SIZE=$n LOCAL_RANK=$r MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$@" &
  pids+=($!)
done
status=0 reaper=""
for ((left = n; left > 0; --left)); do
  wait -n "${pids[@]}"; rc=$?
  if [ $rc -ne 0 ] && [ $status -eq 0 ]; then
    status=$rc
    (sleep "$grace"; kill "${pids[@]}" 2>/dev/null) &
    reaper=$!
  fi
done
[ -n "$reaper" ] && kill "$reaper" 2>/dev/null
exit $status
