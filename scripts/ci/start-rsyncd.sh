#!/usr/bin/env bash
# Starts an rsync daemon on 127.0.0.1:8873 for the namespace delivery tests (issue 6): Debian's
# rsync with its own config in a temp directory and one writable module, `mottainai`, whose files
# live in $RSYNCD_DIR/mottainai. No chroot, no authentication, loopback only. Installs rsync when
# missing. Idempotent: does nothing when the module is already listed. Waits until
# `rsync rsync://127.0.0.1:8873/` lists the module.
# Environment: RSYNCD_DIR (default /tmp/mottainai-rsyncd: config, pid, log, module data),
# RSYNCD_WAIT_SECONDS (default 20).
set -euo pipefail

addr=127.0.0.1
port=8873
dir=${RSYNCD_DIR:-/tmp/mottainai-rsyncd}
wait_seconds=${RSYNCD_WAIT_SECONDS:-20}
log=$dir/rsyncd.log

listed() {
  rsync --contimeout=2 "rsync://$addr:$port/" 2>/dev/null | grep -q '^mottainai\b'
}

if ! command -v rsync >/dev/null; then
  echo "installing rsync"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends rsync >/dev/null
fi

if listed; then
  echo "rsync daemon already lists the module mottainai on $addr:$port"
  exit 0
fi

mkdir -p "$dir/mottainai"
cat >"$dir/rsyncd.conf" <<CONFIG
pid file = $dir/rsyncd.pid
lock file = $dir/rsyncd.lock
log file = $log
address = $addr
port = $port
use chroot = no
uid = $(id -u)
gid = $(id -g)
max connections = 20

[mottainai]
  path = $dir/mottainai
  comment = Mottainai delivery tests
  read only = no
  list = yes
CONFIG

# A stale pid file (from a killed daemon) makes rsync refuse to start.
if [ -f "$dir/rsyncd.pid" ] && ! kill -0 "$(cat "$dir/rsyncd.pid")" 2>/dev/null; then
  rm -f "$dir/rsyncd.pid"
fi

echo "starting rsync daemon on $addr:$port (module mottainai at $dir/mottainai, log: $log)"
rsync --daemon --config="$dir/rsyncd.conf"

for ((i = 0; i < wait_seconds * 4; i++)); do
  if listed; then
    echo "rsync daemon is ready on $addr:$port (pid $(cat "$dir/rsyncd.pid" 2>/dev/null || echo '?'))"
    exit 0
  fi
  sleep 0.25
done
echo "the rsync daemon did not list the module mottainai on rsync://$addr:$port/ within ${wait_seconds}s; last lines of $log:" >&2
tail -n 40 "$log" >&2 || true
exit 1
