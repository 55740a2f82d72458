#!/usr/bin/env bash
# Starts a private Docker registry with htpasswd authentication on 127.0.0.1:5001 for the
# docker executor's private-image tests (--docker-auth-file; DESIGN §8, issue 4): Debian's
# docker-registry (distribution 2.8) with its own config (filesystem storage under a temp
# directory, HTTP on loopback only, which dockerd treats as an insecure registry by default)
# and one fixed test user. The credentials are written, as "user:password", to
# $AUTH_REGISTRY_DIR/credentials, where the tests read them. Idempotent: does nothing when the
# registry already answers 401 (authentication required); fails when something else answers.
# Environment: AUTH_REGISTRY_DIR (default /tmp/mottainai-registry-auth: config, htpasswd,
# credentials, storage, log), REGISTRY_WAIT_SECONDS (default 30).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/registry-lib.sh"

addr=127.0.0.1:5001
dir=${AUTH_REGISTRY_DIR:-/tmp/mottainai-registry-auth}
wait_seconds=${REGISTRY_WAIT_SECONDS:-30}
user=mottainai
password=mottainai-test-password

code=$(registry_status "$addr")
if [ "$code" = 401 ] && [ -f "$dir/credentials" ]; then
  echo "authenticated registry already answers on $addr"
  exit 0
fi
if [ "$code" != 000 ] && [ "$code" != 401 ]; then
  echo "something else answers http://$addr/v2/ with HTTP $code (expected 401 from an authenticated registry)" >&2
  exit 1
fi
if [ "$code" = 401 ]; then
  echo "a registry answers 401 on $addr but $dir/credentials is missing; stop it or set AUTH_REGISTRY_DIR" >&2
  exit 1
fi

for tool in docker-registry htpasswd; do
  if ! command -v "$tool" >/dev/null; then
    echo "$tool is missing (run scripts/ci/install-packages.sh)" >&2
    exit 1
  fi
done

mkdir -p "$dir/storage"
chmod 700 "$dir"
htpasswd -Bbn "$user" "$password" >"$dir/htpasswd"
umask 077
printf '%s:%s\n' "$user" "$password" >"$dir/credentials"
registry_write_config "$dir" "$addr"
cat >>"$dir/config.yml" <<CONFIG
auth:
  htpasswd:
    realm: mottainai-test
    path: $dir/htpasswd
CONFIG

echo "starting docker-registry with htpasswd auth on $addr (log: $dir/registry.log)"
registry_serve "$dir" "$wait_seconds" "401 on http://$addr/v2/" registry_answers_401 "$addr"
echo "authenticated registry is ready on $addr (pid $REGISTRY_PID; credentials in $dir/credentials)"
