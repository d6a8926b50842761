#include "shadowd/nova/nova_reserving_peer_ops.h"

#include <utility>

#include "shadowd/policy/domain_xml.h"

namespace vs::nova {

NovaReservingPeerOps::NovaReservingPeerOps(controller::PeerOps& inner, OpenStackApi& api, Logger::Line log)
    : inner_(inner), api_(api), log_(std::move(log)) {}

Status NovaReservingPeerOps::CreateReplicaImage(const std::string& host, const std::string& path,
                                                std::uint64_t virtual_size_bytes, const std::string& format) {
  return inner_.CreateReplicaImage(host, path, virtual_size_bytes, format);
}

StatusOr<std::string> NovaReservingPeerOps::ProviderOf(const std::string& host) {
  if (auto known = providers_.find(host); known != providers_.end()) return known->second;
  VS_ASSIGN_OR_RETURN(std::string uuid, api_.ComputeNodeUuid(host));
  providers_[host] = uuid;
  return uuid;
}

Status NovaReservingPeerOps::DefineShadow(const std::string& host, const std::string& domain_xml) {
  VS_ASSIGN_OR_RETURN(policy::DomainFacts facts, policy::ParseDomain(domain_xml));
  if (facts.nova) {
    const std::string what = "reserving the memory of Nova instance " + facts.nova->display_name + "'s shadow " +
                             facts.uuid + " on " + host + " in Placement";
    StatusOr<std::string> provider = ProviderOf(host);
    if (!provider.ok()) return provider.status().Annotate(what + " (its compute node)");
    Allocation allocation{.consumer_uuid = facts.uuid,
                          .provider_uuid = *provider,
                          .resources = {{"MEMORY_MB", (facts.memory_kib + 1023) / 1024},
                                        {"VCPU", facts.max_vcpus}},
                          .project_id = facts.nova->project_uuid,
                          .user_id = facts.nova->user_uuid};
    Status reserved = api_.PutAllocation(allocation);
    if (!reserved.ok()) {
      // Placement's "no room" (409) is final for this host; anything else keeps its code (Unavailable: retried).
      return reserved.Annotate(what);
    }
    log_("reserved " + std::to_string(allocation.resources["MEMORY_MB"]) + " MiB and " +
         std::to_string(facts.max_vcpus) + " vCPUs on " + host + " in Placement for the shadow " + facts.uuid);
  }
  return inner_.DefineShadow(host, domain_xml);
}

Status NovaReservingPeerOps::ReleaseShadow(const std::string& host, const std::string& shadow_uuid,
                                           const std::string& shadow_name,
                                           const std::vector<std::string>& replica_paths) {
  VS_RETURN_IF_ERROR(inner_.ReleaseShadow(host, shadow_uuid, shadow_name, replica_paths));
  // After the shadow is gone: a reservation without its shadow only costs room until the release is retried,
  // a shadow without its reservation could be overbooked.
  return api_.DeleteAllocation(shadow_uuid)
      .Annotate("releasing the Placement reservation of shadow " + shadow_name + " on " + host);
}

StatusOr<std::vector<controller::PeerShadow>> NovaReservingPeerOps::ListShadows(const std::string& host) {
  return inner_.ListShadows(host);
}

}  // namespace vs::nova
