#!/bin/bash
# demo.sh - virt-shadow's main job in the lab, end to end, for a newcomer:
#   set up and build; start 3 libvirt hosts in 2 zones with the hook and shadowd installed; boot a guest on h1
#   that writes acknowledged records; tag it with `virt-shadow tag`; watch its reduced shadow appear on a host of
#   the other zone (list, explain); replicate its disk in rounds (sync, verify, status); drain h1 for maintenance:
#   the guest switches over live to its shadow on h2, which places a new shadow; undrain h1 and fail the guest
#   back; finally the data-loss oracle checks h1's disk against the guest's serial log (one boot, nothing lost).
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
VS_LAB_GRACE_SECONDS=${VS_LAB_GRACE_SECONDS:-120} lab install "$BUILD"  # the failback below comes within it
lab status
"$SRC/images/build-guest.sh" "$LAB/guest"
H1=$(lab uri h1); H2=$(lab uri h2); H3=$(lab uri h3)

step "a guest on h1 (256 MiB, 1 vCPU) writing acknowledged records"
qemu-img create -q -f qcow2 "$LAB/h1/var/lib/libvirt/images/$VM.qcow2" 64M
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

step "maintenance on h1: virt-shadow drain h1 --deadline 30 (a preemption notice does the same)"
echo "shadowd on h1 checks the shadow, snapshots the disk, sends the last delta, migrates live with postcopy:"
cli h1 --timeout 300 drain h1 --deadline 30
n=$(acks); for _ in $(seq 1 60); do [ "$(acks)" -ge $((n + 5)) ] && break; sleep 1; done
echo "the guest, now on h2 with its full size, has acknowledged $(acks) records"
virsh -q -c "$H2" dominfo $VM | grep -E '^(State|CPU\(s\)|Max memory)'
echo "h2's shadowd protects it now, with a new shadow (not on draining h1):"
for _ in $(seq 1 120); do cli h2 status $VM 2>/dev/null | grep -q '^Rounds: *[1-9]' && break; sleep 0.5; done
cli h2 list
cli h1 switchovers

step "h1 is back: undrain it and fail the guest back (its shadow moves to h1 first, seeded from the image there)"
cli h1 undrain h1
cli h2 --timeout 600 failback $VM
n=$(acks); for _ in $(seq 1 60); do [ "$(acks)" -ge $((n + 5)) ] && break; sleep 1; done
echo "the guest, back on h1, has acknowledged $(acks) records"
for _ in $(seq 1 120); do cli h1 status $VM 2>/dev/null | grep -q '^Rounds: *[1-9]' && break; sleep 0.5; done
cli h1 list

step "data-loss oracle on h1's disk (after pulling the plug): every acknowledged record, one boot"
virsh -q -c "$H1" destroy $VM
"$BUILD/images/oracle/vs-oracle" --disk "$LAB/h1/var/lib/libvirt/images/$VM.qcow2" --serial "$LAB/logs/$VM.log"
