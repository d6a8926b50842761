#include "shadowd/lifecycle/events.h"

#include <cstddef>
#include <type_traits>
#include <utility>

#include "shadowd/lifecycle/overloaded.h"

namespace vs::lifecycle {
namespace {

// Every alternative's kKind must be its own index, or KindOf and the table would disagree.
template <std::size_t... I>
constexpr bool KindsMatchIndices(std::index_sequence<I...>) {
  return ((static_cast<std::size_t>(std::variant_alternative_t<I, Event>::kKind) == I) && ...);
}
static_assert(KindsMatchIndices(std::make_index_sequence<std::variant_size_v<Event>>()));

Status Missing(EventKind kind, std::string_view field, std::string_view hint) {
  return InvalidArgument(std::string(EventKindName(kind)) + "." + std::string(field) + " is empty: " +
                         std::string(hint));
}

Status ValidateSize(EventKind kind, const ShadowSize& size) {
  if (size.vcpus == 0 || size.memory_kib == 0) {
    return InvalidArgument(std::string(EventKindName(kind)) + ".shadow_size is " +
                           std::to_string(size.vcpus) + " vCPUs / " + std::to_string(size.memory_kib) +
                           " KiB: both must be positive (resolve the policy against the primary's size)");
  }
  return Status::Ok();
}

Status ValidateHost(EventKind kind, const std::string& host) {
  return host.empty() ? Missing(kind, "host", "name the target host the result is about") : Status::Ok();
}

Status ValidateFailure(EventKind kind, const Status& error) {
  if (error.ok()) {
    return InvalidArgument(std::string(EventKindName(kind)) +
                           ".error is OK: a failure event needs the failing status");
  }
  return Status::Ok();
}

}  // namespace

EventKind KindOf(const Event& event) {
  return std::visit([](const auto& e) { return std::decay_t<decltype(e)>::kKind; }, event);
}

std::string_view EventKindName(EventKind kind) {
  switch (kind) {
    case EventKind::kPolicySeen: return "PolicySeen";
    case EventKind::kPolicyRejected: return "PolicyRejected";
    case EventKind::kPolicyRemoved: return "PolicyRemoved";
    case EventKind::kVmStarted: return "VmStarted";
    case EventKind::kVmStopped: return "VmStopped";
    case EventKind::kVmUndefined: return "VmUndefined";
    case EventKind::kPlacementChosen: return "PlacementChosen";
    case EventKind::kPlacementFailed: return "PlacementFailed";
    case EventKind::kShadowDefined: return "ShadowDefined";
    case EventKind::kShadowDefineFailed: return "ShadowDefineFailed";
    case EventKind::kShadowReleased: return "ShadowReleased";
    case EventKind::kReleaseFailed: return "ReleaseFailed";
    case EventKind::kGraceExpired: return "GraceExpired";
    case EventKind::kCapacityChanged: return "CapacityChanged";
    case EventKind::kRetryTimerFired: return "RetryTimerFired";
    case EventKind::kShadowLost: return "ShadowLost";
    case EventKind::kSwitchedOver: return "SwitchedOver";
    case EventKind::kShadowMoveRequested: return "ShadowMoveRequested";
    case EventKind::kShadowHostLeaving: return "ShadowHostLeaving";
  }
  return "UnknownEvent";
}

Status Validate(const Event& event) {
  return std::visit(
      Overloaded{
          [](const PolicySeen& e) {
            if (e.policy_xml.empty()) return Missing(e.kKind, "policy_xml", "pass the canonical policy XML");
            return ValidateSize(e.kKind, e.shadow_size);
          },
          [](const PolicyRejected& e) {
            return e.error.empty() ? Missing(e.kKind, "error", "pass the policy parser's message") : Status::Ok();
          },
          [](const PlacementChosen& e) {
            VS_RETURN_IF_ERROR(ValidateHost(e.kKind, e.host));
            return ValidateSize(e.kKind, e.shadow_size);
          },
          [](const PlacementFailed& e) {
            return e.reason.empty() ? Missing(e.kKind, "reason", "say why no host fits") : Status::Ok();
          },
          [](const ShadowDefined& e) { return ValidateHost(e.kKind, e.host); },
          [](const ShadowDefineFailed& e) {
            VS_RETURN_IF_ERROR(ValidateHost(e.kKind, e.host));
            return ValidateFailure(e.kKind, e.error);
          },
          [](const ShadowReleased& e) { return ValidateHost(e.kKind, e.host); },
          [](const ReleaseFailed& e) {
            VS_RETURN_IF_ERROR(ValidateHost(e.kKind, e.host));
            return ValidateFailure(e.kKind, e.error);
          },
          [](const ShadowLost& e) { return ValidateHost(e.kKind, e.host); },
          [](const SwitchedOver& e) { return ValidateHost(e.kKind, e.host); },
          [](const ShadowMoveRequested& e) { return ValidateHost(e.kKind, e.host); },
          [](const ShadowHostLeaving& e) { return ValidateHost(e.kKind, e.host); },
          [](const auto&) { return Status::Ok(); },  // events without payload
      },
      event);
}

}  // namespace vs::lifecycle
