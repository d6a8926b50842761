#include "shadowd/rpc/hook_verdict.h"

#include <ctime>

#include "common/clock.h"
#include "shadowd/failover/fence_machine.h"
#include "shadowd/policy/domain_xml.h"

namespace vs::rpc {

namespace {

// "2026-12-05 10:40:00 UTC": libvirt shows the hook's message to whoever started the VM.
std::string UnixMsText(int64_t ms) {
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  const std::size_t length = std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &utc);
  return std::string(text, length);
}

std::string FenceRefusal(const std::string& vm_name, const virtshadow::v1::FenceRecord& fence) {
  using virtshadow::v1::FenceRecord;
  std::string reason = "virt-shadow: VM " + vm_name + " is fenced on this host since " +
                       UnixMsText(fence.fenced_unix_ms()) + " (" + fence.why() + ")";
  if (fence.state() == FenceRecord::FENCE_STATE_PROMOTED_ELSEWHERE) {
    reason += "; it was promoted on " + fence.promoted_host() + " at " + UnixMsText(fence.promoted_unix_ms()) +
              ", so this copy is stale and must not run here";
  } else {
    reason += "; it stays fenced until its shadow host " + (fence.shadow_hosts_size() ? fence.shadow_hosts(0) : "") +
              " confirms it did not promote it" + (fence.detail().empty() ? "" : " (" + fence.detail() + ")");
  }
  return reason + "; see virt-shadow status " + vm_name;
}

}  // namespace

virtshadow::v1::HookVerdict HookVerdictFor(const virtshadow::v1::HookEvent& event,
                                           const std::optional<virtshadow::v1::FenceRecord>& fence) {
  virtshadow::v1::HookVerdict verdict;
  verdict.set_allow(true);
  if (event.operation() != "prepare") return verdict;
  // Before the policy: a fenced VM stays down even if its tag was made invalid meanwhile.
  if (fence && failover::BlocksStart(fence->state())) {
    verdict.set_allow(false);
    verdict.set_reason(FenceRefusal(event.domain_name(), *fence));
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

}  // namespace vs::rpc
