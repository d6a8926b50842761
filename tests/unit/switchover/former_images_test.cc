#include "shadowd/switchover/former_images.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vs::switchover {
namespace {

using namespace std::chrono_literals;
using Action = FormerImageVerdict::Action;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr Duration kGrace = 600s;

class FormerImageTest : public ::testing::Test {
 protected:
  FormerImageTest() {
    origin_.set_vm_uuid("0b5d6c1e-6f0a-4c43-9a39-5f2f1c3d2a10");
    origin_.set_vm_name("web");
    origin_.set_origin_host("h1");
    origin_.set_arrived_unix_ms(1'000'000);
    view_->name = "web";
    view_->uuid = origin_.vm_uuid();
    view_->state = virtshadow::v1::PROTECTION_STATE_PROTECTED;
    view_->shadow_hosts = {"h3"};
  }
  WallTime Arrived() const { return FromUnixMillis(origin_.arrived_unix_ms()); }
  FormerImageVerdict Judge(WallTime now, bool defined_here = true, bool on_tops = false) {
    return JudgeFormerImage(origin_, defined_here, on_tops, view_, now, kGrace);
  }

  virtshadow::v1::OriginRecord origin_;
  std::optional<controller::VmStatusView> view_ = controller::VmStatusView{};
};

TEST_F(FormerImageTest, NothingHappensWithinTheGracePeriodWhateverElseIsTrue) {
  EXPECT_EQ(Judge(Arrived()).action, Action::kWait);
  EXPECT_EQ(Judge(Arrived() + kGrace - 1ms).action, Action::kWait);
  EXPECT_EQ(Judge(Arrived() + 1s, /*defined_here=*/false).action, Action::kWait);
  view_.reset();
  EXPECT_EQ(Judge(Arrived() + 1s).action, Action::kWait);
}

TEST_F(FormerImageTest, RemovedAfterTheGracePeriodWhenNoShadowNeedsIt) {
  EXPECT_EQ(Judge(Arrived() + kGrace).action, Action::kRemove);
  view_.reset();  // the VM is not protected here (untagged since): the image is still stale
  EXPECT_EQ(Judge(Arrived() + kGrace).action, Action::kRemove);
}

TEST_F(FormerImageTest, KeptWhenItIsOrWillBeTheReplicaOfTheVmsShadow) {
  view_->shadow_hosts = {"h1"};  // the new shadow went back to the origin and adopted its image
  FormerImageVerdict verdict = Judge(Arrived() + kGrace);
  EXPECT_EQ(verdict.action, Action::kKeep);
  EXPECT_THAT(verdict.outcome, HasSubstr("replica of the VM's shadow on h1"));

  view_->shadow_hosts = {};
  view_->pinned_host = "h1";  // a failback is pending: the shadow is about to be placed there
  verdict = Judge(Arrived() + kGrace);
  EXPECT_EQ(verdict.action, Action::kKeep);
  EXPECT_THAT(verdict.outcome, HasSubstr("failback"));
}

TEST_F(FormerImageTest, ThePromotedVmsStaleImageAtHomeIsKeptForItsFailback) {
  origin_.set_arrived_by(virtshadow::v1::OriginRecord::ARRIVAL_PROMOTION);
  const FormerImageVerdict verdict = Judge(Arrived() + kGrace);
  EXPECT_EQ(verdict.action, Action::kKeep);
  EXPECT_THAT(verdict.outcome, AllOf(HasSubstr("stale copy on h1"), HasSubstr("failback adopts it")));
}

TEST_F(FormerImageTest, WaitsWhileTheVmStillRunsOnItsArrivalTops) {
  EXPECT_EQ(Judge(Arrived() + kGrace, /*defined_here=*/true, /*on_tops=*/true).action, Action::kWait);
}

TEST_F(FormerImageTest, LeftAloneOnceTheVmIsNoLongerHere) {
  const FormerImageVerdict verdict = Judge(Arrived() + kGrace, /*defined_here=*/false);
  EXPECT_EQ(verdict.action, Action::kLeave);
  EXPECT_THAT(verdict.outcome, HasSubstr("no longer runs here"));
}

}  // namespace
}  // namespace vs::switchover
