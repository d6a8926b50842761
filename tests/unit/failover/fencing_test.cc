// The failover rules (shadowd/failover/fencing.h): who fences, when survivors promote, when an operator may.
#include "shadowd/failover/fencing.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vs::failover {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

std::vector<std::string> Names(const std::vector<RunningVm>& vms) {
  std::vector<std::string> names;
  for (const RunningVm& vm : vms) names.push_back(vm.name);
  return names;
}

const std::vector<RunningVm> kHere = {
    {.uuid = "u-web", .name = "web", .shadow_hosts = {"h2"}},
    {.uuid = "u-db", .name = "db", .shadow_hosts = {"h3"}},
    {.uuid = "u-two", .name = "two-shadows", .shadow_hosts = {"h2", "h3"}},
};

TEST(VmsToFence, NoneWhileThePartitionIsQuorate) {
  EXPECT_TRUE(VmsToFence({.quorate = true, .members = {"h1"}}, kHere).empty());
}

TEST(VmsToFence, ACutOffHostFencesEveryVmWhoseShadowIsOutside) {
  EXPECT_THAT(Names(VmsToFence({.quorate = false, .members = {"h1"}}, kHere)),
              ::testing::ElementsAre("web", "db", "two-shadows"));
}

TEST(VmsToFence, AVmWhoseShadowsAreAllInsideTheMinorityKeepsRunning) {
  // h1 and h2 cut off together from h3..h5: web's shadow on h2 cannot be promoted (no quorum there).
  EXPECT_THAT(Names(VmsToFence({.quorate = false, .members = {"h1", "h2"}}, kHere)),
              ::testing::ElementsAre("db", "two-shadows"));
}

TEST(VmsToFence, AVmWithoutShadowIsNeverFenced) {
  EXPECT_TRUE(VmsToFence({.quorate = false, .members = {"h1"}}, {{.uuid = "u", .name = "bare"}}).empty());
}

class MayPromoteTest : public ::testing::Test {
 protected:
  FenceTiming timing_{.detection_skew = 2200ms, .fence_action = 2s, .margin = 1s};
  MonoTime left_at_ = MonoTime(100s);
  PrimaryHostState Gone() const { return {.host = "h1", .member = false, .absent_since = left_at_}; }
};

TEST_F(MayPromoteTest, TheSurvivorWaitIsTheSumOfTheAssumptions) { EXPECT_EQ(timing_.SurvivorWait(), 5200ms); }

TEST_F(MayPromoteTest, NeverFromANonQuoratePartition) {
  const PromotionVerdict verdict = MayPromote(false, Gone(), left_at_ + 1h, timing_);
  EXPECT_FALSE(verdict.allowed);
  EXPECT_THAT(verdict.why, HasSubstr("not quorate"));
}

TEST_F(MayPromoteTest, NeverWhileThePrimaryIsAMember) {
  PrimaryHostState primary = Gone();
  primary.member = true;
  const PromotionVerdict verdict = MayPromote(true, primary, left_at_ + 1h, timing_);
  EXPECT_FALSE(verdict.allowed);
  EXPECT_THAT(verdict.why, HasSubstr("h1 is still a member"));
}

TEST_F(MayPromoteTest, WaitsOutTheFenceBoundAfterThePrimaryLeft) {
  const PromotionVerdict early = MayPromote(true, Gone(), left_at_ + 5s, timing_);
  EXPECT_FALSE(early.allowed);
  EXPECT_EQ(early.wait, 200ms);
  EXPECT_THAT(early.why, HasSubstr("may still be fencing itself for 200 ms"));

  EXPECT_TRUE(MayPromote(true, Gone(), left_at_ + 5200ms, timing_).allowed);
  const PromotionVerdict late = MayPromote(true, Gone(), left_at_ + 9s, timing_);
  EXPECT_TRUE(late.allowed);
  EXPECT_EQ(late.wait, 0ms);
  EXPECT_THAT(late.why, HasSubstr("left the membership 9000 ms ago"));
}

