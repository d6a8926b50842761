// The whole from/to table of the protection lifecycle, written down here independently of the code:
// for every state (each value of the proto enum) and every event column, either the exact next
// state and commands, or FailedPrecondition. The records of each state are those of
// fixtures::RecordIn (test_records.h); other record variants are covered by lifecycle_test.cc.
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_records.h"

namespace vs::lifecycle {
namespace {

using namespace fixtures;
using ::testing::HasSubstr;

// One column per event, plus a second column for the events whose payload changes the outcome.
struct Column {
  std::string name;
  Event event;
};

std::vector<Column> Columns() {
  return {
      {"PolicySeen(same)", PolicySeen{kPolicyA, kSizeA}},
      {"PolicySeen(changed)", PolicySeen{kPolicyB, kSizeB}},
      {"PolicyRejected", PolicyRejected{"vcpus='0' is not a count"}},
      {"PolicyRemoved", PolicyRemoved{}},
      {"VmStarted", VmStarted{}},
      {"VmStopped", VmStopped{}},
      {"VmUndefined", VmUndefined{}},
      {"PlacementChosen", PlacementChosen{kTarget, kSizeA}},
      {"PlacementFailed", PlacementFailed{"no host has 2 GiB free"}},
      {"ShadowDefined", ShadowDefined{kTarget}},
      {"ShadowDefineFailed(retryable)", ShadowDefineFailed{kTarget, Unavailable("libvirtd is restarting")}},
      {"ShadowDefineFailed(fatal)", ShadowDefineFailed{kTarget, InvalidArgument("no storage pool 'replicas'")}},
      {"ShadowReleased", ShadowReleased{kTarget}},
      {"ReleaseFailed", ReleaseFailed{kTarget, Unavailable("timed out")}},
      {"GraceExpired", GraceExpired{}},
      {"CapacityChanged", CapacityChanged{}},
      {"RetryTimerFired", RetryTimerFired{}},
      {"ShadowLost", ShadowLost{kTarget, "host is down"}},
      {"SwitchedOver(shadow's host)", SwitchedOver{kTarget}},
      {"SwitchedOver(promoted there)", SwitchedOver{.host = kTarget, .promoted = true}},
      {"SwitchedOver(other host)", SwitchedOver{"hostC"}},
      {"ShadowMoveRequested(other host)", ShadowMoveRequested{"hostC"}},
      {"ShadowMoveRequested(shadow's host)", ShadowMoveRequested{kTarget}},
      {"ShadowMoveRequested(primary's host)", ShadowMoveRequested{kPrimary}},
      {"ShadowHostLeaving(shadow's host)", ShadowHostLeaving{kTarget, "drain: maintenance"}},
      {"ShadowHostLeaving(other host)", ShadowHostLeaving{"hostC", "drain: maintenance"}},
  };
}

struct Expected {
  ProtectionState to;
  std::vector<Command> commands;
  Code error = Code::kOk;  // not kOk: the cell is allowed but the payload is rejected with this code
};
using Row = std::map<std::string, Expected>;  // column name -> outcome; a column not listed is refused

std::map<ProtectionState, Row> ExpectedTable() {
  const Command place_a = ComputePlacement{kSizeA};
  const Command place_b = ComputePlacement{kSizeB};
  const Command define = DefineShadow{kTarget, kShadowUuid, kShadowName, kSizeA};
  const Command release = ReleaseShadow{kTarget, kShadowUuid, kShadowName};
  const Command grace_timer = StartGraceTimer{kNow + 10min};
  const Command retry_2s = ScheduleRetry{kNow + 2s};
  const Command delete_record = DeleteRecord{};
  const Command rejected = ReportError{"vcpus='0' is not a count"};
  const Command rejected_kept =
      ReportError{"policy rejected, the last valid policy stays in force: vcpus='0' is not a count"};
  const Command define_unavailable =
      ReportError{"UNAVAILABLE: defining shadow on host hostB: libvirtd is restarting"};
  const Command define_invalid =
      ReportError{"INVALID_ARGUMENT: defining shadow on host hostB: no storage pool 'replicas'"};
  const Command release_unavailable = ReportError{"UNAVAILABLE: releasing shadow on host hostB: timed out"};
  const Command lost = ReportError{"shadow web-shadow on host hostB is lost: host is down"};
  const Command switched =
      ReportError{"switched over to its shadow on host hostB; that host protects it from now on"};
  const Command promoted =
      ReportError{"promoted from its shadow on host hostB; that host protects it from now on"};
  const Command leaving =
      ReportError{"shadow web-shadow on host hostB is placed anew elsewhere: hostB is leaving (drain: maintenance)"};
  const Expected move_to_primary_rejected = {v1::PROTECTION_STATE_UNSPECIFIED, {}, Code::kInvalidArgument};

  constexpr auto kNoRecord = v1::PROTECTION_STATE_UNSPECIFIED;
  constexpr auto kPolicyInvalid = v1::PROTECTION_STATE_POLICY_INVALID;
  constexpr auto kUnplaced = v1::PROTECTION_STATE_UNPLACED;
  constexpr auto kUnprotected = v1::PROTECTION_STATE_UNPROTECTED;
  constexpr auto kPlacing = v1::PROTECTION_STATE_PLACING;
  constexpr auto kProtected = v1::PROTECTION_STATE_PROTECTED;
  constexpr auto kReleasing = v1::PROTECTION_STATE_RELEASING;
  constexpr auto kGracePeriod = v1::PROTECTION_STATE_GRACE_PERIOD;
  constexpr auto kReleased = v1::PROTECTION_STATE_RELEASED;

  return {
      {kNoRecord,
       {
           {"PolicySeen(same)", {kUnplaced, {place_a}}},
           {"PolicySeen(changed)", {kUnplaced, {place_b}}},
           {"PolicyRejected", {kPolicyInvalid, {rejected}}},
       }},
      {kPolicyInvalid,
       {
           {"PolicySeen(same)", {kUnplaced, {place_a}}},
           {"PolicySeen(changed)", {kUnplaced, {place_b}}},
           {"PolicyRejected", {kPolicyInvalid, {rejected}}},
           {"PolicyRemoved", {kReleased, {delete_record}}},
           {"VmStarted", {kPolicyInvalid, {}}},
           {"VmStopped", {kPolicyInvalid, {}}},
           {"VmUndefined", {kReleased, {delete_record}}},
       }},
      {kUnplaced,
       {
           {"PolicySeen(same)", {kUnplaced, {}}},
           {"PolicySeen(changed)", {kUnplaced, {place_b}}},
           {"PolicyRejected", {kUnplaced, {rejected_kept}}},
           {"PolicyRemoved", {kReleased, {delete_record}}},
           {"VmStarted", {kUnplaced, {}}},
           {"VmStopped", {kReleased, {delete_record}}},
           {"VmUndefined", {kReleased, {delete_record}}},
           {"PlacementChosen", {kPlacing, {define}}},
           {"PlacementFailed", {kUnprotected, {retry_2s}}},
       }},
      {kUnprotected,
       {
           {"PolicySeen(same)", {kUnprotected, {}}},
           {"PolicySeen(changed)", {kUnplaced, {place_b}}},
           {"PolicyRejected", {kUnprotected, {rejected_kept}}},
           {"PolicyRemoved", {kReleased, {delete_record}}},
           {"VmStarted", {kUnprotected, {}}},
           {"VmStopped", {kReleased, {delete_record}}},
           {"VmUndefined", {kReleased, {delete_record}}},
           {"CapacityChanged", {kUnplaced, {place_a}}},
           {"RetryTimerFired", {kUnplaced, {place_a}}},
           // No shadow to release: placed at once (pinned; see lifecycle_test.cc).
           {"ShadowMoveRequested(other host)", {kUnplaced, {place_a}}},
           {"ShadowMoveRequested(shadow's host)", {kUnplaced, {place_a}}},
           {"ShadowMoveRequested(primary's host)", move_to_primary_rejected},
       }},
      {kPlacing,
       {
           {"PolicySeen(same)", {kPlacing, {}}},
           {"PolicySeen(changed)", {kReleasing, {release}}},
           {"PolicyRejected", {kPlacing, {rejected_kept}}},
           {"PolicyRemoved", {kReleasing, {release}}},
           {"VmStarted", {kPlacing, {}}},
           {"VmStopped", {kReleasing, {release}}},
           {"VmUndefined", {kReleasing, {release}}},
           {"ShadowDefined", {kProtected, {}}},
           {"ShadowDefineFailed(retryable)", {kPlacing, {define_unavailable, retry_2s}}},
           {"ShadowDefineFailed(fatal)", {kReleasing, {define_invalid, release}}},
           {"RetryTimerFired", {kPlacing, {define}}},
           {"ShadowLost", {kUnplaced, {lost, place_a}}},
           {"ShadowHostLeaving(shadow's host)", {kReleasing, {leaving, release}}},
       }},
      {kProtected,
       {
           {"PolicySeen(same)", {kProtected, {}}},
           {"PolicySeen(changed)", {kReleasing, {release}}},
           {"PolicyRejected", {kProtected, {rejected_kept}}},
           {"PolicyRemoved", {kGracePeriod, {grace_timer}}},
           {"VmStarted", {kProtected, {}}},
           {"VmStopped", {kGracePeriod, {grace_timer}}},
           {"VmUndefined", {kGracePeriod, {grace_timer}}},
           {"ShadowLost", {kUnplaced, {lost, place_a}}},
           {"SwitchedOver(shadow's host)", {kReleased, {switched, delete_record}}},
           {"SwitchedOver(promoted there)", {kReleased, {promoted, delete_record}}},
           {"ShadowMoveRequested(other host)", {kReleasing, {release}}},
           {"ShadowMoveRequested(shadow's host)", {kProtected, {}}},
           {"ShadowMoveRequested(primary's host)", move_to_primary_rejected},
           {"ShadowHostLeaving(shadow's host)", {kReleasing, {leaving, release}}},
       }},
      {kGracePeriod,
       {
           {"PolicySeen(same)", {kGracePeriod, {}}},
           {"PolicySeen(changed)", {kReleasing, {release}}},
           {"PolicyRejected", {kGracePeriod, {rejected_kept}}},
           {"PolicyRemoved", {kGracePeriod, {}}},
           {"VmStarted", {kProtected, {}}},
           {"VmStopped", {kGracePeriod, {}}},
           {"VmUndefined", {kGracePeriod, {}}},
           {"GraceExpired", {kReleasing, {release}}},
           {"ShadowLost", {kReleased, {lost, delete_record}}},
           {"SwitchedOver(shadow's host)", {kReleased, {switched, delete_record}}},
           {"SwitchedOver(promoted there)", {kReleased, {promoted, delete_record}}},
       }},
      {kReleasing,
       {
           {"PolicySeen(same)", {kReleasing, {}}},
           {"PolicySeen(changed)", {kReleasing, {}}},
           {"PolicyRejected", {kReleasing, {rejected_kept}}},
           {"PolicyRemoved", {kReleasing, {}}},
           {"VmStarted", {kReleasing, {}}},
           {"VmStopped", {kReleasing, {}}},
           {"VmUndefined", {kReleasing, {}}},
           {"ShadowReleased", {kReleased, {delete_record}}},
           {"ReleaseFailed", {kReleasing, {release_unavailable, retry_2s}}},
           {"RetryTimerFired", {kReleasing, {release}}},
           {"ShadowLost", {kReleased, {lost, delete_record}}},
           {"SwitchedOver(shadow's host)", {kReleased, {switched, delete_record}}},
           {"SwitchedOver(promoted there)", {kReleased, {promoted, delete_record}}},
       }},
      {kReleased, {}},  // terminal
  };
}

std::vector<ProtectionState> AllStates() {
  std::vector<ProtectionState> states;
  const auto* descriptor = virtshadow::v1::ProtectionState_descriptor();
  for (int i = 0; i < descriptor->value_count(); ++i) {
    states.push_back(static_cast<ProtectionState>(descriptor->value(i)->number()));
  }
  return states;
}

TEST(LifecycleTable, EveryStateEventCellMatchesTheExpectedTable) {
  const std::map<ProtectionState, Row> table = ExpectedTable();
  int allowed = 0, refused = 0;
  for (ProtectionState state : AllStates()) {
    auto row = table.find(state);
    ASSERT_NE(row, table.end()) << "the expected table has no row for " << ToString(state);
    const v1::VmRecord from = RecordIn(state);
    for (const Column& column : Columns()) {
      SCOPED_TRACE(ToString(state) + " x " + column.name);
      StatusOr<Transition> result = Apply(from, column.event, kNow, kGrace);
      auto cell = row->second.find(column.name);
      if (cell == row->second.end()) {
        ++refused;
        ASSERT_FALSE(result.ok()) << "now goes to " << ToString(result->record.state());
        EXPECT_EQ(result.status().code(), Code::kFailedPrecondition) << result.status().ToString();
        EXPECT_THAT(result.status().message(), HasSubstr("state " + ToString(state)));
        EXPECT_THAT(result.status().message(), HasSubstr(std::string(EventKindName(KindOf(column.event)))));
        continue;
      }
      ++allowed;
      if (cell->second.error != Code::kOk) {
        ASSERT_FALSE(result.ok()) << "now goes to " << ToString(result->record.state());
        EXPECT_EQ(result.status().code(), cell->second.error) << result.status().ToString();
        continue;
      }
      ASSERT_TRUE(result.ok()) << result.status().ToString();
      EXPECT_EQ(ToString(result->record.state()), ToString(cell->second.to));
      EXPECT_EQ(result->commands, cell->second.commands);
      EXPECT_EQ(result->record.version(), from.version() + 1);
      EXPECT_EQ(result->record.updated_at_unix_ms(), UnixMs(kNow));
    }
  }
  // Every cell was visited once: the loop above is the whole table.
  EXPECT_EQ(allowed + refused, static_cast<int>(AllStates().size() * Columns().size()));
}

TEST(LifecycleTable, ColumnsCoverEveryEventKind) {
  std::set<EventKind> kinds;
  for (const Column& column : Columns()) kinds.insert(KindOf(column.event));
  EXPECT_EQ(static_cast<int>(kinds.size()), kEventKindCount);
}

TEST(LifecycleTable, ExpectedTableNamesOnlyExistingColumns) {
  std::set<std::string> names;
  for (const Column& column : Columns()) names.insert(column.name);
  for (const auto& [state, row] : ExpectedTable()) {
    for (const auto& [name, expected] : row) {
      EXPECT_TRUE(names.count(name)) << ToString(state) << " lists unknown column " << name;
    }
  }
}

}  // namespace
}  // namespace vs::lifecycle
