// The hosts of the cluster as shadowd's configuration names them, as a plain value: the rooms below the daemon
// (cluster, switchover, rpc) take it instead of the daemon's whole Config, so that none of them includes the
// daemon.
//
// Thread-safety: a value; const use from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vs::cluster {

struct HostConfig {
  std::string name;
  std::string zone;
  std::string uri;      // how shadowd reaches that host's libvirtd
  std::string address;  // for the peer service and NBD exports
  double cost_per_hour = 0;
  std::optional<uint32_t> vcpus_cap;
  std::optional<uint64_t> memory_mib_cap;
};

struct ClusterHosts {
  std::string this_host;
  std::vector<HostConfig> hosts;  // in configuration order; this_host is one of them
  int peer_port = 7479;           // 1..65535, validated when the configuration is loaded

  // nullptr when `name` is not a host of the cluster.
  const HostConfig* Find(const std::string& name) const;
  // "ADDRESS:PORT" of `host`'s peer service.
  std::string PeerTarget(const HostConfig& host) const;
  // Every host but this one, in configuration order.
  std::vector<std::string> Peers() const;
};

}  // namespace vs::cluster
