#!/usr/bin/env bash
# Builds the images the docker executor's tests use, locally (no image can be pulled here):
#   mottainai-test/busybox:latest  busybox-static as /bin/busybox with its applets linked, /tmp;
#                                  no bash, so scripts run under /bin/sh.
# Needs a running dockerd (scripts/ci/start-dockerd.sh). Idempotent: an existing image is kept
# unless REBUILD=1.
set -euo pipefail

image=mottainai-test/busybox:latest
if [ "${REBUILD:-}" != 1 ] && docker image inspect "$image" >/dev/null 2>&1; then
  echo "$image already built"
  exit 0
fi
[ -x /bin/busybox ] || { echo "/bin/busybox is missing: install busybox-static (scripts/ci/start-dockerd.sh does)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,tmp,etc,root,proc,sys,dev}
chmod 1777 "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [ "$applet" = busybox ] && continue
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
tar -C "$root" --numeric-owner --owner=0 --group=0 -cf "$work/rootfs.tar" .
docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/sh"]' \
  "$work/rootfs.tar" "$image" >/dev/null
echo "built $image"
docker run --rm --network none "$image" sh -c 'echo "busybox image works"'
