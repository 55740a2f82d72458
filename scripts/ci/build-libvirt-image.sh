#!/usr/bin/env bash
# Builds the libvirt executor's test images from Debian packages (issue 5; layout in
# docs/libvirt-guest.md) into $LIBVIRT_IMAGE_DIR (default /var/lib/mottainai-test/libvirt-images):
#   busybox/       kernel (Debian's cloud kernel), initrd (busybox-static, the virtio modules,
#                  the guest runner agent/guest/mottainai-init as /init)
#   busybox-disk/  the same boot pair plus disk.qcow2, an ext4 root filesystem with busybox and
#                  /etc/mottainai-image, the task runs chrooted in it on a per-task overlay
# Needs apt-get (download only), dpkg-deb, cpio, gzip, mke2fs, qemu-img. Idempotent: existing
# images are kept unless REBUILD=1.
set -euo pipefail
cd "$(dirname "$0")/../.."

dir=${LIBVIRT_IMAGE_DIR:-/var/lib/mottainai-test/libvirt-images}
runner=agent/guest/mottainai-init
if [ "${REBUILD:-}" != 1 ] && [ -s "$dir/busybox/kernel" ] && [ -s "$dir/busybox/initrd" ] && [ -s "$dir/busybox-disk/disk.qcow2" ] &&
  [ "$dir/busybox/initrd" -nt "$runner" ]; then
  echo "libvirt test images already built in $dir"
  exit 0
fi
for tool in apt-get apt-cache dpkg-deb cpio gzip mke2fs qemu-img; do
  command -v "$tool" >/dev/null || { echo "$tool is missing: run scripts/ci/install-packages.sh" >&2; exit 1; }
done
[ -x /bin/busybox ] || { echo "/bin/busybox is missing: install busybox-static" >&2; exit 1; }
file /bin/busybox 2>/dev/null | grep -q dynamically && { echo "/bin/busybox is not static: install busybox-static" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The kernel package the cloud metapackage points at.
kpkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/ {print $2; exit}')
[ -n "$kpkg" ] || { echo "cannot resolve linux-image-cloud-amd64 (apt-get update?)" >&2; exit 1; }
(cd "$work" && apt-get download "$kpkg" >/dev/null 2>&1) || { apt-get update -qq && (cd "$work" && apt-get download "$kpkg" >/dev/null); }
chmod -R a+rX "$work"
dpkg-deb -x "$work"/"$kpkg"_*.deb "$work/kernel"
vmlinuz=$(ls "$work"/kernel/boot/vmlinuz-*)
kver=${vmlinuz##*/vmlinuz-}
mods=$work/kernel/lib/modules/$kver/kernel

# The initramfs: busybox with its applets, the virtio modules, the runner as /init.
root=$work/initramfs
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,root,etc,lib/mottainai/modules}
chmod 1777 "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
for m in drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_legacy_dev \
  drivers/virtio/virtio_pci_modern_dev drivers/virtio/virtio_pci drivers/block/virtio_blk drivers/char/virtio_console; do
  cp "$mods/$m.ko" "$root/lib/mottainai/modules/"
done
cp "$runner" "$root/init"
chmod 755 "$root/init"
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -6) >"$work/initrd"

# The disk variant's root filesystem: busybox only, and a marker file.
disk_root=$work/diskroot
mkdir -p "$disk_root"/{bin,proc,sys,dev,tmp,root,etc}
chmod 1777 "$disk_root/tmp"
cp /bin/busybox "$disk_root/bin/busybox"
for applet in $("$disk_root/bin/busybox" --list); do
  [ -e "$disk_root/bin/$applet" ] || ln -s busybox "$disk_root/bin/$applet"
done
echo "mottainai-test busybox-disk" >"$disk_root/etc/mottainai-image"
mke2fs -q -t ext4 -d "$disk_root" -L mottainai-root "$work/disk.raw" 64M
qemu-img convert -f raw -O qcow2 "$work/disk.raw" "$work/disk.qcow2"

install -d -m 755 "$dir" "$dir/busybox" "$dir/busybox-disk"
for image in busybox busybox-disk; do
  install -m 644 "$vmlinuz" "$dir/$image/kernel.new" && mv "$dir/$image/kernel.new" "$dir/$image/kernel"
  install -m 644 "$work/initrd" "$dir/$image/initrd.new" && mv "$dir/$image/initrd.new" "$dir/$image/initrd"
done
install -m 444 "$work/disk.qcow2" "$dir/busybox-disk/disk.qcow2.new" && mv -f "$dir/busybox-disk/disk.qcow2.new" "$dir/busybox-disk/disk.qcow2"
echo "built libvirt test images busybox and busybox-disk ($kpkg) in $dir"
