// The whole switchover table (switchover_machine.h), written down here independently of the code: for
// every phase of the proto enum and every step outcome, the next phase or InvalidArgument; for every
// phase and every VM location, the phase a restarted shadowd resumes with.
#include "shadowd/switchover/switchover_machine.h"
#include "shadowd/policy/top_path.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace vs::switchover {
namespace {

namespace v1 = virtshadow::v1;
using ::testing::HasSubstr;

constexpr Phase kUnspecified = v1::SWITCHOVER_PHASE_UNSPECIFIED;
constexpr Phase kChecking = v1::SWITCHOVER_PHASE_CHECKING;
constexpr Phase kPreparing = v1::SWITCHOVER_PHASE_PREPARING;
constexpr Phase kSnapshotting = v1::SWITCHOVER_PHASE_SNAPSHOTTING;
constexpr Phase kFinalRound = v1::SWITCHOVER_PHASE_FINAL_ROUND;
constexpr Phase kMigrating = v1::SWITCHOVER_PHASE_MIGRATING;
constexpr Phase kFallbackMigrating = v1::SWITCHOVER_PHASE_FALLBACK_MIGRATING;
constexpr Phase kCompleting = v1::SWITCHOVER_PHASE_COMPLETING;
constexpr Phase kRollingBack = v1::SWITCHOVER_PHASE_ROLLING_BACK;
constexpr Phase kDone = v1::SWITCHOVER_PHASE_DONE;
constexpr Phase kFailed = v1::SWITCHOVER_PHASE_FAILED;
constexpr Phase kVerifying = v1::SWITCHOVER_PHASE_VERIFYING;
constexpr Phase kGuestFailed = v1::SWITCHOVER_PHASE_GUEST_FAILED;
// A value this build does not know (a newer shadowd's, or a damaged record).
constexpr Phase kUnknown = static_cast<Phase>(42);

using O = StepOutcome;
using L = VmLocation;

const std::vector<std::pair<O, std::string>> kOutcomes = {
    {O::kSucceeded, "succeeded"}, {O::kFailed, "failed"}, {O::kUnhealthy, "unhealthy"}};
const std::vector<std::pair<L, std::string>> kLocations = {
    {L::kRunningHere, "RunningHere"}, {L::kMigratingFromHere, "MigratingFromHere"}, {L::kRunningOnTarget, "RunningOnTarget"}};

// Every value of the proto enum, plus one it does not have.
std::vector<Phase> AllPhases() {
  std::vector<Phase> phases;
  const auto* descriptor = v1::SwitchoverPhase_descriptor();
  for (int i = 0; i < descriptor->value_count(); ++i) phases.push_back(static_cast<Phase>(descriptor->value(i)->number()));
  phases.push_back(kUnknown);
  return phases;
}

// phase -> outcome -> next phase; nullopt: InvalidArgument.
using NextRow = std::map<O, std::optional<Phase>>;
std::map<Phase, NextRow> ExpectedNext() {
  const std::optional<Phase> invalid;
  const NextRow none = {{O::kSucceeded, invalid}, {O::kFailed, invalid}, {O::kUnhealthy, invalid}};
  return {
      {kUnspecified, none},
      {kChecking, {{O::kSucceeded, kPreparing}, {O::kFailed, kFailed}, {O::kUnhealthy, kFallbackMigrating}}},
      {kPreparing, {{O::kSucceeded, kSnapshotting}, {O::kFailed, kRollingBack}, {O::kUnhealthy, invalid}}},
      {kSnapshotting, {{O::kSucceeded, kFinalRound}, {O::kFailed, kRollingBack}, {O::kUnhealthy, invalid}}},
      {kFinalRound, {{O::kSucceeded, kMigrating}, {O::kFailed, kRollingBack}, {O::kUnhealthy, invalid}}},
      {kMigrating, {{O::kSucceeded, kVerifying}, {O::kFailed, kRollingBack}, {O::kUnhealthy, invalid}}},
      // No snapshot was taken on the fallback path: nothing to roll back.
      {kFallbackMigrating, {{O::kSucceeded, kVerifying}, {O::kFailed, kFailed}, {O::kUnhealthy, invalid}}},
      // A guest without progress on the target is never Done.
      {kVerifying, {{O::kSucceeded, kCompleting}, {O::kFailed, kGuestFailed}, {O::kUnhealthy, invalid}}},
      // The VM already runs on the target: DONE once it runs on its own images, else tried again.
      {kCompleting, {{O::kSucceeded, kDone}, {O::kFailed, kCompleting}, {O::kUnhealthy, invalid}}},
      {kRollingBack, {{O::kSucceeded, kFailed}, {O::kFailed, kFailed}, {O::kUnhealthy, invalid}}},
      {kDone, none},
      {kFailed, none},
      {kGuestFailed, none},
      {kUnknown, none},
  };
}

// phase -> location -> resumed phase; nullopt: InvalidArgument.
using ResumeRow = std::map<L, std::optional<Phase>>;
std::map<Phase, ResumeRow> ExpectedResume() {
  const std::optional<Phase> invalid;
  auto same = [](Phase p) { return ResumeRow{{L::kRunningHere, p}, {L::kMigratingFromHere, p}, {L::kRunningOnTarget, p}}; };
  const ResumeRow before_migration = {
      {L::kRunningHere, kRollingBack}, {L::kMigratingFromHere, kRollingBack}, {L::kRunningOnTarget, kCompleting}};
  return {
      {kUnspecified, {{L::kRunningHere, invalid}, {L::kMigratingFromHere, invalid}, {L::kRunningOnTarget, invalid}}},
      {kChecking, before_migration},
      {kPreparing, before_migration},
      {kSnapshotting, before_migration},
      {kFinalRound, before_migration},
      {kMigrating, {{L::kRunningHere, kRollingBack}, {L::kMigratingFromHere, kMigrating}, {L::kRunningOnTarget, kVerifying}}},
      {kFallbackMigrating,
       {{L::kRunningHere, kFailed}, {L::kMigratingFromHere, kFallbackMigrating}, {L::kRunningOnTarget, kVerifying}}},
      {kVerifying, {{L::kRunningHere, kRollingBack}, {L::kMigratingFromHere, kVerifying}, {L::kRunningOnTarget, kVerifying}}},
      {kCompleting, same(kCompleting)},
      {kRollingBack, same(kRollingBack)},
      {kDone, same(kDone)},
      {kFailed, same(kFailed)},
      {kGuestFailed, same(kGuestFailed)},
      {kUnknown, {{L::kRunningHere, invalid}, {L::kMigratingFromHere, invalid}, {L::kRunningOnTarget, invalid}}},
  };
}

TEST(SwitchoverMachine, EveryPhaseOutcomePairMatchesTheExpectedTable) {
  const std::map<Phase, NextRow> table = ExpectedNext();
  int cells = 0;
  for (Phase from : AllPhases()) {
    auto row = table.find(from);
    ASSERT_NE(row, table.end()) << "the expected table has no row for " << PhaseName(from);
    for (const auto& [outcome, outcome_name] : kOutcomes) {
      SCOPED_TRACE(PhaseName(from) + " x " + outcome_name);
      ++cells;
      const std::optional<Phase> expected = row->second.at(outcome);
      StatusOr<Phase> next = NextPhase(from, outcome);
      if (!expected) {
        ASSERT_FALSE(next.ok()) << "goes to " << PhaseName(*next);
        EXPECT_EQ(next.status().code(), Code::kInvalidArgument);
        EXPECT_THAT(next.status().message(), HasSubstr("phase " + PhaseName(from)));
        EXPECT_THAT(next.status().message(), HasSubstr(outcome_name));
        continue;
      }
      ASSERT_TRUE(next.ok()) << next.status().ToString();
      EXPECT_EQ(PhaseName(*next), PhaseName(*expected));
    }
  }
  EXPECT_EQ(cells, static_cast<int>(AllPhases().size() * kOutcomes.size()));
}

TEST(SwitchoverMachine, TheFinalRoundCannotBeSkippedOnTheWayToTheMigration) {
  // Walk every success path from CHECKING: MIGRATING is only reached through FINAL_ROUND.
  Phase phase = kChecking;
  std::vector<std::string> path;
  while (!IsTerminal(phase)) {
    path.push_back(PhaseName(phase));
    StatusOr<Phase> next = NextPhase(phase, O::kSucceeded);
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    phase = *next;
  }
  EXPECT_THAT(path, ::testing::ElementsAre("Checking", "Preparing", "Snapshotting", "FinalRound", "Migrating", "Verifying",
                                            "Completing"));
  EXPECT_EQ(phase, kDone);
}

TEST(SwitchoverMachine, OnlyDoneFailedAndGuestFailedAreTerminal) {
  for (Phase phase : AllPhases()) {
    EXPECT_EQ(IsTerminal(phase), phase == kDone || phase == kFailed || phase == kGuestFailed) << PhaseName(phase);
  }
}

TEST(SwitchoverMachine, NoPathReachesDoneWithoutVerifyingTheGuestAfterAMigration) {
  // Whatever the outcomes, a migration that succeeded leads to VERIFYING before anything else.
  for (Phase migrating : {kMigrating, kFallbackMigrating}) {
    StatusOr<Phase> next = NextPhase(migrating, O::kSucceeded);
    ASSERT_TRUE(next.ok());
    EXPECT_EQ(*next, kVerifying) << PhaseName(migrating);
  }
  for (const auto& [outcome, name] : kOutcomes) {
    StatusOr<Phase> next = NextPhase(kVerifying, outcome);
    if (!next.ok()) continue;
    EXPECT_NE(*next, kDone) << name;
  }
}

TEST(SwitchoverMachine, ResumePhaseForEveryPhaseAndLocation) {
  const std::map<Phase, ResumeRow> table = ExpectedResume();
  int cells = 0;
  for (Phase persisted : AllPhases()) {
    auto row = table.find(persisted);
    ASSERT_NE(row, table.end()) << "the expected table has no row for " << PhaseName(persisted);
    for (const auto& [location, location_name] : kLocations) {
      SCOPED_TRACE(PhaseName(persisted) + " x " + location_name);
      ++cells;
      const std::optional<Phase> expected = row->second.at(location);
      StatusOr<Phase> resumed = ResumePhase(persisted, location);
      if (!expected) {
        ASSERT_FALSE(resumed.ok()) << "resumes as " << PhaseName(*resumed);
        EXPECT_EQ(resumed.status().code(), Code::kInvalidArgument);
        EXPECT_THAT(resumed.status().message(), HasSubstr(PhaseName(persisted)));
        continue;
      }
      ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
      EXPECT_EQ(PhaseName(*resumed), PhaseName(*expected));
    }
  }
  EXPECT_EQ(cells, static_cast<int>(AllPhases().size() * kLocations.size()));
}

TEST(SwitchoverMachine, PhaseNamesAreReadableAndAnUnknownValueShowsItsNumber) {
  const std::vector<std::pair<Phase, std::string>> names = {
      {kUnspecified, "Unspecified"},   {kChecking, "Checking"},
      {kPreparing, "Preparing"},       {kSnapshotting, "Snapshotting"},
      {kFinalRound, "FinalRound"},     {kMigrating, "Migrating"},
      {kFallbackMigrating, "FallbackMigrating"}, {kCompleting, "Completing"},
      {kRollingBack, "RollingBack"},   {kDone, "Done"},
      {kFailed, "Failed"},             {kVerifying, "Verifying"},
      {kGuestFailed, "GuestFailed"},
  };
  ASSERT_EQ(static_cast<int>(names.size()), v1::SwitchoverPhase_descriptor()->value_count());
  for (const auto& [phase, name] : names) EXPECT_EQ(PhaseName(phase), name);
  EXPECT_EQ(PhaseName(kUnknown), "SwitchoverPhase(42)");
  EXPECT_EQ(PhaseName(static_cast<Phase>(-3)), "SwitchoverPhase(-3)");
}

}  // namespace
}  // namespace vs::switchover

