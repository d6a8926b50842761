#include "shadowd/failover/promotion_machine.h"

namespace vs::failover {

namespace v1 = virtshadow::v1;

std::string PromotionPhaseName(PromotionPhase phase) {
  switch (phase) {
    case v1::PROMOTION_PHASE_UNSPECIFIED: return "Unspecified";
    case v1::PROMOTION_PHASE_DECIDED: return "Decided";
    case v1::PROMOTION_PHASE_SETTLED: return "Settled";
    case v1::PROMOTION_PHASE_DEFINED: return "Defined";
    case v1::PROMOTION_PHASE_STARTED: return "Started";
    case v1::PROMOTION_PHASE_DONE: return "Done";
    case v1::PROMOTION_PHASE_FAILED: return "Failed";
    default: return "PromotionPhase(" + std::to_string(static_cast<int>(phase)) + ")";
  }
}

bool IsTerminal(PromotionPhase phase) {
  return phase == v1::PROMOTION_PHASE_DONE || phase == v1::PROMOTION_PHASE_FAILED;
}

namespace {

std::string OutcomeName(PromotionOutcome outcome) {
  switch (outcome) {
    case PromotionOutcome::kSucceeded: return "succeeded";
    case PromotionOutcome::kRetry: return "is to be retried";
    case PromotionOutcome::kRefused: return "was refused";
  }
  return "unknown";
}

}  // namespace

// THE TRANSITION TABLE.
StatusOr<PromotionPhase> NextPromotionPhase(PromotionPhase from, PromotionOutcome outcome) {
  using O = PromotionOutcome;
  if (!IsTerminal(from) && from != v1::PROMOTION_PHASE_UNSPECIFIED && outcome == O::kRetry) return from;
  switch (from) {
    case v1::PROMOTION_PHASE_DECIDED:
      if (outcome == O::kSucceeded) return v1::PROMOTION_PHASE_SETTLED;
      if (outcome == O::kRefused) return v1::PROMOTION_PHASE_FAILED;
      break;
    case v1::PROMOTION_PHASE_SETTLED:
      if (outcome == O::kSucceeded) return v1::PROMOTION_PHASE_DEFINED;
      // Refused before the VM's definition exists here: nothing to undo.
      if (outcome == O::kRefused) return v1::PROMOTION_PHASE_FAILED;
      break;
    case v1::PROMOTION_PHASE_DEFINED:
      // The shadow is gone and the VM defined: there is no way back, only forward (a refusal is retried).
      if (outcome == O::kSucceeded) return v1::PROMOTION_PHASE_STARTED;
      break;
    case v1::PROMOTION_PHASE_STARTED:
      if (outcome == O::kSucceeded) return v1::PROMOTION_PHASE_DONE;
      break;
    default:
      break;
  }
  return InvalidArgument("promotion phase " + PromotionPhaseName(from) + " has no transition for a step that " +
                         OutcomeName(outcome));
}

StatusOr<PromotionPhase> ResumePromotionPhase(PromotionPhase persisted, const PromotedVmState& vm) {
  switch (persisted) {
    case v1::PROMOTION_PHASE_DEFINED:
      // Started before the crash, before STARTED was stored: never a second start.
      return vm.running ? v1::PROMOTION_PHASE_STARTED : v1::PROMOTION_PHASE_DEFINED;
    case v1::PROMOTION_PHASE_DECIDED:
    case v1::PROMOTION_PHASE_SETTLED:
    case v1::PROMOTION_PHASE_STARTED:
    case v1::PROMOTION_PHASE_DONE:
    case v1::PROMOTION_PHASE_FAILED:
      return persisted;
    default:
      break;
  }
  return InvalidArgument("a persisted promotion in phase " + PromotionPhaseName(persisted) + " cannot be resumed");
}

}  // namespace vs::failover
