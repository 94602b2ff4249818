#!/usr/bin/env bash
# launch_local.sh N PORT PROGRAM [ARGS...]: starts N ranks of PROGRAM on this machine with the
# torchrun-style variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), as a launcher
# without MPI would. When one rank fails the others are stopped, as torchrun's agent does; the exit
# status is the first failure's (0 when every rank succeeds).
set -u
n=$1 port=$2; shift 2
pids=()
for ((r = 0; r < n; ++r)); do
  RANK=$r WORLD_SIZE=$n LOCAL_RANK=$r MASTER_ADDR=127.0.0.1 MASTER_PORT=$port "$@" &
  pids+=($!)
done
status=0
for ((left = n; left > 0; --left)); do
  wait -n; rc=$?
  if [ $rc -ne 0 ] && [ $status -eq 0 ]; then
    status=$rc
    kill "${pids[@]}" 2>/dev/null
  fi
done
exit $status
