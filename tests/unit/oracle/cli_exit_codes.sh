#!/bin/sh
# Checks vs-oracle's exit status contract on tiny raw images: 0 ok, 1 violation, 2 usage/I/O.
# usage: cli_exit_codes.sh PATH/TO/vs-oracle
set -u
oracle=$1
dir=$(mktemp -d) || exit 1
trap 'rm -rf "$dir"' EXIT
failures=0

# A 1 MiB raw disk (16 slots) holding record 1 in slot 1, its CRC from busybox crc32, as the guest computes it.
make_disk() {  # make_disk FILE CRC_OVERRIDE(optional)
  body='VSREC v1 seq=1 boot=abcd1234 up=1.00'
  crc=${2:-$(printf '%s' "$body" | busybox crc32)}
  truncate -s 1M "$1"
  printf '%s crc=%s\n' "$body" "$crc" | dd of="$1" bs=512 seek=128 conv=notrunc,sync status=none
}

expect() {  # expect STATUS DESCRIPTION ARGS...
  want=$1; what=$2; shift 2
  "$oracle" "$@" >"$dir/out" 2>&1
  got=$?
  if [ "$got" -ne "$want" ]; then
    echo "FAIL: $what: exit $got, want $want"; cat "$dir/out"; failures=$((failures + 1))
  fi
}

make_disk "$dir/good.raw"
make_disk "$dir/bad.raw" 12345
printf 'VS-BOOT boot=abcd1234 resume=0\nVS-ACK seq=1 boot=abcd1234\n' >"$dir/serial.log"

expect 0 "clean image" --disk "$dir/good.raw" --format raw --serial "$dir/serial.log"
expect 1 "corrupt record" --disk "$dir/bad.raw" --serial "$dir/serial.log"
expect 1 "corrupt record, JSON" --disk "$dir/bad.raw" --serial "$dir/serial.log" --json
expect 2 "missing --serial" --disk "$dir/good.raw"
expect 2 "unknown option" --disk "$dir/good.raw" --serial "$dir/serial.log" --bogus
expect 2 "bad --format" --disk "$dir/good.raw" --serial "$dir/serial.log" --format vmdk
expect 2 "absent disk" --disk "$dir/absent.raw" --serial "$dir/serial.log"
expect 2 "absent serial log" --disk "$dir/good.raw" --serial "$dir/absent.log"
expect 0 "help" --help
exit $((failures != 0))
