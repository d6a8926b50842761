#include "shadowd/lifecycle/lifecycle.h"

#include <algorithm>
#include <chrono>
#include <string_view>
#include <utility>

#include "shadowd/lifecycle/overloaded.h"
#include "shadowd/lifecycle/shadow_identity.h"

namespace vs::lifecycle {
namespace {

namespace v1 = virtshadow::v1;
using std::chrono::milliseconds;

// Short names, so that the table below reads as a table.
constexpr ProtectionState kNoRecord = v1::PROTECTION_STATE_UNSPECIFIED;
constexpr ProtectionState kPolicyInvalid = v1::PROTECTION_STATE_POLICY_INVALID;
constexpr ProtectionState kUnplaced = v1::PROTECTION_STATE_UNPLACED;
constexpr ProtectionState kUnprotected = v1::PROTECTION_STATE_UNPROTECTED;
constexpr ProtectionState kPlacing = v1::PROTECTION_STATE_PLACING;
constexpr ProtectionState kProtected = v1::PROTECTION_STATE_PROTECTED;
constexpr ProtectionState kReleasing = v1::PROTECTION_STATE_RELEASING;
constexpr ProtectionState kGracePeriod = v1::PROTECTION_STATE_GRACE_PERIOD;
constexpr ProtectionState kReleased = v1::PROTECTION_STATE_RELEASED;

// This issue keeps one shadow per VM; its index is an input of the shadow's identity.
constexpr std::uint32_t kShadowIndex = 0;

// Upper bound for the grace period: keeps deadline arithmetic far from overflow.
constexpr Duration kMaxGracePeriod = std::chrono::hours(24 * 365);

ShadowSize SizeOf(const VmRecord& r) { return {r.shadow_size().vcpus(), r.shadow_size().memory_kib()}; }

std::string DescribeSize(const ShadowSize& size) {
  return std::to_string(size.vcpus) + " vCPUs / " + std::to_string(size.memory_kib) + " KiB";
}

bool HoldsShadow(ProtectionState state) {
  return state == kPlacing || state == kProtected || state == kGracePeriod || state == kReleasing;
}
bool NeedsPolicy(ProtectionState state) { return HoldsShadow(state) || state == kUnplaced || state == kUnprotected; }

std::string Who(const VmRecord& r) { return "VM '" + r.vm_name() + "' (" + r.vm_uuid() + ")"; }

// Commands are built from the record alone, so that Apply and Recover issue identical ones.
ComputePlacement ComputePlacementFor(const VmRecord& r) { return {SizeOf(r)}; }
DefineShadow DefineShadowFor(const VmRecord& r) {
  const v1::ShadowAssignment& a = r.shadows(0);
  return {a.host(), a.domain_uuid(), a.domain_name(), SizeOf(r)};
}
ReleaseShadow ReleaseShadowFor(const VmRecord& r) {
  const v1::ShadowAssignment& a = r.shadows(0);
  return {a.host(), a.domain_uuid(), a.domain_name()};
}
StartGraceTimer GraceTimerFor(const VmRecord& r) { return {FromUnixMillis(r.grace_deadline_unix_ms())}; }
ScheduleRetry RetryFor(const VmRecord& r) { return {FromUnixMillis(r.next_retry_unix_ms())}; }

Status ValidateRecord(const VmRecord& r) {
  if (!v1::ProtectionState_IsValid(r.state())) {
    return InvalidArgument("VmRecord of " + Who(r) + " has unknown state " + std::to_string(r.state()) +
                           ": written by a newer shadowd (run that version) or damaged");
  }
  VS_RETURN_IF_ERROR(CanonicalUuid(r.vm_uuid()).status().Annotate("VmRecord.vm_uuid"));
  if (r.vm_name().empty()) {
    return InvalidArgument("VmRecord.vm_name is empty for " + r.vm_uuid() + ": set the domain name");
  }
  if (r.primary_host().empty()) {
    return InvalidArgument("VmRecord.primary_host is empty for " + Who(r) + ": set this host's name");
  }
  const std::string in_state = "VmRecord of " + Who(r) + " in state " + ToString(r.state());
  if (HoldsShadow(r.state())) {
    if (r.shadows_size() != 1 || r.shadows(0).host().empty() || r.shadows(0).domain_uuid().empty() ||
        r.shadows(0).domain_name().empty()) {
      return InvalidArgument(in_state + " needs exactly one shadow assignment with host, domain_uuid and "
                             "domain_name; it has " + std::to_string(r.shadows_size()) + " (or one is incomplete)");
    }
  } else if (r.shadows_size() != 0) {
    return InvalidArgument(in_state + " holds " + std::to_string(r.shadows_size()) +
                           " shadow assignment(s); that state holds none");
  }
  if (NeedsPolicy(r.state()) &&
      (r.policy_xml().empty() || r.shadow_size().vcpus() == 0 || r.shadow_size().memory_kib() == 0)) {
    return InvalidArgument(in_state + " needs policy_xml and a positive shadow_size; it has " +
                           (r.policy_xml().empty() ? "no policy" : DescribeSize(SizeOf(r))));
  }
  return Status::Ok();
}

// The outcome of one table cell under construction: a changed copy of the record and the commands.
class Step {
 public:
  Step(const VmRecord& from, WallTime now, Duration grace_period)
      : record_(from), now_(now), grace_period_(grace_period) {}

