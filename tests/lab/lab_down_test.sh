#!/bin/bash
# The lab fixture's cleanup, and the test that `lab.sh down` leaves nothing behind: every process that ran in a
# lab host before (libvirtd, virtlogd, QEMU, shadowd...) is gone afterwards, and no namespace, link or mount of the
# lab remains.
set -uo pipefail
LAB_SH=${1:?usage: lab_down_test.sh path/to/lab.sh}
LAB=${VS_LAB_DIR:-/var/tmp/virt-shadow-lab}
# A running guest on h1 makes down prove that it also stops QEMU (and the lab must have been up for this test).
H1_URI=$("$LAB_SH" uri h1)
virsh -q -c "$H1_URI" uri >/dev/null 2>&1 || { echo "FAIL: the lab is not up, nothing to take down"; "$LAB_SH" down; exit 1; }
if [ -f "$LAB/guest/vmlinuz" ]; then
  qemu-img create -q -f qcow2 "$LAB/h1/var/lib/libvirt/images/lab-down-probe.qcow2" 16M
  "$(dirname "$0")/../../images/domain-xml.sh" lab-down-probe /var/lib/libvirt/images/lab-down-probe.qcow2 \
    "$LAB/logs/lab-down-probe.log" --memory 128 > "$LAB/lab-down-probe.xml"
  virsh -q -c "$H1_URI" create "$LAB/lab-down-probe.xml" >/dev/null || echo "note: could not start the probe guest"
fi
qemu_pids=$(pgrep -f 'guest=lab-down-probe' || true)
before=""
for ns in $(ip netns list | awk '/^vs-h/{print $1}'); do before+=" $(ip netns pids "$ns" | tr '\n' ' ')"; done
echo "processes in lab hosts before down:${before:- none}"

"$LAB_SH" down; rc=$?
fail=0
[ $rc -eq 0 ] || { echo "FAIL: lab.sh down exited $rc"; fail=1; }
# A killed daemon can stay a zombie for a moment until PID 1 reaps it: a zombie holds no namespace, mount or
# file, so it counts as gone.
alive() { [ -e "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
for pid in $before; do
  if alive "$pid"; then echo "FAIL: process $pid survived: $(tr '\0' ' ' < /proc/$pid/cmdline)"; fail=1; fi
done
if ip netns list | grep -q '^vs-h'; then echo "FAIL: namespaces left: $(ip netns list | grep '^vs-h')"; fail=1; fi
if ip link show vsbr0 >/dev/null 2>&1; then echo "FAIL: bridge vsbr0 left"; fail=1; fi
if grep -q "$LAB/h" /proc/self/mountinfo; then echo "FAIL: mounts of $LAB left"; fail=1; fi
if [ -e "$LAB/hosts.tsv" ]; then echo "FAIL: inventory $LAB/hosts.tsv left"; fail=1; fi
if pgrep -f -- '-p /run/libvirt/(libvirtd|virtlogd)\.pid' >/dev/null; then echo "FAIL: lab daemons still running"; fail=1; fi
if [ -f "$LAB/guest/vmlinuz" ] && [ -z "$qemu_pids" ]; then echo "FAIL: the probe guest's QEMU never ran"; fail=1; fi
for pid in $qemu_pids; do alive "$pid" && { echo "FAIL: QEMU $pid of the probe guest survived"; fail=1; }; done
rm -f "$LAB/lab-down-probe.xml" "$LAB/logs/lab-down-probe.log"
[ $fail -eq 0 ] && echo "lab down left nothing behind (checked $(echo $before | wc -w) processes, QEMU pids: ${qemu_pids:-none})"
exit $fail
