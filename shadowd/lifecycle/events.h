// Events: the inputs of the protection lifecycle (lifecycle.h). Each says what was observed about a
// VM, or how an action shadowd performed for it (a Command) ended. A closed set: std::variant.
//
// Results of actions on a target host name that host, so that a late result of an abandoned
// action (e.g. a define on a host that was since given up) is recognised as stale and refused.
//
// Thread-safety: plain values. Failure modes: Validate() reports malformed payloads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "common/status.h"

namespace vs::lifecycle {

// The resolved size of a shadow domain.
struct ShadowSize {
  std::uint32_t vcpus = 0;
  std::uint64_t memory_kib = 0;
  bool operator==(const ShadowSize&) const = default;
};

// One value per alternative of Event, in the same order: the column of the transition table.
enum class EventKind {
  kPolicySeen,
  kPolicyRejected,
  kPolicyRemoved,
  kVmStarted,
  kVmStopped,
  kVmUndefined,
  kPlacementChosen,
  kPlacementFailed,
  kShadowDefined,
  kShadowDefineFailed,
  kShadowReleased,
  kReleaseFailed,
  kGraceExpired,
  kCapacityChanged,
  kRetryTimerFired,
  kShadowLost,
  kSwitchedOver,
  kShadowMoveRequested,
  kShadowHostLeaving,
};

// The VM's tag holds a valid policy. The caller parsed it (the policy module) and resolved the size.
struct PolicySeen {
  static constexpr EventKind kKind = EventKind::kPolicySeen;
  std::string policy_xml;  // canonical form, so that equal policies compare equal as text
  ShadowSize shadow_size;
};
// The VM's tag holds a policy that does not parse.
struct PolicyRejected {
  static constexpr EventKind kKind = EventKind::kPolicyRejected;
  std::string error;  // the parser's message
};
// The tag was removed from the VM's metadata.
struct PolicyRemoved {
  static constexpr EventKind kKind = EventKind::kPolicyRemoved;
};
struct VmStarted {
  static constexpr EventKind kKind = EventKind::kVmStarted;
};
struct VmStopped {
  static constexpr EventKind kKind = EventKind::kVmStopped;
};
// The VM's persistent definition is gone (with it, its tag).
struct VmUndefined {
  static constexpr EventKind kKind = EventKind::kVmUndefined;
};
// Result of ComputePlacement. `shadow_size` echoes the request, so that the answer to a request made
// for a policy since changed is refused as stale instead of reserving the wrong size.
struct PlacementChosen {
  static constexpr EventKind kKind = EventKind::kPlacementChosen;
  std::string host;
  ShadowSize shadow_size;
};
// Result of ComputePlacement: no host can take the shadow.
struct PlacementFailed {
  static constexpr EventKind kKind = EventKind::kPlacementFailed;
  std::string reason;
};
struct ShadowDefined {
  static constexpr EventKind kKind = EventKind::kShadowDefined;
  std::string host;
};
// error.retryable(): try the same host again after a backoff; otherwise give that host up.
struct ShadowDefineFailed {
  static constexpr EventKind kKind = EventKind::kShadowDefineFailed;
  std::string host;
  Status error;
};
struct ShadowReleased {
  static constexpr EventKind kKind = EventKind::kShadowReleased;
  std::string host;
};
// Always retried: a shadow that is not released is an orphan.
struct ReleaseFailed {
  static constexpr EventKind kKind = EventKind::kReleaseFailed;
  std::string host;
  Status error;
};
struct GraceExpired {
  static constexpr EventKind kKind = EventKind::kGraceExpired;
};
// Some host's free capacity grew: worth placing unprotected VMs again now.
struct CapacityChanged {
  static constexpr EventKind kKind = EventKind::kCapacityChanged;
};
struct RetryTimerFired {
  static constexpr EventKind kKind = EventKind::kRetryTimerFired;
};
// The target host reports the shadow domain gone, or the host is down.
struct ShadowLost {
  static constexpr EventKind kKind = EventKind::kShadowLost;
  std::string host;
  std::string detail;
};

// The VM moved live onto its shadow's host (a switchover): the shadow became the VM there, so nothing is
// left to release, and the VM's new host protects it from now on.
struct SwitchedOver {
  static constexpr EventKind kKind = EventKind::kSwitchedOver;
  std::string host;
  bool promoted = false;  // by a crash promotion there (this copy was fenced), not a switchover
};
// Move the shadow to `host` (failback: the VM is to return there): release the current shadow and
// place the next one on `host` only.
struct ShadowMoveRequested {
  static constexpr EventKind kKind = EventKind::kShadowMoveRequested;
  std::string host;
};

// The host of the shadow is leaving (it drains under a notice): the shadow would go with it. The one defined
// (or being defined) there is released and the next placed elsewhere; one about another host is refused.
struct ShadowHostLeaving {
  static constexpr EventKind kKind = EventKind::kShadowHostLeaving;
  std::string host;
  std::string reason;  // why it leaves, for the report
};

using Event = std::variant<PolicySeen, PolicyRejected, PolicyRemoved, VmStarted, VmStopped, VmUndefined,
                           PlacementChosen, PlacementFailed, ShadowDefined, ShadowDefineFailed,
                           ShadowReleased, ReleaseFailed, GraceExpired, CapacityChanged, RetryTimerFired,
                           ShadowLost, SwitchedOver, ShadowMoveRequested, ShadowHostLeaving>;

inline constexpr int kEventKindCount = static_cast<int>(std::variant_size_v<Event>);
static_assert(static_cast<int>(EventKind::kShadowHostLeaving) + 1 == kEventKindCount,
              "EventKind must have one value per Event alternative");

EventKind KindOf(const Event& event);

// "PolicySeen", "ShadowDefineFailed", ...: the names used in logs and error messages.
std::string_view EventKindName(EventKind kind);

// InvalidArgument naming the event and the field when a payload is unusable (empty host, zero
// size, an OK status given as a failure, ...).
Status Validate(const Event& event);

}  // namespace vs::lifecycle
