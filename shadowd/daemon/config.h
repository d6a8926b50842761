// shadowd's configuration: which host this is, the other hosts of the cluster, and local paths.
//
// File format (INI; default path /etc/virt-shadow/shadowd.conf):
//   [shadowd]
//   host = h1                                  ; this host's name: one of the [host.NAME] sections
//   socket = /run/virt-shadow/shadowd.sock     ; gRPC API for the CLI (and hooks older than hook_socket)
//   hook_socket = /run/virt-shadow/hook.sock   ; the hook's events, framed (shadowd/hook_intake/hook_listener.h;
//                                              ; the hook's VS_HOOK_SOCKET); not the same path as socket
//   store = /var/lib/virt-shadow/store         ; RocksDB directory
//   spool = /var/lib/virt-shadow/spool         ; where the hook spools events while shadowd is down
//   fence_dir = /var/lib/virt-shadow/fenced    ; the fence markers the hook reads while shadowd is down
//                                              ; (the hook's VS_FENCE_DIR; shadowd/failover/fence_marker.h)
//                                              ; store, spool, fence_dir and the sockets' directories are
//                                              ; shadowd's own: made 0700 (common/private_paths.h)
//   libvirt = qemu:///system                   ; the local libvirtd
//   grace_seconds = 600                        ; how long a shadow outlives its VM's interest
//   refresh_seconds = 5                        ; how often capacity and shadows are read from every host
//   peer_port = 7479                           ; TCP port of the peer service (replication) on `address`
//   nbd_port = 10809                           ; first TCP port of libvirt's backup exports on `address`
//   round_concurrency = 4                      ; replication rounds of different VMs at once (1..64); their
//                                              ; exports use ports nbd_port .. nbd_port + round_concurrency - 1
//   metrics = 10.77.0.11:9177                  ; Prometheus endpoint (IPv4:PORT, docs/metrics.md); none when empty
//   membership = none                          ; corosync: follow the local Corosync node's membership and
//                                              ; quorum (join its process group "virt-shadow", keep every
//                                              ; host's heartbeat history); none: no membership (default)
//   [host.h1]
//   zone = zone-a
//   uri = qemu+tcp://10.77.0.11/system         ; how shadowd reaches that host's libvirtd
//   cost = 0.20                                ; per hour, any currency, the same for all hosts
//   address = 10.77.0.11                       ; optional: where peers reach it (default: the uri's host)
//   vcpus = 8                                  ; optional: cap the vCPUs offered to guests (default: the host's)
//   memory_mib = 4096                          ; optional: cap the memory offered to guests
//   [notice]                                   ; optional: where preemption notices come from (all off by default)
//   acpid_socket = /var/run/acpid.socket       ; the power button via acpid; absent: off
//   input_device = /dev/input/event0           ; the power button's input device; absent: off
//   power_button_deadline_seconds = 30         ; how long the host lasts after a press
//   gce = http://169.254.169.254               ; base URL of the GCE metadata server; absent: off
//   aws = http://169.254.169.254               ; base URL of the AWS instance metadata (IMDSv2); absent: off
//   azure = http://169.254.169.254             ; base URL of Azure's Scheduled Events; absent: off
//   azure_vm_name = NAME                       ; this VM's name at Azure; required with azure
//   poll_seconds = 2                           ; how often the metadata services are asked
//   drain_deadline_seconds = 120               ; default deadline of `virt-shadow drain HOST`
//   [switchover]                               ; optional: the switchover planner's assumptions
//   bandwidth_mibs = 100                       ; migration bandwidth to peers before any was measured (MiB/s, > 0)
//   safety_margin = 0.2                        ; share of the time to the deadline kept spare, in [0, 1)
//   start_cost_ms = 1500                       ; starting the destination QEMU
//   snapshot_cost_ms = 150                     ; the disk-only snapshot before the final disk round
//   warmup_bandwidth_mibs = 5                  ; precopy cap while warming up ahead of a notice (MiB/s, >= 1)
//   precopy_hold = none                        ; none: a cold switchover switches to postcopy at once;
//                                              ; planned: it first holds precopy for the plan's slack
//                                              ; (docs/switchover.md: under TCG that let precopy complete
//                                              ; alone, with seconds of downtime risk and guest hangs)
//   [failover]                                 ; optional: host failure (with membership = corosync)
//   fence_action = pause                       ; what this host does to a VM it must fence when its partition
//                                              ; loses quorum (docs/failover.md "Self-fencing"): pause (a
//                                              ; short cut costs a pause) or destroy
//   [tls]                                      ; optional: TLS between the hosts, per channel (off by default);
//                                              ; every host the same, as both ends of a channel must agree
//   peer = none                                ; mutual: the peer service and its clients use TLS with a
//                                              ; certificate at both ends, from the cluster's one CA; a caller
//                                              ; whose certificate names no [host.NAME] is refused. none:
//                                              ; plaintext, callers unauthenticated.
//   nbd = none                                 ; mutual: libvirt's backup exports are served with TLS
//                                              ; (<server tls='yes'>; QEMU's certificates from qemu.conf's
//                                              ; backup_tls_x509_cert_dir, which must verify clients) and read
//                                              ; with this host's QEMU client certificate (pki/qemu); a peer's
//                                              ; round from a plaintext nbd:// source is refused
//   migration = none                           ; mutual: switchover migrations use libvirt's TLS flag (QEMU's
//                                              ; native TLS for memory and the storage mirror)
//   pki = /etc/pki                             ; root of the PKI in libvirt's layout (scripts/pki.sh host):
//                                              ; CA/cacert.pem, libvirt/servercert.pem and clientcert.pem,
//                                              ; libvirt/private/serverkey.pem and clientkey.pem, and QEMU's
//                                              ; qemu/{ca-cert,client-cert,client-key}.pem; each certificate
//                                              ; names its host (CN, dNSName) as [host.NAME] does
//   [policy.gold]                              ; optional, any number: a named policy, for VMs whose policy
//                                              ; comes by name (OpenStack: a flavor extra spec, an image
//                                              ; property or the server's metadata names it, see [nova]).
//                                              ; NAME: letters, digits, '.', '_', '-'; not default, none or off
//                                              ; (those values mean the built-in defaults and no protection).
//   vcpus = 50%                                ; the keys are the attributes of the <policy> element, with the
//   memory = 1GiB                              ; same values and defaults (docs/policy.md, ParsePolicyElement):
//   critical = yes                             ; enabled, vcpus, memory, interval, warmup, priority, critical,
//                                              ; shadows, zone, cost-cap, hook-failure
//   [nova]                                     ; optional: OpenStack integration; absent: off
//   auth_url = http://10.77.0.1:5000/v3        ; Keystone v3 (http://IP[:PORT][/PREFIX]; names are not resolved;
//                                              ; plain HTTP: the password crosses the network in clear, keep
//                                              ; Keystone and the catalog's endpoints on a trusted network)
//   username = virt-shadow                     ; a Keystone user with Nova's admin API rights
//   password_file = /etc/virt-shadow/nova.pw   ; its password, the file's first line; the file must not be readable
//                                              ; by group or others (chmod 600). Or password = ... (not both)
//   project_name = service                     ; the project the token is scoped to
//   user_domain_name = Default                 ; default Default
//   project_domain_name = Default              ; default Default
//   region_name = RegionOne                    ; optional: the catalog's endpoints of this region
//   interface = public                         ; public, internal or admin: which catalog endpoints (default public)
//   timeout_seconds = 10                       ; per HTTP call (1..300)
//   policy_key = virt_shadow:policy            ; flavor extra spec and server metadata key naming a policy
//   image_property = virt_shadow_policy        ; Glance image property naming a policy
//
// Base URLs are http://IP[:PORT][/PREFIX]: the pollers append their paths to them.
// Pure: parsing takes text and returns a value or an error naming the key and the fix. Thread-compatible.
// LoadConfig alone reads files: the configuration, then [nova] password_file.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "shadowd/cluster/cluster_hosts.h"
#include "shadowd/notice/notice_sources.h"
#include "shadowd/nova/nova_options.h"
#include "shadowd/policy/policy.h"
#include "shadowd/switchover/settings.h"

