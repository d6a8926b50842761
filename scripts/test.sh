#!/bin/bash
# test.sh - set up, build, check the locking (clang's thread-safety analysis over shadowd), and run every test:
# unit tests, then lab tests (ctest starts the lab and stops it). Unit tests run side by side (-j nproc); every lab
# test is RUN_SERIAL (tests/lab/CMakeLists.txt), so nothing runs beside it.
# Extra arguments go to ctest (e.g. -L unit, or -R migration).
# The thread-safety build goes to $VS_TSA_BUILD_DIR (default: thread_safety_build.sh's, one per checkout).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${VS_BUILD_DIR:-$SRC/build}
"$SRC/scripts/setup.sh"
"$SRC/scripts/thread_safety_build.sh" ${VS_TSA_BUILD_DIR:+"$VS_TSA_BUILD_DIR"}
cd "$BUILD"
exec ctest --output-on-failure --timeout 900 -j "$(nproc)" "$@"
