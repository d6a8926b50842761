#!/bin/bash
# Running `lab.sh up` on a running lab keeps every host as it is: same libvirtd pids, all still answering, and
# the same Corosync nodes (the nodelist did not change, so none restarts).
set -uo pipefail
LAB_SH=${1:?usage: lab_up_again_test.sh lab.sh N}; N=${2:?}
LAB=${VS_LAB_DIR:-/var/tmp/virt-shadow-lab}
pids() { for i in $(seq 1 "$N"); do cat "$LAB/h$i/run/libvirt/libvirtd.pid"; done | tr '\n' ' '; }
corosync_pids() { for i in $(seq 1 "$N"); do cat "$LAB/h$i/corosync.pid"; done | tr '\n' ' '; }
coro_before=$(corosync_pids)
before=$(pids)
"$LAB_SH" up "$N" || { echo "FAIL: second up exited non-zero"; exit 1; }
after=$(pids)
[ "$before" = "$after" ] || { echo "FAIL: libvirtd pids changed: '$before' -> '$after'"; exit 1; }
coro_after=$(corosync_pids)
[ "$coro_before" = "$coro_after" ] || { echo "FAIL: corosync pids changed: '$coro_before' -> '$coro_after'"; exit 1; }
for pid in $coro_after; do kill -0 "$pid" || { echo "FAIL: corosync $pid is not running"; exit 1; }; done
for i in $(seq 1 "$N"); do
  virsh -q -c "$("$LAB_SH" uri "h$i")" uri >/dev/null || { echo "FAIL: h$i does not answer after a second up"; exit 1; }
done
echo "second up kept libvirtd pids $after"
