#!/bin/bash
# fuzz.sh [SECONDS] - build the libFuzzer targets of tests/fuzz (clang-14, ASan + UBSan, -DVS_FUZZ=ON) and run each
# for SECONDS (default $VS_FUZZ_SECONDS, else 60) over a working copy of its seed corpus: `ctest -L fuzz`. Each
# test prints its last status line (executions, cov:, ft:); a crash, leak, sanitizer report or hang fails it and
# leaves the input under BUILD_DIR/tests/fuzz/work/NAME/artifacts/. The default build and scripts/test.sh never
# build or run these.
#
# Build dir: $VS_FUZZ_BUILD_DIR, default /var/tmp/virt-shadow-fuzz-<checkout hash> (one per checkout, incremental;
# the working corpora grow there from run to run). Jobs (build, and targets fuzzed at once): $VS_JOBS (default
# nproc). Extra arguments after SECONDS go to ctest (e.g. -R fuzz_policy). Installs nothing: clang-14 and
# libclang-rt-14-dev come from scripts/setup.sh.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${VS_FUZZ_BUILD_DIR:-/var/tmp/virt-shadow-fuzz-$(printf '%s' "$SRC" | md5sum | cut -c1-8)}
JOBS=${VS_JOBS:-$(nproc)}
export VS_FUZZ_SECONDS=${1:-${VS_FUZZ_SECONDS:-60}}
[ $# -gt 0 ] && shift
die() { echo "fuzz: $*" >&2; exit 1; }
command -v clang++-14 >/dev/null || die "clang++-14 is not installed; scripts/setup.sh installs it (package clang-14)"
[[ $VS_FUZZ_SECONDS =~ ^[1-9][0-9]*$ ]] || die "SECONDS must be a positive whole number, got '$VS_FUZZ_SECONDS'"

# A build dir of another checkout, compiler or kind is refused rather than emptied: it may hold grown corpora.
cache=$BUILD/CMakeCache.txt
if [ -f "$cache" ]; then
  grep -qx 'VS_FUZZ:BOOL=ON' "$cache" && grep -qx "CMAKE_HOME_DIRECTORY:INTERNAL=$SRC" "$cache" ||
    die "$BUILD holds another CMake build (not this checkout's fuzz build); set VS_FUZZ_BUILD_DIR to another directory"
fi

mkdir -p "$BUILD"
log=$BUILD/fuzz_build.log
CC=clang-14 CXX=clang++-14 cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVS_FUZZ=ON >"$log" 2>&1 ||
  { cat "$log" >&2; die "cmake configure failed"; }
cmake --build "$BUILD" --target vs_fuzz -j "$JOBS" >>"$log" 2>&1 || { tail -50 "$log" >&2; die "the build failed ($log)"; }
cd "$BUILD"
# Each target runs for VS_FUZZ_SECONDS; ctest's own timeout only catches a runner that does not stop.
exec ctest -L fuzz -j "$JOBS" --timeout $((VS_FUZZ_SECONDS + 300)) --output-on-failure -V "$@"
