#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "shadowd/switchover/planner.h"

namespace vs::switchover {
namespace {

using ::testing::HasSubstr;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr double kMiB = 1 << 20;

BandwidthEstimator Make(double seed, double weight) {
  StatusOr<BandwidthEstimator> estimator = BandwidthEstimator::Create(seed, weight);
  EXPECT_TRUE(estimator.ok()) << estimator.status().ToString();
  return estimator.ok() ? *estimator : *BandwidthEstimator::Create(1, 1);
}

TEST(SwitchoverBandwidthEstimator, StartsFromTheConfiguredSeed) {
  EXPECT_EQ(Make(125e6, 0.3).bytes_per_s(), 125e6);
}

TEST(SwitchoverBandwidthEstimator, WeighsEachObservationIntoTheAverage) {
  BandwidthEstimator estimator = Make(100 * kMiB, 0.5);
  // 100 MiB in 0.5 s = 200 MiB/s.
  ASSERT_TRUE(estimator.Observe(100 << 20, milliseconds(500)).ok());
  EXPECT_DOUBLE_EQ(estimator.bytes_per_s(), 150 * kMiB);
  ASSERT_TRUE(estimator.Observe(200 << 20, seconds(1)).ok());
  EXPECT_DOUBLE_EQ(estimator.bytes_per_s(), 175 * kMiB);
  // A busy interval that moved nothing (a stalled link) pulls it down.
  ASSERT_TRUE(estimator.Observe(0, seconds(1)).ok());
  EXPECT_DOUBLE_EQ(estimator.bytes_per_s(), 87.5 * kMiB);
}

TEST(SwitchoverBandwidthEstimator, WeightOneKeepsOnlyTheLatest) {
  BandwidthEstimator estimator = Make(1e9, 1);
  ASSERT_TRUE(estimator.Observe(30 << 20, milliseconds(300)).ok());
  EXPECT_DOUBLE_EQ(estimator.bytes_per_s(), 100 * kMiB);
}

TEST(SwitchoverBandwidthEstimator, ConvergesToASteadyRate) {
  BandwidthEstimator estimator = Make(1e9, 0.2);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(estimator.Observe(12'500'000, milliseconds(100)).ok());
  EXPECT_NEAR(estimator.bytes_per_s(), 125e6, 1);
}

TEST(SwitchoverBandwidthEstimator, RefusesAnEmptyIntervalAndKeepsItsEstimate) {
  BandwidthEstimator estimator = Make(125e6, 0.5);
  for (Duration interval : {Duration::zero(), Duration(-milliseconds(5))}) {
    Status status = estimator.Observe(1 << 20, interval);
    EXPECT_EQ(status.code(), Code::kInvalidArgument);
    EXPECT_THAT(status.message(), HasSubstr("interval must be > 0"));
    EXPECT_EQ(estimator.bytes_per_s(), 125e6);
  }
}

TEST(SwitchoverBandwidthEstimator, HugeObservationsStayFinite) {
  BandwidthEstimator estimator = Make(125e6, 0.5);
  ASSERT_TRUE(estimator.Observe(std::numeric_limits<uint64_t>::max(), Duration(1)).ok());
  EXPECT_TRUE(std::isfinite(estimator.bytes_per_s()));
  EXPECT_GT(estimator.bytes_per_s(), 1e27);
}

TEST(SwitchoverBandwidthEstimator, RefusesAMalformedSeedOrWeight) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (double seed : {0.0, -1.0, nan, inf}) {
    StatusOr<BandwidthEstimator> estimator = BandwidthEstimator::Create(seed, 0.3);
    ASSERT_FALSE(estimator.ok()) << seed;
    EXPECT_THAT(estimator.status().message(), HasSubstr("bandwidth seed"));
  }
  for (double weight : {0.0, -0.5, 1.5, nan}) {
    StatusOr<BandwidthEstimator> estimator = BandwidthEstimator::Create(125e6, weight);
    ASSERT_FALSE(estimator.ok()) << weight;
    EXPECT_THAT(estimator.status().message(), HasSubstr("weight"));
  }
}

// The acceptance run's fall from 100 to 16 MiB/s over 12 switchovers on unchanged links: each move's migration
// ran at the link's rate, but the estimate was fed the whole switchover's time (check, final round, a flatten
// growing from 5 to 20 s). Fed by ObserveMove, only the migration step counts.
TEST(SwitchoverBandwidthEstimator, TwelveColdMovesAtTheLinksRateKeepTheEstimateThere) {
  BandwidthEstimator estimator = Make(100 * kMiB, 0.5);
  for (int move = 0; move < 12; ++move) {
    // 300 MiB (memory and the tops) in 3 s: 100 MiB/s, whatever the rest of the switchover took.
    EXPECT_TRUE(ObserveMove(estimator, {.bytes = uint64_t{300} << 20, .migration = seconds(3), .warm = false}));
  }
  EXPECT_NEAR(estimator.bytes_per_s(), 100 * kMiB, 0.01 * kMiB);
}

TEST(SwitchoverBandwidthEstimator, WarmUpsUnknownLengthsAndSmallMovesSayNothingAboutTheLink) {
  BandwidthEstimator estimator = Make(100 * kMiB, 0.5);
  // A warm-up's precopy ran under its cap (here 10 MiB/s).
  EXPECT_FALSE(ObserveMove(estimator, {.bytes = uint64_t{300} << 20, .migration = seconds(30), .warm = true}));
  // A record from before migration_ms existed, or resumed without it.
  EXPECT_FALSE(ObserveMove(estimator, {.bytes = uint64_t{300} << 20, .migration = seconds(0), .warm = false}));
  // 64 MiB or less: the destination's start dominates.
  EXPECT_FALSE(ObserveMove(estimator, {.bytes = uint64_t{64} << 20, .migration = seconds(2), .warm = false}));
  EXPECT_EQ(estimator.bytes_per_s(), 100 * kMiB);
  EXPECT_TRUE(ObserveMove(estimator, {.bytes = uint64_t{65} << 20, .migration = seconds(1), .warm = false}));
  EXPECT_DOUBLE_EQ(estimator.bytes_per_s(), 82.5 * kMiB);
}

}  // namespace
}  // namespace vs::switchover