namespace vs::daemon {

struct Config {
  std::string this_host;
  std::string socket_path = "/run/virt-shadow/shadowd.sock";
  std::string hook_socket_path = "/run/virt-shadow/hook.sock";
  std::string store_path = "/var/lib/virt-shadow/store";
  std::string spool_path = "/var/lib/virt-shadow/spool";
  std::string fence_dir = "/var/lib/virt-shadow/fenced";
  std::string local_libvirt_uri = "qemu:///system";
  std::chrono::seconds grace{600};
  std::chrono::seconds refresh{5};
  int peer_port = 7479;
  int nbd_port = 10809;
  int round_concurrency = 4;
  std::string metrics_listen;  // empty: no metrics endpoint
  enum class Membership { kNone, kCorosync };
  Membership membership = Membership::kNone;
  std::vector<cluster::HostConfig> hosts;  // in file order; this_host is one of them
  notice::NoticeSourcesOptions notice;  // every source off unless [notice] names it
  std::chrono::seconds drain_deadline{120};
  switchover::Settings switchover;
  enum class FenceAction { kPause, kDestroy };
  FenceAction fence_action = FenceAction::kPause;
  bool peer_tls = false;          // [tls] peer = mutual
  bool nbd_tls = false;           // [tls] nbd = mutual ([tls] migration is switchover.migration_tls)
  std::string tls_pki = "/etc/pki";
  // [policy.NAME] sections by NAME.
  std::map<std::string, policy::Policy> policies;
  // [nova]; nullopt: no OpenStack integration. After ParseConfig, a password_file is named but not read yet
  // (password is empty); LoadConfig reads it.
  std::optional<nova::NovaOptions> nova;

  const cluster::HostConfig* FindHost(const std::string& name) const;
  // The cluster's hosts, as the value the rooms below the daemon take.
  cluster::ClusterHosts Cluster() const { return {this_host, hosts, peer_port}; }
};

StatusOr<Config> ParseConfig(const std::string& text);
// ParseConfig of the file, then [nova] password_file read into nova->password (ReadSecretFile).
StatusOr<Config> LoadConfig(const std::string& path);

// The first line of a file holding a secret, without its line end. FailedPrecondition if the file is readable or
// writable by its group or by others (naming the mode and the chmod that fixes it) or is not a regular file,
// NotFound if it cannot be opened, InvalidArgument if it is empty. `what` names the key in messages, e.g.
// "[nova] password_file".
StatusOr<std::string> ReadSecretFile(const std::string& path, const std::string& what);

// What a valid configuration sets up, in a few lines for `shadowd --check-config`: this host and the cluster,
// the ports, membership and fencing, the metrics endpoint and the notice sources that are on.
std::string DescribeConfig(const Config& config);

}  // namespace vs::daemon
