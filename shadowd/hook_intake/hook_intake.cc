#include "shadowd/hook_intake/hook_intake.h"

#include <optional>

#include "shadowd/hook_intake/hook_verdict.h"

namespace vs::hook_intake {

virtshadow::v1::HookVerdict HookIntake::Take(const virtshadow::v1::HookEvent& event) {
  virtshadow::v1::HookVerdict verdict;
  // One point read of the store, only for a start: the hook waits for this answer.
  std::optional<virtshadow::v1::FenceRecord> fence;
  if (fences_ != nullptr && event.operation() == "prepare" && !event.domain_uuid().empty()) {
    auto record = fences_->Get(event.domain_uuid());
    if (record.ok()) {
      fence = *record;
    } else {
      // Unreadable: refuse rather than risk starting a VM that was promoted elsewhere.
      verdict.set_allow(false);
      verdict.set_reason("virt-shadow: the fence record of VM " + event.domain_name() + " cannot be read (" +
                         record.status().ToString() + "); refusing to start it");
      log_("hook: " + verdict.reason());
      return verdict;
    }
  }
  verdict = HookVerdictFor(event, fence);
  if (incoming_migration_ && event.operation() == "migrate" && event.sub_operation() == "begin" &&
      !event.domain_uuid().empty()) {
    if (Status ready = incoming_migration_(event.domain_uuid()); !ready.ok()) {
      verdict.set_allow(false);
      verdict.set_reason("virt-shadow: refusing the incoming migration of VM " + event.domain_name() + ": " +
                         ready.ToString());
      log_("hook: " + verdict.reason());
    }
  }
  if (!verdict.allow() && fence) log_("hook: refused a start: " + verdict.reason());
  loop_.Post([this, event] {
    Status status = controller_.HandleHookEvent(event);
    if (!status.ok()) {
      log_("hook event " + event.operation() + " " + event.sub_operation() + " of " + event.domain_name() + ": " +
           status.ToString());
    }
  });
  return verdict;
}

}  // namespace vs::hook_intake
