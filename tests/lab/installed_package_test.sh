#!/bin/bash
# installed_package_test.sh - virt-shadow installed like a real service: build the .deb from a clean clone of HEAD
# (scripts/package.sh, lintian included) or take one, install it on this machine with dpkg -i (the lab hosts share
# /usr, so that installs it into every host), run the tagging lab test (lab_shadow_test) with the package's
# shadowd, hook and CLI instead of the build tree's, show which binaries ran, and purge the package again.
# Not in the test command (ctest): the package build alone took 12.4 min on 2 shared cores (README.md, Installing).
#
# Usage: tests/lab/installed_package_test.sh [--deb FILE] [--build-dir DIR] [--keep-package]
#   --deb FILE       install FILE instead of building a package
#   --build-dir DIR  the build tree that holds (or builds) tests/lab/lab_shadow_test, default ./build; only the test
#                    binary comes from it (build just that target, and a passing test used nothing else of it)
#   --keep-package   leave the package installed (by default it is purged again when this script installed it)
# Run as root. The lab is started when it is down (lab.sh up 3) and is taken down at the end either way: its hosts
# then run the package's binaries, which the purge removes. On a shared lab, hold its lock from the install to the
# purge (the package's /etc/libvirt/hooks/qemu.d link would otherwise come into others' labs), and build first to
# hold it only that long:  scripts/package.sh && flock -o LOCK tests/lab/installed_package_test.sh --deb build/deb/*.deb
# Exit status: 0 when the package built (or was given), installed, the lab ran the installed shadowd and hook, and
# lab_shadow_test passed with the installed CLI; non-zero with the reason (the summary at the end lists each step).
set -uo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
LAB=${VS_LAB_DIR:-/var/tmp/virt-shadow-lab}
LAB_SH=$SRC/scripts/lab.sh
BUILD=$SRC/build DEB="" KEEP=0
while [ $# -gt 0 ]; do
  case $1 in
    --deb) DEB=$(realpath "${2:?--deb needs a file}"); shift 2;;
    --build-dir) BUILD=$(realpath "${2:?--build-dir needs a directory}"); shift 2;;
    --keep-package) KEEP=1; shift;;
    *) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 2;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "installed-package: must run as root (dpkg -i, the lab)" >&2; exit 1; }
WORK=$(mktemp -d /var/tmp/virt-shadow-installed.XXXXXX)  # logs (and the .deb it builds), kept for reading

summary=()
note() { summary+=("$*"); echo "installed-package: $*"; }
lab_started=0 installed_here=0 failed=0
finish() {
  if (( lab_started )) || [ -f "$LAB/hosts.tsv" ]; then
    # 'lab.sh down' removes the hosts' directories: their logs are kept here first.
    local h
    for h in "$LAB"/h[0-9]*; do
      [ -d "$h" ] || continue
      mkdir -p "$WORK/hosts/${h##*/}"
      cp "$h"/shadowd.log "$h"/shadowd.conf "$h"/corosync.log "$h"/var/log/libvirt/libvirtd.log \
        "$WORK/hosts/${h##*/}/" 2>/dev/null || true
    done
    if "$LAB_SH" down > "$WORK/down.log" 2>&1; then note "lab: down (lab.sh down verified it clean)"
    else note "lab: down FAILED ($WORK/down.log)"; failed=1; fi
  fi
  if (( installed_here && ! KEEP )); then
    dpkg --purge virt-shadow > "$WORK/purge.log" 2>&1
    local status; status=$(dpkg-query -W -f='${Status}' virt-shadow 2>/dev/null || true)
    if [[ -z $status || $status == *not-installed ]] && [ ! -e /usr/sbin/shadowd ] &&
       [ ! -e /etc/libvirt/hooks/qemu.d/virt-shadow ] && [ ! -e /etc/virt-shadow/shadowd.conf ]; then
      note "package: purged (dpkg: '${status:-unknown}'; no /usr/sbin/shadowd, hook link or shadowd.conf left)"
    else note "package: purge FAILED (dpkg: '${status}'; $WORK/purge.log)"; failed=1; fi
    # The lab's links to the package's shadowd and hook (lab.sh install --installed) went with it.
    [ "$(readlink "$LAB/bin/shadowd")" = /usr/sbin/shadowd ] && rm -f "$LAB/bin/shadowd"
    rm -f "$LAB/hook/qemu.d/virt-shadow"
  fi
  echo; echo "== summary (logs in $WORK)"; printf '  %s\n' "${summary[@]}"
  (( failed )) && echo "RESULT: FAIL" || echo "RESULT: PASS"
  exit "$failed"
}
fail() { note "FAIL: $*"; failed=1; finish; }
trap 'fail "interrupted"' INT TERM

# 1. The test binary (the only thing taken from the build tree).
TEST_BIN=$BUILD/tests/lab/lab_shadow_test
nice -n 19 cmake --build "$BUILD" --target lab_shadow_test --parallel "$(nproc)" > "$WORK/build.log" 2>&1 ||
  fail "cannot build lab_shadow_test in $BUILD ($WORK/build.log)"
present=$(for b in cli/virt-shadow shadowd/daemon/shadowd libvirt-hook/virt-shadow-hook; do
  [ -e "$BUILD/$b" ] && echo "$b"; done | tr '\n' ' ')
if [ -z "$present" ]; then
  note "build tree $BUILD: lab_shadow_test, and no CLI, shadowd or hook that anything could have run instead"
else
  note "build tree $BUILD: also has ${present}(the checks below and VS_LAB_CLI keep them out of the test)"
