#!/bin/bash
# nova-lab.sh - a real OpenStack Nova (Debian 12's Zed packages) over the lab's hosts; called by lab.sh.
#
#   nova-lab.sh up N         root side (MariaDB, RabbitMQ, keystone, glance, placement, neutron, nova-api,
#                            nova-conductor, nova-scheduler), then one nova-compute in each host h1..hN, then the
#                            test images and flavor (lab.sh up N --nova, or VS_LAB_NOVA=1 lab.sh up N)
#   nova-lab.sh compute I    (re)start host I's nova-compute (lab.sh revive)
#   nova-lab.sh down         stop every root-side daemon by its pid (process group) and remove $LAB/nova
#   nova-lab.sh status       the daemons' pids
#   nova-lab.sh verify-clean non-zero, naming them, when a lab Nova/MariaDB/RabbitMQ process is left
#
# There is no service manager: every daemon is started here with setsid (so its pid is its process group, which
# also holds its workers and helpers, e.g. uwsgi's, neutron's or RabbitMQ's erl children) and stopped by that
# group. Root-side daemons listen on the bridge address 10.77.0.1 so that the hosts reach them; their configs
# are generated in $LAB/nova/etc (never /etc's), pid files in $LAB/nova/run, logs in $LAB/nova/log.
# A host's nova-compute runs in the host's namespaces (nsenter into its libvirtd's), talks to its own libvirtd
# (qemu:///system), keeps instances in /var/lib/nova (one of the host's private dirs, $LAB/hI/var/lib/nova) and
# logs to $LAB/hI/nova-compute.log; 'lab.sh crash' kills it with the host's other processes.
set -euo pipefail
# As in lab.sh: descriptors inherited from the caller are closed first, or a caller's lock (flock /work/lab.lock
# nova-lab.sh compute 2) would be held by the nova-compute started here for its whole life.
for fd in $(ls /proc/$$/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null || true; done
LAB=${VS_LAB_DIR:-/var/tmp/virt-shadow-lab}
NOVA=$LAB/nova
ETC=$NOVA/etc
RUN=$NOVA/run
LOGS=$NOVA/log
ADDR=10.77.0.1
NET=10.77.0
PW=vslab-secret          # every password of the lab's cloud (a throwaway cloud on a private bridge)
DBURL="mysql+pymysql://vslab:$PW@$ADDR"
RABBIT_URL="rabbit://vslab:$PW@$ADDR:5672/"
KEYSTONE=http://$ADDR:5000/v3
PY=/usr/bin/python3      # Debian's, which has the OpenStack libraries (not a pyenv shim)
ROOT_DAEMONS="mariadb epmd rabbitmq keystone glance placement neutron nova-api nova-conductor nova-scheduler"

die() { echo "nova-lab: $*" >&2; exit 1; }
say() { echo "nova-lab: $*"; }
pid_alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
daemon_pid() { cat "$RUN/$1.pid" 2>/dev/null || true; }
libvirtd_pid() { cat "$LAB/h$1/run/libvirt/libvirtd.pid" 2>/dev/null || true; }

# start_daemon NAME CMD...: CMD in the background in a session of its own, its pid (= its process group) in
# $RUN/NAME.pid, its output in $LOGS/NAME.log. VS_NOVA_LAB in its environment (inherited by its children) lets
# verify-clean find it even where its command line names nothing of the lab (epmd, uwsgi's workers). setsid does not fork here (a background job of a non-interactive
# shell is no group leader), so $! is CMD itself.
start_daemon() {
  local name=$1; shift
  VS_NOVA_LAB=$LAB setsid "$@" >> "$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! > "$RUN/$name.pid"
}

# wait_port NAME PORT [SECONDS]: until something listens at $ADDR:PORT; dies naming the log if NAME exits first.
wait_port() {
  local name=$1 port=$2 secs=${3:-60} t
  for ((t = 0; t < secs * 5; t++)); do
    (exec 3<>"/dev/tcp/$ADDR/$port") 2>/dev/null && return 0
    pid_alive "$(daemon_pid "$name")" || die "$name exited before listening on $ADDR:$port; see $LOGS/$name.log"
    sleep 0.2
  done
  die "$name did not listen on $ADDR:$port within ${secs}s; see $LOGS/$name.log"
}

# stop_groups PIDFILE...: SIGTERM to each file's process group, together; SIGKILL to those left after 5 s (the
# lab's state is thrown away anyway; nova-compute's graceful shutdown took longer than 10 s).
stop_groups() {
  local file pid pids=() left
  for file in "$@"; do
    pid=$(cat "$file" 2>/dev/null || true)
    if pid_alive "$pid"; then
      pids+=("$pid"); kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
  done
  for _ in $(seq 1 50); do
    left=""; for pid in "${pids[@]}"; do pgrep -g "$pid" >/dev/null && left+=" $pid"; done
    [ -z "$left" ] && return 0; sleep 0.1
  done
  echo "nova-lab: process groups$left did not stop on SIGTERM within 5 s; killing them"
  for pid in $left; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  sleep 0.3
}

sql() { mariadb --no-defaults -S "$RUN/mysqld.sock" -u root "$@"; }

# Options every OpenStack service shares: the database is set per service.
authtoken() {  # authtoken USER: keystonemiddleware's section for service user USER
  cat <<EOF
[keystone_authtoken]
www_authenticate_uri = http://$ADDR:5000
auth_url = http://$ADDR:5000
auth_type = password
project_domain_name = Default
user_domain_name = Default
project_name = service
username = $1
password = $PW
EOF
}
ksa() {  # ksa SECTION USER: a keystoneauth client section (nova's [placement], [neutron], ...)
  cat <<EOF
[$1]
auth_type = password
auth_url = http://$ADDR:5000/v3
project_domain_name = Default
user_domain_name = Default
project_name = service
username = $2
password = $PW
region_name = RegionOne
valid_interfaces = public
EOF
}

write_configs() {
  mkdir -p "$ETC/keystone" "$ETC/placement"
  { cat <<EOF
[DEFAULT]
use_stderr = true
[database]
connection = $DBURL/keystone
[identity]
# bcrypt's default 12 rounds cost about a second of CPU per token on this machine; the lab's users are made
# with 4 (bootstrap comes after this file).
password_hash_rounds = 4
[token]
provider = fernet
[fernet_tokens]
key_repository = $NOVA/keystone/fernet-keys
[fernet_receipts]
key_repository = $NOVA/keystone/fernet-keys
[credential]
key_repository = $NOVA/keystone/credential-keys
EOF
  } > "$ETC/keystone/keystone.conf"

  { cat <<EOF
[DEFAULT]
use_stderr = true
[placement_database]
connection = $DBURL/placement
[api]
auth_strategy = keystone
EOF
    authtoken placement; } > "$ETC/placement/placement.conf"

  { cat <<EOF
[DEFAULT]
bind_host = $ADDR
bind_port = 9292
workers = 1
log_file = $LOGS/glance.log
[database]
connection = $DBURL/glance
[paste_deploy]
flavor = keystone
config_file = /etc/glance/glance-api-paste.ini
[glance_store]
stores = file,http
default_store = file
filesystem_store_datadir = $NOVA/glance/images
[os_glance_staging_store]
filesystem_store_datadir = $NOVA/glance/staging
[os_glance_tasks_store]
filesystem_store_datadir = $NOVA/glance/tasks
[oslo_concurrency]
lock_path = $NOVA/glance/lock
EOF
    authtoken glance; } > "$ETC/glance-api.conf"

  # ML2 with no mechanism driver: no agents, no ports bound. Instances boot with --nic none; Nova still asks
  # Neutron for extensions and ports (periodic cache heal, live migration), which this answers.
  { cat <<EOF
[DEFAULT]
core_plugin = ml2
# router and port_forwarding: without the latter neutron-server 21.0 (Zed) fails every port listing, as the
# ports query names the relationship Port.port_forwardings that only its plugin loads (AttributeError, HTTP 500).
service_plugins = router,port_forwarding
bind_host = $ADDR
bind_port = 9696
api_workers = 1
rpc_workers = 1
rpc_state_report_workers = 0
auth_strategy = keystone
transport_url = $RABBIT_URL
api_paste_config = /etc/neutron/api-paste.ini
notify_nova_on_port_status_changes = false
notify_nova_on_port_data_changes = false
log_file = $LOGS/neutron.log
[database]
connection = $DBURL/neutron
[oslo_concurrency]
lock_path = $NOVA/neutron/lock
[ml2]
type_drivers = flat
tenant_network_types =
mechanism_drivers =
extension_drivers = port_security
[ml2_type_flat]
flat_networks = *
EOF
    authtoken neutron; ksa nova nova; } > "$ETC/neutron.conf"

  nova_conf controller > "$ETC/nova.conf"
}

# nova_conf controller | I: nova.conf of the root side's services or of host I's nova-compute.
nova_conf() {
  local who=$1
  cat <<EOF
[DEFAULT]
transport_url = $RABBIT_URL
enabled_apis = osapi_compute
osapi_compute_listen = $ADDR
osapi_compute_workers = 1
use_stderr = false
EOF
  if [ "$who" = controller ]; then
    printf 'my_ip = %s\nstate_path = %s\n' "$ADDR" "$NOVA/state"
  else
    # The host's own name, address and private directories (/var/lib/nova is bind mounted per host).
    cat <<EOF
host = h$who
my_ip = $NET.$((10 + who))
state_path = /var/lib/nova
instances_path = /var/lib/nova/instances
compute_driver = libvirt.LibvirtDriver
resume_guests_state_on_host_boot = false
# No memory overcommit (Zed's default initial ratio is 1.5): a host's free memory is what its guests may really
# use, so that a shadow's reservation in Placement decides where Nova may place (lab_nova_test).
initial_ram_allocation_ratio = 1.0
[libvirt]
virt_type = qemu
cpu_mode = none
connection_uri = qemu:///system
# Migrations between hosts over libvirt's TLS (the hosts' certificates name their addresses), QEMU's migration
# stream with TLS too (the hosts' qemu.conf has migrate_tls_force = 1), to this host's address.
live_migration_scheme = tls
live_migration_inbound_addr = $NET.$((10 + who))
live_migration_with_native_tls = true
live_migration_permit_post_copy = true
live_migration_tunnelled = false
[vnc]
enabled = false
[serial_console]
enabled = false
[workarounds]
# A live migration's destination fetches the kernel and ramdisk with images.fetch_to_raw (driver.py,
# _fetch_instance_kernel_ramdisk; spawn uses fetch_raw_image), whose deep inspection (Debian's backport of the
# fix of bug 2059809) keeps 'aki'/'ari' as the expected format while qemu-img says 'raw', and refuses the image:
# "ImageUnacceptable: Image content does not match disk_format". The lab's only images are its own test guest.
disable_deep_image_inspection = true
EOF
  fi
  cat <<EOF
[api]
auth_strategy = keystone
[wsgi]
api_paste_config = /etc/nova/api-paste.ini
EOF
  # No database for nova-compute: with one configured, its start logged "No DB access allowed in nova-compute".
  [ "$who" = controller ] && printf '[api_database]\nconnection = %s\n[database]\nconnection = %s\n' \
    "$DBURL/nova_api" "$DBURL/nova"
  cat <<EOF
[oslo_concurrency]
lock_path = $([ "$who" = controller ] && echo "$NOVA/state/lock" || echo /var/lib/nova/tmp)
[scheduler]
workers = 1
discover_hosts_in_cells_interval = -1
[conductor]
workers = 1
[glance]
region_name = RegionOne
valid_interfaces = public
[cinder]
os_region_name = RegionOne
EOF
  authtoken nova
  ksa placement placement
  ksa neutron neutron
}

mariadb_up() {
  mkdir -p "$NOVA/mysql"
  if [ ! -d "$NOVA/mysql/mysql" ]; then
    mariadb-install-db --no-defaults --datadir="$NOVA/mysql" --user=root --skip-test-db \
      --auth-root-authentication-method=socket > "$LOGS/mariadb-install.log" 2>&1 ||
      die "mariadb-install-db failed; see $LOGS/mariadb-install.log"
  fi
  # Durability traded for speed: the lab's databases die with 'lab.sh down'.
  start_daemon mariadb mariadbd --no-defaults --datadir="$NOVA/mysql" --socket="$RUN/mysqld.sock" \
    --pid-file="$RUN/mariadbd.pid" --bind-address="$ADDR" --port=3306 --user=root --skip-name-resolve \
    --max-connections=1000 --innodb-buffer-pool-size=256M --innodb-flush-log-at-trx-commit=0 \
    --log-error="$LOGS/mariadb.err"
  wait_port mariadb 3306
  local db
  for db in keystone glance placement neutron nova_api nova nova_cell0; do
    sql -e "CREATE DATABASE IF NOT EXISTS $db"
  done
  sql -e "CREATE USER IF NOT EXISTS 'vslab'@'%' IDENTIFIED BY '$PW'; GRANT ALL ON *.* TO 'vslab'@'%'; FLUSH PRIVILEGES"
}

rabbit_env() {  # RabbitMQ's node, files and cookie ($HOME) in $NOVA/rabbitmq, AMQP on the bridge address
  export HOME=$NOVA/rabbitmq RABBITMQ_NODENAME=vslab@localhost RABBITMQ_NODE_IP_ADDRESS=$ADDR \
    RABBITMQ_NODE_PORT=5672 RABBITMQ_DIST_PORT=25672 RABBITMQ_MNESIA_BASE=$NOVA/rabbitmq/mnesia \
    RABBITMQ_LOG_BASE=$LOGS RABBITMQ_PID_FILE=$RUN/rabbitmq-beam.pid \
    RABBITMQ_CONFIG_FILE=$NOVA/rabbitmq/rabbitmq RABBITMQ_ENABLED_PLUGINS_FILE=$NOVA/rabbitmq/enabled_plugins \
    RABBITMQ_LOGS=$LOGS/rabbitmq-node.log ERL_EPMD_ADDRESS=127.0.0.1
}

rabbitmq_up() {
  mkdir -p "$NOVA/rabbitmq"
  rabbit_env
  echo '[].' > "$NOVA/rabbitmq/enabled_plugins"
  : > "$NOVA/rabbitmq/rabbitmq.conf"
  # Our own epmd, started first so that it is ours to stop (RabbitMQ would otherwise start one that outlives it).
  start_daemon epmd epmd -address 127.0.0.1
  sleep 0.3
  # Debian's /usr/sbin/rabbitmq-server switches to user rabbitmq and to /var/lib/rabbitmq; the real one runs as root.
  start_daemon rabbitmq /usr/lib/rabbitmq/bin/rabbitmq-server
  wait_port rabbitmq 5672 120
  /usr/lib/rabbitmq/bin/rabbitmqctl -q add_user vslab "$PW" >/dev/null 2>&1 || true
  /usr/lib/rabbitmq/bin/rabbitmqctl -q set_permissions vslab '.*' '.*' '.*' >/dev/null ||
    die "rabbitmqctl set_permissions failed; see $LOGS/rabbitmq.log"
}

keystone_up() {
  mkdir -p "$NOVA/keystone/fernet-keys" "$NOVA/keystone/credential-keys"
  local km=(keystone-manage --config-file "$ETC/keystone/keystone.conf")
  { "${km[@]}" db_sync &&
    "${km[@]}" fernet_setup --keystone-user root --keystone-group root &&
    "${km[@]}" credential_setup --keystone-user root --keystone-group root &&
    "${km[@]}" bootstrap --bootstrap-password "$PW" --bootstrap-admin-url "$KEYSTONE" \
      --bootstrap-internal-url "$KEYSTONE" --bootstrap-public-url "$KEYSTONE" --bootstrap-region-id RegionOne
  } >> "$LOGS/keystone-manage.log" 2>&1 || die "keystone-manage failed; see $LOGS/keystone-manage.log"
  uwsgi_app keystone 5000 /usr/bin/keystone-wsgi-public OS_KEYSTONE_CONFIG_DIR="$ETC/keystone"
}

# uwsgi_app NAME PORT WSGI_FILE ENV=VALUE: a WSGI app (keystone, placement: no standalone server) under uwsgi,
# HTTP on $ADDR:PORT, in the foreground of its own session (no --daemonize: our pid file is the master's).
# "Connection: close" as in Debian's uwsgi ini files: uwsgi's http-socket closes the connection after each
# response, and a client that reused it failed with "RemoteDisconnected" (a nova-compute's first token request).
uwsgi_app() {
  local name=$1 port=$2 file=$3 env=$4
  start_daemon "$name" env "$env" uwsgi --plugins python3 --http-socket "$ADDR:$port" --wsgi-file "$file" \
    --master --processes 2 --threads 4 --lazy-apps --die-on-term --no-orphans --need-app \
    --buffer-size 65535 --enable-threads --thunder-lock --add-header "Connection: close"
  wait_port "$name" "$port"
}

# The service users, services and endpoints, in one Python process (the CLI would take a second per call).
keystone_catalog() {
  "$PY" - "$PW" "$ADDR" <<'EOF' >> "$LOGS/bootstrap.log" 2>&1 || die "creating keystone's catalog failed; see $LOGS/bootstrap.log"
import sys, openstack
pw, addr = sys.argv[1], sys.argv[2]
c = openstack.connect(auth_url=f"http://{addr}:5000/v3", username="admin", password=pw, project_name="admin",
                      user_domain_name="Default", project_domain_name="Default", region_name="RegionOne")
idn = c.identity
service = idn.find_project("service") or idn.create_project(name="service", domain_id="default")
admin = idn.find_role("admin")
for user, stype, port, path in [("nova", "compute", 8774, "/v2.1"), ("placement", "placement", 8778, ""),
                                ("glance", "image", 9292, ""), ("neutron", "network", 9696, "")]:
    u = idn.find_user(user, domain_id="default") or idn.create_user(name=user, password=pw, domain_id="default")
    idn.assign_project_role_to_user(service, u, admin)
    s = idn.find_service(user) or idn.create_service(name=user, type=stype)
    for iface in ("public", "internal", "admin"):
        idn.create_endpoint(service_id=s.id, interface=iface, url=f"http://{addr}:{port}{path}", region_id="RegionOne")
demo = idn.find_project("demo") or idn.create_project(name="demo", domain_id="default")
du = idn.find_user("demo", domain_id="default") or idn.create_user(name="demo", password=pw, domain_id="default")
member = idn.find_role("member") or idn.create_role(name="member")
idn.assign_project_role_to_user(demo, du, member)
print("catalog ok")
EOF
}

write_openrc() {
  cat > "$NOVA/openrc" <<EOF
# The lab cloud's admin (scripts/nova-lab.sh); source it, then use openstack(1)
export OS_AUTH_URL=$KEYSTONE
export OS_IDENTITY_API_VERSION=3
export OS_USERNAME=admin
export OS_PASSWORD=$PW
export OS_PROJECT_NAME=admin
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
export OS_REGION_NAME=RegionOne
EOF
  sed -e 's/OS_USERNAME=admin/OS_USERNAME=demo/' -e 's/OS_PROJECT_NAME=admin/OS_PROJECT_NAME=demo/' \
    -e 's/cloud.s admin/cloud'"'"'s demo user/' "$NOVA/openrc" > "$NOVA/openrc.demo"
}

services_up() {
  mkdir -p "$NOVA/glance/images" "$NOVA/glance/lock" "$NOVA/neutron/lock" "$NOVA/state/lock"
  glance-manage --config-file "$ETC/glance-api.conf" db_sync >> "$LOGS/glance-manage.log" 2>&1 ||
    die "glance-manage db_sync failed; see $LOGS/glance-manage.log"
  start_daemon glance glance-api --config-file "$ETC/glance-api.conf"

  placement-manage --config-file "$ETC/placement/placement.conf" db sync >> "$LOGS/placement-manage.log" 2>&1 ||
    die "placement-manage db sync failed; see $LOGS/placement-manage.log"
  uwsgi_app placement 8778 /usr/bin/placement-api OS_PLACEMENT_CONFIG_DIR="$ETC/placement"

  neutron-db-manage --config-file "$ETC/neutron.conf" upgrade heads >> "$LOGS/neutron-db-manage.log" 2>&1 ||
    die "neutron-db-manage upgrade failed; see $LOGS/neutron-db-manage.log"
  start_daemon neutron neutron-server --config-file "$ETC/neutron.conf"

  local nm=(nova-manage --config-file "$ETC/nova.conf")
  { "${nm[@]}" api_db sync &&
    "${nm[@]}" cell_v2 map_cell0 --database_connection "$DBURL/nova_cell0" &&
    { "${nm[@]}" cell_v2 list_cells | grep -qw cell1 ||
      "${nm[@]}" cell_v2 create_cell --name cell1 --transport-url "$RABBIT_URL" --database_connection "$DBURL/nova"; } &&
    "${nm[@]}" db sync
  } >> "$LOGS/nova-manage.log" 2>&1 || die "nova-manage (db sync, cells) failed; see $LOGS/nova-manage.log"
  start_daemon nova-api nova-api --config-file "$ETC/nova.conf" --log-file "$LOGS/nova-api.log"
  start_daemon nova-conductor nova-conductor --config-file "$ETC/nova.conf" --log-file "$LOGS/nova-conductor.log"
  start_daemon nova-scheduler nova-scheduler --config-file "$ETC/nova.conf" --log-file "$LOGS/nova-scheduler.log"
  wait_port glance 9292
  wait_port neutron 9696 120
  wait_port nova-api 8774 120
}

# Port listings of a fresh neutron-server API worker fail with HTTP 500 (AttributeError: type object 'Port' has no
# attribute 'port_forwardings', db_base_plugin_v2.get_ports) until some other request has queried the database:
# SQLAlchemy adds that backref to Port only when it configures the mappers, at the first query, and get_ports
# names it before querying. Nova's first port listing (server create) failed so. A network listing first does it.
neutron_warm_up() {
  local t
  for t in 1 2 3 4 5; do
    openstack network list -f value >/dev/null 2>&1 && openstack port list -f value >/dev/null 2>&1 && return 0
    sleep 1
  done
  die "neutron-server does not list ports; see $LOGS/neutron.log"
}

compute_pid() { cat "$LAB/h$1/nova-compute.pid" 2>/dev/null || true; }

# compute_up I: host I's nova-compute in the host's network, mount and UTS namespaces (its libvirtd's).
compute_up() {
  local i=$1 H=$LAB/h$1 lpid
  pid_alive "$(compute_pid "$i")" && { say "h$i: nova-compute already runs (pid $(compute_pid "$i"))"; return 0; }
  lpid=$(libvirtd_pid "$i"); pid_alive "$lpid" || die "h$i is not up (no libvirtd)"
  [ -d "$ETC" ] || die "the lab's Nova is not set up ($ETC missing): lab.sh up N --nova"
  mkdir -p "$H/var/lib/nova/instances" "$H/var/lib/nova/tmp"
  nova_conf "$i" > "$ETC/nova-compute-h$i.conf"
  # As in lab.sh: no fork along the way (setsid, nsenter without -p), so $! is nova-compute.
  VS_NOVA_LAB=$LAB setsid nsenter -t "$lpid" -n -m -u -- nova-compute --config-file "$ETC/nova-compute-h$i.conf" \
    --log-file "$H/nova-compute.log" >> "$H/nova-compute.out" 2>&1 < /dev/null &
  echo $! > "$H/nova-compute.pid"
  say "h$i: nova-compute pid $(compute_pid "$i"), log $H/nova-compute.log"
}

# wait_computes N: until h1..hN are nova-compute services that are up, then map them into cell1.
wait_computes() {
  local n=$1 t up
  for ((t = 0; t < 180; t++)); do
    up=$(openstack compute service list --service nova-compute -f value -c Host -c State 2>/dev/null | grep -c ' up$' || true)
    (( up >= n )) && break
    for i in $(seq 1 "$n"); do
      pid_alive "$(compute_pid "$i")" || die "h$i: nova-compute exited; see $LAB/h$i/nova-compute.log and nova-compute.out"
    done
    sleep 1
  done
  (( up >= n )) || die "only $up of $n nova-compute services came up within 180 s; see $LAB/h*/nova-compute.log"
  nova-manage --config-file "$ETC/nova.conf" cell_v2 discover_hosts --verbose >> "$LOGS/nova-manage.log" 2>&1 ||
    die "nova-manage cell_v2 discover_hosts failed; see $LOGS/nova-manage.log"
}

# The test guest as three glance images and the flavor vs.small.
images_up() {
  local guest=$LAB/guest
  if [ ! -f "$guest/vmlinuz" ] || [ ! -f "$guest/initrd.gz" ]; then
    bash "$(dirname "$(readlink -f "$0")")/../images/build-guest.sh" "$guest" >> "$LOGS/build-guest.log" 2>&1 ||
      die "building the test guest failed; see $LOGS/build-guest.log"
  fi
  truncate -s 64M "$NOVA/vs-root.raw"
  local k r
  k=$(openstack image create vs-guest-kernel --public --disk-format aki --container-format aki \
        --file "$guest/vmlinuz" -f value -c id)
  r=$(openstack image create vs-guest-ramdisk --public --disk-format ari --container-format ari \
        --file "$guest/initrd.gz" -f value -c id)
  openstack image create vs-guest --public --disk-format raw --container-format bare --file "$NOVA/vs-root.raw" \
    --property kernel_id="$k" --property ramdisk_id="$r" \
    --property os_command_line='console=ttyS0 quiet panic=-1' -f value -c id >/dev/null
  openstack flavor create vs.small --vcpus 1 --ram 256 --disk 1 --public >/dev/null
}

cmd_up() {
  local n=${1:?usage: nova-lab.sh up N} t0=$SECONDS
  for t in mariadbd rabbitmq-server keystone-manage uwsgi glance-api placement-manage neutron-server nova-api \
           nova-conductor nova-scheduler nova-compute openstack; do
    command -v "$t" >/dev/null || die "$t not found: run scripts/setup.sh first"
  done
  [[ $(ip -o -4 addr show) == *" $ADDR/"* ]] || die "no $ADDR on this machine: the lab's bridge must be up first"
  if pid_alive "$(daemon_pid nova-api)"; then
    say "root side already runs"
  else
    cmd_down_root >/dev/null 2>&1 || true   # a half-started root side is rebuilt from scratch
    mkdir -p "$ETC" "$RUN" "$LOGS"
    write_configs
    mariadb_up;   say "mariadb pid $(daemon_pid mariadb) ($((SECONDS - t0)) s)"
    rabbitmq_up;  say "rabbitmq pid $(daemon_pid rabbitmq) ($((SECONDS - t0)) s)"
    keystone_up;  say "keystone pid $(daemon_pid keystone) ($((SECONDS - t0)) s)"
    keystone_catalog
    write_openrc
    services_up;  say "glance, placement, neutron, nova-api/conductor/scheduler up ($((SECONDS - t0)) s)"
  fi
  # shellcheck disable=SC1091
  . "$NOVA/openrc"
  neutron_warm_up
  for i in $(seq 1 "$n"); do compute_up "$i"; done
  wait_computes "$n";  say "$n nova-compute services up and mapped ($((SECONDS - t0)) s)"
  openstack flavor show vs.small >/dev/null 2>&1 || { images_up; say "images and flavor vs.small made ($((SECONDS - t0)) s)"; }
  say "up in $((SECONDS - t0)) s; . $NOVA/openrc to use it"
}

cmd_down_root() {
  # The services first (they talk to the others while stopping), the broker and the database last.
  stop_groups "$RUN"/{nova-api,nova-scheduler,nova-conductor,neutron,placement,glance,keystone}.pid
  # RabbitMQ before its epmd: a RabbitMQ that saw our epmd go while stopping started an `epmd -daemon` of its own,
  # which outlived the lab (lab_down_leaves_nothing, once).
  stop_groups "$RUN"/rabbitmq.pid
  stop_groups "$RUN"/{epmd,mariadb}.pid
}

cmd_down() {
  stop_groups "$LAB"/h[0-9]*/nova-compute.pid
  cmd_down_root
  rm -rf "${NOVA:?}"
}

cmd_status() {
  [ -d "$NOVA" ] || return 0
  local d line="nova:"
  for d in $ROOT_DAEMONS; do
    if pid_alive "$(daemon_pid "$d")"; then line+=" $d:$(daemon_pid "$d")"; else line+=" $d:down"; fi
  done
  echo "$line"
  line="nova-compute:"
  for f in "$LAB"/h[0-9]*/nova-compute.pid; do
    [ -f "$f" ] || continue
    local h; h=$(basename "$(dirname "$f")")
    if pid_alive "$(cat "$f")"; then line+=" $h:$(cat "$f")"; else line+=" $h:down"; fi
  done
  echo "$line"
}

# Processes of the lab's cloud: those with VS_NOVA_LAB=$LAB in their environment (start_daemon, compute_up), or
# whose command line names the lab's cloud files or RabbitMQ node.
cmd_verify_clean() {
  local left p
  left=$( { pgrep -f -- "$LAB/nova|vslab@localhost" || true
            for p in /proc/[0-9]*; do
              tr '\0' '\n' 2>/dev/null < "$p/environ" | grep -qx "VS_NOVA_LAB=$LAB" && echo "${p#/proc/}"
            done; } | grep -vx "$$" | sort -un || true)
  [ -z "$left" ] && return 0
  echo "left: nova-lab processes $(echo $left)"; ps -o pid,cmd -p "$(echo $left | tr ' ' ,)" || true
  return 1
}

case ${1:-} in
  up) shift; cmd_up "$@";;
  compute) compute_up "${2:?usage: nova-lab.sh compute I}";;
  down) cmd_down;;
  status) cmd_status;;
  verify-clean) cmd_verify_clean;;
  *) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 2;;
esac
