#!/bin/bash
# demo.sh - virt-shadow's main job in the lab, end to end, for a newcomer:
#   set up and build; start 3 libvirt hosts in 2 zones with the hook and shadowd installed; boot a guest on h1
#   that writes acknowledged records; tag it with `virt-shadow tag`; watch its reduced shadow appear on a host of
#   the other zone (list, explain); migrate the guest live with postcopy to h3 and see h3's shadowd take over its
#   protection; finally the data-loss oracle checks h3's disk against the guest's serial log.
# Stops the lab at the end unless --keep is given.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${VS_BUILD_DIR:-$SRC/build}
LAB=${VS_LAB_DIR:-/var/tmp/virt-shadow-lab}
KEEP=0; [ "${1:-}" = --keep ] && KEEP=1
VM=demo-vm
step() { printf '\n== %s\n' "$*"; }
lab() { "$SRC/scripts/lab.sh" "$@"; }
cli() { local host=$1; shift; lab exec "$host" "$BUILD/cli/virt-shadow" "$@"; }
ms() { date +%s%3N; }

step "setup: packages, sysctl, build"
"$SRC/scripts/setup.sh"
step "lab: 3 hosts in 2 zones, each with libvirtd, the virt-shadow hook and shadowd"
lab up 3
[ $KEEP = 1 ] || trap '"$SRC/scripts/lab.sh" down >/dev/null' EXIT
VS_LAB_GRACE_SECONDS=${VS_LAB_GRACE_SECONDS:-10} lab install "$BUILD"
lab status
"$SRC/images/build-guest.sh" "$LAB/guest"
H1=$(lab uri h1); H2=$(lab uri h2); H3=$(lab uri h3)

step "a guest on h1 (256 MiB, 1 vCPU) writing acknowledged records"
for h in h1 h3; do qemu-img create -q -f qcow2 "$LAB/$h/var/lib/libvirt/images/$VM.qcow2" 64M; done
rm -f "$LAB/logs/$VM.log"
"$SRC/images/domain-xml.sh" $VM /var/lib/libvirt/images/$VM.qcow2 "$LAB/logs/$VM.log" \
  --cmdline "vs.rate=5 vs.dirty=32 vs.dirtyrate=16" > "$LAB/$VM.xml"
virsh -q -c "$H1" define "$LAB/$VM.xml"
virsh -q -c "$H1" start $VM
acks() { grep -c 'VS-ACK' "$LAB/logs/$VM.log" 2>/dev/null || true; }
for _ in $(seq 1 120); do [ "$(acks)" -ge 5 ] && break; sleep 1; done
echo "the guest has acknowledged $(acks) records"

step "tag it: virt-shadow tag $VM --memory 50% --interval 1h (rounds on demand here, to show each one)"
cli h1 tag $VM --memory 50% --interval 1h
for _ in $(seq 1 60); do virsh -q -c "$H2" domstate $VM-shadow >/dev/null 2>&1 && break; sleep 0.5; done
cli h1 list
cli h1 explain $VM
echo; echo "the shadow on h2 (defined, not running; reduced size; same disk path, with its own replica image):"
virsh -q -c "$H2" list --all
virsh -q -c "$H2" dumpxml $VM-shadow | grep -E '<currentMemory|<vcpu|shadow-of|source file'

step "disk replication: the seed, then rounds that send only the dirty 64 KiB blocks"
for _ in $(seq 1 120); do cli h1 status $VM | grep -q '^Rounds: *[1-9]' && break; sleep 0.5; done
sleep 3; cli h1 sync $VM
sleep 2; cli h1 sync $VM
cli h1 verify $VM
cli h1 status $VM | sed -n '/^Replication/,$p'
echo; echo "the replica on h2, checked by the oracle as a lagging copy (a gap-free prefix of the acknowledged records):"
"$BUILD/images/oracle/vs-oracle" --prefix --disk "$LAB/h2/var/lib/libvirt/images/$VM.qcow2" --serial "$LAB/logs/$VM.log" |
  grep -E '^(verdict|records on disk|acks|holes|corrupt)'

step "live migration h1 -> h3 with postcopy (precopy capped at 8 MiB/s, below the guest's dirty rate)"
start=$(ms)
virsh -c "$H1" migrate --live --p2p --persistent --undefinesource --copy-storage-all --postcopy --bandwidth 8 \
  $VM "$H3" & mig=$!
until virsh -c "$H1" migrate-postcopy $VM >/dev/null 2>&1; do kill -0 $mig 2>/dev/null || break; sleep 0.3; done
echo "postcopy requested after $(( $(ms) - start )) ms"
wait $mig
echo "migration done after $(( $(ms) - start )) ms"
n=$(acks); for _ in $(seq 1 60); do [ "$(acks)" -ge $((n + 5)) ] && break; sleep 1; done
echo "the guest, now on h3, has acknowledged $(acks) records"
for _ in $(seq 1 60); do
  virsh -q -c "$H2" dumpxml $VM-shadow 2>/dev/null | grep -q 'host="h3"' && break; sleep 0.5
done
echo "h3's shadowd protects it now:"
cli h3 list
virsh -q -c "$H2" dumpxml $VM-shadow | grep shadow-of

step "data-loss oracle on h3's disk (after pulling the plug)"
virsh -q -c "$H3" destroy $VM
"$BUILD/images/oracle/vs-oracle" --disk "$LAB/h3/var/lib/libvirt/images/$VM.qcow2" --serial "$LAB/logs/$VM.log"
