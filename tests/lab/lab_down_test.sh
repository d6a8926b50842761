#!/bin/bash
# The lab fixture's cleanup, and the test that `lab.sh down` leaves nothing behind: every process that ran in a
# lab host before (libvirtd, virtlogd, QEMU, shadowd...) is gone afterwards, and no namespace, link or mount of the
# lab remains.
set -uo pipefail
LAB_SH=${1:?usage: lab_down_test.sh path/to/lab.sh}
LAB=${VS_LAB_DIR:-/var/tmp/virt-shadow-lab}
before=""
for ns in $(ip netns list | awk '/^vs-h/{print $1}'); do before+=" $(ip netns pids "$ns" | tr '\n' ' ')"; done
echo "processes in lab hosts before down:${before:- none}"

"$LAB_SH" down; rc=$?
fail=0
[ $rc -eq 0 ] || { echo "FAIL: lab.sh down exited $rc"; fail=1; }
for pid in $before; do
  if kill -0 "$pid" 2>/dev/null; then echo "FAIL: process $pid survived: $(tr '\0' ' ' < /proc/$pid/cmdline)"; fail=1; fi
done
if ip netns list | grep -q '^vs-h'; then echo "FAIL: namespaces left: $(ip netns list | grep '^vs-h')"; fail=1; fi
if ip link show vsbr0 >/dev/null 2>&1; then echo "FAIL: bridge vsbr0 left"; fail=1; fi
if grep -q "$LAB/h" /proc/self/mountinfo; then echo "FAIL: mounts of $LAB left"; fail=1; fi
if [ -e "$LAB/hosts.tsv" ]; then echo "FAIL: inventory $LAB/hosts.tsv left"; fail=1; fi
if pgrep -f -- '-p /run/libvirt/(libvirtd|virtlogd)\.pid' >/dev/null; then echo "FAIL: lab daemons still running"; fail=1; fi
[ $fail -eq 0 ] && echo "lab down left nothing behind (checked $(echo $before | wc -w) processes)"
exit $fail
