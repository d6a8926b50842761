#!/bin/bash
# demo.sh - the end-to-end job in the lab, for a newcomer: set up, start 3 hosts, boot the test guest on h1 (it
# writes acknowledged records), migrate it live to h2 with postcopy while it writes, then let the data-loss oracle
# check h2's disk against the guest's serial log. Stops the lab at the end unless --keep is given.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${VS_BUILD_DIR:-$SRC/build}
LAB=${VS_LAB_DIR:-/var/tmp/virt-shadow-lab}
KEEP=0; [ "${1:-}" = --keep ] && KEEP=1
VM=demo-vm
step() { printf '\n== %s\n' "$*"; }

step "setup: packages, sysctl, build"
"$SRC/scripts/setup.sh"
step "lab: 3 hosts in 2 zones"
"$SRC/scripts/lab.sh" up 3
[ $KEEP = 1 ] || trap '"$SRC/scripts/lab.sh" down >/dev/null' EXIT
"$SRC/scripts/lab.sh" status
step "test guest"
"$SRC/images/build-guest.sh" "$LAB/guest"
H1=$("$SRC/scripts/lab.sh" uri h1); H2=$("$SRC/scripts/lab.sh" uri h2)
for h in h1 h2; do qemu-img create -q -f qcow2 "$LAB/$h/var/lib/libvirt/images/$VM.qcow2" 64M; done
rm -f "$LAB/logs/$VM.log"
"$SRC/images/domain-xml.sh" $VM /var/lib/libvirt/images/$VM.qcow2 "$LAB/logs/$VM.log" \
  --cmdline "vs.rate=5 vs.dirty=32 vs.dirtyrate=16" > "$LAB/$VM.xml"
virsh -c "$H1" define "$LAB/$VM.xml"
virsh -c "$H1" start $VM
acks() { grep -c 'VS-ACK' "$LAB/logs/$VM.log" 2>/dev/null || true; }
for _ in $(seq 1 120); do [ "$(acks)" -ge 10 ] && break; sleep 1; done
echo "guest on h1 has acknowledged $(acks) records"

step "live migration h1 -> h2 with postcopy (memory capped at 8 MiB/s, so precopy alone cannot finish)"
ms() { date +%s%3N; }
start=$(ms)
virsh -c "$H1" migrate --live --p2p --persistent --undefinesource --copy-storage-all --postcopy --bandwidth 8 \
  $VM "$H2" & mig=$!
until virsh -c "$H1" migrate-postcopy $VM >/dev/null 2>&1; do
  kill -0 $mig 2>/dev/null || break; sleep 0.3
done
echo "postcopy requested after $(( $(ms) - start )) ms"
wait $mig
echo "migration done after $(( $(ms) - start )) ms"
virsh -c "$H2" list
n=$(acks); for _ in $(seq 1 60); do [ "$(acks)" -ge $((n + 5)) ] && break; sleep 1; done
echo "guest on h2 has acknowledged $(acks) records"

step "data-loss oracle on h2's disk (after pulling the plug)"
virsh -c "$H2" destroy $VM
"$BUILD/images/oracle/vs-oracle" --disk "$LAB/h2/var/lib/libvirt/images/$VM.qcow2" --serial "$LAB/logs/$VM.log"
