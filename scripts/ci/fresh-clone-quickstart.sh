#!/usr/bin/env bash
# Proves the README quickstart on a fresh clone, as a new user with only Node and npm would run it:
# the libvirt headers are hidden (a private mount namespace puts an empty tmpfs over
# /usr/include/libvirt), so the optional @unraid/libvirt binding fails to compile exactly as on a
# machine without libvirt-dev. Then `npm run demo -- --once` must install, build, run
# examples/hello.yaml to done/success and exit 0, and an agent asked for `--executor libvirt`
# must refuse with the message that names the fix. Run as root (CI) from the repository root.
set -euo pipefail
repo="$(pwd)"
work="$(mktemp -d /tmp/mottainai-fresh-clone.XXXXXX)"
trap 'rm -rf "$work"' EXIT
git clone --quiet --no-local "$repo" "$work/mottainai"

unshare --mount --propagation private bash -euo pipefail -c '
  if [ -d /usr/include/libvirt ]; then mount -t tmpfs none /usr/include/libvirt; fi
  test ! -e /usr/include/libvirt/libvirt.h
  cd "$1"
  export MOTTAINAI_LISTEN=127.0.0.1:19090
  npm run demo -- --once
  if node -e "require(\"@unraid/libvirt\")" 2>/dev/null; then
    echo "the libvirt binding was built although its headers were hidden" >&2
    exit 1
  fi
  set +e
  out="$(timeout 20 node agent/dist/main.js --server http://127.0.0.1:1 --executor libvirt --libvirt-image-dir /tmp \
    --state-dir "$1/.mottainai/libvirt-check" 2>&1)"
  code=$?
  set -e
  echo "$out"
  if [ "$code" -eq 0 ] || ! grep -q "npm rebuild @unraid/libvirt" <<<"$out"; then
    echo "an agent with --executor libvirt and no binding must exit non-zero naming the fix" >&2
    exit 1
  fi
' fresh-clone "$work/mottainai"
echo "fresh clone: npm run demo -- --once passed without libvirt headers"
