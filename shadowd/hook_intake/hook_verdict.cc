#include "shadowd/hook_intake/hook_verdict.h"

#include "shadowd/failover/fence_machine.h"
#include "shadowd/failover/fence_marker.h"
#include "shadowd/policy/domain_xml.h"

namespace vs::hook_intake {


virtshadow::v1::HookVerdict HookVerdictFor(const virtshadow::v1::HookEvent& event,
                                           const std::optional<virtshadow::v1::FenceRecord>& fence) {
  virtshadow::v1::HookVerdict verdict;
  verdict.set_allow(true);
  if (event.operation() != "prepare") return verdict;
  // Before the policy: a fenced VM stays down even if its tag was made invalid meanwhile.
  if (fence && failover::BlocksStart(fence->state())) {
    verdict.set_allow(false);
    verdict.set_reason(failover::FenceRefusal(event.domain_name(), *fence));
    return verdict;
  }
  if (!policy::MayBeTagged(event.domain_xml())) return verdict;
  auto facts = policy::ParseDomain(event.domain_xml());
  if (!facts.ok()) return verdict;  // libvirt itself accepted this XML; nothing here to judge it by
  policy::PolicyResult result = policy::ParsePolicy(*facts);
  if (!result.policy.ok() && result.hook_failure == policy::HookFailureMode::kClosed) {
    verdict.set_allow(false);
    verdict.set_reason("virt-shadow: VM " + event.domain_name() + " has an invalid shadow policy and fails closed: " +
                       result.policy.status().message() + "; fix the policy (virt-shadow tag) or set hook-failure=\"open\"");
  }
  return verdict;
}

}  // namespace vs::hook_intake
