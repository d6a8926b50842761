// The lifecycle of one VM's self-fence record (proto FenceRecord, docs/failover.md "Self-fencing"): ONE
// transition table, the only code that changes FenceRecord.state. Pure: no store, no libvirt, no clock.
//
//   (none) / RELEASED   --kFence-->         FENCED              act (pause or destroy)
//   FENCED              --kFence-->         FENCED              act again (idempotent: a retry, or a new loss)
//   RELEASING           --kFence-->         FENCED              act (quorum lost again before the resume)
//   PROMOTED_ELSEWHERE  --kFence-->         PROMOTED_ELSEWHERE  act (it must never run here)
//   FENCED              --kNotPromoted-->   RELEASING           resume (pause) / nothing to do (destroy)
//   RELEASING           --kNotPromoted-->   RELEASING           resume again (a restart mid-release)
//   FENCED              --kPromoted-->      PROMOTED_ELSEWHERE  act (make sure it is paused: it may never have been)
//   FENCED              --kUnreachable-->   FENCED              nothing (asked again later)
//   RELEASING           --kResumed-->       RELEASED            nothing
//   (none) / RELEASED   --kFoundPromoted-->  PROMOTED_ELSEWHERE nothing (it does not run: found stopped)
//   PROMOTED_ELSEWHERE  --kStaleDiscarded-->  RELEASED          nothing (the discard was done before the event)
// Everything else is refused (kFailedPrecondition naming the state and the event), so a late or duplicate
// answer cannot, say, release a VM that was promoted elsewhere.
//
// Thread-safety: pure functions. Failure modes: kFailedPrecondition for a transition the table does not have.
#pragma once

#include <string_view>

#include "common/status.h"
#include "proto/failover.pb.h"

namespace vs::failover {

enum class FenceEvent {
  kFence,        // this host's partition is not quorate and the VM has a shadow outside it
  kNotPromoted,  // every shadow host answered NOT_PROMOTED (each vetoes a promotion now)
  kPromoted,     // a shadow host answered PROMOTED
  kUnreachable,  // a shadow host could not be asked (and none said PROMOTED)
  kResumed,      // the resume took effect (or, destroy: nothing to resume)
  // After a start of shadowd (the host crashed, or was powered off, and came back) a VM of this host found stopped
  // here, with no record that blocks it, was promoted by a peer (QueryPromotion answered PROMOTED): a crash fences
  // nothing, so without this its stale copy could be started again.
  kFoundPromoted,
  // A failback of the VM from the host it was promoted on: the stale copy here was destroyed (if it ran) and
  // undefined, its images kept (SelfFence::DiscardStaleCopy). Recorded only once that is done, so that a record
  // that still blocks starts covers every moment a stale definition exists.
  kStaleDiscarded,
};
std::string_view FenceEventName(FenceEvent event);

enum class FenceCommand {
  kNone,
  kAct,     // pause or destroy the VM, as the record's action says
  kResume,  // resume the VM if it is paused
};

struct FenceTransition {
  virtshadow::v1::FenceRecord::State to;
  FenceCommand command;
};

// What `event` does to a record in `from` (FENCE_STATE_UNSPECIFIED: no record yet).
StatusOr<FenceTransition> NextFenceState(virtshadow::v1::FenceRecord::State from, FenceEvent event);

// The start of the VM must be refused here: FENCED, RELEASING (not resumed yet: its shadow hosts' vetoes hold, but
// it is shadowd that resumes it, not a start) and PROMOTED_ELSEWHERE.
bool BlocksStart(virtshadow::v1::FenceRecord::State state);

std::string_view FenceStateName(virtshadow::v1::FenceRecord::State state);  // "fenced", "releasing", ...

}  // namespace vs::failover