fi

# 2. The package: built from a clean clone of HEAD, or given.
if [ -z "$DEB" ]; then
  start=$SECONDS
  nice -n 19 "$SRC/scripts/package.sh" "$WORK/deb" > "$WORK/package.log" 2>&1; rc=$?
  cat "$WORK/package.log"
  (( rc == 0 )) || fail "scripts/package.sh exited $rc after $((SECONDS - start)) s (log: $WORK/package.log)"
  note "package: built from HEAD $(git -C "$SRC" rev-parse --short HEAD) in $((SECONDS - start)) s," \
    "lintian clean at warning level"
  DEB=$(ls "$WORK"/deb/virt-shadow_*.deb | head -1)
fi
[ -f "$DEB" ] || fail "no .deb at '$DEB'"

# 3. Installed on this machine, which is every lab host's /usr.
# Purged at the end only when it was not installed before (then it stays, upgraded to this one).
[[ $(dpkg-query -W -f='${Status}' virt-shadow 2>/dev/null) == "install ok installed" ]] || installed_here=1
start=$SECONDS
if dpkg -i "$DEB" > "$WORK/dpkg.log" 2>&1; then
  note "dpkg -i $(basename "$DEB"): ok in $((SECONDS - start)) s"
else
  note "dpkg -i $(basename "$DEB"): failed ($(tail -1 "$WORK/dpkg.log")); apt-get -f install for its dependencies"
  apt-get -f install -y >> "$WORK/dpkg.log" 2>&1 || fail "apt-get -f install failed ($WORK/dpkg.log)"
  note "apt-get -f install: ok (what it added stays after the purge: $WORK/dpkg.log)"
fi
[[ $(dpkg-query -W -f='${Status}' virt-shadow 2>/dev/null) == "install ok installed" ]] ||
  fail "virt-shadow is not installed after dpkg -i"
note "installed: virt-shadow $(dpkg-query -W -f='${Version}' virt-shadow)"

# The unit as systemd reads it (the lab has no systemd to run it; verify reads the file offline).
UNIT=$(dpkg -L virt-shadow | grep '/shadowd\.service$' | head -1)
if command -v systemd-analyze >/dev/null; then
  if verify=$(systemd-analyze verify "$UNIT" 2>&1); then note "systemd-analyze verify $UNIT: ok${verify:+ ($verify)}"
  else fail "systemd-analyze verify $UNIT: $verify"; fi
else
  note "systemd-analyze: not installed, unit not verified"
fi

# 4. The lab with the installed binaries.
if [ -f "$LAB/hosts.tsv" ] && "$LAB_SH" status | grep -q ' up:'; then
  note "lab: was up; reused (and taken down at the end)"
else
  lab_started=1
  "$LAB_SH" up 3 >/dev/null || fail "lab.sh up 3 failed"
  note "lab: started (3 hosts)"
fi
# The 5 s grace time is the one the lab fixture gives (tests/lab/CMakeLists.txt): shadow_test waits for releases.
VS_LAB_GRACE_SECONDS=5 "$LAB_SH" install --installed || fail "lab.sh install --installed failed"
# The guest every time, as the lab fixture does: a kept one could be another checkout's.
"$SRC/images/build-guest.sh" "$LAB/guest" >/dev/null || fail "images/build-guest.sh failed"

# Which binaries the hosts run: shadowd by its process's executable, the hook by the link libvirtd reads.
check_installed_binaries() {  # check_installed_binaries WHEN
  local h pid exe hook
  for h in $(tail -n +2 "$LAB/hosts.tsv" | cut -f1); do
    pid=$(cat "$LAB/$h/shadowd.pid" 2>/dev/null)
    exe=$(readlink "/proc/$pid/exe" 2>/dev/null)
    [ "$exe" = /usr/sbin/shadowd ] ||
      fail "$h ($1): shadowd pid ${pid:-none} runs '${exe:-nothing}', not /usr/sbin/shadowd"
    hook=$(readlink -f "$LAB/$h/etc/libvirt/hooks/qemu.d/virt-shadow")
    [ "$hook" = /usr/libexec/virt-shadow/virt-shadow-hook ] || fail "$h ($1): its hook link leads to '${hook:-nothing}'"
    [ ! -e "$LAB/$h/etc/libvirt/hooks/qemu" ] || fail "$h ($1): a second hook, /etc/libvirt/hooks/qemu, is there"
    note "$h ($1): shadowd pid $pid exe $exe; hook qemu.d/virt-shadow -> $hook, no hooks/qemu"
  done
}
check_installed_binaries "before the test"

# 5. The tagging test with the installed CLI.
start=$SECONDS
VS_LAB_CLI=/usr/bin/virt-shadow "$TEST_BIN" 2>&1 | tee "$WORK/lab_shadow_test.log"; rc=${PIPESTATUS[0]}
took=$((SECONDS - start))
result=$(grep -E '^\[  PASSED  \]' "$WORK/lab_shadow_test.log")
failed_tests=$(grep -cE '^\[  FAILED  \] .* \([0-9]+ ms\)$' "$WORK/lab_shadow_test.log")
(( rc == 0 )) ||
  fail "lab_shadow_test exited $rc after $took s, $failed_tests failed, ${result:-none passed} (hosts' logs in $WORK/hosts)"
note "lab_shadow_test with VS_LAB_CLI=/usr/bin/virt-shadow: passed in $took s: $result"
# The test stops, kills and restarts h1's shadowd: the restarted one must be the installed one too.
check_installed_binaries "after the test"
finish
