#!/bin/bash
# lab.sh - the virt-shadow lab: several libvirt "hosts" on this one machine.
#
#   lab.sh up [N] [--nova]  start hosts h1..hN (default 3) in 2 zones; safe to run again (running hosts are kept);
#                        with --nova (or VS_LAB_NOVA=1) also an OpenStack Nova over them (scripts/nova-lab.sh,
#                        docs/nova.md): its control plane in the root namespace on 10.77.0.1, a nova-compute per host
#   lab.sh down          stop everything the lab started, by pid; remove namespaces and the bridge; verify
#   lab.sh status [--json]
#   lab.sh exec HOST CMD...  run CMD inside host HOST (h1, h2, ...): its network, mount and UTS namespaces
#   lab.sh shape RATE    shape every host link to RATE (tc htb, Corosync first; e.g. 1gbit); "lab.sh shape off" removes it
#   lab.sh jitter DELAY JITTER   delay every packet a host receives on its link by DELAY +- JITTER, uniform (netem's
#                        "delay DELAY JITTER", e.g. 20ms 10ms); "lab.sh jitter off" removes it. See cmd_jitter.
#   lab.sh uri HOST      print the root namespace's libvirt URI of HOST (qemu+tls://ADDR/system?pkipath=..., or
#                        qemu+tcp://ADDR/system in a lab without TLS)
#   lab.sh install BUILD [HOST...]   install the libvirt hook and (re)start shadowd in every (or each named) host
#   lab.sh install --installed [HOST...]   the same with the virt-shadow package's binaries (dpkg -i first): every
#                        host runs /usr/sbin/shadowd and, through the package's link /etc/libvirt/hooks/qemu.d/
#                        virt-shadow, /usr/libexec/virt-shadow/virt-shadow-hook (/usr is shared by all hosts), instead
#                        of copies from a build tree; vs-netdelay (lab.sh jitter) is not packaged and stays as it was.
#                        The lab tests then use the installed CLI with VS_LAB_CLI=/usr/bin/virt-shadow
#                        (tests/lab/lab_env.cc); tests/lab/installed_package_test.sh does all of it.
#   lab.sh shadowd HOST start|stop|kill|status   manage one host's shadowd (kill = SIGKILL, for crash tests)
#   lab.sh cut HOST / lab.sh heal HOST   take the host's link down / up (its veth on the bridge side), for tests;
#                        "lab.sh cut HOST corosync" cuts only its Corosync (libvirtd still answers); heal undoes both
#   lab.sh crash HOST    a host crash: its link cut, then SIGKILL to every process of it (libvirtd, virtlogd, QEMU,
#                        shadowd, Corosync, nova-compute); its files stay as a power cut leaves them
#   lab.sh revive HOST   bring a crashed host back: link up, virtlogd and libvirtd, Corosync, and shadowd again when
#                        one was installed, its nova-compute in a lab with Nova (its disks and definitions as the
#                        crash left them)
#
# Each host is a network namespace (veth on bridge vsbr0, 10.77.0.(10+i)/24) plus a private mount and UTS
# namespace in which bind mounts give it its own /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/log/libvirt,
# /var/cache/libvirt, /etc/pki, /var/lib/virt-shadow, /run/virt-shadow and /var/lib/nova (so storage is NOT shared between hosts),
# its own hostname and host_uuid, and its own virtlogd and libvirtd. Once every host is up, each
# also runs a Corosync node (corosync 3, knet, token 800 ms, votequorum; the nodelist names h1..hN with their
# addresses and nodeid N) in a further mount namespace of its own where /run and /var/lib/corosync are the
# host's ($LAB/hN/corosync/); its config and log are $LAB/hN/corosync.conf and corosync.log. Corosync's IPC follows the network
# namespace, so shadowd (and corosync-quorumtool) inside a host talk to that host's node. Hosts reach each other and
# the root namespace reaches them at qemu+tls://10.77.0.(10+i)/system. Odd hosts are in zone-a, even in zone-b.
#
# TLS (the default; VS_LAB_TLS=0 at 'lab.sh up' for a plaintext lab, e.g. to compare): one CA in $LAB/pki
# (scripts/pki.sh, GnuTLS's certtool) and in each host's /etc/pki, in libvirt's layout, its certificates naming the
# host (hN) and its address. Every channel between hosts uses them with a certificate at both ends: libvirtd listens
# only for TLS (listen_tls, no TCP), migrations must use TLS (qemu.conf migrate_tls_force), backup exports are served
# with TLS when asked (<server tls='yes'>), and shadowd's [tls] turns on its peer service's TLS, TLS exports and
# TLS migrations. The root namespace (tests, virsh) connects as client "lab-admin" with the certificate in
# $LAB/pki/admin (libvirt's pkipath=). The mode is kept in $LAB/tls-mode until 'lab.sh down'.
#
# State lives in $VS_LAB_DIR (default /var/tmp/virt-shadow-lab): hN/ holds host N's private directories,
# hosts.tsv the inventory (name zone address uri cost), guest/ the test guest, logs/ serial logs (shared, so
# that a guest's log continues across migrations).
set -euo pipefail
# Descriptors inherited from the caller are closed first: every daemon started below would keep them open for its
# whole life, and a caller's lock (flock /work/lab.lock lab.sh ...) would then never be released.
for fd in $(ls /proc/$$/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null || true; done
LAB=${VS_LAB_DIR:-/var/tmp/virt-shadow-lab}
BRIDGE=vsbr0
NET=10.77.0
# /var/lib/nova: a nova-compute's instances and state (lab.sh up --nova); each host's own, as Nova expects.
PRIVATE_DIRS="/etc/libvirt /run/libvirt /var/lib/libvirt /var/log/libvirt /var/cache/libvirt /etc/pki /var/lib/virt-shadow /run/virt-shadow /var/lib/nova"
PKI=$LAB/pki
PKI_SH=$(dirname "$(readlink -f "$0")")/pki.sh
NOVA_SH=$(dirname "$(readlink -f "$0")")/nova-lab.sh
nova_lab() { VS_LAB_DIR=$LAB "$NOVA_SH" "$@"; }

die() { echo "lab: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (it creates network namespaces and starts libvirtd)"

host_index() { [[ $1 =~ ^h([0-9]+)$ ]] || die "unknown host '$1': hosts are named h1, h2, ..."; echo "${BASH_REMATCH[1]}"; }
host_addr() { echo "$NET.$((10 + $1))"; }
host_zone() { if (( $1 % 2 )); then echo zone-a; else echo zone-b; fi; }
host_ns() { echo "vs-h$1"; }
# The lab's TLS mode: fixed by 'lab.sh up' in $LAB/tls-mode, from VS_LAB_TLS (default 1) before that.
lab_tls() {
  if [ -f "$LAB/tls-mode" ]; then [ "$(cat "$LAB/tls-mode")" = mutual ]; else [ "${VS_LAB_TLS:-1}" = 1 ]; fi
}
# A host's libvirt URI as seen from inside the hosts (each host's own client certificate) ...
host_peer_uri() { if lab_tls; then echo "qemu+tls://$(host_addr "$1")/system"; else echo "qemu+tcp://$(host_addr "$1")/system"; fi; }
# ... and from the root namespace (lab-admin's certificate).
host_uri() { if lab_tls; then echo "$(host_peer_uri "$1")?pkipath=$PKI/admin"; else host_peer_uri "$1"; fi; }
pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
libvirtd_pid() { cat "$LAB/h$1/run/libvirt/libvirtd.pid" 2>/dev/null || true; }
known_hosts() { ls -d "$LAB"/h[0-9]* 2>/dev/null | sed 's|.*/h||' | sort -n || true; }

host_up() {  # host_up I: start host I unless it already runs
  local i=$1 ns ip H uuid
  ns=$(host_ns "$i"); ip=$(host_addr "$i"); H=$LAB/h$i
  if pid_alive "$(libvirtd_pid "$i")" && ip netns list | grep -qw "$ns"; then
    echo "h$i: already up (libvirtd pid $(libvirtd_pid "$i"))"; return 0
  fi
  host_down "$i" >/dev/null 2>&1 || true  # a half-started host is rebuilt from scratch
  uuid=$(printf '5eadb00c-0000-4000-8000-%012x' "$i")

  ip netns add "$ns"
  ip link add "vsh${i}r" type veth peer name "vsh${i}i"
  ip link set "vsh${i}r" master "$BRIDGE" up
  ip link set "vsh${i}i" netns "$ns"
  ip -n "$ns" link set "vsh${i}i" name eth0
  ip -n "$ns" addr add "$ip/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up

  rm -rf "$H"; mkdir -p "$H"
  for d in $PRIVATE_DIRS; do mkdir -p "$H$d" "$d"; done
  cp -a /etc/libvirt/. "$H/etc/libvirt/"
  rm -f "$H"/etc/libvirt/qemu/*.xml "$H"/etc/libvirt/qemu/autostart/* "$H"/etc/libvirt/qemu/networks/autostart/*
  mkdir -p "$H/var/lib/libvirt/images" "$H/etc/libvirt/hooks"
  local tls_listen="listen_tls = 1
listen_tcp = 0" tcp_auth=""
  lab_tls || { tls_listen="listen_tls = 0
listen_tcp = 1"; tcp_auth='auth_tcp = "none"'; }
  cat >> "$H/etc/libvirt/libvirtd.conf" <<CONF
# --- virt-shadow lab host h$i
$tls_listen
listen_addr = "$ip"
$tcp_auth
host_uuid = "$uuid"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
CONF
  cat >> "$H/etc/libvirt/qemu.conf" <<CONF
# --- virt-shadow lab host h$i
migration_host = "$ip"
migration_address = "$ip"
# Hosts share the guest kernel; per-daemon owner xattrs would make their relabelling step on each other.
remember_owner = 0
CONF
  if lab_tls; then
    # QEMU's certificates (migrations, backup exports) are the default directory's, /etc/pki/qemu; clients must
    # show one too, and a migration without TLS is refused.
    printf 'default_tls_x509_verify = 1\nmigrate_tls_force = 1\n' >> "$H/etc/libvirt/qemu.conf"
    "$PKI_SH" host "$PKI" "$H" "h$i" "$ip" >/dev/null
  fi
  # The hook 'lab.sh install' chose, put in before libvirtd starts, as libvirtd discovers hooks only at start. The
  # package's link, when the package is installed on this machine, came along with /etc/libvirt: host_hook_in
  # takes it out unless the lab runs the package, so that a host runs the one hook the lab was given.
  host_hook_in "$i"

  host_boot "$i"
}

host_boot() {  # host_boot I: start host I's virtlogd and libvirtd in its namespace, over its existing directories
  local i=$1 ns H=$LAB/h$1
  ns=$(host_ns "$i")
  local binds=""
  for d in $PRIVATE_DIRS; do binds+="mount --bind '$H$d' '$d'; "; done
  ip netns exec "$ns" unshare --mount --uts --propagation private bash -ec "
    $binds
    hostname lab-h$i
    virtlogd -d -p /run/libvirt/virtlogd.pid
    libvirtd -d --listen -p /run/libvirt/libvirtd.pid
  "
  local uri; uri=$(host_uri "$i")
  for _ in $(seq 1 100); do virsh -q -c "$uri" uri >/dev/null 2>&1 && break; sleep 0.1; done
  virsh -q -c "$uri" uri >/dev/null 2>&1 || die "h$i: libvirtd did not answer at $uri; see $H/var/log/libvirt/libvirtd.log"
  echo "h$i: up at $uri ($(host_zone "$i"), libvirtd pid $(libvirtd_pid "$i"))"
}

host_pids() {  # every process of host I: those in its network namespace (QEMU, libvirtd, virtlogd, shadowd...)
  ip netns pids "$(host_ns "$1")" 2>/dev/null || true
}

host_down() {  # host_down I: destroy its domains, stop its processes, remove its namespace
  local i=$1 ns uri pids
  ns=$(host_ns "$i"); uri=$(host_uri "$i")
  if ip netns list | grep -qw "$ns" && pid_alive "$(libvirtd_pid "$i")"; then
    for d in $(timeout 10 virsh -q -c "$uri" list --all --name 2>/dev/null || true); do
      timeout 10 virsh -q -c "$uri" destroy "$d" >/dev/null 2>&1 || true
      timeout 10 virsh -q -c "$uri" undefine "$d" --checkpoints-metadata --snapshots-metadata >/dev/null 2>&1 || true
    done
  fi
  corosync_stop "$i"  # by its pid, before the namespace's other processes (it leaves the membership cleanly)
  pids=$(host_pids "$i")
  [ -n "$pids" ] && kill $pids 2>/dev/null || true
  for _ in $(seq 1 50); do [ -z "$(host_pids "$i")" ] && break; sleep 0.1; done
  pids=$(host_pids "$i")
  [ -n "$pids" ] && { echo "h$i: killing stubborn processes $pids"; kill -9 $pids 2>/dev/null || true; sleep 0.3; }
  ip netns del "$ns" 2>/dev/null || true
  ip link del "vsh${i}r" 2>/dev/null || true
  echo "h$i: down"
}

corosync_pid() { cat "$LAB/h$1/corosync.pid" 2>/dev/null || true; }

write_corosync_conf() {  # write_corosync_conf I N FILE: host I's Corosync config for a lab of hosts 1..N
  local i=$1 n=$2 file=$3
  { printf 'totem {\n  version: 2\n  cluster_name: virt-shadow-lab\n  transport: knet\n'
    # token 800 ms and token_coefficient 0 (Corosync 3 otherwise adds 650 ms per node beyond two: 1650 ms for
    # three), consensus 1.2 x token = 960 ms: a lost node is noticed in about 1.8 s (docs/failover.md, "The bound").
    printf '  token: 800\n  token_coefficient: 0\n  crypto_cipher: none\n  crypto_hash: none\n}\n\nnodelist {\n'
    for j in $(seq 1 "$n"); do
      printf '  node {\n    ring0_addr: %s\n    name: h%d\n    nodeid: %d\n  }\n' "$(host_addr "$j")" "$j" "$j"
    done
    printf '}\n\nquorum {\n  provider: corosync_votequorum\n'
    (( n == 2 )) && printf '  two_node: 1\n'
    printf '}\n\nlogging {\n  to_stderr: no\n  to_syslog: no\n  to_logfile: yes\n'
    printf '  logfile: %s\n  timestamp: on\n}\n' "$LAB/h$i/corosync.log"; } > "$file"
}

corosync_stop() {  # corosync_stop I: stop host I's Corosync node by its pid
  local i=$1 pid; pid=$(corosync_pid "$i")
  if pid_alive "$pid"; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do pid_alive "$pid" || break; sleep 0.1; done
    pid_alive "$pid" && { echo "h$i: corosync $pid did not stop on SIGTERM; killing it"; kill -9 "$pid" || true; sleep 0.2; }
  fi
  rm -f "$LAB/h$i/corosync.pid"
}

corosync_up() {  # corosync_up I N: (re)start host I's Corosync node unless it runs with the same nodelist
  local i=$1 n=$2 H=$LAB/h$i
  command -v corosync >/dev/null || die "corosync not found: run scripts/setup.sh first"
  write_corosync_conf "$i" "$n" "$H/corosync.conf.new"
  if pid_alive "$(corosync_pid "$i")" && cmp -s "$H/corosync.conf.new" "$H/corosync.conf"; then
    rm -f "$H/corosync.conf.new"; echo "h$i: corosync already up (pid $(corosync_pid "$i"))"; return 0
  fi
  corosync_stop "$i"
  mv "$H/corosync.conf.new" "$H/corosync.conf"
  mkdir -p "$H/corosync/run" "$H/corosync/lib" /var/lib/corosync
  local lpid; lpid=$(libvirtd_pid "$i"); pid_alive "$lpid" || die "h$i is not up"
  # No fork along the way (setsid, nsenter without -p, unshare without --fork, bash's exec): $! is corosync.
  # All of /run is the node's own: Corosync's single-instance lock is /run/corosync.pid, outside /run/corosync.
  setsid nsenter -t "$lpid" -n -m -u -- unshare --mount --propagation private bash -ec "
    mount --bind '$H/corosync/run' /run
    mkdir -p /run/corosync
    mount --bind '$H/corosync/lib' /var/lib/corosync
    # Inherited descriptors closed: a caller's lock (flock /work/lab.lock lab.sh up) must not live on in the node.
    for fd in \$(ls /proc/\$\$/fd); do [ \$fd -gt 2 ] && eval \"exec \$fd>&-\" 2>/dev/null || true; done
    exec corosync -f -c '$H/corosync.conf'" >> "$H/corosync.out" 2>&1 < /dev/null &
  echo $! > "$H/corosync.pid"
  # Ready when its IPC answers (quorate or not: the first node is alone until the second one starts).
  local out
  for _ in $(seq 1 100); do
    out=$(ip netns exec "$(host_ns "$i")" corosync-quorumtool -s 2>/dev/null || true)
    grep -q '^Quorum provider' <<< "$out" && break
    pid_alive "$(corosync_pid "$i")" || break
    sleep 0.1
  done
  pid_alive "$(corosync_pid "$i")" || die "h$i: corosync exited; see $H/corosync.out and $H/corosync.log"
  echo "h$i: corosync pid $(corosync_pid "$i") (node $i of $n)"
}

# corosync_state I: "quorate M/N", "not-quorate M/N" (M nodes in its partition, N in the nodelist) or "-".
corosync_state() {
  local i=$1 out
  pid_alive "$(corosync_pid "$i")" || { echo "-"; return 0; }
  out=$(timeout 3 ip netns exec "$(host_ns "$i")" corosync-quorumtool -s 2>/dev/null || true)
  [ -n "$out" ] || { echo "no-answer"; return 0; }
  local nodes quorate expected
  nodes=$(awk -F: '/^Nodes:/ {gsub(/ /, "", $2); print $2}' <<< "$out")
  quorate=$(awk -F: '/^Quorate:/ {gsub(/ /, "", $2); print $2}' <<< "$out")
  expected=$(awk -F: '/^Expected votes:/ {gsub(/ /, "", $2); print $2}' <<< "$out")
  [ "$quorate" = Yes ] && echo "quorate ${nodes:-?}/${expected:-?}" || echo "not-quorate ${nodes:-?}/${expected:-?}"
}

# lab.sh cut HOST [corosync]: the host's link down (a partition); with "corosync", only Corosync's packets (UDP 5405)
# dropped both ways inside the host, so that it leaves the membership while its libvirtd still answers the others.
COROSYNC_DROP=("-p" "udp" "--dport" "5405" "-j" "DROP")
cmd_cut() {
  local i; i=$(host_index "${1:?usage: lab.sh cut HOST [corosync]}")
  if [ "${2:-}" = corosync ]; then
    local chain
    for chain in INPUT OUTPUT; do ip netns exec "$(host_ns "$i")" iptables -A "$chain" "${COROSYNC_DROP[@]}"; done
    echo "h$i: Corosync cut (UDP 5405 dropped)"; return 0
  fi
  [ -z "${2:-}" ] || die "usage: lab.sh cut HOST [corosync]"
  ip link set "vsh${i}r" down || die "h$i has no link vsh${i}r: is the lab up?"
  echo "h$i: link cut"
}

cmd_heal() {  # lab.sh heal HOST: the link up and Corosync's packets let through again
  local i chain; i=$(host_index "${1:?usage: lab.sh heal HOST}")
  for chain in INPUT OUTPUT; do
    while ip netns exec "$(host_ns "$i")" iptables -C "$chain" "${COROSYNC_DROP[@]}" 2>/dev/null; do
      ip netns exec "$(host_ns "$i")" iptables -D "$chain" "${COROSYNC_DROP[@]}"
    done
  done
  ip link set "vsh${i}r" up || die "h$i has no link vsh${i}r: is the lab up?"
  echo "h$i: link healed"
}

cmd_crash() {
  local i; i=$(host_index "${1:?usage: lab.sh crash HOST}")
  ip netns list | grep -qw "$(host_ns "$i")" || die "h$i is not up"
  # The link first, so that nothing the host does while dying reaches the others (as with a power cut).
  ip link set "vsh${i}r" down || die "h$i has no link vsh${i}r: is the lab up?"
  local pids; pids=$(host_pids "$i")
  [ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
  for _ in $(seq 1 50); do [ -z "$(host_pids "$i")" ] && break; sleep 0.1; done
  [ -z "$(host_pids "$i")" ] || die "h$i: processes survived SIGKILL: $(host_pids "$i")"
  echo "h$i: crashed (link cut, every process killed with SIGKILL: ${pids//$'\n'/ })"
}

cmd_revive() {
  local i; i=$(host_index "${1:?usage: lab.sh revive HOST}")
  local ns H=$LAB/h$i n
  ns=$(host_ns "$i")
  ip netns list | grep -qw "$ns" || die "h$i has no namespace: 'lab.sh up' builds a host from scratch instead"
  pid_alive "$(libvirtd_pid "$i")" && die "h$i runs (libvirtd pid $(libvirtd_pid "$i")): crash it first"
  ip link set "vsh${i}r" up
  rm -f "$H/run/libvirt/libvirtd.pid" "$H/run/libvirt/virtlogd.pid"
  host_boot "$i"
  n=$(tail -n +2 "$LAB/hosts.tsv" | wc -l)
  corosync_up "$i" "$n"
  if [ -x "$LAB/bin/shadowd" ] && [ -f "$H/shadowd.conf" ]; then cmd_shadowd "h$i" start; fi
  if [ -d "$LAB/nova/etc" ]; then nova_lab compute "$i"; fi
  echo "h$i: revived"
}

cmd_up() {
  local n=3 nova=${VS_LAB_NOVA:-0} a
  for a in "$@"; do if [ "$a" = --nova ]; then nova=1; else n=$a; fi; done
  [[ $n =~ ^[0-9]+$ ]] && (( n >= 2 && n <= 20 )) || die "host count must be 2..20, got '$n'"
  for t in libvirtd virtlogd virsh qemu-system-x86_64 ip unshare nsenter; do
    command -v "$t" >/dev/null || die "$t not found: run scripts/setup.sh first"
  done
  # A /dev/kvm that only root may open (no udev here to apply Debian's rule: group kvm, mode 0660) makes libvirt
  # probe QEMU's capabilities as root (KVM found), judge them stale because QEMU's user cannot open /dev/kvm, and
  # probe again on every lookup: 4 s each, a shadow's definition took 45 s (libvirtd's debug log: "KVM was enabled
  # when probing ..., but it is not available now"). The lab's guests stay TCG (type='qemu') either way.
  if [ -e /dev/kvm ] && ! setpriv --reuid=libvirt-qemu --regid=libvirt-qemu --init-groups test -r /dev/kvm -a -w /dev/kvm 2>/dev/null; then
    chgrp kvm /dev/kvm && chmod 660 /dev/kvm || die "cannot give /dev/kvm udev's group kvm and mode 0660"
  fi
  # Postcopy needs userfaultfd for QEMU, which runs unprivileged as libvirt-qemu.
  [ "$(sysctl -n vm.unprivileged_userfaultfd)" = 1 ] || sysctl -qw vm.unprivileged_userfaultfd=1
  mkdir -p "$LAB/logs" "$LAB/guest"; chmod 755 "$LAB"
  local mode; mode=$(lab_tls && echo mutual || echo none)
  if [ -n "$(known_hosts)" ] && [ -f "$LAB/tls-mode" ] && [ "$(cat "$LAB/tls-mode")" != "$mode" ]; then
    die "the lab runs with TLS '$(cat "$LAB/tls-mode")', not '$mode' (VS_LAB_TLS): 'lab.sh down' first to change it"
  fi
  echo "$mode" > "$LAB/tls-mode"
  if lab_tls; then
    command -v certtool >/dev/null || die "certtool not found: run scripts/setup.sh first (package gnutls-bin)"
    # The CA and the issued certificates outlive 'lab.sh down' (pki.sh keeps what still verifies).
    "$PKI_SH" ca "$PKI" >/dev/null
    "$PKI_SH" client "$PKI" "$PKI/admin" lab-admin >/dev/null
  fi
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    ip addr add "$NET.1/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
  fi
  for i in $(seq 1 "$n"); do host_up "$i"; done
  { printf 'name\tzone\taddress\turi\tcost\n'
    for i in $(seq 1 "$n"); do
      printf 'h%d\t%s\t%s\t%s\t%s\n' "$i" "$(host_zone "$i")" "$(host_addr "$i")" "$(host_uri "$i")" "0.$((i % 4 + 1))0"
    done; } > "$LAB/hosts.tsv"
  # Corosync last, once every host's address answers: a node restarts only when its nodelist changed.
  for i in $(seq 1 "$n"); do corosync_up "$i" "$n"; done
  if [ "$nova" = 1 ]; then nova_lab up "$n"; fi
}

cmd_down() {
  nova_lab down  # its nova-computes first, while the hosts' libvirtd still answer
  for i in $(known_hosts); do host_down "$i"; done
  ip link del "$BRIDGE" 2>/dev/null || true
  rm -f "$LAB/hosts.tsv" "$LAB/tls-mode"
  for i in $(known_hosts); do rm -rf "${LAB:?}/h$i"; done
  cmd_verify_clean
}

# Exits non-zero, naming what is left, when anything of the lab survived: a namespace, a link, a process
# whose namespace or files belong to the lab (a Corosync node's command line names its config there), or a mount
# of the lab's directories.
cmd_verify_clean() {
  local left=0
  if ip netns list | grep -q '^vs-h'; then echo "left: network namespaces $(ip netns list | grep '^vs-h' | tr '\n' ' ')"; left=1; fi
  if ip -o link show | grep -qE ": (vsbr0|vsh[0-9]+r)[@:]"; then echo "left: links $(ip -o link show | grep -oE '(vsbr0|vsh[0-9]+r)' | tr '\n' ' ')"; left=1; fi
  local stray
  stray=$(pgrep -f -- "-p /run/libvirt/(libvirtd|virtlogd).pid|guest=.*virt-shadow-lab|$LAB" || true)
  if [ -n "$stray" ]; then echo "left: processes $(echo $stray)"; ps -o pid,cmd -p $(echo $stray | tr ' ' ,) || true; left=1; fi
  local coro; coro=$(pgrep -f -- "corosync -f -c $LAB" || true)
  if [ -n "$coro" ]; then echo "left: corosync $(echo $coro)"; left=1; fi
  if grep -q "$LAB/h" /proc/self/mountinfo; then echo "left: mounts of $LAB"; left=1; fi
  nova_lab verify-clean || left=1  # MariaDB, RabbitMQ, OpenStack services and nova-computes of the lab's Nova
  if (( left )); then echo "lab: down left things behind (listed above)" >&2; return 1; fi
  echo "lab: clean (no namespace, link, process or mount left)"
}

cmd_status() {
  local json=${1:-}
  [ -f "$LAB/hosts.tsv" ] || { [ "$json" = --json ] && echo '[]' || echo "lab is down"; return 0; }
  local first=1
  [ "$json" = --json ] && printf '['
  [ "$json" = --json ] || printf '%-4s %-7s %-12s %-32s %-9s %-8s %s\n' HOST ZONE ADDRESS URI LIBVIRTD DOMAINS COROSYNC
  tail -n +2 "$LAB/hosts.tsv" | while IFS=$'\t' read -r name zone addr uri cost; do
    local i pid state doms
    i=$(host_index "$name"); pid=$(libvirtd_pid "$i")
    if pid_alive "$pid" && timeout 5 virsh -q -c "$uri" uri >/dev/null 2>&1; then
      state=up; doms=$(timeout 5 virsh -q -c "$uri" list --all --name 2>/dev/null | grep -c . || true)
    else state=down; doms=0; fi
    if [ "$json" = --json ]; then
      (( first )) || printf ','; first=0
      printf '{"name":"%s","zone":"%s","address":"%s","uri":"%s","cost":%s,"libvirtd":"%s","pid":%s,"domains":%s,"corosync":"%s"}' \
        "$name" "$zone" "$addr" "$uri" "$cost" "$state" "${pid:-0}" "$doms" "$(corosync_state "$i")"
    else
      printf '%-4s %-7s %-12s %-32s %-9s %-8s %s\n' "$name" "$zone" "$addr" "$uri" "$state:${pid:--}" "$doms" \
        "$(corosync_state "$i")"
    fi
  done
  [ "$json" = --json ] && echo ']' || nova_lab status
}

cmd_exec() {
  local i; i=$(host_index "${1:?usage: lab.sh exec HOST CMD...}"); shift
  local pid; pid=$(libvirtd_pid "$i")
  pid_alive "$pid" || die "h$i is not up (no libvirtd): run 'lab.sh up' first"
  exec nsenter -t "$pid" -n -m -u -- "$@"
}

shadowd_pid() { cat "$LAB/h$1/shadowd.pid" 2>/dev/null || true; }

write_shadowd_conf() {  # write_shadowd_conf I: host I's shadowd configuration, from the inventory
  local i=$1
  local addr; addr=$(awk -F'\t' -v h="h$i" '$1 == h {print $3}' "$LAB/hosts.tsv")
  { printf '[shadowd]\nhost = h%d\nlibvirt = qemu:///system\ngrace_seconds = %s\nrefresh_seconds = 2\n' \
      "$i" "${VS_LAB_GRACE_SECONDS:-20}"
    printf 'metrics = %s:9177\n' "$addr"
    # shadowd follows the host's Corosync node (started by 'lab.sh up'); VS_LAB_MEMBERSHIP=none turns that off.
    printf 'membership = %s\n' "${VS_LAB_MEMBERSHIP:-corosync}"
    tail -n +2 "$LAB/hosts.tsv" | while IFS=$'\t' read -r name zone addr uri cost; do
      printf '\n[host.%s]\nzone = %s\nuri = %s\ncost = %s\n' "$name" "$zone" "$(host_peer_uri "$(host_index "$name")")" "$cost"
    done
    # Each host's own certificates, in its /etc/pki (scripts/pki.sh host).
    if lab_tls; then printf '\n[tls]\npeer = mutual\nnbd = mutual\nmigration = mutual\n'; fi
    # Notices come from the tests' fakes: acpid's socket in the host's directory (seen by the root
    # namespace and the host alike) and one fake metadata server for all clouds on the bridge, each host
    # under its own path prefix (tests/unit/notice/fake_cloud.h). While no test runs them, shadowd's
    # pollers get "connection refused", logged once.
    local cloud="http://$NET.1:18169/h$i"
    printf '\n[notice]\nacpid_socket = %s\ngce = %s\naws = %s\nazure = %s\nazure_vm_name = h%d\n' \
      "$LAB/h$i/acpid.socket" "$cloud" "$cloud" "$cloud" "$i"
    printf 'poll_seconds = 1\ndrain_deadline_seconds = 60\n'
    # With the lab's Nova (lab.sh up --nova): shadowd reads Nova's records as the cloud's admin (Placement's
    # allocations need it), and the lab's named policy "gold" is what a flavor, an image or an instance names.
    if [ -f "$LAB/nova/openrc" ]; then
      local pw=$LAB/h$i/nova.password
      (umask 077; sed -n 's/^export OS_PASSWORD=//p' "$LAB/nova/openrc" > "$pw")
      printf '\n[nova]\nauth_url = http://%s.1:5000/v3\nusername = admin\npassword_file = %s\nproject_name = admin\n' \
        "$NET" "$pw"
      printf '\n[policy.gold]\nvcpus = 50%%\nmemory = 50%%\ninterval = 2s\npriority = 500\n'
    fi; } > "$LAB/h$i/shadowd.conf"
}

cmd_shadowd() {
  local i; i=$(host_index "${1:?usage: lab.sh shadowd HOST start|stop|kill|status}")
  local pid; pid=$(shadowd_pid "$i")
  case ${2:-} in
    start)
      pid_alive "$pid" && { echo "h$i: shadowd already runs (pid $pid)"; return 0; }
      [ -x "$LAB/bin/shadowd" ] ||
        die "no shadowd installed in the lab (or the package's is gone): run 'lab.sh install BUILD_DIR|--installed' first"
      [ -f "$LAB/h$i/shadowd.conf" ] || write_shadowd_conf "$i"
      local lpid; lpid=$(libvirtd_pid "$i"); pid_alive "$lpid" || die "h$i is not up"
      nsenter -t "$lpid" -n -m -u -- setsid "$LAB/bin/shadowd" --config "$LAB/h$i/shadowd.conf" \
        >> "$LAB/h$i/shadowd.log" 2>&1 < /dev/null &
      echo $! > "$LAB/h$i/shadowd.pid"
      # Ready when its sockets are there: the hook's (the hook would otherwise spool), made just before the CLI's.
      local run=$LAB/h$i/run/virt-shadow
      for _ in $(seq 1 100); do [ -S "$run/hook.sock" ] && [ -S "$run/shadowd.sock" ] && break; sleep 0.1; done
      [ -S "$run/hook.sock" ] && [ -S "$run/shadowd.sock" ] ||
        die "h$i: shadowd did not start; see $LAB/h$i/shadowd.log"
      echo "h$i: shadowd pid $(shadowd_pid "$i")";;
    stop|kill)
      pid_alive "$pid" || { echo "h$i: shadowd not running"; return 0; }
      kill "$([ "$2" = kill ] && echo -9 || echo -TERM)" "$pid"
      for _ in $(seq 1 50); do pid_alive "$pid" || break; sleep 0.1; done
      pid_alive "$pid" && die "h$i: shadowd $pid did not stop"
      echo "h$i: shadowd stopped ($2)";;
    status) pid_alive "$pid" && echo "h$i: shadowd pid $pid" || { echo "h$i: shadowd not running"; return 1; };;
    *) die "usage: lab.sh shadowd HOST start|stop|kill|status";;
  esac
}

# The lab's hooks directory, $LAB/hook, is what every host's /etc/libvirt/hooks gets: either qemu, a copy of a
# build's hook ('lab.sh install BUILD'), or qemu.d/virt-shadow, the package's link to its installed hook ('lab.sh
# install --installed'); never both, so that libvirtd runs the hook once.
PACKAGE_HOOK_LINK=/etc/libvirt/hooks/qemu.d/virt-shadow
PACKAGE_HOOK=/usr/libexec/virt-shadow/virt-shadow-hook
PACKAGE_SHADOWD=/usr/sbin/shadowd

host_hook_in() {  # host_hook_in I: host I's hooks directory as $LAB/hook says (libvirtd reads it at start or SIGHUP)
  local hooks=$LAB/h$1/etc/libvirt/hooks
  rm -f "$hooks/qemu" "$hooks/qemu.d/virt-shadow"
  if [ -x "$LAB/hook/qemu" ]; then
    install -m 755 "$LAB/hook/qemu" "$hooks/qemu"
  elif [ -x "$LAB/hook/qemu.d/virt-shadow" ]; then  # -x: not once the package (the link's target) is gone
    mkdir -p "$hooks/qemu.d"
    cp -P "$LAB/hook/qemu.d/virt-shadow" "$hooks/qemu.d/virt-shadow"
  fi
}

# install_installed: the lab's shadowd and hook become the package's (a symlink to /usr/sbin/shadowd, so that the
# process's /proc/PID/exe is the installed file; the package's own hook link), after checking the package is there.
install_installed() {
  local status
  status=$(dpkg-query -W -f='${Status} ${Version}' virt-shadow 2>/dev/null || true)
  [[ $status == "install ok installed "* ]] ||
    die "the virt-shadow package is not installed (dpkg: '${status:-unknown}'): scripts/package.sh, then dpkg -i it"
  [ -x "$PACKAGE_SHADOWD" ] && [ -x "$PACKAGE_HOOK" ] ||
    die "virt-shadow ${status##* } is installed but $PACKAGE_SHADOWD or $PACKAGE_HOOK is missing: reinstall it"
  [ "$(readlink "$PACKAGE_HOOK_LINK" || true)" = "$PACKAGE_HOOK" ] ||
    die "$PACKAGE_HOOK_LINK does not link to $PACKAGE_HOOK: reinstall the package"
  mkdir -p "$LAB/bin" "$LAB/hook/qemu.d"
  ln -sfn "$PACKAGE_SHADOWD" "$LAB/bin/shadowd.new" && mv -T "$LAB/bin/shadowd.new" "$LAB/bin/shadowd"
  rm -f "$LAB/hook/qemu"
  cp -P "$PACKAGE_HOOK_LINK" "$LAB/hook/qemu.d/virt-shadow"
  echo "lab: installed virt-shadow ${status##* }: $PACKAGE_SHADOWD, hook $PACKAGE_HOOK_LINK -> $PACKAGE_HOOK"
}

install_build() {  # install_build BUILD_DIR: the lab's shadowd, hook and delayer become copies of the build's
  local build=$1
  local hook=$build/libvirt-hook/virt-shadow-hook daemon=$build/shadowd/daemon/shadowd
  [ -x "$hook" ] && [ -x "$daemon" ] || die "no hook or shadowd in $build: build first (scripts/setup.sh)"
  mkdir -p "$LAB/bin" "$LAB/hook"
  install -m 755 "$daemon" "$LAB/bin/shadowd.new" && mv -T "$LAB/bin/shadowd.new" "$LAB/bin/shadowd"
  rm -f "$LAB/hook/qemu.d/virt-shadow"
  install -m 755 "$hook" "$LAB/hook/qemu.new" && mv "$LAB/hook/qemu.new" "$LAB/hook/qemu"
  # The delayer of 'lab.sh jitter', where the build has it (tests/lab/net_delay.cc).
  if [ -x "$build/tests/lab/vs-netdelay" ]; then
    install -m 755 "$build/tests/lab/vs-netdelay" "$LAB/bin/vs-netdelay.new" && mv "$LAB/bin/vs-netdelay.new" "$LAB/bin/vs-netdelay"
  fi
}

cmd_install() {
  local from=${1:?usage: lab.sh install BUILD_DIR|--installed [HOST...]}; shift
  if [ "$from" = --installed ]; then install_installed; else install_build "$from"; fi
  local hosts=("$@"); [ ${#hosts[@]} -gt 0 ] || hosts=($(for i in $(known_hosts); do echo "h$i"; done))
  for h in "${hosts[@]}"; do
    local i; i=$(host_index "$h")
    host_hook_in "$i"
    kill -HUP "$(libvirtd_pid "$i")"  # libvirtd discovers hooks only at start or on SIGHUP
    local uri; uri=$(host_uri "$i")
    for _ in $(seq 1 50); do virsh -q -c "$uri" uri >/dev/null 2>&1 && break; sleep 0.1; done
    virsh -q -c "$uri" uri >/dev/null 2>&1 ||
      die "h$i: libvirtd stopped answering after SIGHUP; see $LAB/h$i/var/log/libvirt/libvirtd.log"
    write_shadowd_conf "$i"
    cmd_shadowd "h$i" stop >/dev/null
    cmd_shadowd "h$i" start
  done
}

# lab.sh shape RATE: every host link carries at most RATE each way, through an HTB whose first class holds Corosync
# (UDP 5405) and goes first. Replication saturates a shaped link: in one tbf queue Corosync's token waited or was
# dropped behind the NBD stream, and the membership split while every host was up (a 4 Mbit/s round split it
# for 1-2 s each time). Production clusters keep Corosync apart the same way (its own link or a priority class);
# docs/failover.md, "Corosync's link". Each class's queue holds 50 ms at RATE plus a burst, as tbf's latency did.
shape_kbit() {  # shape_kbit RATE: RATE (tc units: 800kbit, 4mbit, 1gbit) in kbit/s
  [[ $1 =~ ^([0-9]+)(kbit|mbit|gbit)$ ]] || die "lab.sh shape: '$1' is not a rate like 800kbit, 4mbit or 1gbit"
  case ${BASH_REMATCH[2]} in
    kbit) echo "${BASH_REMATCH[1]}";; mbit) echo $(( BASH_REMATCH[1] * 1000 ));; gbit) echo $(( BASH_REMATCH[1] * 1000000 ));;
  esac
}

shape_dev() {  # shape_dev KBIT [ip netns exec NS] DEV: the HTB on one side of a link
  local kbit=$1; shift; local dev=${*: -1}; local tc=("${@:1:$#-1}" tc)
  local queue=$(( kbit * 1000 / 8 / 20 + 262144 ))  # bytes: 50 ms at the rate, plus the burst
  "${tc[@]}" qdisc add dev "$dev" root handle 1: htb default 20
  "${tc[@]}" class add dev "$dev" parent 1: classid 1:1 htb rate "${kbit}kbit" burst 256kb cburst 256kb
  "${tc[@]}" class add dev "$dev" parent 1:1 classid 1:10 htb rate "$(( kbit / 8 ))kbit" ceil "${kbit}kbit" \
    burst 256kb cburst 256kb prio 0
  "${tc[@]}" class add dev "$dev" parent 1:1 classid 1:20 htb rate "$(( kbit - kbit / 8 ))kbit" ceil "${kbit}kbit" \
    burst 256kb cburst 256kb prio 1
  "${tc[@]}" qdisc add dev "$dev" parent 1:10 handle 10: bfifo limit "$queue"
  "${tc[@]}" qdisc add dev "$dev" parent 1:20 handle 20: bfifo limit "$queue"
  "${tc[@]}" filter add dev "$dev" parent 1: protocol ip prio 1 u32 match ip protocol 17 0xff \
    match ip dport 5405 0xffff flowid 1:10
}

cmd_shape() {
  local rate=${1:?usage: lab.sh shape RATE|off (e.g. 1gbit)} kbit=""
  [ "$rate" = off ] || kbit=$(shape_kbit "$rate")
  for i in $(known_hosts); do
    tc qdisc del dev "vsh${i}r" root 2>/dev/null || true
    ip netns exec "$(host_ns "$i")" tc qdisc del dev eth0 root 2>/dev/null || true
    [ "$rate" = off ] && continue
    # Both directions: the bridge side shapes traffic into the host, eth0 inside shapes traffic out of it.
    shape_dev "$kbit" "vsh${i}r"
    shape_dev "$kbit" ip netns exec "$(host_ns "$i")" eth0
  done
  echo "lab links: ${rate}"
}

# lab.sh jitter DELAY JITTER: every packet a host receives on its link waits DELAY +- JITTER (uniform, e.g. 20ms
# 10ms) before the host sees it, so that a packet between two hosts is delayed exactly once: each host-to-host link
# is DELAY +- JITTER one way, twice that round trip; packets from the root namespace into a host are delayed too.
# Like netem's jitter it reorders packets. 'lab.sh jitter off' removes it; a crash ends it on the crashed host.
#
# Not tc netem: this machine's kernel has no sch_netem (nor sch_fq, whose departure times could delay packets).
# Instead an iptables NFQUEUE rule on the host's eth0 ingress hands each packet to vs-netdelay (tests/lab/
# net_delay.cc; installed by 'lab.sh install'), which lets it through after its delay; the rule's --queue-bypass
# lets traffic through undelayed if the delayer is gone. Ingress, not egress: a packet held before its sender's
# qdisc still counts against its TCP socket, whose small-queue limit then throttled a bulk stream to 0.2 MiB/s
# (netem orphans the packet for that reason); on the receiver's side it no longer belongs to a socket. Netfilter
# sits apart from the qdiscs, so it combines with 'lab.sh shape'.
JITTER_RULE="PREROUTING -i eth0 -j NFQUEUE --queue-num 0 --queue-bypass"
netdelay_pid() { cat "$LAB/h$1/netdelay.pid" 2>/dev/null || true; }

jitter_stop() {  # jitter_stop I: host I's rule out, then its delayer (which lets every held packet through)
  local i=$1 pid
  if ip netns exec "$(host_ns "$i")" iptables -t mangle -C $JITTER_RULE 2>/dev/null; then
    ip netns exec "$(host_ns "$i")" iptables -t mangle -D $JITTER_RULE
  fi
  pid=$(netdelay_pid "$i")
  if pid_alive "$pid"; then
    kill "$pid"
    for _ in $(seq 1 50); do pid_alive "$pid" || break; sleep 0.1; done
    pid_alive "$pid" && die "h$i: vs-netdelay $pid did not stop"
  fi
  rm -f "$LAB/h$i/netdelay.pid"
}

cmd_jitter() {
  local usage="usage: lab.sh jitter DELAY JITTER|off (milliseconds, e.g. 20ms 10ms)"
  local delay=${1:?$usage} jitter=${2:-}
  if [ "$delay" = off ]; then
    for i in $(known_hosts); do jitter_stop "$i"; done
    echo "lab links: no jitter"; return 0
  fi
  [[ $delay =~ ^([0-9]+)(ms)?$ ]] || die "$usage"; local delay_ms=${BASH_REMATCH[1]}
  [[ $jitter =~ ^([0-9]+)(ms)?$ ]] || die "$usage"; local jitter_ms=${BASH_REMATCH[1]}
  (( jitter_ms <= delay_ms )) || die "the jitter may not exceed the delay (a packet cannot leave before it came)"
  [ -x "$LAB/bin/vs-netdelay" ] || die "no vs-netdelay in the lab: run 'lab.sh install BUILD_DIR' first"
  for i in $(known_hosts); do
    local H=$LAB/h$i ns; ns=$(host_ns "$i")
    jitter_stop "$i"
    # Like corosync_up: no fork along the way (setsid, ip netns exec), so $! is the delayer.
    setsid ip netns exec "$ns" "$LAB/bin/vs-netdelay" --queue 0 --delay-ms "$delay_ms" --jitter-ms "$jitter_ms" \
      > "$H/netdelay.out" 2>&1 < /dev/null &
    echo $! > "$H/netdelay.pid"
    for _ in $(seq 1 50); do grep -q '^ready' "$H/netdelay.out" && break; pid_alive "$(netdelay_pid "$i")" || break; sleep 0.1; done
    grep -q '^ready' "$H/netdelay.out" || die "h$i: vs-netdelay did not start; see $H/netdelay.out"
    ip netns exec "$ns" iptables -t mangle -A $JITTER_RULE
  done
  echo "lab links: ${delay_ms} ms +- ${jitter_ms} ms one way (each host delays what it receives)"
}

case ${1:-} in
  up) shift; cmd_up "$@";;
  down) cmd_down;;
  verify-clean) cmd_verify_clean;;
  status) shift; cmd_status "$@";;
  exec) shift; cmd_exec "$@";;
  shape) shift; cmd_shape "$@";;
  jitter) shift; cmd_jitter "$@";;
  uri) host_uri "$(host_index "${2:?usage: lab.sh uri HOST}")";;
  install) shift; cmd_install "$@";;
  shadowd) shift; cmd_shadowd "$@";;
  cut) shift; cmd_cut "$@";;
  heal) shift; cmd_heal "$@";;
  crash) shift; cmd_crash "$@";;
  revive) shift; cmd_revive "$@";;
  *) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 2;;
esac
