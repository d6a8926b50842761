#!/bin/bash
# domain-xml.sh NAME DISK SERIAL_LOG [options] - print a libvirt domain XML for the test guest.
#   --guest-dir DIR   where vmlinuz and initrd.gz are (default $VS_LAB_DIR/guest)
#   --vcpus N         (default 1)     --memory MiB (default 256)
#   --cmdline ARGS    extra kernel arguments, e.g. "vs.rate=10 vs.dirty=32 vs.dirtyrate=8"
#   --metadata XML    a child element for <metadata> (e.g. a virt-shadow policy)
set -euo pipefail
NAME=${1:?usage: domain-xml.sh NAME DISK SERIAL_LOG [options]}; DISK=${2:?disk}; LOG=${3:?serial log}; shift 3
GUEST=${VS_LAB_DIR:-/var/tmp/virt-shadow-lab}/guest; VCPUS=1; MEM=256; CMDLINE=""; META=""
while [ $# -gt 0 ]; do
  case $1 in
    --guest-dir) GUEST=$2;; --vcpus) VCPUS=$2;; --memory) MEM=$2;; --cmdline) CMDLINE=$2;; --metadata) META=$2;;
    *) echo "domain-xml.sh: unknown option $1" >&2; exit 2;;
  esac; shift 2
done
cat <<XML
<domain type='qemu'>
  <name>$NAME</name>
  <metadata>$META</metadata>
  <memory unit='MiB'>$MEM</memory>
  <vcpu>$VCPUS</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>$GUEST/vmlinuz</kernel>
    <initrd>$GUEST/initrd.gz</initrd>
    <cmdline>console=ttyS0 quiet panic=-1 $CMDLINE</cmdline>
  </os>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none'/>
      <source file='$DISK'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='pty'>
      <log file='$LOG' append='on'/>
      <target port='0'/>
    </serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <memballoon model='none'/>
  </devices>
</domain>
XML
