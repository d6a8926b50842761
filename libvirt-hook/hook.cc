#include "libvirt-hook/hook.h"

#include <algorithm>
#include <array>

#include "shadowd/failover/fence_marker.h"
#include "shadowd/policy/domain_xml.h"
#include "shadowd/policy/policy.h"

namespace vs::hook {
namespace {

// The qemu hook operations shadowd follows; libvirt's other ones (e.g. "attach") are ignored.
constexpr std::array<std::string_view, 8> kHandledOperations = {
    "prepare", "start", "started", "stopped", "release", "migrate", "restore", "reconnect",
};

// libvirt passes exactly: object operation sub-operation extra.
constexpr std::size_t kLibvirtArgCount = 4;

HookOutcome Exit(int code, std::string line = "") {
  if (!line.empty()) {
    std::replace(line.begin(), line.end(), '\n', ' ');  // one line, whatever the messages inside hold
    line += '\n';
  }
  return {code, std::move(line)};
}

}  // namespace

HookOutcome RunHook(std::span<const std::string> args, std::string_view domain_xml, EventDeliverer& deliverer,
                    spool::Spool& spool, Clock& clock, const std::string& fence_dir) {
  // First and cheapest: most domains are untagged and must cost a substring search, nothing more.
  if (!policy::MayBeTagged(domain_xml)) return Exit(0);

  if (args.size() < kLibvirtArgCount) {
    return Exit(0, "virt-shadow hook: expected libvirt's " + std::to_string(kLibvirtArgCount) +
                       " arguments (object operation sub-operation extra) but got " + std::to_string(args.size()) +
                       "; doing nothing (install it as /etc/libvirt/hooks/qemu, libvirtd calls it)");
  }
  const std::string& object = args[0];
  const std::string& operation = args[1];
  const std::string& sub_operation = args[2];
  if (std::find(kHandledOperations.begin(), kHandledOperations.end(), operation) == kHandledOperations.end()) {
    return Exit(0);
  }

  StatusOr<policy::DomainFacts> facts = policy::ParseDomain(domain_xml);
  if (!facts.ok()) {
    return Exit(0, "virt-shadow: cannot read the domain XML of VM '" + object + "' at " + operation + " " +
                       sub_operation + " (" + facts.status().ToString() +
                       "); letting libvirt go on without virt-shadow, since its policy cannot be known");
  }
  const policy::PolicyResult policy = policy::ParsePolicy(*facts);
  if (policy.policy.ok() && !policy.policy->has_value()) return Exit(0);  // MayBeTagged's false positive

  virtshadow::v1::HookEvent event;
  event.set_domain_name(facts->name);
  event.set_domain_uuid(facts->uuid);
  event.set_operation(operation);
  event.set_sub_operation(sub_operation);
  event.set_extra(args[3]);
  event.set_domain_xml(std::string(domain_xml));
  event.set_hook_wall_time_unix_ms(
      std::chrono::duration_cast<std::chrono::milliseconds>(clock.WallNow().time_since_epoch()).count());

  const bool at_prepare = operation == "prepare" && sub_operation == "begin";
  StatusOr<virtshadow::v1::HookVerdict> verdict = deliverer.Deliver(event);
  if (verdict.ok()) {
    // A refusal only means something where libvirt can still refuse the start.
    if (at_prepare && !verdict->allow()) {
      return Exit(1, "virt-shadow: shadowd refused to start VM '" + facts->name +
                         "': " + (verdict->reason().empty() ? "(no reason given)" : verdict->reason()));
    }
    return Exit(0);
  }

  const std::string why_undelivered = verdict.status().ToString();
  StatusOr<spool::SpoolEntry> spooled = spool.Append(event);
  const std::string spool_note = spooled.ok() ? "event spooled as " + spool.directory() + "/" + spooled->file_name
                                              : "event DROPPED, the spool refused it: " + spooled.status().ToString();

  if (at_prepare && !fence_dir.empty()) {
    if (std::optional<std::string> fenced = failover::ReadFenceMarker(fence_dir, facts->uuid)) {
      return Exit(1, *fenced + " (shadowd is unreachable: " + why_undelivered + "; this is its fence marker; " +
                         spool_note + ")");
    }
  }
  const bool protection_paused = policy.policy.ok() && !(*policy.policy)->enabled;
  if (at_prepare && policy.hook_failure == policy::HookFailureMode::kClosed && !protection_paused) {
    return Exit(1, "virt-shadow: shadowd is unreachable and VM " + facts->name +
                       "'s policy is fail-closed (hook-failure=closed or critical=yes): refusing to start it; "
                       "start shadowd or set hook-failure=\"open\" (" +
                       why_undelivered + "; " + spool_note + ")");
  }
  return Exit(0, "virt-shadow: shadowd is unreachable at " + operation + " " + sub_operation + " of VM '" +
                     facts->name + "' (" + why_undelivered + "); " + spool_note);
}

}  // namespace vs::hook
