#!/usr/bin/env bash
# Starts a private Docker registry on 127.0.0.1:5000 for the docker image-cache tests
# (DESIGN §8, issue 4): installs Debian's docker-registry (distribution 2.8) when missing and
# runs it with its own config (filesystem storage under a temp directory, HTTP on loopback
# only) unless a registry already answers. dockerd treats 127.0.0.0/8 registries as insecure
# (plain HTTP) by default, so push and pull work without TLS. Idempotent.
# Environment: REGISTRY_DIR (default /tmp/mottainai-registry: config, storage, log),
# REGISTRY_WAIT_SECONDS (default 30).
set -euo pipefail

addr=127.0.0.1:5000
dir=${REGISTRY_DIR:-/tmp/mottainai-registry}
wait_seconds=${REGISTRY_WAIT_SECONDS:-30}
log=$dir/registry.log

if curl -sf "http://$addr/v2/" >/dev/null 2>&1; then
  echo "registry already answers on $addr"
  exit 0
fi

if ! command -v docker-registry >/dev/null; then
  echo "installing docker-registry"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker-registry >/dev/null
fi

mkdir -p "$dir/storage"
cat >"$dir/config.yml" <<CONFIG
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: $addr
CONFIG

echo "starting docker-registry on $addr (log: $log)"
nohup docker-registry serve "$dir/config.yml" >>"$log" 2>&1 </dev/null &
pid=$!
disown || true

for ((i = 0; i < wait_seconds * 2; i++)); do
  if curl -sf "http://$addr/v2/" >/dev/null 2>&1; then
    echo "registry is ready on $addr (pid $pid)"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "docker-registry exited before answering on $addr; last lines of $log:" >&2
    tail -n 40 "$log" >&2 || true
    exit 1
  fi
  sleep 0.5
done
echo "docker-registry did not answer http://$addr/v2/ within ${wait_seconds}s; last lines of $log:" >&2
tail -n 40 "$log" >&2 || true
exit 1
