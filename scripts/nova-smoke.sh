#!/bin/bash
# nova-smoke.sh - the lab Nova's check (after 'lab.sh up N --nova', N >= 2; hold the lab lock):
# boot vm1 on h1 from the test guest's images, see its guest write VS-ACK lines, live-migrate it with block
# migration to h2 (the same boot continues there), hard-reboot it (a new boot), delete it. Prints each step's time.
set -euo pipefail
LAB=${VS_LAB_DIR:-/var/tmp/virt-shadow-lab}
die() { echo "nova-smoke: $*" >&2; exit 1; }
[ -f "$LAB/nova/openrc" ] || die "no $LAB/nova/openrc: start the lab with 'lab.sh up N --nova' first"
# shellcheck disable=SC1091
. "$LAB/nova/openrc"
VM=${1:-vm1}
now() { date +%s.%N; }
since() { printf '%.1f' "$(echo "$(now) - $1" | bc)"; }
field() { openstack server show "$VM" -f value -c "$1"; }
console() { cat "$LAB/$1/var/lib/nova/instances/$ID/console.log" 2>/dev/null || true; }
# last_boot HOST: the boot id of the guest's last VS-ACK line in HOST's console log, after waiting for one
last_boot() {
  local b=""
  for _ in $(seq 1 60); do
    b=$(console "$1" | grep -o 'VS-ACK seq=[0-9]* boot=[0-9a-f]*' | tail -1 | sed 's/.*boot=//')
    [ -n "$b" ] && [ "$b" != "${2:-}" ] && break; sleep 1
  done
  echo "$b"
}

t=$(now)
openstack --os-compute-api-version 2.74 server create --flavor vs.small --image vs-guest --nic none --host h1 \
  "$VM" --wait >/dev/null || die "server create failed; see $LAB/h1/nova-compute.log, $LAB/nova/log/nova-*.log"
ID=$(field id)
[ "$(field status)" = ACTIVE ] && [ "$(field OS-EXT-SRV-ATTR:host)" = h1 ] || die "$VM is not ACTIVE on h1"
echo "create: $VM ($ID) ACTIVE on h1 in $(since "$t") s"
boot=$(last_boot h1); [ -n "$boot" ] || die "no VS-ACK in h1's console.log of $VM"
echo "guest: boot $boot writes VS-ACK ($(console h1 | grep -c VS-ACK) lines so far)"

t=$(now)
openstack --os-compute-api-version 2.30 server migrate --live-migration --block-migration --host h2 "$VM" --wait \
  >/dev/null || die "live migration failed; see $LAB/h1/nova-compute.log and $LAB/h2/nova-compute.log"
host=$(field OS-EXT-SRV-ATTR:host)
[ "$host" = h2 ] || die "after the live migration $VM is on '$host', not h2 (openstack server migration list --server $VM)"
echo "live migration: on h2 after $(since "$t") s (CLI, polling included): $(openstack server migration list \
  --server "$VM" -f value -c Status -c 'Created At' -c 'Updated At' | tail -1)"
sleep 3
[ "$(last_boot h2)" = "$boot" ] || die "the guest on h2 is not the same boot ($boot)"
echo "guest: boot $boot goes on on h2 ($(console h2 | grep VS-ACK | tail -1))"

t=$(now)
openstack server reboot --hard "$VM" --wait >/dev/null || die "hard reboot failed; see $LAB/h2/nova-compute.log"
echo "hard reboot: $(field status) in $(since "$t") s"
newboot=$(last_boot h2 "$boot"); [ -n "$newboot" ] && [ "$newboot" != "$boot" ] || die "no new boot after the hard reboot"
echo "guest: new boot $newboot"

t=$(now)
openstack server delete "$VM" --wait || die "delete failed; see $LAB/h2/nova-compute.log"
[ ! -e "$LAB/h2/var/lib/nova/instances/$ID" ] || die "$VM's instance directory is still on h2"
echo "delete: gone in $(since "$t") s"
