#!/bin/bash
# build-guest.sh OUT_DIR - build virt-shadow's test guest from Debian packages.
#   OUT_DIR/vmlinuz    Debian's kernel (linux-image-amd64's current ABI package)
#   OUT_DIR/initrd.gz  busybox-static initramfs running images/guest/init (record workload + memory dirtier)
# The .deb files are cached in $VS_CACHE_DIR (default /var/cache/virt-shadow/debs); a rebuild with a warm cache
# takes a few seconds. Needs root only for apt-get download into a cache it can write.
set -euo pipefail
OUT=${1:?usage: build-guest.sh OUT_DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${VS_CACHE_DIR:-/var/cache/virt-shadow/debs}
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT" "$CACHE"

fetch() {  # fetch PACKAGE: download its .deb into the cache once
  local pkg=$1
  ls "$CACHE/${pkg}"_*.deb >/dev/null 2>&1 && return 0
  (cd "$CACHE" && apt-get -o APT::Sandbox::User=root download "$pkg" >/dev/null) ||
    { echo "build-guest: cannot download $pkg; run 'apt-get update' and check the Debian mirror" >&2; exit 1; }
}
KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
[ -n "$KPKG" ] || { echo "build-guest: linux-image-amd64 not known to apt; run 'apt-get update'" >&2; exit 1; }
fetch "$KPKG"; fetch busybox-static
dpkg -x "$(ls "$CACHE/${KPKG}"_*.deb | tail -1)" "$WORK/k"
dpkg -x "$(ls "$CACHE"/busybox-static_*.deb | tail -1)" "$WORK/bb"
KVER=$(ls "$WORK/k/lib/modules" | head -1)

R=$WORK/root
mkdir -p "$R"/{bin,dev,proc,sys,tmp,lib/modules}
cp "$WORK/bb/bin/busybox" "$R/bin/busybox"
for applet in $("$R/bin/busybox" --list); do [ "$applet" = busybox ] || ln -sf busybox "$R/bin/$applet"; done
# virtio_blk and virtio_pci are modules in Debian's kernel: ship them, listed in load (dependency) order.
MODS="drivers/virtio/virtio_ring drivers/virtio/virtio drivers/virtio/virtio_pci_modern_dev
      drivers/virtio/virtio_pci_legacy_dev drivers/virtio/virtio_pci drivers/block/virtio_blk"
: > "$R/lib/modules/order"
for m in $MODS; do
  f=$WORK/k/lib/modules/$KVER/kernel/$m.ko
  if [ -f "$f" ]; then cp "$f" "$R/lib/modules/"
  elif [ -f "$f.xz" ]; then xz -dc "$f.xz" > "$R/lib/modules/$(basename "$m").ko"
  else continue; fi  # built into this kernel
  basename "$m" >> "$R/lib/modules/order"
done
install -m 755 "$HERE/guest/init" "$R/init"
(cd "$R" && find . -print0 | cpio --null -o -H newc --quiet | gzip -6) > "$OUT/initrd.gz.tmp"
cp "$WORK/k/boot/vmlinuz-$KVER" "$OUT/vmlinuz.tmp"
mv "$OUT/initrd.gz.tmp" "$OUT/initrd.gz"; mv "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"
chmod 644 "$OUT/initrd.gz" "$OUT/vmlinuz"
echo "guest: kernel $KVER, initrd $(stat -c %s "$OUT/initrd.gz") bytes, in $OUT"
