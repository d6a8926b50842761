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
//   [host.h1]
//   zone = zone-a
//   uri = qemu+tcp://10.77.0.11/system         ; how shadowd reaches that host's libvirtd
//   cost = 0.20                                ; per hour, any currency, the same for all hosts
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
  std::vector<HostConfig> hosts;  // in file order; this_host is one of them

  const HostConfig* FindHost(const std::string& name) const;
};

StatusOr<Config> ParseConfig(const std::string& text);
StatusOr<Config> LoadConfig(const std::string& path);

}  // namespace vs::daemon
