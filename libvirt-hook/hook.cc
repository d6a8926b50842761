#include "libvirt-hook/hook.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <optional>

#include "shadowd/failover/fence_marker.h"
#include "shadowd/policy/domain_xml.h"
#include "shadowd/policy/policy.h"
#include "shadowd/switchover/nova_arrival.h"

namespace vs::hook {
namespace {

// The qemu hook operations shadowd follows; libvirt's other ones (e.g. "attach") are ignored.
constexpr std::array<std::string_view, 8> kHandledOperations = {
    "prepare", "start", "started", "stopped", "release", "migrate", "restore", "reconnect",
};

// libvirt passes exactly: object operation sub-operation extra.
constexpr std::size_t kLibvirtArgCount = 4;

// The longest run of bytes a sign MayBeTagged looks for can straddle two reads with: the namespace URI
// less one byte ("&#" is shorter).
constexpr std::size_t kTagOverlap = policy::kPolicyNamespace.size() - 1;

HookOutcome Exit(int code, std::string line = "") {
  if (!line.empty()) {
    std::replace(line.begin(), line.end(), '\n', ' ');  // one line, whatever the messages inside hold
    line += '\n';
  }
  return {code, std::move(line)};
}

// Nothing to do without libvirt's arguments or for an operation shadowd does not follow.
std::optional<HookOutcome> CheckArgs(std::span<const std::string> args) {
  if (args.size() < kLibvirtArgCount) {
    return Exit(0, "virt-shadow hook: expected libvirt's " + std::to_string(kLibvirtArgCount) +
                       " arguments (object operation sub-operation extra) but got " + std::to_string(args.size()) +
                       "; doing nothing (install it as /etc/libvirt/hooks/qemu, libvirtd calls it)");
  }
  if (std::find(kHandledOperations.begin(), kHandledOperations.end(), args[1]) == kHandledOperations.end()) {
    return Exit(0);
  }
  return std::nullopt;
}

// A domain XML that may carry a policy but cannot be read (`why`): whether the VM is critical is unknown.
// Refused at `prepare begin`, as a critical VM would be without shadowd, so that none starts unprotected
// unnoticed; the price is that a VM with an open or no policy and such an XML waits for the fix too.
HookOutcome Unreadable(std::span<const std::string> args, const std::string& why, std::size_t limit) {
  const std::string& object = args[0];
  if (args[1] != "prepare" || args[2] != "begin") {
    return Exit(0, "virt-shadow: cannot read the domain XML of VM '" + object + "' at " + args[1] + " " + args[2] +
                       " (" + why +
                       "); letting libvirt go on without virt-shadow, which refuses only at prepare begin");
  }
  return Exit(1, "virt-shadow: refusing to start VM '" + object + "': cannot read its domain XML (" + why +
                     "), so whether its virt-shadow policy is critical is unknown; keep the XML within " +
                     std::to_string(limit) +
                     " bytes (large <description> or <metadata> contents are the usual cause; `virsh dumpxml " +
                     object + " | wc -c` shows the size) and well-formed within libxml2's limits (nesting depth 256, "
                     "names of 50000 bytes), or remove the VM's virt-shadow policy (virsh metadata " + object +
                     " --uri " + std::string(policy::kPolicyNamespace) +
                     " --remove --config) if it needs no protection");
}

HookOutcome RunHookOnOversizedXml(std::span<const std::string> args, const OversizedXml& xml) {
  // Read to its end without a sign of a policy: untagged, and untagged domains are never held up.
  if (!xml.may_be_tagged) return Exit(0);
  if (std::optional<HookOutcome> done = CheckArgs(args)) return *done;
  return Unreadable(args,
                    "it is larger than the " + std::to_string(xml.limit) + " bytes virt-shadow reads: " +
                        std::to_string(xml.bytes_read) + " bytes read before it stopped",
                    xml.limit);
}

}  // namespace

DomainXmlInput ReadDomainXml(int fd, std::size_t limit) {
  std::string xml;
  // All at once: an allocation this large is mapped lazily, so only the bytes read become resident, where
  // growing by doubling would hold two copies at the end.
  xml.reserve(limit + 1);
  char buffer[65536];
  while (xml.size() <= limit) {
    const ssize_t n = ::read(fd, buffer, std::min(sizeof(buffer), limit + 1 - xml.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return xml;
    xml.append(buffer, static_cast<std::size_t>(n));
  }
  OversizedXml over{.bytes_read = xml.size(), .limit = limit, .may_be_tagged = policy::MayBeTagged(xml)};
  std::string window = xml.substr(xml.size() - std::min(xml.size(), kTagOverlap));
  std::string().swap(xml);  // free it: the rest is only scanned
  while (!over.may_be_tagged) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) break;  // the end: untagged
    if (n < 0) {        // the rest is unknown, so is the policy
      over.may_be_tagged = true;
      break;
    }
    over.bytes_read += static_cast<std::uint64_t>(n);
    window.append(buffer, static_cast<std::size_t>(n));
    over.may_be_tagged = policy::MayBeTagged(window);
    window.erase(0, window.size() - std::min(window.size(), kTagOverlap));
  }
  return over;
}

HookOutcome RunHook(std::span<const std::string> args, const DomainXmlInput& input, EventDeliverer& deliverer,
                    spool::Spool& spool, Clock& clock, const std::string& fence_dir) {
  if (const auto* oversized = std::get_if<OversizedXml>(&input)) return RunHookOnOversizedXml(args, *oversized);
  const std::string& domain_xml = std::get<std::string>(input);
  // First and cheapest: most domains are untagged and must cost a substring search, nothing more.
  if (!policy::MayBeTagged(domain_xml)) return Exit(0);
  if (std::optional<HookOutcome> done = CheckArgs(args)) return *done;
  const std::string& operation = args[1];
  const std::string& sub_operation = args[2];

  StatusOr<policy::DomainFacts> facts = policy::ParseDomain(domain_xml);
  if (!facts.ok()) {
    return Unreadable(args,
                      std::to_string(domain_xml.size()) + " bytes, virt-shadow reads up to " +
                          std::to_string(policy::kMaxDomainXmlBytes) + ": " + facts.status().ToString(),
                      policy::kMaxDomainXmlBytes);
  }
  const policy::PolicyResult policy = policy::ParsePolicy(*facts);
  // A Nova instance may be protected through Nova's records, which only shadowd reads: its events go there too.
  const bool untagged = policy.policy.ok() && !policy.policy->has_value();
  if (untagged && !facts->nova) return Exit(0);  // MayBeTagged's false positive

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
  const bool at_incoming_migration = operation == "migrate" && sub_operation == "begin";
  StatusOr<virtshadow::v1::HookVerdict> verdict = deliverer.Deliver(event);
  if (verdict.ok()) {
    // A refusal only means something where libvirt can still refuse the start (or the incoming migration).
    if ((at_prepare || at_incoming_migration) && !verdict->allow()) {
      return Exit(1, "virt-shadow: shadowd refused to " +
                         std::string(at_prepare ? "start" : "take the incoming migration of") + " VM '" +
                         facts->name + "': " + (verdict->reason().empty() ? "(no reason given)" : verdict->reason()));
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
  // A Nova switchover set the shadow's files aside for this very migration and only shadowd puts them back in place
  // of Nova's: without it, QEMU would open Nova's fresh disks (a pristine image under an empty top) and lose the
  // VM's data. Refused; Nova rolls the migration back and the VM stays where it was.
  if (at_incoming_migration) {
    if (std::optional<std::string> stash = switchover::StashOfDisks(*facts)) {
      return Exit(1, "virt-shadow: shadowd is unreachable (" + why_undelivered + ") and the replicas of VM " +
                         facts->name + " are set aside in " + *stash +
                         " for this migration; refusing it, or the VM would run on Nova's empty disks (" +
                         spool_note + ")");
    }
  }
  if (untagged) {
    return Exit(0, "virt-shadow: shadowd is unreachable at " + operation + " " + sub_operation + " of Nova instance '" +
                       facts->name + "' (" + why_undelivered + "); " + spool_note);
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
