// Fuzz target: a domain XML as a user may define it (shadowd/policy/domain_xml.h), and the policy element in it.
// Beyond "no crash, no leak, no UB" it checks the promises the hook relies on:
// - MayBeTagged never gives a false negative: a domain it calls untagged parses as untagged (or not at all);
// - a valid policy renders to an element that parses back to the same policy (policy.h, RenderPolicy);
// - BestEffortHookFailure agrees with the policy's own failure mode whenever the policy is valid.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "shadowd/policy/domain_xml.h"
#include "shadowd/policy/policy.h"

namespace vs::policy {
namespace {

void Check(bool promise) {
  if (!promise) std::abort();
}

void FuzzOne(std::string_view xml) {
  const bool may_be_tagged = MayBeTagged(xml);
  StatusOr<DomainFacts> facts = ParseDomain(xml);
  if (!facts.ok()) return;
  const PolicyResult result = ParsePolicy(*facts);
  if (!may_be_tagged) Check(result.policy.ok() && !result.policy->has_value());
  for (const RawPolicy& raw : facts->policy_elements) {
    StatusOr<Policy> policy = ParsePolicyElement(raw);
    if (!policy.ok()) {
      (void)BestEffortHookFailure(raw);
      continue;
    }
    Check(BestEffortHookFailure(raw) == EffectiveHookFailure(*policy));
    (void)ResolveShadowSize(*policy, facts->current_vcpus, facts->current_memory_kib);
    const std::string rendered = RenderPolicy(*policy);
    // The rendered element carries the policy namespace the way `virsh metadata --set` gets it.
    StatusOr<DomainFacts> again =
        ParseDomain("<domain><name>n</name><uuid>u</uuid><memory>1024</memory><metadata>" +
                    rendered.substr(0, rendered.size() - 2) + " xmlns='" + std::string(kPolicyNamespace) +
                    "'/></metadata></domain>");
    Check(again.ok() && again->policy_elements.size() == 1);
    StatusOr<Policy> reparsed = ParsePolicyElement(again->policy_elements[0]);
    Check(reparsed.ok() && *reparsed == *policy);
  }
}

}  // namespace
}  // namespace vs::policy

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vs::policy::FuzzOne(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
