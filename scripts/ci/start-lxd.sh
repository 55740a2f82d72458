#!/usr/bin/env bash
# Starts LXD for the lxd executor's tests (DESIGN §8): installs Debian's lxd and busybox-static
# when missing, starts the daemon by hand (no systemd here) unless it already answers, initialises
# it once with a preseed (a `dir` storage pool named default, no network: `networks: []`), and
# imports the test image `mottainai-test-busybox` (a unified image: metadata.yaml + a rootfs of
# busybox-static with its applets linked) unless it is there. Idempotent: a second run only
# checks. For the remote (https) client tests it also listens on 127.0.0.1:8443 and trusts a
# client certificate it makes in $LXD_TLS_DIR (default /var/lib/mottainai-test/lxd-tls:
# client.crt, client.key; the server's certificate is /var/lib/lxd/server.crt). Environment: LXD_LOG (default /var/log/lxd.log), LXD_WAIT_SECONDS (default 60),
# REBUILD=1 re-imports the image.
set -euo pipefail

log=${LXD_LOG:-/var/log/lxd.log}
wait_seconds=${LXD_WAIT_SECONDS:-60}
image=mottainai-test-busybox

need=()
command -v lxd >/dev/null || need+=(lxd)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v openssl >/dev/null || need+=(openssl)
if ((${#need[@]})); then
  echo "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
getent group lxd >/dev/null || groupadd --system lxd

if ! lxc info >/dev/null 2>&1; then
  if ! pgrep -x lxd >/dev/null; then
    echo "starting lxd (log: $log)"
    nohup lxd --group lxd --logfile="$log" >/dev/null 2>&1 </dev/null &
    disown || true
  fi
  if ! timeout "$wait_seconds" lxd waitready; then
    echo "lxd did not become ready within ${wait_seconds}s; last lines of $log:" >&2
    tail -n 40 "$log" >&2 || true
    exit 1
  fi
fi
echo "lxd is ready ($(lxd --version))"

if ! lxc storage show default >/dev/null 2>&1; then
  echo "initialising lxd: dir storage pool 'default', no network"
  lxd init --preseed <<'PRESEED'
config: {}
networks: []
storage_pools:
- name: default
  driver: dir
profiles:
- name: default
  devices:
    root:
      path: /
      pool: default
      type: disk
PRESEED
fi

tls=${LXD_TLS_DIR:-/var/lib/mottainai-test/lxd-tls}
if [ -z "$(lxc config get core.https_address)" ]; then
  echo "lxd listens on https://127.0.0.1:8443 (remote client tests)"
  lxc config set core.https_address 127.0.0.1:8443
fi
if [ ! -s "$tls/client.crt" ] || [ ! -s "$tls/client.key" ]; then
  mkdir -p "$tls"
  chmod 700 "$tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:secp384r1 -nodes -days 3650 \
    -subj /CN=mottainai-test-client -keyout "$tls/client.key" -out "$tls/client.crt" 2>/dev/null
fi
fingerprint=$(openssl x509 -in "$tls/client.crt" -outform der | sha256sum | cut -c1-64)
if ! lxc query /1.0/certificates | grep -q "$fingerprint"; then
  echo "lxd trusts the test client certificate $tls/client.crt"
  lxc config trust add "$tls/client.crt"
fi

if [ "${REBUILD:-}" = 1 ]; then lxc image delete "$image" >/dev/null 2>&1 || true; fi
if lxc image info "$image" >/dev/null 2>&1; then
  echo "image $image already imported"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,tmp,etc,root,proc,sys,dev,run,var/tmp}
chmod 1777 "$root/tmp" "$root/var/tmp"
cp /bin/busybox "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [ "$applet" = busybox ] && continue
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
ln -sf ../bin/busybox "$root/sbin/init"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
# A quiet init: no getty on the console, only a sysinit that does nothing.
printf '::sysinit:/bin/true\n' >"$root/etc/inittab"
cat >"$work/metadata.yaml" <<META
architecture: x86_64
creation_date: $(date +%s)
properties:
  description: mottainai test image (busybox-static)
  os: busybox
  release: test
templates: {}
META
tar -C "$work" --numeric-owner --owner=0 --group=0 -czf "$work/image.tar.gz" metadata.yaml rootfs
lxc image import "$work/image.tar.gz" --alias "$image" >/dev/null
echo "imported $image"
name=mottainai-start-lxd-check
lxc delete --force "$name" >/dev/null 2>&1 || true
lxc launch "$image" "$name" --quiet </dev/null >/dev/null
lxc exec "$name" -- sh -c 'echo "busybox container works"' </dev/null
lxc delete --force "$name" >/dev/null
