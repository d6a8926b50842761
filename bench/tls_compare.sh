#!/bin/bash
# tls_compare.sh [REPS] - round and switchover figures with TLS against without, in one run.
#
# For each mode, plaintext first (VS_LAB_TLS=0) and then TLS (the lab's default: libvirt over qemu+tls, migrations
# with QEMU's TLS, backup exports over nbds://, the peer service with mutual TLS), the lab is started afresh in that
# mode, shadowd installed from BUILD_DIR, and switchover_bench and replication_bench run with --reps REPS (default 3)
# on links shaped to 1 Gbit/s (the benches shape them). Their full outputs are kept in $OUT (default
# /var/tmp/virt-shadow-tls-compare); the end prints both modes' medians side by side with the ratio TLS/plaintext.
#
# Needs: the lab's guest (images/build-guest.sh), the benches built (cmake --build build --target benchmarks), root,
# and the lab to itself (it restarts it; nothing else may use it meanwhile). Leaves the lab down. Takes long: two
# lab starts and both benches twice.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD_DIR:-$SRC/build}
REPS=${1:-3}
OUT=${OUT:-/var/tmp/virt-shadow-tls-compare}
LAB_SH=$SRC/scripts/lab.sh
die() { echo "tls_compare: $*" >&2; exit 1; }
[[ $REPS =~ ^[1-9][0-9]*$ ]] || die "REPS must be a positive whole number, got '$REPS'"
for b in switchover_bench replication_bench; do
  [ -x "$BUILD/bench/$b" ] || die "no $BUILD/bench/$b: cmake --build $BUILD --target benchmarks"
done
mkdir -p "$OUT"

run_mode() {  # run_mode NAME VS_LAB_TLS
  local name=$1 tls=$2
  "$LAB_SH" down >/dev/null
  VS_LAB_TLS=$tls "$LAB_SH" up 3 >/dev/null
  VS_LAB_GRACE_SECONDS=5 "$LAB_SH" install "$BUILD" >/dev/null
  echo "tls_compare: $name lab: $("$LAB_SH" uri h1)"
  for b in switchover_bench replication_bench; do
    local start=$SECONDS
    "$BUILD/bench/$b" --reps "$REPS" >"$OUT/$name-$b.txt" 2>&1 || die "$b failed in the $name lab; see $OUT/$name-$b.txt"
    echo "tls_compare: $name $b done in $((SECONDS - start)) s"
  done
}
trap '"$LAB_SH" down >/dev/null 2>&1 || true' EXIT
run_mode plaintext 0
run_mode tls 1

# The figures, as the benches print them: the switchover table's rows and the replication table's round times.
figures() {  # figures NAME: "key value" lines
  local name=$1
  awk '/^method/ { table = 1; next } /^virt-shadow \/ baseline/ { table = 0 }
       table && NF >= 6 {
         n = split($0, f, /  +/); key = f[1]; gsub(/ /, "_", key)
         print key ":running_ms", $(NF-3); print key ":downtime_ms", $(NF-2); print key ":MiB_after_request", $(NF-1)
         print key ":done_ms", $NF }' \
    "$OUT/$name-switchover_bench.txt"
  awk '/^baselines:/ { for (i = 1; i <= NF; i++) if ($i == "ms;") { print "seed_round:ms", $(i-1); exit } }' \
    "$OUT/$name-replication_bench.txt"
  awk '/^(1|10|50) %/ { print "round_" $1 "pct:ms", $4 }
       /^guest writes/ { for (i = 1; i <= NF; i++) if ($i == "rounds") print "guest_writes_with_rounds:per_s", $(i+1) }' \
    "$OUT/$name-replication_bench.txt" | sed 's/[,:]$//'
}
echo
printf '%-58s %12s %12s %10s\n' "figure (medians of $REPS)" plaintext TLS TLS/plain
join <(figures plaintext | sort) <(figures tls | sort) | while read -r key plain tls; do
  printf '%-58s %12s %12s %10s\n' "$key" "$plain" "$tls" "$(awk -v a="$plain" -v b="$tls" 'BEGIN { if (a > 0) printf "%.3f", b / a; else print "-" }')"
done
