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
rc=0
ctest --output-on-failure --timeout 900 -j "$(nproc)" "$@" || rc=$?
# CI keeps only the end of a run's output: repeat each failed test's assertion lines there, under its name.
if [ "$rc" -ne 0 ] && [ -s Testing/Temporary/LastTestsFailed.log ]; then
  echo "=== why the failed tests failed (their full output is above, and in $BUILD/Testing/Temporary/LastTest.log)"
  while IFS=: read -r _ name; do
    echo "--- $name"
    awk -v name="$name" '
      $0 ~ "^[0-9]+/[0-9]+ Test: " name "$" { inside = 1; next }
      inside && /^<end of output>/ { exit }
      inside && (/Failure|[Ee]rror|Expected|Actual|Which is|Value of|FAILED|Timeout/ || context > 0) {
        print; context = /Failure/ ? 6 : context - 1; if (++lines >= 40) exit
      }' Testing/Temporary/LastTest.log
  done < Testing/Temporary/LastTestsFailed.log
fi
exit "$rc"
