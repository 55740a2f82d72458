#!/usr/bin/env bash
# Starts a Docker engine for the docker executor's tests (DESIGN §8): installs Debian's
# docker.io and busybox-static when missing, starts dockerd with no default bridge (containers
# get loopback only) unless one already answers, and waits until `docker info` works.
# Idempotent. Environment: DOCKERD_LOG (default /tmp/mottainai-dockerd.log),
# DOCKERD_WAIT_SECONDS (default 60).
set -euo pipefail

log=${DOCKERD_LOG:-/tmp/mottainai-dockerd.log}
wait_seconds=${DOCKERD_WAIT_SECONDS:-60}

need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v docker >/dev/null || need+=(docker.io)
[ -x /bin/busybox ] || need+=(busybox-static)
if ((${#need[@]})); then
  echo "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if docker info >/dev/null 2>&1; then
  echo "dockerd already answers"
  exit 0
fi

# A live dockerd (not a zombie left by a killed one) may still be starting: then only wait.
live_dockerd() {
  local pid state
  for pid in $(pgrep -x dockerd || true); do
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
    [ -n "$state" ] && [ "$state" != Z ] && return 0
  done
  return 1
}

if ! live_dockerd; then
  # A dockerd killed without cleanup leaves its pid file; containerd's too.
  rm -f /var/run/docker.pid /run/docker.pid
  echo "starting dockerd (log: $log)"
  nohup dockerd --bridge=none --iptables=false --ip6tables=false >>"$log" 2>&1 </dev/null &
  disown || true
fi

for ((i = 0; i < wait_seconds * 2; i++)); do
  if docker info >/dev/null 2>&1; then
    echo "dockerd is ready ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
    exit 0
  fi
  sleep 0.5
done
echo "dockerd did not answer 'docker info' within ${wait_seconds}s; last lines of $log:" >&2
tail -n 40 "$log" >&2 || true
docker info >&2 || true
exit 1
