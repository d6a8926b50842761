#!/bin/bash
# run_fuzz.sh BINARY SEED_CORPUS DICT WORKDIR - one fuzz target for $VS_FUZZ_SECONDS (default 60), as the ctest
# test fuzz_NAME runs it (tests/fuzz/CMakeLists.txt). The seeds are copied into WORKDIR/corpus, where libFuzzer adds
# what it finds (the checked-in corpus is never written); DICT is used when it exists. A crash, leak, sanitizer report
# or an input that runs over 10 s (a hang) fails the test and leaves the input in WORKDIR/artifacts; the full log is
# WORKDIR/fuzz.log, its last lines (executions, cov:, ft:) are printed either way.
set -euo pipefail
binary=$1 seeds=$2 dict=$3 work=$4
seconds=${VS_FUZZ_SECONDS:-60}
mkdir -p "$work/corpus" "$work/artifacts"
cp -r "$seeds"/. "$work/corpus/"
args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
      -artifact_prefix="$work/artifacts/")
[ -f "$dict" ] && args+=(-dict="$dict")
status=0
"$binary" "${args[@]}" "$work/corpus" >"$work/fuzz.log" 2>&1 || status=$?
grep -E '^#[0-9]+.*(DONE|cov:)' "$work/fuzz.log" | tail -1 || true
grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "$work/fuzz.log" || true
if [ "$status" -ne 0 ]; then
  tail -60 "$work/fuzz.log"
  echo "run_fuzz: $(basename "$binary") failed (exit $status); the input is in $work/artifacts/, the log $work/fuzz.log"
fi
exit "$status"
