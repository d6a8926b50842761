#include "shadowd/failover/libvirt_promotion_host.h"

#include <algorithm>
#include <utility>

#include "shadowd/cluster/domain_scan.h"
#include "shadowd/lifecycle/shadow_identity.h"
#include "shadowd/policy/domain_xml.h"
#include "shadowd/virt/libvirtd_probe.h"

namespace vs::failover {

StatusOr<std::vector<controller::PeerShadow>> LibvirtPromotionHost::LocalShadows() {
  VS_ASSIGN_OR_RETURN(std::vector<cluster::ScannedDomain> domains, cluster::ScanDomains(local_, this_host_));
  std::vector<controller::PeerShadow> shadows;
  for (cluster::ScannedDomain& domain : domains) {
    if (domain.shadow) shadows.push_back(std::move(*domain.shadow));
  }
  return shadows;
}

StatusOr<PromotedVmState> LibvirtPromotionHost::VmState(const std::string& name) {
  StatusOr<virt::DomainState> state = local_.GetDomainState(name);
  if (!state.ok()) {
    if (state.status().code() == Code::kNotFound) return PromotedVmState{};
    return state.status();
  }
  const bool stopped = *state == virt::DomainState::kShutoff || *state == virt::DomainState::kShutdown ||
                       *state == virt::DomainState::kCrashed || *state == virt::DomainState::kNoState;
  return PromotedVmState{.defined = true, .running = !stopped};
}

StatusOr<VmSize> LibvirtPromotionHost::LiveSize(const std::string& name) {
  VS_ASSIGN_OR_RETURN(std::string xml, local_.GetDomainXml(name));
  VS_ASSIGN_OR_RETURN(policy::DomainFacts facts, policy::ParseDomain(xml));
  return VmSize{.vcpus = facts.current_vcpus, .memory_kib = facts.current_memory_kib};
}

StatusOr<VmSize> LibvirtPromotionHost::FreeBesides(const std::string& name) {
  VS_ASSIGN_OR_RETURN(virt::NodeCapacity node, local_.GetNodeCapacity());
  VS_ASSIGN_OR_RETURN(VmSize own, LiveSize(name));  // also: the VM must run here
  VS_ASSIGN_OR_RETURN(std::vector<controller::PeerShadow> shadows, LocalShadows());
  // The running domains include the VM itself: what is left is what it may grow into.
  (void)own;
  int64_t vcpus = int64_t{node.cpus} - node.running_vcpus;
  int64_t memory_kib = static_cast<int64_t>(node.memory_kib) - static_cast<int64_t>(node.running_memory_kib);
  for (const controller::PeerShadow& shadow : shadows) {
    vcpus -= shadow.size.vcpus;
    memory_kib -= static_cast<int64_t>(shadow.size.memory_kib);
  }
  return VmSize{.vcpus = static_cast<std::uint32_t>(std::max<int64_t>(vcpus, 0)),
                .memory_kib = static_cast<std::uint64_t>(std::max<int64_t>(memory_kib, 0))};
}

StatusOr<bool> DestroyOnPrimary(virt::LibvirtRuntime& runtime, Clock& clock, const std::string& uri,
                                const std::string& vm_uuid, Duration connect_timeout) {
  VS_RETURN_IF_ERROR(virt::LibvirtdAnswers(uri, connect_timeout));
  VS_ASSIGN_OR_RETURN(std::unique_ptr<virt::Hypervisor> primary, runtime.Connect(uri, clock));
  return DestroyVm(*primary, vm_uuid);
}

StatusOr<bool> DestroyVm(virt::Hypervisor& primary, const std::string& vm_uuid) {
  // By UUID: a VM re-created under the same name (while the old one's shadow waited for its release) is another VM.
  VS_ASSIGN_OR_RETURN(std::vector<cluster::ScannedDomain> domains, cluster::ScanDomains(primary, ""));
  const StatusOr<std::string> wanted = lifecycle::CanonicalUuid(vm_uuid);
  if (!wanted.ok()) return wanted.status().Annotate("the VM to destroy on its primary");
  const auto found = std::find_if(domains.begin(), domains.end(), [&](const cluster::ScannedDomain& domain) {
    const StatusOr<std::string> uuid = lifecycle::CanonicalUuid(domain.uuid);
    return uuid.ok() && *uuid == *wanted;
  });
  if (found == domains.end()) return true;  // not defined there
  const std::string vm_name = found->name;
  VS_RETURN_IF_ERROR(primary.DestroyDomain(vm_name));  // OK when it does not run
  StatusOr<virt::DomainState> state = primary.GetDomainState(vm_name);
  if (!state.ok()) {
    if (state.status().code() == Code::kNotFound) return true;
    return state.status();
  }
  return *state == virt::DomainState::kShutoff || *state == virt::DomainState::kShutdown ||
         *state == virt::DomainState::kCrashed;
}

}  // namespace vs::failover