TEST_F(MayPromoteTest, AtOnceWhenThePrimarysLibvirtdConfirmedTheVmStopped) {
  PrimaryHostState primary = Gone();
  primary.vm_confirmed_stopped = true;
  EXPECT_TRUE(MayPromote(true, primary, left_at_, timing_).allowed);
}

TEST_F(MayPromoteTest, NeverByWaitingWhenThePrimarysShadowdHadStoppedBeforeItLeft) {
  // Nothing ran there to pause the VM when the host lost quorum: no wait makes it safe.
  PrimaryHostState primary = Gone();
  primary.shadowd_stopped = true;
  const PromotionVerdict verdict = MayPromote(true, primary, left_at_ + 1h, timing_);
  EXPECT_FALSE(verdict.allowed);
  EXPECT_EQ(verdict.wait, 0ms) << "no time makes it allowed";
  EXPECT_THAT(verdict.why, HasSubstr("h1's shadowd had stopped before the host left"));
  EXPECT_THAT(verdict.why, HasSubstr("virt-shadow promote DOMAIN"));
  // Its libvirtd's word still counts: the VM is known stopped there.
  primary.vm_confirmed_stopped = true;
  EXPECT_TRUE(MayPromote(true, primary, left_at_, timing_).allowed);
}

TEST_F(MayPromoteTest, TheDetectionSkewIsTheMembershipsOwnDetectionTime) {
  // The lab's Corosync: token 800 ms and consensus 960 ms; the defaults of the fence action and the margin.
  const FenceTiming lab = FenceTiming{}.WithDetection(1760ms);
  EXPECT_EQ(lab.SurvivorWait(), 1760ms + 1s + 500ms);
  EXPECT_FALSE(MayPromote(true, Gone(), left_at_ + 3259ms, lab).allowed);
  EXPECT_TRUE(MayPromote(true, Gone(), left_at_ + 3260ms, lab).allowed);
}

TEST_F(MayPromoteTest, NeverWhileTheMembershipHasNotSaidHowLongDetectionTakes) {
  // A wait without the detection skew would be shorter than a cut-off host may take to notice its loss.
  const PromotionVerdict verdict = MayPromote(true, Gone(), left_at_ + 1h, FenceTiming{});
  EXPECT_FALSE(verdict.allowed);
  EXPECT_THAT(verdict.why, HasSubstr("the fence bound is unknown"));
}

TEST_F(MayPromoteTest, NotWhenThePrimaryWasNeverSeenLeaving) {
  // Absent from the start (e.g. this shadowd restarted after the host left): no time to count from.
  const PromotionVerdict verdict = MayPromote(true, {.host = "h1"}, left_at_ + 1h, timing_);
  EXPECT_FALSE(verdict.allowed);
  EXPECT_THAT(verdict.why, HasSubstr("never seen leaving"));
}

TEST(CheckOperatorPromote, RefusedWhileTheHostIsInTheQuorateMembership) {
  const Status refused = CheckOperatorPromote("web", "h1", true, false, "");
  EXPECT_EQ(refused.code(), Code::kFailedPrecondition);
  EXPECT_THAT(refused.message(), HasSubstr("--force --reason"));
}

TEST(CheckOperatorPromote, ForceNeedsAReason) {
  EXPECT_EQ(CheckOperatorPromote("web", "h1", true, true, "").code(), Code::kInvalidArgument);
  EXPECT_EQ(CheckOperatorPromote("web", "h1", false, true, "").code(), Code::kInvalidArgument);
}

TEST(CheckOperatorPromote, AllowedForAnAbsentHostOrWithForceAndAReason) {
  EXPECT_TRUE(CheckOperatorPromote("web", "h1", false, false, "").ok());
  EXPECT_TRUE(CheckOperatorPromote("web", "h1", true, true, "rack 4 lost power; PDU confirmed off").ok());
}

}  // namespace
}  // namespace vs::failover