  VmRecord& record() { return record_; }
  WallTime now() const { return now_; }
  Duration grace_period() const { return grace_period_; }
  void To(ProtectionState state) { record_.set_state(state); }
  // Constructs the command in place: moving a temporary Command trips GCC 12's -Wmaybe-uninitialized.
  template <class C>
  void Emit(C command) {
    commands_.emplace_back(std::in_place_type<C>, std::move(command));
  }

  Transition Finish() && {
    record_.set_version(record_.version() + 1);
    record_.set_updated_at_unix_ms(ToUnixMillis(now_));
    return {std::move(record_), std::move(commands_)};
  }

 private:
  VmRecord record_;
  std::vector<Command> commands_;
  const WallTime now_;
  const Duration grace_period_;
};

template <class E>
const E& As(const Event& event) {
  return std::get<E>(event);
}

// Records what the event says about the primary, whatever the state. True when a PolicySeen brings a
// policy or size different from the one in force (canonical XML compares as text; the size may change
// with the primary's size under the same policy).
bool ObserveFacts(VmRecord& r, const Event& event) {
  return std::visit(Overloaded{
                        [&](const PolicySeen& e) {
                          const bool changed = r.policy_xml() != e.policy_xml || SizeOf(r) != e.shadow_size;
                          r.set_policy_xml(e.policy_xml);
                          r.mutable_shadow_size()->set_vcpus(e.shadow_size.vcpus);
                          r.mutable_shadow_size()->set_memory_kib(e.shadow_size.memory_kib);
                          r.set_tagged(true);
                          return changed;
                        },
                        [&](const PolicyRemoved&) { r.set_tagged(false); return false; },
                        // An undefined domain loses its metadata, hence its tag.
                        [&](const VmUndefined&) { r.set_tagged(false); return false; },
                        [&](const VmStarted&) { r.set_vm_running(true); return false; },
                        [&](const VmStopped&) { r.set_vm_running(false); return false; },
                        [](const auto&) { return false; },
                    },
                    event);
}

// The host a result event (or a report about the shadow's host) is about, or nullptr for other events.
const std::string* ResultHost(const Event& event) {
  return std::visit(Overloaded{
                        [](const ShadowDefined& e) { return &e.host; },
                        [](const ShadowDefineFailed& e) { return &e.host; },
                        [](const ShadowReleased& e) { return &e.host; },
                        [](const ReleaseFailed& e) { return &e.host; },
                        [](const ShadowLost& e) { return &e.host; },
                        [](const ShadowHostLeaving& e) { return &e.host; },
                        [](const auto&) -> const std::string* { return nullptr; },
                    },
                    event);
}

Status Refuse(const VmRecord& r, ProtectionState from, EventKind kind, std::string_view stale_because = {}) {
  std::string message = Who(r) + " in state " + ToString(from) + ": event " + std::string(EventKindName(kind));
  message += stale_because.empty() ? " is not allowed in this state" : " is stale: " + std::string(stale_because);
  return FailedPrecondition(message + "; ignore it");
}

// ---- The actions that cells are made of. Each sets the next state and emits its commands.

Status Stay(Step&) { return Status::Ok(); }

void Report(Step& s, std::string message) {
  s.record().set_last_error(message);
  s.Emit(ReportError{std::move(message)});
}

Status EnterPolicyInvalid(Step& s, const PolicyRejected& e) {
  s.To(kPolicyInvalid);
  Report(s, e.error);
  return Status::Ok();
}

// An invalid edit of the tag does not drop protection built on the last valid policy.
Status KeepPolicyInForce(Step& s, const PolicyRejected& e) {
  Report(s, "policy rejected, the last valid policy stays in force: " + e.error);
  return Status::Ok();
}

Status RequestPlacement(Step& s) {
  s.To(kUnplaced);
  s.Emit(ComputePlacementFor(s.record()));
  return Status::Ok();
}

// Schedules the next attempt after retry_count failures.
Status WaitForRetry(Step& s) {
  VmRecord& r = s.record();
  const std::int64_t backoff_ms = std::chrono::duration_cast<milliseconds>(RetryBackoff(r.retry_count())).count();
  r.set_retry_backoff_ms(backoff_ms);
  r.set_next_retry_unix_ms(ToUnixMillis(s.now()) + backoff_ms);
  s.Emit(RetryFor(r));
  return Status::Ok();
}

void CountFailure(Step& s) { s.record().set_retry_count(s.record().retry_count() + 1); }

Status EnterUnprotected(Step& s, std::string reason) {
  s.To(kUnprotected);
  s.record().set_unprotected_reason(std::move(reason));
  return WaitForRetry(s);
}

Status PlacementFailedBackoff(Step& s, const PlacementFailed& e) {
  CountFailure(s);
  return EnterUnprotected(s, e.reason);
}

Status EndRecord(Step& s) {
  s.To(kReleased);
  s.Emit(DeleteRecord{});
  return Status::Ok();
}

// No shadow is held (any more): place one if the VM is wanted (running and tagged), else the record is
// done. After failures the placement waits out the backoff first, so that a host that keeps rejecting
// the shadow is not hammered in a loop.
Status SettleWithoutShadow(Step& s) {
  VmRecord& r = s.record();
  r.clear_shadows();
  r.set_grace_deadline_unix_ms(0);
  if (!r.vm_running() || !r.tagged()) return EndRecord(s);
  if (r.retry_count() == 0) return RequestPlacement(s);
  return EnterUnprotected(s, r.last_error());
}

// Records the intent (assignment DEFINING) before the define is performed.
Status BeginDefine(Step& s, const PlacementChosen& e) {
  VmRecord& r = s.record();
  if (e.shadow_size != SizeOf(r)) {
    return Refuse(r, r.state(), e.kKind,
                  "computed for " + DescribeSize(e.shadow_size) + ", the policy now asks for " +
                      DescribeSize(SizeOf(r)));
  }
  if (e.host == r.primary_host()) {
    return InvalidArgument("PlacementChosen.host '" + e.host + "' is the primary's own host for " + Who(r) +
                           ": a shadow must be placed on another host");
  }
  VS_ASSIGN_OR_RETURN(std::string shadow_uuid, ShadowUuid(r.vm_uuid(), kShadowIndex));
  v1::ShadowAssignment* shadow = r.add_shadows();
  shadow->set_index(kShadowIndex);
  shadow->set_host(e.host);
  shadow->set_domain_uuid(std::move(shadow_uuid));
  shadow->set_domain_name(ShadowName(r.vm_name(), kShadowIndex));
  shadow->set_state(v1::SHADOW_STATE_DEFINING);
  s.To(kPlacing);
  s.Emit(DefineShadowFor(r));
  return Status::Ok();
}

Status EnterProtected(Step& s) {
  VmRecord& r = s.record();
  r.mutable_shadows(0)->set_state(v1::SHADOW_STATE_DEFINED);
  r.set_retry_count(0);
  r.set_retry_backoff_ms(0);
  r.set_next_retry_unix_ms(0);
  r.set_grace_deadline_unix_ms(0);
  r.clear_unprotected_reason();
  r.clear_pinned_host();
  s.To(kProtected);
  return Status::Ok();
}

// Records the intent (assignment RELEASING) before the release is performed.
Status BeginRelease(Step& s) {
  s.record().mutable_shadows(0)->set_state(v1::SHADOW_STATE_RELEASING);
  s.To(kReleasing);
  s.Emit(ReleaseShadowFor(s.record()));
  return Status::Ok();
}

Status EnterGrace(Step& s) {
  s.record().set_grace_deadline_unix_ms(ToUnixMillis(s.now() + s.grace_period()));
  s.To(kGracePeriod);
  s.Emit(GraceTimerFor(s.record()));
  return Status::Ok();
}

// Within the grace period a VM wanted again gets its kept shadow back, without a new placement.
Status ResumeIfWanted(Step& s) {
  return s.record().vm_running() && s.record().tagged() ? EnterProtected(s) : Stay(s);
}

// Timers are delivered by the caller and may arrive before the persisted deadline: an older timer
// outlived a newer wait, or the wall clock stepped. Acting early would cut a grace period or a backoff
// short, and dropping the event could strand the record, so the timer is re-armed instead.
Status WhenRetryDue(Step& s, Status (*act)(Step&)) {
  if (ToUnixMillis(s.now()) < s.record().next_retry_unix_ms()) {
    s.Emit(RetryFor(s.record()));
    return Status::Ok();
  }
  return act(s);
}

Status WhenGraceOver(Step& s) {
  if (ToUnixMillis(s.now()) < s.record().grace_deadline_unix_ms()) {
    s.Emit(GraceTimerFor(s.record()));
    return Status::Ok();
  }
  return BeginRelease(s);
}

Status ReissueDefine(Step& s) {
  s.Emit(DefineShadowFor(s.record()));
  return Status::Ok();
}

Status ReissueRelease(Step& s) {
  s.Emit(ReleaseShadowFor(s.record()));
  return Status::Ok();
}

// A retryable failure keeps the host; any other gives it up, first releasing whatever the failed
// define left there (replica images) so that nothing is orphaned.
Status DefineFailed(Step& s, const ShadowDefineFailed& e) {
  CountFailure(s);
  Report(s, e.error.Annotate("defining shadow on host " + e.host).ToString());
  return e.error.retryable() ? WaitForRetry(s) : BeginRelease(s);
}

// A shadow that is not released is an orphan: always retry.
Status ReleaseFailedBackoff(Step& s, const ReleaseFailed& e) {
  CountFailure(s);
  Report(s, e.error.Annotate("releasing shadow on host " + e.host).ToString());
  return WaitForRetry(s);
}

// The shadow or its host is gone: nothing is left to release (a host that comes back with it needs an
// orphan sweep, which the deterministic UUID makes possible); a wanted VM is placed again.
Status LoseShadow(Step& s, const ShadowLost& e) {
  std::string message = "shadow " + s.record().shadows(0).domain_name() + " on host " + e.host + " is lost";
  if (!e.detail.empty()) message += ": " + e.detail;
  Report(s, std::move(message));
  return SettleWithoutShadow(s);
}

// The VM now runs on its shadow's host: the shadow is consumed, the record ends without a release.
Status EndAfterSwitchover(Step& s, const SwitchedOver& e) {
  const VmRecord& r = s.record();
  if (r.shadows_size() != 1 || r.shadows(0).host() != e.host) {
    return Refuse(r, r.state(), e.kKind, "the VM's shadow is not on host " + e.host);
  }
  Report(s, std::string(e.promoted ? "promoted from its shadow on host " : "switched over to its shadow on host ") +
                e.host + "; that host protects it from now on");
  return EndRecord(s);
}

// Failback: the shadow goes to `host` first. The pin is kept until the VM is protected again.
Status BeginShadowMove(Step& s, const ShadowMoveRequested& e) {
  VmRecord& r = s.record();
  if (e.host == r.primary_host()) {
    return InvalidArgument("ShadowMoveRequested.host '" + e.host + "' is the primary's own host for " + Who(r));
  }
  if (r.shadows_size() == 1 && r.shadows(0).host() == e.host) return Stay(s);  // already there: no pin needed
  r.set_pinned_host(e.host);
  if (r.shadows_size() == 1) return BeginRelease(s);
  r.set_retry_count(0);
  return RequestPlacement(s);
}

// The shadow's host is leaving: the shadow would vanish with it. Released first, then placed again (a leaving
// host is offered to placement as down), as in a failback: one shadow per record, so the VM is unprotected for
// the release and the define, seconds, rather than for good once the host is gone.
Status MoveOffLeavingHost(Step& s, const ShadowHostLeaving& e) {
  const VmRecord& r = s.record();  // Apply refused the event unless the shadow is on e.host
  std::string message = "shadow " + r.shadows(0).domain_name() + " on host " + e.host + " is placed anew elsewhere: " +
                        e.host + " is leaving";
  if (!e.reason.empty()) message += " (" + e.reason + ")";
  Report(s, std::move(message));
  return BeginRelease(s);
}

constexpr int Cell(ProtectionState state, EventKind kind) {
  return static_cast<int>(state) * kEventKindCount + static_cast<int>(kind);
}

// THE TRANSITION TABLE: one case per allowed (state, event) cell; everything else is refused.
Status ApplyCell(Step& s, const Event& event) {
  using enum EventKind;
  const ProtectionState from = s.record().state();
  const EventKind kind = KindOf(event);
  const bool policy_changed = ObserveFacts(s.record(), event);

  switch (Cell(from, kind)) {
    // NoRecord (a blank record): only an observation of the tag creates a record.
    case Cell(kNoRecord, kPolicySeen):            return SettleWithoutShadow(s);  // stopped VM: nothing to keep
    case Cell(kNoRecord, kPolicyRejected):        return EnterPolicyInvalid(s, As<PolicyRejected>(event));

    // PolicyInvalid: no shadow; waits for the tag to be fixed or removed.
    case Cell(kPolicyInvalid, kPolicySeen):       return SettleWithoutShadow(s);
    case Cell(kPolicyInvalid, kPolicyRejected):   return EnterPolicyInvalid(s, As<PolicyRejected>(event));
    case Cell(kPolicyInvalid, kPolicyRemoved):    return EndRecord(s);
    case Cell(kPolicyInvalid, kVmStarted):        return Stay(s);
    case Cell(kPolicyInvalid, kVmStopped):        return Stay(s);
    case Cell(kPolicyInvalid, kVmUndefined):      return EndRecord(s);

    // Unplaced: ComputePlacement is outstanding.
    case Cell(kUnplaced, kPolicySeen):            return policy_changed ? RequestPlacement(s) : Stay(s);
    case Cell(kUnplaced, kPolicyRejected):        return KeepPolicyInForce(s, As<PolicyRejected>(event));
    case Cell(kUnplaced, kPolicyRemoved):         return SettleWithoutShadow(s);
    case Cell(kUnplaced, kVmStarted):             return Stay(s);
    case Cell(kUnplaced, kVmStopped):             return SettleWithoutShadow(s);
    case Cell(kUnplaced, kVmUndefined):           return SettleWithoutShadow(s);
    case Cell(kUnplaced, kPlacementChosen):       return BeginDefine(s, As<PlacementChosen>(event));
    case Cell(kUnplaced, kPlacementFailed):       return PlacementFailedBackoff(s, As<PlacementFailed>(event));

    // Unprotected: no host fits; waits for the backoff or a capacity change.
    case Cell(kUnprotected, kPolicySeen):         return policy_changed ? RequestPlacement(s) : Stay(s);
    case Cell(kUnprotected, kPolicyRejected):     return KeepPolicyInForce(s, As<PolicyRejected>(event));
    case Cell(kUnprotected, kPolicyRemoved):      return SettleWithoutShadow(s);
    case Cell(kUnprotected, kVmStarted):          return Stay(s);
    case Cell(kUnprotected, kVmStopped):          return SettleWithoutShadow(s);
    case Cell(kUnprotected, kVmUndefined):        return SettleWithoutShadow(s);
    case Cell(kUnprotected, kCapacityChanged):    return RequestPlacement(s);
    case Cell(kUnprotected, kRetryTimerFired):    return WhenRetryDue(s, RequestPlacement);
    case Cell(kUnprotected, kShadowMoveRequested): return BeginShadowMove(s, As<ShadowMoveRequested>(event));

    // Placing: DefineShadow is outstanding. Never protected yet, so losing interest skips the grace period.
    case Cell(kPlacing, kPolicySeen):             return policy_changed ? BeginRelease(s) : Stay(s);
    case Cell(kPlacing, kPolicyRejected):         return KeepPolicyInForce(s, As<PolicyRejected>(event));
    case Cell(kPlacing, kPolicyRemoved):          return BeginRelease(s);
    case Cell(kPlacing, kVmStarted):              return Stay(s);
    case Cell(kPlacing, kVmStopped):              return BeginRelease(s);
    case Cell(kPlacing, kVmUndefined):            return BeginRelease(s);
    case Cell(kPlacing, kShadowDefined):          return EnterProtected(s);
    case Cell(kPlacing, kShadowDefineFailed):     return DefineFailed(s, As<ShadowDefineFailed>(event));
    case Cell(kPlacing, kRetryTimerFired):        return WhenRetryDue(s, ReissueDefine);
    case Cell(kPlacing, kShadowLost):             return LoseShadow(s, As<ShadowLost>(event));
    case Cell(kPlacing, kShadowHostLeaving):      return MoveOffLeavingHost(s, As<ShadowHostLeaving>(event));

    // Protected: the shadow is defined. A changed policy or size needs a shadow built (and placed) anew.
    case Cell(kProtected, kPolicySeen):           return policy_changed ? BeginRelease(s) : Stay(s);
    case Cell(kProtected, kPolicyRejected):       return KeepPolicyInForce(s, As<PolicyRejected>(event));
    case Cell(kProtected, kPolicyRemoved):        return EnterGrace(s);
    case Cell(kProtected, kVmStarted):            return Stay(s);
    case Cell(kProtected, kVmStopped):            return EnterGrace(s);
    case Cell(kProtected, kVmUndefined):          return EnterGrace(s);
    case Cell(kProtected, kShadowLost):           return LoseShadow(s, As<ShadowLost>(event));
    case Cell(kProtected, kSwitchedOver):         return EndAfterSwitchover(s, As<SwitchedOver>(event));
    case Cell(kProtected, kShadowMoveRequested):  return BeginShadowMove(s, As<ShadowMoveRequested>(event));
    case Cell(kProtected, kShadowHostLeaving):    return MoveOffLeavingHost(s, As<ShadowHostLeaving>(event));

    // GracePeriod: the shadow is kept until the deadline in case the VM is wanted again.
    case Cell(kGracePeriod, kPolicySeen):         return policy_changed ? BeginRelease(s) : ResumeIfWanted(s);
    case Cell(kGracePeriod, kPolicyRejected):     return KeepPolicyInForce(s, As<PolicyRejected>(event));
    case Cell(kGracePeriod, kPolicyRemoved):      return Stay(s);
    case Cell(kGracePeriod, kVmStarted):          return ResumeIfWanted(s);
    case Cell(kGracePeriod, kVmStopped):          return Stay(s);
    case Cell(kGracePeriod, kVmUndefined):        return Stay(s);
    case Cell(kGracePeriod, kGraceExpired):       return WhenGraceOver(s);
    case Cell(kGracePeriod, kShadowLost):         return LoseShadow(s, As<ShadowLost>(event));
    case Cell(kGracePeriod, kSwitchedOver):       return EndAfterSwitchover(s, As<SwitchedOver>(event));

    // Releasing: ReleaseShadow is outstanding; what follows is decided from the facts when it is done.
    case Cell(kReleasing, kPolicySeen):           return Stay(s);
    case Cell(kReleasing, kPolicyRejected):       return KeepPolicyInForce(s, As<PolicyRejected>(event));
    case Cell(kReleasing, kPolicyRemoved):        return Stay(s);
    case Cell(kReleasing, kVmStarted):            return Stay(s);
    case Cell(kReleasing, kVmStopped):            return Stay(s);
    case Cell(kReleasing, kVmUndefined):          return Stay(s);
    case Cell(kReleasing, kShadowReleased):       return SettleWithoutShadow(s);
    case Cell(kReleasing, kReleaseFailed):        return ReleaseFailedBackoff(s, As<ReleaseFailed>(event));
    case Cell(kReleasing, kRetryTimerFired):      return WhenRetryDue(s, ReissueRelease);
    case Cell(kReleasing, kShadowLost):           return LoseShadow(s, As<ShadowLost>(event));
    case Cell(kReleasing, kSwitchedOver):         return EndAfterSwitchover(s, As<SwitchedOver>(event));

    // Released: terminal; the record is being deleted and accepts nothing.
    default: break;
  }
  return Refuse(s.record(), from, kind);
}

}  // namespace

std::string ToString(ProtectionState state) {
  switch (state) {
    case kNoRecord: return "NoRecord";
    case kPolicyInvalid: return "PolicyInvalid";
    case kUnplaced: return "Unplaced";
    case kUnprotected: return "Unprotected";
    case kPlacing: return "Placing";
    case kProtected: return "Protected";
    case kReleasing: return "Releasing";
    case kGracePeriod: return "GracePeriod";
    case kReleased: return "Released";
    default: break;  // values of a newer build, and protobuf's sentinels
  }
  return "ProtectionState(" + std::to_string(static_cast<int>(state)) + ")";
}

Duration RetryBackoff(std::uint32_t consecutive_failures) {
  constexpr Duration kFirst = std::chrono::seconds(2);
  constexpr Duration kCap = std::chrono::seconds(60);
  Duration backoff = kFirst;
  for (std::uint32_t i = 1; i < consecutive_failures && backoff < kCap; ++i) backoff *= 2;
  return std::min(backoff, kCap);
}

VmRecord NewVmRecord(std::string vm_uuid, std::string vm_name, std::string primary_host, bool vm_running) {
  VmRecord record;
  record.set_vm_uuid(std::move(vm_uuid));
  record.set_vm_name(std::move(vm_name));
  record.set_primary_host(std::move(primary_host));
  record.set_vm_running(vm_running);
  return record;
}

StatusOr<Transition> Apply(const VmRecord& record, const Event& event, WallTime now, Duration grace_period) {
  VS_RETURN_IF_ERROR(ValidateRecord(record));
  VS_RETURN_IF_ERROR(Validate(event));
  if (grace_period < Duration::zero() || grace_period > kMaxGracePeriod) {
    return InvalidArgument("grace period of " + std::to_string(std::chrono::floor<milliseconds>(grace_period).count()) +
                           " ms is outside 0..365 days");
  }
  // A result about another host than the one holding the record's shadow belongs to an abandoned
  // action (e.g. a define on a host given up since); it must not move the record. Nor does a leaving host
  // that holds none of its shadow.
  if (const std::string* host = ResultHost(event); host != nullptr && HoldsShadow(record.state()) &&
                                                   *host != record.shadows(0).host()) {
    return Refuse(record, record.state(), KindOf(event),
                  "it is about host '" + *host + "' but the shadow is on host '" + record.shadows(0).host() + "'");
  }
  Step step(record, now, grace_period);
  VS_RETURN_IF_ERROR(ApplyCell(step, event));
  return std::move(step).Finish();
}

StatusOr<std::vector<Command>> Recover(const VmRecord& record) {
  VS_RETURN_IF_ERROR(ValidateRecord(record));
  switch (record.state()) {
    case kPolicyInvalid:
    case kProtected: return std::vector<Command>{};
    case kUnplaced: return std::vector<Command>{ComputePlacementFor(record)};
    case kUnprotected: return std::vector<Command>{RetryFor(record)};
    case kPlacing: return std::vector<Command>{DefineShadowFor(record)};
    case kReleasing: return std::vector<Command>{ReleaseShadowFor(record)};
    case kGracePeriod: return std::vector<Command>{GraceTimerFor(record)};
    case kReleased: return std::vector<Command>{DeleteRecord{}};
    default: break;  // NoRecord; unknown values were refused by ValidateRecord
  }
  return InvalidArgument("VmRecord of " + Who(record) + " has state " + ToString(record.state()) +
                         ", which is never persisted: the store holds a blank record; delete it");
}

}  // namespace vs::lifecycle
