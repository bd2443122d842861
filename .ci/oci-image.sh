#!/usr/bin/env bash
# Builds, offline, a busybox OCI image for the OCI runtime tests (issue 14), with no registry:
#   umoci init/new/unpack, copy the static busybox and its applet links into the rootfs,
#   umoci repack, umoci config --config.cmd /bin/sh, then tar the layout.
#
# Usage: .ci/oci-image.sh OUTDIR
# Writes (replacing what an earlier run left there, so running it again is harmless):
#   OUTDIR/busybox-oci.tar   an OCI image layout as a tar archive with one image, whose
#                            org.opencontainers.image.ref.name is the full reference
#                            `cellblock.test/busybox:latest`: `ctr images import` and
#                            `podman load` both accept it and name it so
#   OUTDIR/bundle/           the image unpacked as an OCI runtime bundle (rootfs/ and umoci's
#                            config.json), for running a runtime on it directly (`runc run`)
#
# Needs: umoci, busybox-static (/bin/busybox, statically linked), tar. No network.
# As root, umoci unpacks with real ownership. Another user needs `unpack --rootless` (its
# lchown to root fails otherwise; repack reads the mapping back from the bundle), which maps
# the caller to uid/gid 0 in the layer: the archive is the same (every entry 0/0), but
# OUTDIR/bundle is then owned by the caller and its config.json is umoci's rootless one (a
# user namespace mapping the caller to root).
set -euo pipefail

die() { echo "oci-image.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: $0 OUTDIR"
ROOTLESS=()
[ "$(id -u)" -eq 0 ] || ROOTLESS=(--rootless)
for tool in umoci tar; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install umoci tar)"
done
BUSYBOX=/bin/busybox
[ -x "$BUSYBOX" ] || die "$BUSYBOX is missing (apt-get install busybox-static)"
# A dynamically linked busybox (Debian's `busybox` package) would need its libraries in the
# rootfs: insist on the static one.
if LC_ALL=C grep -q "/lib64/ld-linux\|/lib/ld-linux" "$BUSYBOX"; then
  die "$BUSYBOX is dynamically linked (install busybox-static, not busybox)"
fi

mkdir -p "$1"
OUT=$(cd "$1" && pwd)
# Build in a scratch directory next to the output and move the results in at the end, so a
# failed run leaves the previous image in place and never a half-built one.
WORK=$(mktemp -d "$OUT/.oci-image.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

LAYOUT=$WORK/layout
IMAGE=$LAYOUT:latest
NAME=cellblock.test/busybox:latest
umoci init --layout "$LAYOUT"
umoci new --image "$IMAGE"
umoci unpack "${ROOTLESS[@]}" --image "$IMAGE" "$WORK/bundle"

ROOTFS=$WORK/bundle/rootfs
install -d -m 0755 "$ROOTFS"/{bin,sbin,usr/bin,usr/sbin,etc,dev,proc,sys,root,var,run}
install -d -m 1777 "$ROOTFS/tmp"
install -m 0755 "$BUSYBOX" "$ROOTFS/bin/busybox"
# Every applet as a symlink to /bin/busybox at the path busybox itself names
# (bin/sh, usr/bin/awk, ...).
count=0
while read -r applet; do
  [ -n "$applet" ] || continue
  [ "$applet" = bin/busybox ] && continue
  mkdir -p "$ROOTFS/$(dirname "$applet")"
  ln -sfn /bin/busybox "$ROOTFS/$applet"
  count=$((count + 1))
done < <("$BUSYBOX" --list-full)
[ "$count" -gt 100 ] || die "busybox --list-full named only $count applets"
[ -L "$ROOTFS/bin/sh" ] || die "busybox has no sh applet"
# The accounts the tests use (root, and nobody for a non-root user).
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
  > "$ROOTFS/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$ROOTFS/etc/group"

umoci repack --image "$IMAGE" "$WORK/bundle"
umoci config --image "$IMAGE" --config.cmd /bin/sh
# The tag becomes the image's name in both callers: `ctr images import` takes a full
# reference as is (a bare tag would become "import-DATE:TAG"), `podman load` too (a bare
# tag would become "localhost/TAG:latest").
umoci tag --image "$IMAGE" "$NAME"
umoci rm --image "$IMAGE"
IMAGE=$LAYOUT:$NAME
umoci gc --layout "$LAYOUT"

# Sanity: the layout has exactly the one tag.
[ "$(umoci ls --layout "$LAYOUT")" = "$NAME" ] || die "unexpected tags: $(umoci ls --layout "$LAYOUT")"

# The bundle for direct runtime runs: unpacked again from the final image.
rm -rf "$WORK/bundle"
umoci unpack "${ROOTLESS[@]}" --image "$IMAGE" "$WORK/bundle"
[ -x "$WORK/bundle/rootfs/bin/busybox" ] || die "the final image has no /bin/busybox"
# umoci unpack turns the image's Cmd into the bundle's process.args.
tr -d ' \t\n' <"$WORK/bundle/config.json" | grep -q '"args":\["/bin/sh"\]' ||
  die "the image's config does not run /bin/sh"

# The archive: the layout's top level (oci-layout, index.json, blobs/) at the tar's root,
# as `podman load` (oci-archive) and `ctr images import` expect; numeric owners and a fixed
# file order so two runs of the script differ only by umoci's timestamps.
tar --numeric-owner --owner=0 --group=0 --sort=name -C "$LAYOUT" -cf "$WORK/busybox-oci.tar" .

rm -rf "$OUT/bundle" "$OUT/busybox-oci.tar"
mv "$WORK/bundle" "$OUT/bundle"
mv "$WORK/busybox-oci.tar" "$OUT/busybox-oci.tar"
echo "oci-image.sh: $OUT/busybox-oci.tar ($count busybox applets), $OUT/bundle"
