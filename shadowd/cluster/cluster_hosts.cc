#include "shadowd/cluster/cluster_hosts.h"

#include "common/host_port.h"

namespace vs::cluster {

const HostConfig* ClusterHosts::Find(const std::string& name) const {
  for (const auto& host : hosts) {
    if (host.name == name) return &host;
  }
  return nullptr;
}

std::string ClusterHosts::PeerTarget(const HostConfig& host) const {
  return JoinHostPort(host.address, static_cast<uint16_t>(peer_port));
}

std::vector<std::string> ClusterHosts::Peers() const {
  std::vector<std::string> peers;
  for (const auto& host : hosts) {
    if (host.name != this_host) peers.push_back(host.name);
  }
  return peers;
}

}  // namespace vs::cluster
