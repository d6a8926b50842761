#!/bin/bash
# test.sh - set up, build and run every test: unit tests, then lab tests (ctest starts the lab and stops it).
# Extra arguments go to ctest (e.g. -L unit, or -R migration).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${VS_BUILD_DIR:-$SRC/build}
"$SRC/scripts/setup.sh"
cd "$BUILD"
exec ctest --output-on-failure --timeout 900 "$@"
