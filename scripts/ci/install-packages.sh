#!/usr/bin/env bash
# Installs, in one apt-get run, every Debian package CI needs: the build tools, libvirt-dev
# (npm ci compiles @unraid/libvirt against it), and the real services the suites talk to:
# dockerd and a registry (docker executor), libvirtd and qemu (libvirt executor), a single-node
# Ceph (S3 blob store), rsync and git (namespace delivery), openssh-server (private checkouts),
# apache2-utils (htpasswd for the authenticated registry), ngircd (bridge IRC notifier), lxd (LXD
# executor), chromium (dashboard browser tests, driven by playwright-core), python3-grpcio with
# protoc and its gRPC plugin (the Python event subscriber example). Idempotent: installs only what is missing.
set -euo pipefail

packages=(
  curl git make g++ python3 ca-certificates pkg-config
  docker.io busybox-static docker-registry apache2-utils openssh-server openssh-client
  libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libvirt-dev qemu-system-x86 qemu-utils cpio kmod e2fsprogs
  ceph-mon ceph-mgr ceph-osd radosgw ceph-common
  rsync
  ngircd
  lxd
  chromium
  python3-grpcio protobuf-compiler protobuf-compiler-grpc
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "all ${#packages[@]} packages present"
  exit 0
fi
echo "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
