#!/usr/bin/env bash
# Starts libvirtd for the libvirt executor's tests (DESIGN §8, issue 5), by hand (no systemd):
# creates /var/run/libvirt and /var/log/libvirt and the libvirt-qemu user, makes qemu run as
# root (qemu.conf, unless it names a user already), starts virtlogd and libvirtd unless they run, and waits until
# `virsh -c qemu:///system version` answers. Idempotent. Needs root.
# Environment: LIBVIRTD_LOG (default /tmp/mottainai-libvirtd.log), LIBVIRTD_WAIT_SECONDS (default 60).
set -euo pipefail

log=${LIBVIRTD_LOG:-/tmp/mottainai-libvirtd.log}
wait_seconds=${LIBVIRTD_WAIT_SECONDS:-60}
uri=qemu:///system

for tool in libvirtd virtlogd virsh qemu-system-x86_64 qemu-img; do
  command -v "$tool" >/dev/null || {
    echo "$tool is missing: run scripts/ci/install-packages.sh" >&2
    exit 1
  }
done

if virsh -c "$uri" version >/dev/null 2>&1; then
  echo "libvirtd already answers"
  exit 0
fi

mkdir -p /var/run/libvirt /var/log/libvirt/qemu /var/lib/libvirt/qemu /var/cache/libvirt/qemu /etc/libvirt

# libvirtd's qemu driver refuses to start when its built-in default user, libvirt-qemu, does not
# exist (Debian's libvirt-daemon-system creates it; it is not installed here), even when qemu.conf
# names another one. Create it, then let qemu run as root so that it reaches the agent's files
# and sockets wherever the tests put them.
if ! id libvirt-qemu >/dev/null 2>&1; then
  getent group libvirt-qemu >/dev/null || groupadd --system libvirt-qemu
  useradd --system --no-create-home --home-dir /var/lib/libvirt --shell /usr/sbin/nologin -g libvirt-qemu libvirt-qemu
fi
conf=/etc/libvirt/qemu.conf
touch "$conf"
grep -qE '^\s*user\s*=' "$conf" || echo 'user = "root"' >>"$conf"
grep -qE '^\s*group\s*=' "$conf" || echo 'group = "root"' >>"$conf"

live() {
  local pid state
  for pid in $(pgrep -x "$1" || true); do
    state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
    [ -n "$state" ] && [ "$state" != Z ] && return 0
  done
  return 1
}

if ! live virtlogd; then
  rm -f /var/run/virtlogd.pid /run/virtlogd.pid
  echo "starting virtlogd"
  virtlogd --daemon
fi
if ! live libvirtd; then
  rm -f /var/run/libvirtd.pid /run/libvirtd.pid
  echo "starting libvirtd (log: $log)"
  nohup libvirtd >>"$log" 2>&1 </dev/null &
  disown || true
fi

for ((i = 0; i < wait_seconds * 2; i++)); do
  if virsh -c "$uri" version >/dev/null 2>&1; then
    echo "libvirtd is ready ($(virsh -c "$uri" version --daemon 2>/dev/null | grep -i 'running hypervisor' || echo '?'))"
    exit 0
  fi
  sleep 0.5
done
echo "libvirtd did not answer 'virsh -c $uri version' within ${wait_seconds}s; last lines of $log:" >&2
tail -n 40 "$log" >&2 || true
exit 1
