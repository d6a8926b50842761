#include "shadowd/failover/fence_machine.h"

#include <array>

namespace vs::failover {
namespace {

using State = virtshadow::v1::FenceRecord;

struct Row {
  virtshadow::v1::FenceRecord::State from;
  FenceEvent event;
  FenceTransition transition;
};

// The table of fence_machine.h's header, row for row.
constexpr std::array kTable = {
    Row{State::FENCE_STATE_UNSPECIFIED, FenceEvent::kFence, {State::FENCE_STATE_FENCED, FenceCommand::kAct}},
    Row{State::FENCE_STATE_RELEASED, FenceEvent::kFence, {State::FENCE_STATE_FENCED, FenceCommand::kAct}},
    Row{State::FENCE_STATE_FENCED, FenceEvent::kFence, {State::FENCE_STATE_FENCED, FenceCommand::kAct}},
    Row{State::FENCE_STATE_RELEASING, FenceEvent::kFence, {State::FENCE_STATE_FENCED, FenceCommand::kAct}},
    Row{State::FENCE_STATE_PROMOTED_ELSEWHERE, FenceEvent::kFence,
        {State::FENCE_STATE_PROMOTED_ELSEWHERE, FenceCommand::kAct}},
    Row{State::FENCE_STATE_FENCED, FenceEvent::kNotPromoted, {State::FENCE_STATE_RELEASING, FenceCommand::kResume}},
    Row{State::FENCE_STATE_RELEASING, FenceEvent::kNotPromoted,
        {State::FENCE_STATE_RELEASING, FenceCommand::kResume}},
    Row{State::FENCE_STATE_FENCED, FenceEvent::kPromoted, {State::FENCE_STATE_PROMOTED_ELSEWHERE, FenceCommand::kAct}},
    Row{State::FENCE_STATE_FENCED, FenceEvent::kUnreachable, {State::FENCE_STATE_FENCED, FenceCommand::kNone}},
    Row{State::FENCE_STATE_RELEASING, FenceEvent::kResumed, {State::FENCE_STATE_RELEASED, FenceCommand::kNone}},
    Row{State::FENCE_STATE_UNSPECIFIED, FenceEvent::kFoundPromoted,
        {State::FENCE_STATE_PROMOTED_ELSEWHERE, FenceCommand::kNone}},
    Row{State::FENCE_STATE_RELEASED, FenceEvent::kFoundPromoted,
        {State::FENCE_STATE_PROMOTED_ELSEWHERE, FenceCommand::kNone}},
    Row{State::FENCE_STATE_PROMOTED_ELSEWHERE, FenceEvent::kStaleDiscarded,
        {State::FENCE_STATE_RELEASED, FenceCommand::kNone}},
};

}  // namespace

std::string_view FenceEventName(FenceEvent event) {
  switch (event) {
    case FenceEvent::kFence: return "fence";
    case FenceEvent::kNotPromoted: return "not promoted";
    case FenceEvent::kPromoted: return "promoted";
    case FenceEvent::kUnreachable: return "unreachable";
    case FenceEvent::kResumed: return "resumed";
    case FenceEvent::kFoundPromoted: return "found promoted";
    case FenceEvent::kStaleDiscarded: return "stale copy discarded";
  }
  return "unknown";
}

std::string_view FenceStateName(virtshadow::v1::FenceRecord::State state) {
  switch (state) {
    case State::FENCE_STATE_FENCED: return "fenced";
    case State::FENCE_STATE_RELEASING: return "releasing";
    case State::FENCE_STATE_RELEASED: return "released";
    case State::FENCE_STATE_PROMOTED_ELSEWHERE: return "promoted elsewhere";
    default: return "none";
  }
}

StatusOr<FenceTransition> NextFenceState(virtshadow::v1::FenceRecord::State from, FenceEvent event) {
  for (const Row& row : kTable) {
    if (row.from == from && row.event == event) return row.transition;
  }
  return FailedPrecondition("a fence record in state '" + std::string(FenceStateName(from)) + "' has no '" +
                            std::string(FenceEventName(event)) + "' transition");
}

bool BlocksStart(virtshadow::v1::FenceRecord::State state) {
  return state == State::FENCE_STATE_FENCED || state == State::FENCE_STATE_RELEASING ||
         state == State::FENCE_STATE_PROMOTED_ELSEWHERE;
}

}  // namespace vs::failover
