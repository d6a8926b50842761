#!/bin/bash
# setup.sh - install what virt-shadow needs from Debian 12's packages, set the host prerequisites, and build.
# Idempotent: installed packages are skipped, the build is incremental. Build dir: $VS_BUILD_DIR (default ./build).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${VS_BUILD_DIR:-$SRC/build}
die() { echo "setup: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and sets a sysctl); try: sudo $0"

PACKAGES=(
  # build
  cmake g++ make pkg-config
  libvirt-dev libnbd-dev libxml2-dev librocksdb-dev libboost-dev
  libprotobuf-dev protobuf-compiler libgrpc++-dev protobuf-compiler-grpc
  libgtest-dev libgmock-dev libbenchmark-dev nlohmann-json3-dev
  # digests (common/digest.cc): SHA-1 for name-based UUIDs from OpenSSL, XXH3 block digests from xxHash
  libssl-dev libxxhash-dev
  # the /metrics endpoint (shadowd/metrics/metrics_server.cc): prometheus-cpp's pull Exposer over civetweb
  prometheus-cpp-dev
  # promtool, which tests/unit/metrics/metrics_promtool_test.cc runs on a real scrape (skipped without it); the
  # package's server is not started (policy-rc.d below) nor used
  prometheus
  # the thread-safety check (scripts/thread_safety_build.sh): shadowd built once more with clang's analysis
  clang-14
  # the fuzz targets (scripts/fuzz.sh): libFuzzer and the ASan/UBSan runtimes of clang-14
  libclang-rt-14-dev
  # runtime: libvirt and QEMU (TCG works without /dev/kvm), NBD tools
  libvirt-daemon-system libvirt-daemon-driver-qemu libvirt-clients
  qemu-system-x86 qemu-system-common qemu-utils libnbd-bin curl
  # lab: namespaces, bridges, link shaping; guest image build
  iproute2 util-linux procps psmisc busybox-static cpio xz-utils gzip
  # membership and quorum (shadowd/cluster/corosync_membership.cc; one node per lab host, scripts/lab.sh)
  corosync libcpg-dev libvotequorum-dev libquorum-dev libcmap-dev libcorosync-common-dev
  # the PKI for TLS between hosts (scripts/pki.sh: certtool), also made by the TLS unit tests (tests/unit/rpc)
  gnutls-bin
  # the peer of replication_bench (issue 14, item 7): Debian's virtnbdbackup, run by bench/virtnbdbackup_lab.py
  virtnbdbackup
  # the lab's OpenStack Nova (Zed; scripts/nova-lab.sh, lab.sh up N --nova): its control plane and databases, a
  # nova-compute per lab host; uwsgi serves keystone and placement. Their services are not started (policy-rc.d)
  # and the preseeds below keep the packages from configuring databases or endpoints: nova-lab.sh does that.
  keystone placement-api nova-api nova-conductor nova-scheduler nova-compute nova-compute-qemu glance-api
  neutron-server mariadb-server rabbitmq-server python3-openstackclient python3-pymysql
  uwsgi-core uwsgi-plugin-python3
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q || die "apt-get update failed; check the network path to the Debian mirror"
  # A policy-rc.d that exits 101 keeps the packages' maintainer scripts from starting their services (corosync,
  # with the package's single-node config, would run outside the lab's namespaces). Ours is removed afterwards;
  # one that was there before is left as it was.
  made_policy_rc=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && made_policy_rc=1
  fi
  # Answers for the OpenStack packages' debconf questions: no dbconfig-common database, no keystone endpoint
  # registration, no RabbitMQ or keystone_authtoken set up in /etc (the lab generates its own configs).
  debconf-set-selections <<'PRESEED'
keystone keystone/configure_db boolean false
keystone keystone/register-endpoint boolean false
keystone keystone/create-admin-tenant boolean false
keystone keystone/admin-password password
keystone keystone/admin-password-confirm password
placement-common placement/configure_db boolean false
placement-api placement/register-endpoint boolean false
nova-common nova/configure_db boolean false
nova-common nova/configure_api-db boolean false
nova-api nova/register-endpoint boolean false
nova-common nova/configure_rabbit boolean false
nova-common nova/configure_ksat boolean false
glance-common glance/configure_db boolean false
glance-api glance/register-endpoint boolean false
neutron-common neutron/configure_db boolean false
neutron-server neutron/register-endpoint boolean false
PRESEED
  rc=0
  apt-get install -y -q --no-install-recommends "${missing[@]}" || rc=$?
  [ -n "$made_policy_rc" ] && rm -f /usr/sbin/policy-rc.d
  [ "$rc" = 0 ] || die "apt-get install failed for: ${missing[*]} (see apt's message above)"
fi

# Postcopy needs userfaultfd for QEMU, which libvirt runs unprivileged (user libvirt-qemu).
sysctl -qw vm.unprivileged_userfaultfd=1
[ "$(sysctl -n vm.unprivileged_userfaultfd)" = 1 ] || die "could not set vm.unprivileged_userfaultfd=1 (postcopy needs it)"
[ -d /etc/sysctl.d ] && echo 'vm.unprivileged_userfaultfd = 1' > /etc/sysctl.d/60-virt-shadow.conf

cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || die "cmake configure failed"
cmake --build "$BUILD" -j "$(nproc)" || die "build failed"
echo "setup: built in $BUILD"
