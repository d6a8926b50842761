// The numbers of a crash promotion (shadowd/failover/promotion.h).
#include "shadowd/failover/promotion.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vs::failover {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

constexpr VmSize kShadow{.vcpus = 1, .memory_kib = 256 * 1024};
constexpr VmSize kFull{.vcpus = 4, .memory_kib = 2048 * 1024};

TEST(PlanGrowth, GrowsToTheFullSizeWhenTheHostHasRoom) {
  const GrowthPlan plan = PlanGrowth(kShadow, kFull, {.vcpus = 8, .memory_kib = 8ull << 20});
  EXPECT_EQ(plan.target.vcpus, 4u);
  EXPECT_EQ(plan.target.memory_kib, 2048u * 1024);
  EXPECT_EQ(plan.shortfall, "");
}

TEST(PlanGrowth, GrowsAsFarAsTheHostAllowsAndSaysWhatIsMissing) {
  const GrowthPlan plan = PlanGrowth(kShadow, kFull, {.vcpus = 1, .memory_kib = 768 * 1024});
  EXPECT_EQ(plan.target.vcpus, 2u);
  EXPECT_EQ(plan.target.memory_kib, 1024u * 1024);
  EXPECT_EQ(plan.shortfall, "runs with 2 of 4 vCPUs and 1024 of 2048 MiB of memory: the host has no more room "
                            "unreserved");
}

TEST(PlanGrowth, NeverShrinksBelowWhatItRunsWith) {
  const GrowthPlan plan = PlanGrowth(kShadow, kFull, {});
  EXPECT_EQ(plan.target.vcpus, 1u);
  EXPECT_EQ(plan.target.memory_kib, 256u * 1024);
  EXPECT_THAT(plan.shortfall, HasSubstr("1 of 4 vCPUs"));
}

TEST(RecoveryPointOf, IsTheTimeFromTheLastCheckpointToTheFailure) {
  const WallTime checkpoint = WallTime(std::chrono::seconds(1'000'000));
  const RecoveryPoint point = RecoveryPointOf(checkpoint, checkpoint + 7s, 10s, 2s);
  EXPECT_EQ(point.rpo, 7s);
  EXPECT_EQ(point.bound, 12s);
  EXPECT_TRUE(point.within_bound);
  EXPECT_FALSE(RecoveryPointOf(checkpoint, checkpoint + 13s, 10s, 2s).within_bound);
  EXPECT_EQ(RecoveryPointOf(checkpoint, checkpoint - 1s, 10s, 2s).rpo, 0s) << "a checkpoint after the last heartbeat";
}

}  // namespace
}  // namespace vs::failover
