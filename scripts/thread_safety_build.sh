#!/bin/bash
# thread_safety_build.sh - build shadowd with clang-14 and its thread-safety analysis (-Wthread-safety, every
# finding an error) over the annotations of common/thread_annotations.h: a member VS_GUARDED_BY a mutex read or
# written without holding it, a VS_REQUIRES function called without the lock, a lock not released, all fail the
# build. GCC stays the project's compiler; this build only checks (no optimisation, no debug info, no tests).
#
# Usage: scripts/thread_safety_build.sh [BUILD_DIR]   (default /var/tmp/virt-shadow-tsa-<checkout hash>: one per
# checkout, so that two checkouts (worktrees, CI clones) checked at once do not empty each other's; incremental)
# Jobs: $VS_JOBS (default nproc). Installs nothing: clang-14 comes from scripts/setup.sh.
# Exit status: 0 when shadowd builds without a finding; non-zero on any thread-safety error (listed at the end)
# or any other build failure.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-/var/tmp/virt-shadow-tsa-$(printf '%s' "$SRC" | md5sum | cut -c1-8)}
JOBS=${VS_JOBS:-$(nproc)}
die() { echo "thread_safety_build: $*" >&2; exit 1; }
command -v clang++-14 >/dev/null || die "clang++-14 is not installed; scripts/setup.sh installs it (package clang-14)"

# A build dir this script left for another checkout (or another compiler) is emptied and built afresh: its
# objects could otherwise pass for up to date against older sources. Any other CMake build dir is refused.
cache=$BUILD/CMakeCache.txt
if [ -f "$cache" ]; then
  grep -qx 'VS_THREAD_SAFETY_ANALYSIS:BOOL=ON' "$cache" && grep -qx 'CMAKE_PROJECT_NAME:STATIC=virt-shadow' "$cache" ||
    die "$BUILD holds another CMake build (not virt-shadow's thread-safety build); give another directory as \$1"
  if ! grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$SRC" "$cache" ||
     ! grep -q '^CMAKE_CXX_COMPILER:[A-Z]*=.*clang++-14$' "$cache"; then
    echo "thread_safety_build: $BUILD was built from another checkout or compiler; building it afresh"
    rm -rf "$BUILD"
  fi
fi

start=$SECONDS
mkdir -p "$BUILD"
log=$BUILD/thread_safety_build.log
CC=clang-14 CXX=clang++-14 cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=None -DVS_THREAD_SAFETY_ANALYSIS=ON \
  >"$log" 2>&1 || { cat "$log" >&2; die "cmake configure failed"; }
if ! cmake --build "$BUILD" --target shadowd -j "$JOBS" >"$log" 2>&1; then
  cat "$log" >&2
  findings=$(grep -c -- '-Wthread-safety' "$log" || true)
  if [ "$findings" -gt 0 ]; then
    echo >&2
    echo "thread_safety_build: $findings thread-safety finding(s):" >&2
    grep -- '-Wthread-safety' "$log" | sed 's/^/  /' >&2
    die "shadowd does not obey its locking annotations (docs/threading.md, rule 4)"
  fi
  die "the clang build failed (not a thread-safety finding; see above)"
fi
echo "thread_safety_build: shadowd builds with clang -Wthread-safety, no finding ($((SECONDS - start)) s, $BUILD)"
