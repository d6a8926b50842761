// Scenarios of the protection lifecycle beyond single table cells: restarts (Recover), grace expiry,
// lost shadows, retry backoff, stale results, record versions and malformed input.
#include <cstdint>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_records.h"

namespace vs::lifecycle {
namespace {

using namespace fixtures;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr auto kNoRecord = v1::PROTECTION_STATE_UNSPECIFIED;
constexpr auto kPolicyInvalid = v1::PROTECTION_STATE_POLICY_INVALID;
constexpr auto kUnplaced = v1::PROTECTION_STATE_UNPLACED;
constexpr auto kUnprotected = v1::PROTECTION_STATE_UNPROTECTED;
constexpr auto kPlacing = v1::PROTECTION_STATE_PLACING;
constexpr auto kProtected = v1::PROTECTION_STATE_PROTECTED;
constexpr auto kReleasing = v1::PROTECTION_STATE_RELEASING;
constexpr auto kGracePeriod = v1::PROTECTION_STATE_GRACE_PERIOD;
constexpr auto kReleased = v1::PROTECTION_STATE_RELEASED;

const std::string kOtherHost = "hostC";

// Applies an event that must be accepted; a refusal fails the test and leaves the record unchanged.
Transition Accept(const v1::VmRecord& record, const Event& event, WallTime now = kNow) {
  StatusOr<Transition> result = Apply(record, event, now, kGrace);
  if (!result.ok()) {
    ADD_FAILURE() << EventKindName(KindOf(event)) << " in " << ToString(record.state())
                  << " was refused: " << result.status().ToString();
    return {record, {}};
  }
  return std::move(result).value();
}

// What shadowd finds in its store after being killed: the record as last written.
v1::VmRecord Reload(const v1::VmRecord& record) {
  std::string bytes;
  EXPECT_TRUE(record.SerializeToString(&bytes));
  v1::VmRecord loaded;
  EXPECT_TRUE(loaded.ParseFromString(bytes));
  return loaded;
}

std::vector<Command> MustRecover(const v1::VmRecord& record) {
  StatusOr<std::vector<Command>> commands = Recover(record);
  EXPECT_TRUE(commands.ok()) << commands.status().ToString();
  return commands.ok() ? commands.value() : std::vector<Command>{};
}

Command DefineOn(const std::string& host, ShadowSize size = kSizeA) {
  return DefineShadow{host, kShadowUuid, kShadowName, size};
}
Command ReleaseOn(const std::string& host) { return ReleaseShadow{host, kShadowUuid, kShadowName}; }

// ---- Recover

TEST(LifecycleRecover, ReissuesThePersistedIntentOfEveryState) {
  const std::vector<std::pair<ProtectionState, std::vector<Command>>> expected = {
      {kPolicyInvalid, {}},
      {kUnplaced, {ComputePlacement{kSizeA}}},
      {kUnprotected, {ScheduleRetry{kNow - 1s}}},
      {kPlacing, {DefineOn(kTarget)}},
      {kProtected, {}},
      {kReleasing, {ReleaseOn(kTarget)}},
      {kGracePeriod, {StartGraceTimer{kNow - 1s}}},
      {kReleased, {DeleteRecord{}}},
  };
  const auto* descriptor = v1::ProtectionState_descriptor();
  // Every persistable state is listed (NoRecord is checked below).
  ASSERT_EQ(static_cast<int>(expected.size()), descriptor->value_count() - 1);
  for (const auto& [state, commands] : expected) {
    SCOPED_TRACE(ToString(state));
    EXPECT_EQ(MustRecover(Reload(RecordIn(state))), commands);
  }
}

TEST(LifecycleRecover, RefusesABlankRecordBecauseItIsNeverPersisted) {
  StatusOr<std::vector<Command>> commands = Recover(RecordIn(kNoRecord));
  ASSERT_FALSE(commands.ok());
  EXPECT_EQ(commands.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(commands.status().message(), HasSubstr("NoRecord"));
}

TEST(LifecycleRecover, ReissuesExactlyWhatTheInterruptedTransitionIssued) {
  struct Case {
    ProtectionState from;
    Event event;
  };
  const std::vector<Case> cases = {
      {kUnplaced, PlacementChosen{kTarget, kSizeA}},     // killed while defining
      {kProtected, PolicySeen{kPolicyB, kSizeB}},        // killed while releasing
      {kProtected, VmStopped{}},                         // killed during the grace period
      {kUnplaced, PlacementFailed{"no host has room"}},  // killed while backing off
      {kPolicyInvalid, PolicySeen{kPolicyA, kSizeA}},    // killed while placing
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(ToString(c.from) + " + " + std::string(EventKindName(KindOf(c.event))));
    const Transition t = Accept(RecordIn(c.from), c.event);
    EXPECT_EQ(MustRecover(Reload(t.record)), t.commands);
  }
}

// ---- Grace period

TEST(LifecycleGrace, ReleasesOnlyOnceThePersistedDeadlineHasPassed) {
  const Transition stopped = Accept(RecordIn(kProtected), VmStopped{});
  ASSERT_EQ(stopped.record.state(), kGracePeriod);
  EXPECT_EQ(stopped.record.grace_deadline_unix_ms(), UnixMs(kNow + 10min));
  EXPECT_THAT(stopped.commands, ElementsAre(Command{StartGraceTimer{kNow + 10min}}));

  // A timer firing early (an older timer, or a wall clock step) re-arms instead of releasing.
  const Transition early = Accept(stopped.record, GraceExpired{}, kNow + 5min);
  EXPECT_EQ(early.record.state(), kGracePeriod);
  EXPECT_THAT(early.commands, ElementsAre(Command{StartGraceTimer{kNow + 10min}}));

  const Transition expired = Accept(early.record, GraceExpired{}, kNow + 10min);
  EXPECT_EQ(expired.record.state(), kReleasing);
  EXPECT_EQ(expired.record.shadows(0).state(), v1::SHADOW_STATE_RELEASING);
  EXPECT_THAT(expired.commands, ElementsAre(ReleaseOn(kTarget)));

  const Transition released = Accept(expired.record, ShadowReleased{kTarget}, kNow + 11min);
  EXPECT_EQ(released.record.state(), kReleased);
  EXPECT_THAT(released.record.shadows(), IsEmpty());
  EXPECT_THAT(released.commands, ElementsAre(Command{DeleteRecord{}}));
}

TEST(LifecycleGrace, VmRestartedWithinGraceAfterAShadowdRestartGetsItsShadowBackWithoutPlacement) {
  const Transition stopped = Accept(RecordIn(kProtected), VmStopped{});
  const v1::VmRecord loaded = Reload(stopped.record);  // shadowd killed here
  EXPECT_THAT(MustRecover(loaded), ElementsAre(Command{StartGraceTimer{kNow + 10min}}));

  const Transition started = Accept(loaded, VmStarted{}, kNow + 3min);
  EXPECT_EQ(started.record.state(), kProtected);
  EXPECT_THAT(started.commands, IsEmpty());  // no ComputePlacement, no DefineShadow
  ASSERT_EQ(started.record.shadows_size(), 1);
  EXPECT_EQ(started.record.shadows(0).host(), kTarget);
  EXPECT_EQ(started.record.shadows(0).domain_uuid(), kShadowUuid);
  EXPECT_EQ(started.record.shadows(0).state(), v1::SHADOW_STATE_DEFINED);
  EXPECT_EQ(started.record.grace_deadline_unix_ms(), 0);

  // The grace timer armed before the restart fires later and is refused.
  StatusOr<Transition> late = Apply(started.record, GraceExpired{}, kNow + 10min, kGrace);
  EXPECT_EQ(late.status().code(), Code::kFailedPrecondition);
}

TEST(LifecycleGrace, RetaggingARunningVmWithTheSamePolicyResumesProtection) {
  const Transition untagged = Accept(RecordIn(kProtected), PolicyRemoved{});
  ASSERT_EQ(untagged.record.state(), kGracePeriod);
  const Transition retagged = Accept(untagged.record, PolicySeen{kPolicyA, kSizeA}, kNow + 1min);
  EXPECT_EQ(retagged.record.state(), kProtected);
  EXPECT_THAT(retagged.commands, IsEmpty());
}

TEST(LifecycleGrace, StartingAnUndefinedVmDoesNotResumeUntilItIsTaggedAgain) {
  const Transition undefined = Accept(RecordIn(kProtected), VmUndefined{});
  const Transition stopped = Accept(undefined.record, VmStopped{});
  const Transition started = Accept(stopped.record, VmStarted{});
  EXPECT_EQ(started.record.state(), kGracePeriod);
  const Transition redefined = Accept(started.record, PolicySeen{kPolicyA, kSizeA});
  EXPECT_EQ(redefined.record.state(), kProtected);
}

TEST(LifecycleGrace, AChangedPolicyReleasesTheKeptShadowAndAStartedVmIsPlacedAnew) {
  const Transition changed = Accept(RecordIn(kGracePeriod), PolicySeen{kPolicyB, kSizeB});
  EXPECT_EQ(changed.record.state(), kReleasing);
  const Transition started = Accept(changed.record, VmStarted{});
  EXPECT_EQ(started.record.state(), kReleasing);
  EXPECT_THAT(started.commands, IsEmpty());
  const Transition released = Accept(started.record, ShadowReleased{kTarget});
  EXPECT_EQ(released.record.state(), kUnplaced);
  EXPECT_THAT(released.commands, ElementsAre(Command{ComputePlacement{kSizeB}}));
}

// ---- Lost shadows and stale results

TEST(LifecycleShadowLost, PlacesAgainElsewhereWithTheSameShadowIdentity) {
  const Transition lost = Accept(RecordIn(kProtected), ShadowLost{kTarget, "host is down"});
  EXPECT_EQ(lost.record.state(), kUnplaced);
  EXPECT_THAT(lost.record.shadows(), IsEmpty());
  EXPECT_THAT(lost.record.last_error(), HasSubstr("host is down"));
  EXPECT_THAT(lost.commands, ElementsAre(Command{ReportError{"shadow web-shadow on host hostB is lost: host is down"}},
                                         Command{ComputePlacement{kSizeA}}));

  const Transition placing = Accept(lost.record, PlacementChosen{kOtherHost, kSizeA});
  EXPECT_THAT(placing.commands, ElementsAre(DefineOn(kOtherHost)));

  // A late result from the abandoned host must not mark the new shadow defined.
  StatusOr<Transition> stale = Apply(placing.record, ShadowDefined{kTarget}, kNow, kGrace);
  EXPECT_EQ(stale.status().code(), Code::kFailedPrecondition);
  EXPECT_THAT(stale.status().message(), HasSubstr("stale"));
  EXPECT_THAT(stale.status().message(), HasSubstr(kTarget));

  const Transition defined = Accept(placing.record, ShadowDefined{kOtherHost});
  EXPECT_EQ(defined.record.state(), kProtected);
  EXPECT_EQ(defined.record.shadows(0).host(), kOtherHost);
}

TEST(LifecycleShadowLost, ResultsAboutAnotherHostAreRefusedAsStaleInEveryShadowState) {
  const std::vector<Event> foreign = {
      ShadowDefined{kOtherHost},
      ShadowDefineFailed{kOtherHost, Unavailable("x")},
      ShadowReleased{kOtherHost},
      ReleaseFailed{kOtherHost, Unavailable("x")},
      ShadowLost{kOtherHost, "down"},
  };
  for (ProtectionState state : {kPlacing, kProtected, kGracePeriod, kReleasing}) {
    for (const Event& event : foreign) {
      SCOPED_TRACE(ToString(state) + " + " + std::string(EventKindName(KindOf(event))));
      StatusOr<Transition> result = Apply(RecordIn(state), event, kNow, kGrace);
      EXPECT_EQ(result.status().code(), Code::kFailedPrecondition);
      EXPECT_THAT(result.status().message(), HasSubstr("stale"));
    }
  }
}

TEST(LifecycleShadowLost, StopDuringPlacingReleasesAndRefusesTheLateDefineResult) {
  const Transition stopped = Accept(RecordIn(kPlacing), VmStopped{});
  EXPECT_EQ(stopped.record.state(), kReleasing);
  EXPECT_THAT(stopped.commands, ElementsAre(ReleaseOn(kTarget)));
  EXPECT_EQ(Apply(stopped.record, ShadowDefined{kTarget}, kNow, kGrace).status().code(),
            Code::kFailedPrecondition);
  EXPECT_EQ(Accept(stopped.record, ShadowReleased{kTarget}).record.state(), kReleased);
}

TEST(LifecycleShadowLost, VmStartedDuringAReleaseIsPlacedAgainOnceTheReleaseIsDone) {
  const Transition started = Accept(RecordIn(kReleasing), VmStarted{});
  EXPECT_EQ(started.record.state(), kReleasing);
  const Transition released = Accept(started.record, ShadowReleased{kTarget});
  EXPECT_EQ(released.record.state(), kUnplaced);
  EXPECT_THAT(released.commands, ElementsAre(Command{ComputePlacement{kSizeA}}));
}

// ---- Switchover (the VM moved onto its shadow) and requested shadow moves (failback)

TEST(LifecycleSwitchover, EndsTheRecordWithoutAReleaseFromEveryStateHoldingADefinedShadow) {
  for (ProtectionState state : {kProtected, kGracePeriod, kReleasing}) {
    SCOPED_TRACE(ToString(state));
    const Transition ended = Accept(RecordIn(state), SwitchedOver{kTarget});
    EXPECT_EQ(ended.record.state(), kReleased);
    EXPECT_THAT(ended.record.last_error(), HasSubstr("switched over"));
    // The shadow became the VM: releasing it would destroy the running VM's disks.
    for (const Command& command : ended.commands) {
      EXPECT_FALSE(std::holds_alternative<ReleaseShadow>(command)) << ToString(command);
    }
    EXPECT_TRUE(std::holds_alternative<DeleteRecord>(ended.commands.back()));
  }
}

TEST(LifecycleSwitchover, IsRefusedWhenTheShadowIsOnAnotherHost) {
  for (ProtectionState state : {kProtected, kGracePeriod, kReleasing}) {
    SCOPED_TRACE(ToString(state));
    StatusOr<Transition> result = Apply(RecordIn(state), SwitchedOver{kOtherHost}, kNow, kGrace);
    EXPECT_EQ(result.status().code(), Code::kFailedPrecondition);
    EXPECT_THAT(result.status().message(), HasSubstr("not on host hostC"));
  }
  // A shadow still being defined cannot have taken the VM.
  EXPECT_EQ(Apply(RecordIn(kPlacing), SwitchedOver{kTarget}, kNow, kGrace).status().code(),
            Code::kFailedPrecondition);
}

TEST(LifecycleShadowMove, FromProtectedReleasesThenPlacesUnderThePinAndProtectionClearsIt) {
  const Transition releasing = Accept(RecordIn(kProtected), ShadowMoveRequested{kOtherHost});
  EXPECT_EQ(releasing.record.state(), kReleasing);
  EXPECT_EQ(releasing.record.pinned_host(), kOtherHost);
  EXPECT_THAT(releasing.commands, ElementsAre(ReleaseOn(kTarget)));

  // The pin is persisted: a restart in the middle keeps it.
  const v1::VmRecord reloaded = Reload(releasing.record);
  EXPECT_EQ(reloaded.pinned_host(), kOtherHost);
  EXPECT_THAT(MustRecover(reloaded), ElementsAre(ReleaseOn(kTarget)));

  const Transition unplaced = Accept(reloaded, ShadowReleased{kTarget});
  EXPECT_EQ(unplaced.record.state(), kUnplaced);
  EXPECT_EQ(unplaced.record.pinned_host(), kOtherHost);
  EXPECT_THAT(unplaced.commands, ElementsAre(Command{ComputePlacement{kSizeA}}));

  const Transition placing = Accept(unplaced.record, PlacementChosen{kOtherHost, kSizeA});
  EXPECT_EQ(placing.record.state(), kPlacing);
  EXPECT_EQ(placing.record.pinned_host(), kOtherHost);
  EXPECT_THAT(placing.commands, ElementsAre(DefineOn(kOtherHost)));

  const Transition is_protected = Accept(placing.record, ShadowDefined{kOtherHost});
  EXPECT_EQ(is_protected.record.state(), kProtected);
  EXPECT_EQ(is_protected.record.shadows(0).host(), kOtherHost);
  EXPECT_EQ(is_protected.record.pinned_host(), "");
}

TEST(LifecycleShadowMove, ThePinOutlivesAFailedPlacementAndItsRetry) {
  const Transition unplaced = Accept(RecordIn(kUnprotected), ShadowMoveRequested{kOtherHost});
  const Transition failed = Accept(unplaced.record, PlacementFailed{"hostC is full"});
  EXPECT_EQ(failed.record.state(), kUnprotected);
  EXPECT_EQ(failed.record.pinned_host(), kOtherHost);
  const Transition retried = Accept(failed.record, RetryTimerFired{}, kNow + 1h);
  EXPECT_EQ(retried.record.state(), kUnplaced);
  EXPECT_EQ(retried.record.pinned_host(), kOtherHost);
}

TEST(LifecycleShadowMove, FromUnprotectedPlacesAtOnceWithTheRetryCountReset) {
  v1::VmRecord waiting = RecordIn(kUnprotected);
  waiting.set_next_retry_unix_ms(UnixMs(kNow + 1h));  // the backoff is not waited out
  const Transition unplaced = Accept(waiting, ShadowMoveRequested{kOtherHost});
  EXPECT_EQ(unplaced.record.state(), kUnplaced);
  EXPECT_EQ(unplaced.record.pinned_host(), kOtherHost);
  EXPECT_EQ(unplaced.record.retry_count(), 0u);
  EXPECT_THAT(unplaced.commands, ElementsAre(Command{ComputePlacement{kSizeA}}));
}

TEST(LifecycleShadowMove, AShadowAlreadyOnTheRequestedHostStaysWithoutAPin) {
  const Transition stays = Accept(RecordIn(kProtected), ShadowMoveRequested{kTarget});
  EXPECT_EQ(stays.record.state(), kProtected);
  EXPECT_EQ(stays.record.shadows(0).host(), kTarget);
  EXPECT_EQ(stays.record.pinned_host(), "");  // a pin left behind would confine a later re-placement
  EXPECT_THAT(stays.commands, IsEmpty());
}

TEST(LifecycleShadowMove, ToThePrimarysOwnHostIsRejectedNamingTheHost) {
  for (ProtectionState state : {kProtected, kUnprotected}) {
    SCOPED_TRACE(ToString(state));
    StatusOr<Transition> result = Apply(RecordIn(state), ShadowMoveRequested{kPrimary}, kNow, kGrace);
    EXPECT_EQ(result.status().code(), Code::kInvalidArgument);
    EXPECT_THAT(result.status().message(), HasSubstr("ShadowMoveRequested.host 'hostA'"));
    EXPECT_THAT(result.status().message(), HasSubstr("primary"));
  }
}

TEST(LifecycleShadowMove, EveryWayIntoProtectedClearsThePin) {
  v1::VmRecord placing = RecordIn(kPlacing);
  placing.set_pinned_host(kTarget);
  EXPECT_EQ(Accept(placing, ShadowDefined{kTarget}).record.pinned_host(), "");

  // Pinned (a move whose placement was under way), stopped, started again within the grace period.
  v1::VmRecord pinned = RecordIn(kProtected);
  pinned.set_pinned_host(kTarget);
  const Transition grace = Accept(pinned, VmStopped{});
  ASSERT_EQ(grace.record.state(), kGracePeriod);
  EXPECT_EQ(grace.record.pinned_host(), kTarget);
  const Transition resumed = Accept(grace.record, VmStarted{});
  EXPECT_EQ(resumed.record.state(), kProtected);
  EXPECT_EQ(resumed.record.pinned_host(), "");
}

// ---- Retry backoff

TEST(LifecycleBackoff, DoublesFromTwoSecondsAndCapsAtSixtySeconds) {
  const std::vector<Duration> expected = {2s, 2s, 4s, 8s, 16s, 32s, 60s, 60s, 60s};
  for (std::uint32_t failures = 0; failures < expected.size(); ++failures) {
    EXPECT_EQ(RetryBackoff(failures), expected[failures]) << failures << " failures";
  }
  EXPECT_EQ(RetryBackoff(64), 60s);
  EXPECT_EQ(RetryBackoff(UINT32_MAX), 60s);
}

TEST(LifecycleBackoff, PlacementRetriesBackOffUntilProtectedWhichResetsTheCount) {
  v1::VmRecord record = RecordIn(kUnplaced);
  WallTime now = kNow;
  for (Duration wait : {2s, 4s, 8s, 16s, 32s, 60s, 60s}) {
    const Transition failed = Accept(record, PlacementFailed{"no host has room"}, now);
    ASSERT_EQ(failed.record.state(), kUnprotected);
    EXPECT_EQ(failed.record.unprotected_reason(), "no host has room");
    EXPECT_EQ(failed.record.retry_backoff_ms(), std::chrono::duration_cast<std::chrono::milliseconds>(wait).count());
    EXPECT_THAT(failed.commands, ElementsAre(Command{ScheduleRetry{now + wait}}));
    now += wait;
    const Transition retried = Accept(failed.record, RetryTimerFired{}, now);
    ASSERT_EQ(retried.record.state(), kUnplaced);
    record = retried.record;
  }
  EXPECT_EQ(record.retry_count(), 7u);

  const Transition placing = Accept(record, PlacementChosen{kTarget, kSizeA}, now);
  const Transition protected_ = Accept(placing.record, ShadowDefined{kTarget}, now);
  EXPECT_EQ(protected_.record.retry_count(), 0u);
  EXPECT_EQ(protected_.record.next_retry_unix_ms(), 0);
  EXPECT_EQ(protected_.record.unprotected_reason(), "");

  const Transition lost = Accept(protected_.record, ShadowLost{kTarget, ""}, now);
  const Transition failed_again = Accept(lost.record, PlacementFailed{"no host has room"}, now);
  EXPECT_THAT(failed_again.commands, ElementsAre(Command{ScheduleRetry{now + 2s}}));
}

TEST(LifecycleBackoff, CapacityChangeRetriesPlacementAtOnceAndAnEarlyTimerIsReArmed) {
  v1::VmRecord unprotected = RecordIn(kUnprotected);
  unprotected.set_next_retry_unix_ms(UnixMs(kNow + 4s));

  const Transition early = Accept(unprotected, RetryTimerFired{}, kNow);
  EXPECT_EQ(early.record.state(), kUnprotected);
  EXPECT_THAT(early.commands, ElementsAre(Command{ScheduleRetry{kNow + 4s}}));

  const Transition capacity = Accept(unprotected, CapacityChanged{}, kNow);
  EXPECT_EQ(capacity.record.state(), kUnplaced);
  EXPECT_THAT(capacity.commands, ElementsAre(Command{ComputePlacement{kSizeA}}));
}

TEST(LifecycleBackoff, RetryableDefineFailureRetriesTheSameHostAfterTheBackoff) {
  const Transition first = Accept(RecordIn(kPlacing), ShadowDefineFailed{kTarget, Unavailable("busy")});
  EXPECT_EQ(first.record.state(), kPlacing);
  EXPECT_EQ(first.record.last_error(), "UNAVAILABLE: defining shadow on host hostB: busy");
  const Transition early = Accept(first.record, RetryTimerFired{}, kNow + 1s);
  EXPECT_THAT(early.commands, ElementsAre(Command{ScheduleRetry{kNow + 2s}}));
  const Transition retry = Accept(first.record, RetryTimerFired{}, kNow + 2s);
  EXPECT_THAT(retry.commands, ElementsAre(DefineOn(kTarget)));
  const Transition second = Accept(retry.record, ShadowDefineFailed{kTarget, DeadlineExceeded("slow")}, kNow + 3s);
  EXPECT_THAT(second.commands.back(), Command{ScheduleRetry{kNow + 3s + 4s}});
}

TEST(LifecycleBackoff, FatalDefineFailureCleansTheHostThenBacksOffBeforePlacingAgain) {
  const Transition fatal =
      Accept(RecordIn(kPlacing), ShadowDefineFailed{kTarget, InvalidArgument("no storage pool 'replicas'")});
  EXPECT_EQ(fatal.record.state(), kReleasing);
  const Transition released = Accept(fatal.record, ShadowReleased{kTarget}, kNow + 1s);
  EXPECT_EQ(released.record.state(), kUnprotected);
  EXPECT_THAT(released.record.unprotected_reason(), HasSubstr("no storage pool 'replicas'"));
  EXPECT_THAT(released.commands, ElementsAre(Command{ScheduleRetry{kNow + 1s + 2s}}));
  const Transition retried = Accept(released.record, RetryTimerFired{}, kNow + 3s);
  EXPECT_EQ(retried.record.state(), kUnplaced);
}

TEST(LifecycleBackoff, FailedReleaseIsRetriedUntilDone) {
  const Transition failed = Accept(RecordIn(kReleasing), ReleaseFailed{kTarget, Unavailable("timed out")});
  EXPECT_EQ(failed.record.state(), kReleasing);
  const Transition failed_again =
      Accept(Accept(failed.record, RetryTimerFired{}, kNow + 2s).record, ReleaseFailed{kTarget, Unavailable("x")},
             kNow + 2s);
  EXPECT_THAT(failed_again.commands.back(), Command{ScheduleRetry{kNow + 2s + 4s}});
  const Transition retry = Accept(failed_again.record, RetryTimerFired{}, kNow + 6s);
  EXPECT_THAT(retry.commands, ElementsAre(ReleaseOn(kTarget)));
  EXPECT_EQ(Accept(retry.record, ShadowReleased{kTarget}).record.state(), kReleased);
}

// ---- Policies and placement

TEST(LifecyclePolicy, AChangedPolicyReleasesTheShadowThenPlacesTheNewSize) {
  const Transition changed = Accept(RecordIn(kProtected), PolicySeen{kPolicyB, kSizeB});
  EXPECT_EQ(changed.record.state(), kReleasing);
  EXPECT_EQ(changed.record.policy_xml(), kPolicyB);
  const Transition released = Accept(changed.record, ShadowReleased{kTarget});
  EXPECT_EQ(released.record.state(), kUnplaced);
  EXPECT_THAT(released.commands, ElementsAre(Command{ComputePlacement{kSizeB}}));
}

TEST(LifecyclePolicy, ANewSizeUnderTheSamePolicyCountsAsAChange) {
  const Transition resized = Accept(RecordIn(kProtected), PolicySeen{kPolicyA, kSizeB});
  EXPECT_EQ(resized.record.state(), kReleasing);
}

TEST(LifecyclePolicy, ARejectedEditKeepsTheLastValidPolicyAndTheShadow) {
  const Transition rejected = Accept(RecordIn(kProtected), PolicyRejected{"memory='lots' is not a size"});
  EXPECT_EQ(rejected.record.state(), kProtected);
  EXPECT_EQ(rejected.record.policy_xml(), kPolicyA);
  EXPECT_EQ(rejected.record.shadows_size(), 1);
  EXPECT_THAT(rejected.record.last_error(), HasSubstr("memory='lots' is not a size"));
}

TEST(LifecyclePolicy, AStoppedTaggedVmGetsNoRecord) {
  const Transition t = Accept(NewVmRecord(kVmUuid, kVmName, kPrimary, /*vm_running=*/false),
                              PolicySeen{kPolicyA, kSizeA});
  EXPECT_EQ(t.record.state(), kReleased);
  EXPECT_THAT(t.commands, ElementsAre(Command{DeleteRecord{}}));
}

TEST(LifecyclePolicy, FixingAnInvalidPolicyOfAStoppedVmEndsTheRecord) {
  v1::VmRecord invalid = RecordIn(kPolicyInvalid);
  const Transition stopped = Accept(invalid, VmStopped{});
  EXPECT_EQ(stopped.record.state(), kPolicyInvalid);  // the error stays visible while the tag is bad
  const Transition fixed = Accept(stopped.record, PolicySeen{kPolicyA, kSizeA});
  EXPECT_EQ(fixed.record.state(), kReleased);
  EXPECT_THAT(fixed.commands, ElementsAre(Command{DeleteRecord{}}));
}

TEST(LifecyclePolicy, PlacementComputedForAnOldSizeIsRefusedAsStale) {
  const Transition changed = Accept(RecordIn(kUnplaced), PolicySeen{kPolicyB, kSizeB});
  StatusOr<Transition> stale = Apply(changed.record, PlacementChosen{kTarget, kSizeA}, kNow, kGrace);
  EXPECT_EQ(stale.status().code(), Code::kFailedPrecondition);
  EXPECT_THAT(stale.status().message(), HasSubstr("stale"));
  const Transition placing = Accept(changed.record, PlacementChosen{kTarget, kSizeB});
  EXPECT_THAT(placing.commands, ElementsAre(DefineOn(kTarget, kSizeB)));
  EXPECT_EQ(placing.record.shadows(0).state(), v1::SHADOW_STATE_DEFINING);
}

TEST(LifecyclePolicy, PlacementOnThePrimarysOwnHostIsRejected) {
  StatusOr<Transition> t = Apply(RecordIn(kUnplaced), PlacementChosen{kPrimary, kSizeA}, kNow, kGrace);
  EXPECT_EQ(t.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(t.status().message(), HasSubstr("PlacementChosen.host 'hostA'"));
}

// ---- Versions

TEST(LifecycleVersion, EveryTransitionIncrementsTheVersionAndStampsTheTime) {
  v1::VmRecord record = RecordIn(kNoRecord);
  const std::vector<Event> events = {
      PolicySeen{kPolicyA, kSizeA}, PlacementChosen{kTarget, kSizeA}, VmStarted{}, ShadowDefined{kTarget},
      VmStopped{},                  GraceExpired{},                   ShadowReleased{kTarget},
  };
  WallTime now = kNow;
  for (std::size_t i = 0; i < events.size(); ++i) {
    now += 11min;
    record = Accept(record, events[i], now).record;
    EXPECT_EQ(record.version(), i + 1);
    EXPECT_EQ(record.updated_at_unix_ms(), UnixMs(now));
  }
  EXPECT_EQ(record.state(), kReleased);
}

// ---- Malformed input

TEST(LifecycleValidation, MalformedEventsAreRejectedNamingTheField) {
  const std::vector<std::pair<Event, std::string>> cases = {
      {PolicySeen{"", kSizeA}, "PolicySeen.policy_xml is empty"},
      {PolicySeen{kPolicyA, {0, 1024}}, "PolicySeen.shadow_size is 0 vCPUs"},
      {PolicySeen{kPolicyA, {1, 0}}, "0 KiB"},
      {PolicyRejected{""}, "PolicyRejected.error is empty"},
      {PlacementChosen{"", kSizeA}, "PlacementChosen.host is empty"},
      {PlacementChosen{kTarget, {}}, "PlacementChosen.shadow_size"},
      {PlacementFailed{""}, "PlacementFailed.reason is empty"},
      {ShadowDefined{""}, "ShadowDefined.host is empty"},
      {ShadowDefineFailed{kTarget, Status::Ok()}, "ShadowDefineFailed.error is OK"},
      {ReleaseFailed{kTarget, Status::Ok()}, "ReleaseFailed.error is OK"},
      {ShadowReleased{""}, "ShadowReleased.host is empty"},
      {ShadowLost{"", "gone"}, "ShadowLost.host is empty"},
      {SwitchedOver{""}, "SwitchedOver.host is empty"},
      {ShadowMoveRequested{""}, "ShadowMoveRequested.host is empty"},
      {ShadowHostLeaving{"", "drain"}, "ShadowHostLeaving.host is empty"},
  };
  for (const auto& [event, message] : cases) {
    StatusOr<Transition> t = Apply(RecordIn(kUnplaced), event, kNow, kGrace);
    EXPECT_EQ(t.status().code(), Code::kInvalidArgument) << message;
    EXPECT_THAT(t.status().message(), HasSubstr(message));
  }
}

TEST(LifecycleValidation, MalformedRecordsAreRejectedNamingTheProblem) {
  std::vector<std::pair<v1::VmRecord, std::string>> cases;
  auto with = [&](ProtectionState state, auto mutate, std::string message) {
    v1::VmRecord r = RecordIn(state);
    mutate(r);
    cases.emplace_back(std::move(r), std::move(message));
  };
  with(kUnplaced, [](v1::VmRecord& r) { r.set_vm_uuid("6f9619ff-8b86-d011-b42d"); }, "VmRecord.vm_uuid");
  with(kUnplaced, [](v1::VmRecord& r) { r.set_vm_uuid("6f9619ff-8b86-d011-b42d-00c04fc964fz"); }, "non-hex");
  with(kUnplaced, [](v1::VmRecord& r) { r.clear_vm_name(); }, "VmRecord.vm_name is empty");
  with(kUnplaced, [](v1::VmRecord& r) { r.clear_primary_host(); }, "VmRecord.primary_host is empty");
  with(kUnplaced, [](v1::VmRecord& r) { r.set_state(static_cast<ProtectionState>(42)); }, "unknown state 42");
  with(kPlacing, [](v1::VmRecord& r) { r.clear_shadows(); }, "needs exactly one shadow assignment");
  with(kProtected, [](v1::VmRecord& r) { r.mutable_shadows(0)->clear_host(); }, "needs exactly one shadow");
  with(kUnplaced, [](v1::VmRecord& r) { SetShadow(r, kTarget, v1::SHADOW_STATE_DEFINED); }, "holds 1 shadow");
  with(kUnplaced, [](v1::VmRecord& r) { r.clear_policy_xml(); }, "needs policy_xml");
  with(kUnprotected, [](v1::VmRecord& r) { r.clear_shadow_size(); }, "positive shadow_size");
  for (const auto& [record, message] : cases) {
    StatusOr<Transition> t = Apply(record, VmStarted{}, kNow, kGrace);
    EXPECT_EQ(t.status().code(), Code::kInvalidArgument) << message;
    EXPECT_THAT(t.status().message(), HasSubstr(message));
    EXPECT_EQ(Recover(record).status().code(), Code::kInvalidArgument) << message;
  }
}

TEST(LifecycleValidation, GracePeriodMustBeBetweenZeroAndAYear) {
  EXPECT_EQ(Apply(RecordIn(kProtected), VmStopped{}, kNow, -1s).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Apply(RecordIn(kProtected), VmStopped{}, kNow, std::chrono::hours(24 * 366)).status().code(),
            Code::kInvalidArgument);
  StatusOr<Transition> immediate = Apply(RecordIn(kProtected), VmStopped{}, kNow, Duration::zero());
  ASSERT_TRUE(immediate.ok());
  EXPECT_THAT(immediate->commands, ElementsAre(Command{StartGraceTimer{kNow}}));
}

// ---- Names

TEST(LifecycleNames, EveryStateHasAReadableName) {
  EXPECT_EQ(ToString(kNoRecord), "NoRecord");
  EXPECT_EQ(ToString(kPolicyInvalid), "PolicyInvalid");
  EXPECT_EQ(ToString(kUnplaced), "Unplaced");
  EXPECT_EQ(ToString(kUnprotected), "Unprotected");
  EXPECT_EQ(ToString(kPlacing), "Placing");
  EXPECT_EQ(ToString(kProtected), "Protected");
  EXPECT_EQ(ToString(kReleasing), "Releasing");
  EXPECT_EQ(ToString(kGracePeriod), "GracePeriod");
  EXPECT_EQ(ToString(kReleased), "Released");
  EXPECT_EQ(ToString(static_cast<ProtectionState>(42)), "ProtectionState(42)");
}

TEST(LifecycleNames, CommandsPrintTheirFields) {
  EXPECT_EQ(ToString(DefineOn(kTarget)),
            "DefineShadow{host=hostB, uuid=7f3bc091-3ce0-5dab-9b24-f4d1a600a56e, name=web-shadow, vcpus=2, "
            "memory_kib=2097152}");
  EXPECT_EQ(ToString(Command{ScheduleRetry{kNow + 2s}}), "ScheduleRetry{at_unix_ms=1800000002000}");
  EXPECT_EQ(ToString(Command{DeleteRecord{}}), "DeleteRecord{}");
}

}  // namespace
}  // namespace vs::lifecycle
