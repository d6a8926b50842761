// What shadowd does with a hook event, whichever way it came: the hook socket (hook_listener.h), or the gRPC
// control service's DeliverHookEvent (kept for hooks older than the hook socket). One implementation for both:
// Take answers the verdict at once (hook_verdict.h, after one store read of the VM's fence record at a start) and
// hands the event to the loop, where the controller works out the VM's protection. The hook waits for the
// verdict, not for the controller's work.
//
// Ownership: borrows the loop, the controller and the fence records, which must outlive it.
// Thread-safety: Take from any thread, several at once: it keeps no state, the fence records are thread-safe
// and the controller is touched on the loop only. Failure modes: none escape. A fence record that cannot be read
// refuses a start (the verdict says why: it may have been promoted elsewhere); a controller error is logged on
// the loop.
#pragma once

#include <functional>
#include <string>

#include "common/executor.h"
#include "common/logger.h"
#include "common/status.h"
#include "proto/hook_event.pb.h"
#include "proto/shadowd.pb.h"
#include "shadowd/controller/controller.h"
#include "shadowd/failover/fence_records.h"

namespace vs::hook_intake {

class HookIntake {
 public:
  // `loop` runs `controller`. `fences`: this host's self-fence records; nullptr when it keeps none.
  // `incoming_migration`: what must be done on this host before an incoming migration's QEMU opens the VM's
  // disks (SwitchoverTarget::OnIncomingMigration, for a Nova switchover), called with the VM's UUID at "migrate
  // begin"; its error refuses the migration. May be empty.
  HookIntake(Executor& loop, controller::ProtectionController& controller, const failover::FenceRecords* fences,
             Logger::Line log, std::function<Status(const std::string& vm_uuid)> incoming_migration = {})
      : loop_(loop),
        controller_(controller),
        fences_(fences),
        log_(std::move(log)),
        incoming_migration_(std::move(incoming_migration)) {}

  virtshadow::v1::HookVerdict Take(const virtshadow::v1::HookEvent& event);

 private:
  Executor& loop_;
  controller::ProtectionController& controller_;
  const failover::FenceRecords* const fences_;
  const Logger::Line log_;
  const std::function<Status(const std::string& vm_uuid)> incoming_migration_;
};

}  // namespace vs::hook_intake
