#include "shadowd/cluster/libvirt_cluster.h"

#include "shadowd/virt/libvirtd_probe.h"

namespace vs::cluster {

LibvirtCluster::LibvirtCluster(ClusterHosts hosts, std::string local_libvirt_uri, virt::LibvirtRuntime& runtime,
                               Clock& clock)
    : hosts_config_(std::move(hosts)), local_libvirt_uri_(std::move(local_libvirt_uri)), runtime_(runtime), clock_(clock) {}

StatusOr<virt::Hypervisor*> LibvirtCluster::Conn(const std::string& host) {
  if (auto it = conns_.find(host); it != conns_.end()) return it->second.get();
  const HostConfig* cfg = hosts_config_.Find(host);
  if (cfg == nullptr) return NotFound("host '" + host + "' is not in shadowd's configuration");
  const std::string& uri = host == hosts_config_.this_host ? local_libvirt_uri_ : cfg->uri;
  // libvirt's connect has no timeout: to a crashed host behind a cut link it waits out the kernel's SYN retries,
  // and the daemon's start-up (its first Refresh) waited 38 to 43 s in it in the lab, a crash promotion with it.
  VS_RETURN_IF_ERROR(virt::LibvirtdAnswers(uri, kDialTimeout));
  VS_ASSIGN_OR_RETURN(auto conn, runtime_.Connect(uri, clock_));
  return (conns_[host] = std::move(conn)).get();
}

StatusOr<std::optional<std::string>> LibvirtCluster::DomainUsing(virt::Hypervisor& conn, const std::string& host,
                                                                const std::string& path, ShadowsCount shadows_count) {
  StatusOr<std::vector<ScannedDomain>> domains = ScanDomains(conn, host);
  if (!domains.ok()) return domains.status();
  return cluster::DomainUsing(*domains, path, shadows_count);
}

Status LibvirtCluster::CreateReplicaImage(const std::string& host, const std::string& path,
                                          uint64_t virtual_size_bytes, const std::string& format) {
  VS_ASSIGN_OR_RETURN(virt::Hypervisor * conn, Conn(host));
  if (format != "qcow2" && format != "raw") {
    return InvalidArgument("replica " + path + ": format '" + format + "' is not qcow2 or raw");
  }
  // The replica lives at the primary's path on the target. If an ordinary domain there uses that path, an
  // existing image would be adopted as the replica and later overwritten: refuse.
  VS_ASSIGN_OR_RETURN(std::optional<std::string> user, DomainUsing(*conn, host, path, ShadowsCount::kNo));
  if (user) {
    return FailedPrecondition("cannot place a replica at " + path + " on " + host + ": domain " + *user +
                              " uses that path");
  }
  return conn->CreateImage(path, virtual_size_bytes,
                           format == "qcow2" ? virt::ImageFormat::kQcow2 : virt::ImageFormat::kRaw);
}

Status LibvirtCluster::DefineShadow(const std::string& host, const std::string& domain_xml) {
  VS_ASSIGN_OR_RETURN(virt::Hypervisor * conn, Conn(host));
  return conn->DefineDomain(domain_xml).status();
}

Status LibvirtCluster::ReleaseShadow(const std::string& host, const std::string& shadow_uuid,
                                     const std::string& shadow_name, const std::vector<std::string>& replica_paths) {
  VS_ASSIGN_OR_RETURN(virt::Hypervisor * conn, Conn(host));
  auto state = conn->GetDomainState(shadow_name);
  if (state.ok() && *state != virt::DomainState::kShutoff) {
    // A running "shadow" has been switched over to or promoted: it is somebody's VM now, never ours to delete.
    return FailedPrecondition("shadow " + shadow_name + " (" + shadow_uuid + ") runs on " + host +
                              "; refusing to release a running domain");
  }
  if (!state.ok() && state.status().code() != Code::kNotFound) return state.status();
  // Images first: while the definition exists, a failed release is found again (ListShadows) and retried;
  // an undefined shadow's images would be nobody's. An image another domain uses stays: a VM switched over onto
  // its replica (whose backing file it now is), or a newer shadow under the same name (PlanShadowRelease).
  StatusOr<std::vector<ScannedDomain>> domains = ScanDomains(*conn, host);
  if (!domains.ok()) return domains.status();
  const ShadowRelease release = PlanShadowRelease(*domains, shadow_uuid, shadow_name, replica_paths);
  for (const auto& path : release.images) VS_RETURN_IF_ERROR(conn->DeleteImage(path));
  if (!release.undefine) return Status::Ok();
  return conn->UndefineDomain(shadow_name);
}

StatusOr<LibvirtCluster::HostDomains> LibvirtCluster::ScanHost(const std::string& host) {
  VS_ASSIGN_OR_RETURN(virt::Hypervisor * conn, Conn(host));
  StatusOr<std::vector<ScannedDomain>> domains = ScanDomains(*conn, host);
  if (!domains.ok()) return domains.status();
  HostDomains found;
  for (ScannedDomain& domain : *domains) {
    if (domain.shadow) {
      found.shadows.push_back(std::move(*domain.shadow));
    } else if (!domain.uuid.empty()) {
      found.ordinary_uuids.insert(domain.uuid);
    }
  }
  return found;
}

Status LibvirtCluster::RemoveUnusedImage(const std::string& host, const std::string& path) {
  VS_ASSIGN_OR_RETURN(virt::Hypervisor * conn, Conn(host));
  VS_ASSIGN_OR_RETURN(std::optional<std::string> user, DomainUsing(*conn, host, path, ShadowsCount::kYes));
  if (user) return FailedPrecondition("domain " + *user + " on " + host + " uses " + path + "; it stays");
  return conn->DeleteImage(path);
}

StatusOr<std::vector<controller::PeerShadow>> LibvirtCluster::ListShadows(const std::string& host) {
  VS_ASSIGN_OR_RETURN(HostDomains found, ScanHost(host));
  return std::move(found.shadows);
}

StatusOr<std::vector<scheduler::Host>> LibvirtCluster::Hosts() {
  if (!refreshed_) return Unavailable("the cluster has not been read yet");
  // Drains are asked again (the probe answers from memory): one seen since the last refresh counts at once.
  if (drain_probe_) {
    for (scheduler::Host& host : hosts_) {
      if (!host.up || !drain_probe_(host.name)) continue;
      draining_.insert(host.name);
      host.up = false;
    }
  }
  if (absent_probe_) {
    for (scheduler::Host& host : hosts_) {
      if (host.up && absent_probe_(host.name)) host.up = false;
    }
  }
  return hosts_;
}

StatusOr<std::vector<controller::PeerShadow>> LibvirtCluster::Shadows() {
  if (!refreshed_) return Unavailable("the cluster has not been read yet");
  return shadows_;
}

StatusOr<std::vector<std::string>> LibvirtCluster::HostsDefining(const std::string& vm_uuid) {
  if (!refreshed_) return Unavailable("the cluster has not been read yet");
  std::vector<std::string> hosts;
  for (const auto& [host, uuids] : ordinary_uuids_) {
    if (uuids.count(vm_uuid) > 0) hosts.push_back(host);
  }
  return hosts;
}

StatusOr<uint64_t> LibvirtCluster::VirtualSize(const std::string& path) {
  VS_ASSIGN_OR_RETURN(virt::Hypervisor * conn, Conn(hosts_config_.this_host));
  auto size = conn->ImageVirtualSize(path);
  if (!size.ok()) return size.status();
  return size;
}

bool LibvirtCluster::Refresh() {
  std::vector<scheduler::Host> hosts;
  std::vector<controller::PeerShadow> shadows;
  std::map<std::string, std::set<std::string>> ordinary_uuids;
  draining_.clear();
  for (const auto& cfg : hosts_config_.hosts) {
    scheduler::Host host{.name = cfg.name, .zone = cfg.zone, .up = false, .cost_per_hour = cfg.cost_per_hour};
    if (absent_probe_ && absent_probe_(cfg.name)) {  // gone from the membership: not dialled, no shadow goes there
      hosts.push_back(std::move(host));
      continue;
    }
    auto conn = Conn(cfg.name);
    if (conn.ok()) {
      auto capacity = (*conn)->GetNodeCapacity();
      auto found = ScanHost(cfg.name);
      if (capacity.ok() && found.ok()) {
        host.up = true;
        host.total_vcpus = cfg.vcpus_cap.value_or(static_cast<uint32_t>(capacity->cpus));
        host.total_memory_kib = cfg.memory_mib_cap ? *cfg.memory_mib_cap * 1024 : capacity->memory_kib;
        host.used_vcpus = static_cast<uint32_t>(capacity->running_vcpus);
        host.used_memory_kib = capacity->running_memory_kib;
        shadows.insert(shadows.end(), found->shadows.begin(), found->shadows.end());
        ordinary_uuids[cfg.name] = std::move(found->ordinary_uuids);
        if (drain_probe_ && drain_probe_(cfg.name)) {
          draining_.insert(cfg.name);
          host.up = false;  // under a notice: no new shadow goes there
        }
      }
    }
    hosts.push_back(std::move(host));
  }
  // Free capacity grew when a host came up, or its unreserved room grew (a domain stopped, a shadow went away).
  auto free_room = [](const scheduler::Host& h, const std::vector<controller::PeerShadow>& all) {
    int64_t room = static_cast<int64_t>(h.total_memory_kib) - static_cast<int64_t>(h.used_memory_kib);
    for (const auto& s : all) {
      if (s.host == h.name) room -= static_cast<int64_t>(s.size.memory_kib);
    }
    return h.up ? room : INT64_MIN;
  };
  bool grew = false;
  for (const auto& now : hosts) {
    for (const auto& before : hosts_) {
      if (before.name == now.name && free_room(now, shadows) > free_room(before, shadows_)) grew = true;
    }
  }
  hosts_ = std::move(hosts);
  shadows_ = std::move(shadows);
  ordinary_uuids_ = std::move(ordinary_uuids);
  refreshed_ = true;
  return grew;
}

}  // namespace vs::cluster
