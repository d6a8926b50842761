// shadowd's configuration: which host this is, the other hosts of the cluster, and local paths.
//
// File format (INI; default path /etc/virt-shadow/shadowd.conf):
//   [shadowd]
//   host = h1                                  ; this host's name: one of the [host.NAME] sections
//   socket = /run/virt-shadow/shadowd.sock     ; gRPC API for the hook and the CLI
//   store = /var/lib/virt-shadow/store         ; RocksDB directory
//   spool = /var/lib/virt-shadow/spool         ; where the hook spools events while shadowd is down
//   libvirt = qemu:///system                   ; the local libvirtd
//   grace_seconds = 600                        ; how long a shadow outlives its VM's interest
//   refresh_seconds = 5                        ; how often capacity and shadows are read from every host
//   peer_port = 7479                           ; TCP port of the peer service (replication) on `address`
//   nbd_port = 10809                           ; TCP port of libvirt's backup exports on `address`
//   metrics = 10.77.0.11:9177                  ; Prometheus endpoint (ADDRESS:PORT); none when empty
//   [host.h1]
//   zone = zone-a
//   uri = qemu+tcp://10.77.0.11/system         ; how shadowd reaches that host's libvirtd
//   cost = 0.20                                ; per hour, any currency, the same for all hosts
//   address = 10.77.0.11                       ; optional: where peers reach it (default: the uri's host)
//   vcpus = 8                                  ; optional: cap the vCPUs offered to guests (default: the host's)
//   memory_mib = 4096                          ; optional: cap the memory offered to guests
//
// Pure: parsing takes text and returns a value or an error naming the key and the fix. Thread-compatible.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace vs::daemon {

struct HostConfig {
  std::string name;
  std::string zone;
  std::string uri;
  std::string address;  // for the peer service and NBD exports
  double cost_per_hour = 0;
  std::optional<uint32_t> vcpus_cap;
  std::optional<uint64_t> memory_mib_cap;
};

struct Config {
  std::string this_host;
  std::string socket_path = "/run/virt-shadow/shadowd.sock";
  std::string store_path = "/var/lib/virt-shadow/store";
  std::string spool_path = "/var/lib/virt-shadow/spool";
  std::string local_libvirt_uri = "qemu:///system";
  std::chrono::seconds grace{600};
  std::chrono::seconds refresh{5};
  int peer_port = 7479;
  int nbd_port = 10809;
  std::string metrics_listen;  // empty: no metrics endpoint
  std::vector<HostConfig> hosts;  // in file order; this_host is one of them

  const HostConfig* FindHost(const std::string& name) const;
  // "ADDRESS:PORT" of `host`'s peer service.
  std::string PeerTarget(const HostConfig& host) const;
};

StatusOr<Config> ParseConfig(const std::string& text);
StatusOr<Config> LoadConfig(const std::string& path);

}  // namespace vs::daemon
