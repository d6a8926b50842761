// The per-VM protection lifecycle of shadowd: an explicit state machine over the persisted VmRecord
// (proto/vm_record.proto). For each tagged VM whose primary runs on this host it decides when a shadow
// is placed, kept and released; the caller performs the decisions (commands.h) and reports their
// outcomes back as events (events.h).
//
//   Main path: NoRecord -PolicySeen-> Unplaced -PlacementChosen-> Placing -ShadowDefined-> Protected
//              -VmStopped/PolicyRemoved/VmUndefined-> GracePeriod -GraceExpired-> Releasing
//              -ShadowReleased-> Released (DeleteRecord)
//   Detours:   PlacementFailed -> Unprotected -CapacityChanged/RetryTimerFired-> Unplaced;
//              GracePeriod -VmStarted (still tagged, same policy)-> Protected, without a new placement;
//              ShadowLost -> Unplaced (place again); a changed policy -> Releasing -> Unplaced;
//              PolicyRejected while no valid policy is known -> PolicyInvalid;
//              SwitchedOver (the VM moved live onto its shadow: Protected/GracePeriod/Releasing) -> Released
//              without a release; ShadowMoveRequested (failback) -> Releasing, then a placement pinned to
//              that host (pinned_host, cleared once Protected again); ShadowHostLeaving (the shadow's host
//              drains: Placing/Protected) -> Releasing, then a placement elsewhere.
//
// The whole table is the one switch in lifecycle.cc (ApplyCell): one `case` per allowed (state, event)
// cell; every other pair is refused with FailedPrecondition naming the state and the event, which the
// caller logs and ignores (stale timers and late results of abandoned actions end up there).
//
// Crash safety (shadowd may be killed with -9 at any point). The caller, for each Apply():
//   1. writes Transition::record to the store, guarded by the version it read (compare-and-swap);
//   2. only then performs Transition::commands.
// So every action on another host is recorded as an intent (Placing, Releasing, the shadow
// assignment) before it starts, and Recover() re-issues it from the record after a restart. The
// actions are idempotent (deterministic shadow UUIDs), so re-issuing one that had completed is
// harmless. A record's shadow assignment is also its capacity reservation on the target host.
// Ordering: the caller performs one VM's remote commands in the order issued, each after the previous
// one finished, so a release never overtakes the define it cancels; the target host serialises the
// operations on one shadow UUID (a define sent just before a crash may still be running there).
//
// Facts vs. decisions: the record keeps what was last observed about the primary (vm_running,
// tagged, policy_xml, shadow_size) apart from the state. "Wanted" means running and tagged; when no
// shadow is held, a wanted VM is placed and an unwanted record ends (Released, DeleteRecord).
// retry_count counts failures since the VM was last Protected; while it is non-zero a wanted VM
// that needs a new shadow waits out RetryBackoff in Unprotected instead of placing at once.
// Policy rules: an invalid edit of the tag keeps the last valid policy in force (reported, not
// acted upon); a changed policy or shadow size releases the current shadow and places anew.
//
// No record: a VM without a record is passed as NewVmRecord(...) (state UNSPECIFIED, shown as
// "NoRecord"); only PolicySeen and PolicyRejected are accepted there. Released records are deleted
// by the caller before the VM's next event.
//
// Time: `now` and every deadline are wall time (persisted as unix ms, so they survive a restart);
// take `now` from Clock::WallNow(). A timer event that arrives before its persisted deadline (a stale
// or early timer) re-arms the timer instead of acting.
//
// Ownership: values in, values out. Thread-safety: pure functions; the caller serialises the events
// of one VM. Failure modes: malformed records or events give InvalidArgument naming the field;
// disallowed or stale events give FailedPrecondition. Nothing aborts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "proto/vm_record.pb.h"
#include "shadowd/lifecycle/commands.h"
#include "shadowd/lifecycle/events.h"

namespace vs::lifecycle {

using virtshadow::v1::ProtectionState;
using virtshadow::v1::VmRecord;

struct Transition {
  VmRecord record;                 // persist this first ...
  std::vector<Command> commands;   // ... then perform these
};

// "NoRecord", "PolicyInvalid", "Unplaced", ..., or "ProtectionState(<n>)" for a value this build
// does not know.
std::string ToString(ProtectionState state);

// The wait before the next attempt after `consecutive_failures` failures: 2 s, doubling per failure,
// capped at 60 s (2, 4, 8, 16, 32, 60, 60, ... s; 0 failures also gives 2 s). No jitter.
Duration RetryBackoff(std::uint32_t consecutive_failures);

// The blank record of a VM that has none yet: identity and run state, state UNSPECIFIED.
VmRecord NewVmRecord(std::string vm_uuid, std::string vm_name, std::string primary_host, bool vm_running);

// Applies `event` to `record` at wall time `now`. The result's record has version + 1 and
// updated_at = now. `grace_period` is how long a shadow is kept after its VM stops or is untagged.
StatusOr<Transition> Apply(const VmRecord& record, const Event& event, WallTime now, Duration grace_period);

// The commands to re-issue for a record loaded after a restart: Unplaced -> ComputePlacement,
// Unprotected -> ScheduleRetry(persisted time), Placing -> DefineShadow, Releasing -> ReleaseShadow,
// GracePeriod -> StartGraceTimer(persisted deadline), Released -> DeleteRecord; none otherwise.
// InvalidArgument for a malformed record (including state UNSPECIFIED, which is never persisted).
StatusOr<std::vector<Command>> Recover(const VmRecord& record);

}  // namespace vs::lifecycle
