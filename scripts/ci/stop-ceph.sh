#!/usr/bin/env bash
# Stops the single-node Ceph that start-ceph.sh started, in the order that lets each daemon
# leave cleanly: the RADOS Gateway first, then the OSDs and the manager, then the monitor. Uses
# the pid files in <dir>/run only (never a process name), waits for each group to exit, then
# kills what is left. Keeps the folder (logs) for inspection. Idempotent.
# Environment: CEPH_DIR (default /tmp/mottainai-ceph).
set -euo pipefail

dir=${CEPH_DIR:-/tmp/mottainai-ceph}
run=$dir/run

stop_group() {
  local pids=() f pid i
  for f in "$@"; do
    [ -f "$f" ] || continue
    pid=$(cat "$f" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      echo "stopping $(basename "$f" .pid) (pid $pid)"
      kill "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
    rm -f "$f"
  done
  for ((i = 0; i < 100; i++)); do
    local alive=()
    for pid in "${pids[@]}"; do
      kill -0 "$pid" 2>/dev/null && alive+=("$pid")
    done
    ((${#alive[@]} == 0)) && return 0
    pids=("${alive[@]}")
    sleep 0.1
  done
  for pid in "${pids[@]}"; do
    echo "killing pid $pid"
    kill -9 "$pid" 2>/dev/null || true
  done
}

[ -d "$run" ] || exit 0
shopt -s nullglob
stop_group "$run"/client.rgw.*.pid
stop_group "$run"/osd.*.pid "$run"/mgr.*.pid
stop_group "$run"/mon.*.pid
echo "Ceph in $dir stopped"
