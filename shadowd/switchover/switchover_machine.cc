#include "shadowd/switchover/switchover_machine.h"

namespace vs::switchover {

namespace v1 = virtshadow::v1;

std::string PhaseName(Phase phase) {
  switch (phase) {
    case v1::SWITCHOVER_PHASE_UNSPECIFIED: return "Unspecified";
    case v1::SWITCHOVER_PHASE_CHECKING: return "Checking";
    case v1::SWITCHOVER_PHASE_PREPARING: return "Preparing";
    case v1::SWITCHOVER_PHASE_SNAPSHOTTING: return "Snapshotting";
    case v1::SWITCHOVER_PHASE_FINAL_ROUND: return "FinalRound";
    case v1::SWITCHOVER_PHASE_MIGRATING: return "Migrating";
    case v1::SWITCHOVER_PHASE_FALLBACK_MIGRATING: return "FallbackMigrating";
    case v1::SWITCHOVER_PHASE_COMPLETING: return "Completing";
    case v1::SWITCHOVER_PHASE_ROLLING_BACK: return "RollingBack";
    case v1::SWITCHOVER_PHASE_DONE: return "Done";
    case v1::SWITCHOVER_PHASE_FAILED: return "Failed";
    case v1::SWITCHOVER_PHASE_VERIFYING: return "Verifying";
    case v1::SWITCHOVER_PHASE_GUEST_FAILED: return "GuestFailed";
    default: return "SwitchoverPhase(" + std::to_string(static_cast<int>(phase)) + ")";
  }
}

bool IsTerminal(Phase phase) {
  return phase == v1::SWITCHOVER_PHASE_DONE || phase == v1::SWITCHOVER_PHASE_FAILED ||
         phase == v1::SWITCHOVER_PHASE_GUEST_FAILED;
}

namespace {

std::string OutcomeName(StepOutcome outcome) {
  switch (outcome) {
    case StepOutcome::kSucceeded: return "succeeded";
    case StepOutcome::kFailed: return "failed";
    case StepOutcome::kUnhealthy: return "unhealthy";
  }
  return "unknown";
}

}  // namespace

// THE TRANSITION TABLE.
StatusOr<Phase> NextPhase(Phase from, StepOutcome outcome) {
  using O = StepOutcome;
  switch (from) {
    case v1::SWITCHOVER_PHASE_CHECKING:
      if (outcome == O::kSucceeded) return v1::SWITCHOVER_PHASE_PREPARING;
      if (outcome == O::kUnhealthy) return v1::SWITCHOVER_PHASE_FALLBACK_MIGRATING;
      return v1::SWITCHOVER_PHASE_FAILED;
    case v1::SWITCHOVER_PHASE_PREPARING:
      if (outcome == O::kSucceeded) return v1::SWITCHOVER_PHASE_SNAPSHOTTING;
      if (outcome == O::kFailed) return v1::SWITCHOVER_PHASE_ROLLING_BACK;
      break;
    case v1::SWITCHOVER_PHASE_SNAPSHOTTING:
      if (outcome == O::kSucceeded) return v1::SWITCHOVER_PHASE_FINAL_ROUND;
      if (outcome == O::kFailed) return v1::SWITCHOVER_PHASE_ROLLING_BACK;
      break;
    case v1::SWITCHOVER_PHASE_FINAL_ROUND:
      if (outcome == O::kSucceeded) return v1::SWITCHOVER_PHASE_MIGRATING;
      if (outcome == O::kFailed) return v1::SWITCHOVER_PHASE_ROLLING_BACK;
      break;
    case v1::SWITCHOVER_PHASE_MIGRATING:
      if (outcome == O::kSucceeded) return v1::SWITCHOVER_PHASE_VERIFYING;
      if (outcome == O::kFailed) return v1::SWITCHOVER_PHASE_ROLLING_BACK;
      break;
    case v1::SWITCHOVER_PHASE_FALLBACK_MIGRATING:
      if (outcome == O::kSucceeded) return v1::SWITCHOVER_PHASE_VERIFYING;
      if (outcome == O::kFailed) return v1::SWITCHOVER_PHASE_FAILED;
      break;
    case v1::SWITCHOVER_PHASE_VERIFYING:
      if (outcome == O::kSucceeded) return v1::SWITCHOVER_PHASE_COMPLETING;
      if (outcome == O::kFailed) return v1::SWITCHOVER_PHASE_GUEST_FAILED;
      break;
    case v1::SWITCHOVER_PHASE_COMPLETING:
      // Not Done while the VM runs on a top: the completion is tried again (SwitchoverRunner backs off).
      if (outcome == O::kSucceeded) return v1::SWITCHOVER_PHASE_DONE;
      if (outcome == O::kFailed) return v1::SWITCHOVER_PHASE_COMPLETING;
      break;
    case v1::SWITCHOVER_PHASE_ROLLING_BACK:
      if (outcome != O::kUnhealthy) return v1::SWITCHOVER_PHASE_FAILED;
      break;
    default:
      break;
  }
  return InvalidArgument("switchover phase " + PhaseName(from) + " has no transition for a step that " +
                         OutcomeName(outcome));
}

StatusOr<Phase> ResumePhase(Phase persisted, VmLocation location) {
  switch (persisted) {
    case v1::SWITCHOVER_PHASE_CHECKING:
    case v1::SWITCHOVER_PHASE_PREPARING:
    case v1::SWITCHOVER_PHASE_SNAPSHOTTING:
    case v1::SWITCHOVER_PHASE_FINAL_ROUND:
      // The guest depends on nothing on the target yet. A VM not running here any more was moved by
      // someone else; completing tidies our overlays either way.
      return location == VmLocation::kRunningOnTarget ? v1::SWITCHOVER_PHASE_COMPLETING
                                                      : v1::SWITCHOVER_PHASE_ROLLING_BACK;
    case v1::SWITCHOVER_PHASE_MIGRATING:
    case v1::SWITCHOVER_PHASE_FALLBACK_MIGRATING:
      switch (location) {
        case VmLocation::kRunningOnTarget: return v1::SWITCHOVER_PHASE_VERIFYING;
        case VmLocation::kMigratingFromHere: return persisted;
        case VmLocation::kRunningHere:
          return persisted == v1::SWITCHOVER_PHASE_MIGRATING ? v1::SWITCHOVER_PHASE_ROLLING_BACK
                                                            : v1::SWITCHOVER_PHASE_FAILED;
      }
      break;
    case v1::SWITCHOVER_PHASE_VERIFYING:
      // The migration had ended: the VM is on the target (check it again) unless libvirt brought it back.
      return location == VmLocation::kRunningHere ? v1::SWITCHOVER_PHASE_ROLLING_BACK : v1::SWITCHOVER_PHASE_VERIFYING;
    case v1::SWITCHOVER_PHASE_COMPLETING:
    case v1::SWITCHOVER_PHASE_ROLLING_BACK:
    case v1::SWITCHOVER_PHASE_DONE:
    case v1::SWITCHOVER_PHASE_FAILED:
    case v1::SWITCHOVER_PHASE_GUEST_FAILED:
      return persisted;
    default:
      break;
  }
  return InvalidArgument("a persisted switchover in phase " + PhaseName(persisted) + " cannot be resumed");
}

}  // namespace vs::switchover
