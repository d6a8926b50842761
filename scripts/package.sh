#!/bin/bash
# package.sh - build the virt-shadow .deb from a clean clone of this checkout's HEAD with dpkg-buildpackage, check
# it with lintian (every tag at warning level or above fails), and leave it in OUT_DIR (default ./build/deb).
# Uncommitted changes are not packaged: commit first. Needs, beyond scripts/setup.sh's packages, debhelper and
# lintian (apt-get install debhelper lintian): the test command does not package, so setup.sh leaves them out.
#
# Usage: scripts/package.sh [OUT_DIR]
# Exit status: 0 with the .deb built and lintian clean; non-zero with the reason.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(realpath -m "${1:-$SRC/build/deb}")
die() { echo "package: $*" >&2; exit 1; }
command -v dpkg-buildpackage >/dev/null && command -v dh >/dev/null || die "debhelper is not installed: apt-get install debhelper"
command -v lintian >/dev/null || die "lintian is not installed: apt-get install lintian"

work=$(mktemp -d /var/tmp/virt-shadow-package.XXXXXX)
trap 'rm -rf "$work"' EXIT
git clone -q "$SRC" "$work/virt-shadow" || die "cannot clone $SRC"
[ -z "$(git -C "$SRC" status --porcelain --untracked-files=no)" ] ||
  echo "package: $SRC has uncommitted changes; packaging HEAD ($(git -C "$SRC" rev-parse --short HEAD)) without them"
start=$SECONDS
(cd "$work/virt-shadow" && DEB_BUILD_OPTIONS="parallel=$(nproc)" dpkg-buildpackage -us -uc -b) \
  >"$work/build.log" 2>&1 || { tail -50 "$work/build.log" >&2; die "dpkg-buildpackage failed (log above)"; }
mkdir -p "$OUT"
cp "$work"/*.deb "$work"/*.changes "$work"/*.buildinfo "$OUT"/
changes=$(ls "$OUT"/*.changes | head -1)
echo "package: built in $((SECONDS - start)) s: $(cd "$OUT" && ls *.deb | tr '\n' ' ')"
# --fail-on warning: an error or a warning fails; info and pedantic tags are listed, not fatal.
lintian --fail-on error,warning --info "$changes" || die "lintian found the problems above"
echo "package: lintian clean at warning level ($changes)"
