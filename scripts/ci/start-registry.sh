#!/usr/bin/env bash
# Starts a private Docker registry on 127.0.0.1:5000 for the docker image-cache tests
# (DESIGN §8, issue 4): installs Debian's docker-registry (distribution 2.8) when missing and
# runs it with its own config (filesystem storage under a temp directory, HTTP on loopback
# only) unless a registry already answers. dockerd treats 127.0.0.0/8 registries as insecure
# (plain HTTP) by default, so push and pull work without TLS. Idempotent.
# Environment: REGISTRY_DIR (default /tmp/mottainai-registry: config, storage, log),
# REGISTRY_WAIT_SECONDS (default 30).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/registry-lib.sh"

addr=127.0.0.1:5000
dir=${REGISTRY_DIR:-/tmp/mottainai-registry}
wait_seconds=${REGISTRY_WAIT_SECONDS:-30}

if registry_answers "$addr"; then
  echo "registry already answers on $addr"
  exit 0
fi

if ! command -v docker-registry >/dev/null; then
  echo "installing docker-registry"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends docker-registry >/dev/null
fi

registry_write_config "$dir" "$addr"

echo "starting docker-registry on $addr (log: $dir/registry.log)"
registry_serve "$dir" "$wait_seconds" "http://$addr/v2/" registry_answers "$addr"
echo "registry is ready on $addr (pid $REGISTRY_PID)"