// Top naming (top_path.h): every switchover's tops are new files, and older untagged tops are still seen.
TEST(TopPathTest, TopsAreTaggedPerSwitchoverAndLeadBackToTheirImage) {
  const std::string image = "/var/lib/libvirt/images/web.qcow2";
  const std::string top = vs::policy::TopPathOf(image, "1796000000123");
  EXPECT_EQ(top, image + ".vs-top-1796000000123");
  EXPECT_NE(top, vs::policy::TopPathOf(image, "1796000000124"));
  EXPECT_TRUE(vs::policy::IsTopPath(top));
  EXPECT_EQ(vs::policy::BasePathOf(top), image);
  EXPECT_TRUE(vs::policy::IsTopPath(image + ".vs-top"));  // left by an older build
  EXPECT_EQ(vs::policy::BasePathOf(image + ".vs-top"), image);
  EXPECT_FALSE(vs::policy::IsTopPath(image));
  EXPECT_EQ(vs::policy::BasePathOf(image), image);
  for (const std::string& not_top : {image + ".vs-top-", image + ".vs-top-a/b", image + ".vs-top-1.2",
                                    image + ".vs-topx", std::string("/images/.vs-top-12")}) {
    EXPECT_FALSE(vs::policy::IsTopPath(not_top)) << not_top;
    EXPECT_EQ(vs::policy::BasePathOf(not_top), not_top);
  }
}
