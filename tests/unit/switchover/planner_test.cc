#include "shadowd/switchover/planner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace vs::switchover {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr uint64_t kMaxBytes = std::numeric_limits<uint64_t>::max();
constexpr Duration kNever = Duration::max();

// 100 MiB/s, 1.5 s destination start, 0.13 s snapshot, 20 % margin. A cold 1 GiB VM then needs
// 0.13 + 1.5 + 10.24 = 11.87 s.
LinkFacts Link(double bandwidth = 100.0 * kMiB, double margin = 0.2) {
  return LinkFacts{.bandwidth_bytes_per_s = bandwidth,
                   .fixed_start_cost = milliseconds(1500),
                   .snapshot_cost = milliseconds(130),
                   .safety_margin = margin};
}
constexpr Duration kColdGiB = milliseconds(11870);

VmToMove Cold(std::string name, uint32_t priority, uint64_t ram, uint64_t dirty_rate = 0, uint64_t disk = 0) {
  return VmToMove{.name = std::move(name),
                  .priority = priority,
                  .ram_bytes = ram,
                  .dirty_rate_bytes_per_s = dirty_rate,
                  .disk_delta_bytes = disk};
}

VmToMove Warm(std::string name, uint32_t priority, uint64_t ram, uint64_t remaining) {
  VmToMove vm = Cold(std::move(name), priority, ram, 5 * kMiB);
  vm.warm = true;
  vm.warm_remaining_bytes = remaining;
  return vm;
}

SwitchoverPlan PlanOk(std::vector<VmToMove> vms, const LinkFacts& link, Duration deadline) {
  StatusOr<SwitchoverPlan> plan = PlanSwitchover(std::move(vms), link, deadline);
  EXPECT_TRUE(plan.ok()) << plan.status().ToString();
  return plan.ok() ? *plan : SwitchoverPlan{};
}

std::vector<std::string> Order(const SwitchoverPlan& plan) {
  std::vector<std::string> names;
  for (const VmPlan& vm : plan.vms) names.push_back(vm.name);
  return names;
}

// Offsets computed by hand agree with the planner's to the rounding of a few bytes (~10 ns each at
// 100 MiB/s: the planner rounds bytes and times to the safe side).
void ExpectNear(Duration actual, Duration expected) {
  EXPECT_LE(std::abs((actual - expected).count()), 30) << actual.count() << " ns vs " << expected.count() << " ns";
}

Duration FromSeconds(double s) { return Duration(static_cast<int64_t>(std::llround(s * 1e9))); }

TEST(SwitchoverOrder, HigherPriorityFirstThenSmallerTransferThenName) {
  const SwitchoverPlan plan = PlanOk(
      {Cold("low", 1, 1 * kGiB), Cold("big", 5, 2 * kGiB), Cold("small", 5, 1 * kGiB),
       Warm("warm-huge", 5, 16 * kGiB, 10 * kMiB), Cold("b-twin", 3, 1 * kGiB), Cold("a-twin", 3, 1 * kGiB),
       // Same RAM as "small" but its dirty disk makes the transfer larger.
       Cold("small-with-disk", 5, 1 * kGiB, 0, 1 * kMiB)},
      Link(), seconds(3600));
  EXPECT_THAT(Order(plan), ElementsAre("warm-huge", "small", "small-with-disk", "big", "a-twin", "b-twin", "low"));
}

TEST(SwitchoverOrder, VmsRunOneAfterAnotherOnTheLink) {
  const SwitchoverPlan plan =
      PlanOk({Cold("a", 3, 1 * kGiB), Cold("b", 2, 2 * kGiB), Warm("c", 1, 4 * kGiB, 50 * kMiB)}, Link(), seconds(3600));
  ASSERT_EQ(plan.vms.size(), 3u);
  EXPECT_EQ(plan.vms[0].start, Duration::zero());
  EXPECT_EQ(plan.vms[1].start, plan.vms[0].expected_finish);
  EXPECT_EQ(plan.vms[2].start, plan.vms[1].expected_finish);
  // The warm VM pays neither snapshot nor destination start: only its 50 MiB cross.
  ExpectNear(plan.vms[2].expected_finish - plan.vms[2].start, milliseconds(500));
}

TEST(SwitchoverSingleVm, FeasibleVmWithoutDirtyingPrecopiesItsWholeRamAtNoCost) {
  const SwitchoverPlan plan = PlanOk({Cold("vm", 0, 1 * kGiB)}, Link(), seconds(30));
  ASSERT_EQ(plan.vms.size(), 1u);
  const VmPlan& vm = plan.vms[0];
  EXPECT_TRUE(vm.feasible);
  EXPECT_EQ(vm.fallback, Fallback::kNone);
  EXPECT_EQ(vm.reason, "");
  EXPECT_EQ(vm.start, Duration::zero());
  ExpectNear(vm.precopy, milliseconds(10240));  // one full pass
  EXPECT_EQ(vm.postcopy_bytes, 0u);
  ExpectNear(vm.expected_finish, kColdGiB);
}

TEST(SwitchoverSingleVm, AmpleSlackPrecopiesOnePassAndLeavesTheDirtiedPagesForPostcopy) {
  // 10 MiB/s dirtied: a full pass of 10.24 s leaves R*D/B = 102.4 MiB and delays the finish by
  // p*D/B = 1.024 s, well within the 24 s budget.
  const SwitchoverPlan plan = PlanOk({Cold("vm", 0, 1 * kGiB, 10 * kMiB)}, Link(), seconds(30));
  const VmPlan& vm = plan.vms.at(0);
  EXPECT_TRUE(vm.feasible);
  ExpectNear(vm.precopy, milliseconds(10240));
  EXPECT_NEAR(static_cast<double>(vm.postcopy_bytes), 102.4 * kMiB, 2);
  ExpectNear(vm.expected_finish, kColdGiB + milliseconds(1024));
}

TEST(SwitchoverSingleVm, PrecopyIsLimitedToTheSlackBeforeTheBudget) {
  // Budget = fastest finish + 0.5 s, so precopy may delay the finish by 0.5 s: p = 0.5 * B/D = 5 s.
  const Duration deadline = FromSeconds((11.87 + 0.5) / 0.8);
  const Duration budget = FromSeconds(11.87 + 0.5);
  const SwitchoverPlan plan = PlanOk({Cold("vm", 0, 1 * kGiB, 10 * kMiB)}, Link(), deadline);
  const VmPlan& vm = plan.vms.at(0);
  EXPECT_TRUE(vm.feasible);
  EXPECT_LE(std::abs((vm.precopy - seconds(5)).count()), 1000) << vm.precopy.count();
  EXPECT_LE(vm.expected_finish, budget);
  EXPECT_GE(vm.expected_finish, budget - Duration(3));
  // 1024 MiB - (100 - 10) MiB/s * 5 s.
  EXPECT_NEAR(static_cast<double>(vm.postcopy_bytes), 574.0 * kMiB, 100e3);
}

TEST(SwitchoverSingleVm, NoPrecopyWhenTheGuestDirtiesFasterThanTheLink) {
  const SwitchoverPlan plan = PlanOk({Cold("vm", 0, 1 * kGiB, 200 * kMiB)}, Link(), seconds(300));
  const VmPlan& vm = plan.vms.at(0);
  EXPECT_TRUE(vm.feasible);
  EXPECT_EQ(vm.precopy, Duration::zero());
  EXPECT_EQ(vm.postcopy_bytes, 1 * kGiB);
  ExpectNear(vm.expected_finish, kColdGiB);
}

TEST(SwitchoverSingleVm, MissingOnlyTheMarginSwitchesToPostcopyAtOnce) {
  // Budget 11.2 s < 11.87 s needed <= 14 s to the deadline.
  const SwitchoverPlan plan = PlanOk({Cold("vm", 0, 1 * kGiB)}, Link(), seconds(14));
  const VmPlan& vm = plan.vms.at(0);
  EXPECT_FALSE(vm.feasible);
  EXPECT_EQ(vm.fallback, Fallback::kPostcopyImmediately);
  EXPECT_EQ(vm.precopy, Duration::zero());
  EXPECT_EQ(vm.postcopy_bytes, 1 * kGiB);
  EXPECT_EQ(vm.reason,
            "misses the safety margin: needs 11.87 s, has 11.20 s with the margin and 14.00 s before the deadline; "
            "switching to postcopy at once");
}

TEST(SwitchoverSingleVm, NotFinishingBeforeTheDeadlineIsSkippedWithTheReason) {
  const SwitchoverPlan plan = PlanOk({Cold("vm", 0, 1 * kGiB)}, Link(), seconds(10));
  const VmPlan& vm = plan.vms.at(0);
  EXPECT_FALSE(vm.feasible);
  EXPECT_EQ(vm.fallback, Fallback::kSkip);
  EXPECT_EQ(vm.reason, "would not finish before the deadline: needs 11.87 s, has 10.00 s");
  ExpectNear(vm.expected_finish, kColdGiB);
}

TEST(SwitchoverSingleVm, DirtyDiskBytesCountAsTransfer) {
  // 1 GiB RAM + 0.5 GiB dirty disk = 15.36 s of transfer + 1.63 s fixed.
  const SwitchoverPlan plan = PlanOk({Cold("vm", 0, 1 * kGiB, 0, kGiB / 2)}, Link(), seconds(20));
  const VmPlan& vm = plan.vms.at(0);
  EXPECT_FALSE(vm.feasible);  // budget 16 s
  EXPECT_EQ(vm.fallback, Fallback::kPostcopyImmediately);
  ExpectNear(vm.expected_finish, milliseconds(16990));
}

TEST(SwitchoverWarmVm, OnlyTheRemainingWorkingSetCrosses) {
  // 8 GiB of RAM but only 20 MiB left: 0.2 s, no snapshot, no destination start.
  const SwitchoverPlan warm = PlanOk({Warm("vm", 0, 8 * kGiB, 20 * kMiB)}, Link(), seconds(1));
  const VmPlan& vm = warm.vms.at(0);
  EXPECT_TRUE(vm.feasible);
  EXPECT_EQ(vm.precopy, Duration::zero());
  EXPECT_EQ(vm.postcopy_bytes, 20 * kMiB);
  ExpectNear(vm.expected_finish, milliseconds(200));

  // The same VM cold would be skipped.
  const SwitchoverPlan cold = PlanOk({Cold("vm", 0, 8 * kGiB)}, Link(), seconds(1));
  EXPECT_EQ(cold.vms.at(0).fallback, Fallback::kSkip);
}

TEST(SwitchoverWarmVm, RemainingIsReadOnlyForWarmVms) {
  VmToMove vm = Cold("vm", 0, 1 * kGiB);
  vm.warm_remaining_bytes = 10 * kMiB;  // stale from an earlier warm-up; ignored
  const SwitchoverPlan plan = PlanOk({vm}, Link(), seconds(10));
  EXPECT_EQ(plan.vms.at(0).fallback, Fallback::kSkip);
}

TEST(SwitchoverManyVms, TheLastOnesDoNotFitAndAreReportedWithTheirFallback) {
  // Budget 24 s, deadline 30 s, 11.87 s per cold GiB. "small" needs 0.13 + 1.5 + 1 = 2.63 s.
  const SwitchoverPlan plan = PlanOk({Cold("vm1", 9, 1 * kGiB), Cold("vm2", 8, 1 * kGiB), Cold("vm3", 7, 1 * kGiB),
                                      Cold("vm4", 6, 1 * kGiB), Cold("small", 5, 100 * kMiB)},
                                     Link(), seconds(30));
  ASSERT_THAT(Order(plan), ElementsAre("vm1", "vm2", "vm3", "vm4", "small"));
  EXPECT_TRUE(plan.vms[0].feasible);
  EXPECT_TRUE(plan.vms[1].feasible);
  ExpectNear(plan.vms[1].expected_finish, 2 * kColdGiB);
  for (int i : {2, 3}) {
    EXPECT_EQ(plan.vms[i].fallback, Fallback::kSkip) << plan.vms[i].name;
    // Skipped VMs do not occupy the link: both would have started when vm2 is done.
    EXPECT_EQ(plan.vms[i].start, plan.vms[1].expected_finish);
    EXPECT_EQ(plan.vms[i].reason, "would not finish before the deadline: needs 11.87 s, has 6.26 s");
  }
  // "small" misses the budget (23.74 + 2.63 > 24) but not the deadline.
  EXPECT_EQ(plan.vms[4].fallback, Fallback::kPostcopyImmediately);
  EXPECT_EQ(plan.vms[4].start, plan.vms[1].expected_finish);
  EXPECT_EQ(plan.vms[4].precopy, Duration::zero());
  // A VM running inside the margin leaves no slack for anyone's precopy.
  EXPECT_EQ(plan.vms[0].precopy, Duration::zero());
  EXPECT_EQ(plan.vms[1].precopy, Duration::zero());
}

TEST(SwitchoverManyVms, ASmallerVmAfterASkippedOneStillFitsAndSlackGoesToTheFirst) {
  // Budget 32 s: a (11.87 s), b (to 23.74 s), big skipped (needs 42.59 s), tiny (1.73 s, to 25.47 s).
  const SwitchoverPlan plan = PlanOk({Cold("a", 3, 1 * kGiB, 10 * kMiB), Cold("b", 2, 1 * kGiB, 10 * kMiB),
                                      Cold("big", 1, 4 * kGiB), Cold("tiny", 0, 10 * kMiB)},
                                     Link(), seconds(40));
  ASSERT_THAT(Order(plan), ElementsAre("a", "b", "big", "tiny"));
  EXPECT_TRUE(plan.vms[0].feasible);
  EXPECT_TRUE(plan.vms[1].feasible);
  EXPECT_EQ(plan.vms[2].fallback, Fallback::kSkip);
  EXPECT_TRUE(plan.vms[3].feasible);
  // Slack 32 - 25.47 = 6.53 s: a takes a full pass (delay 1.024 s), b too, and tiny (clean) as well.
  ExpectNear(plan.vms[0].precopy, milliseconds(10240));
  ExpectNear(plan.vms[1].precopy, milliseconds(10240));
  ExpectNear(plan.vms[1].start, kColdGiB + milliseconds(1024));
  ExpectNear(plan.vms[3].expected_finish, 2 * kColdGiB + milliseconds(2048) + milliseconds(1730));
  EXPECT_LE(plan.vms[3].expected_finish, seconds(32));
}

TEST(SwitchoverManyVms, SlackRunsOutPartWayDownTheOrder) {
  // Fastest: a to 11.87 s, b to 23.74 s; budget 24.24 s leaves 0.5 s: a precopies 5 s, b nothing.
  const Duration deadline = FromSeconds(24.24 / 0.8);
  const SwitchoverPlan plan =
      PlanOk({Cold("a", 1, 1 * kGiB, 10 * kMiB), Cold("b", 0, 1 * kGiB, 10 * kMiB)}, Link(), deadline);
  EXPECT_LE(std::abs((plan.vms.at(0).precopy - seconds(5)).count()), 1000);
  EXPECT_LE(plan.vms.at(1).precopy, Duration(100));
  EXPECT_EQ(plan.vms.at(1).start, plan.vms.at(0).expected_finish);
  EXPECT_LE(plan.vms.at(1).expected_finish, FromSeconds(24.24));
  EXPECT_TRUE(plan.vms.at(1).feasible);
}

TEST(SwitchoverEdges, NoTimeLeftSkipsEverything) {
  for (Duration deadline : {Duration::zero(), Duration(-seconds(5))}) {
    const SwitchoverPlan plan = PlanOk({Cold("a", 1, 1 * kGiB), Warm("b", 0, 1 * kGiB, 1 * kMiB)}, Link(), deadline);
    for (const VmPlan& vm : plan.vms) {
      EXPECT_EQ(vm.fallback, Fallback::kSkip) << vm.name;
      EXPECT_THAT(vm.reason, HasSubstr("has 0.00 s"));
      EXPECT_EQ(vm.start, Duration::zero());
    }
  }
}

TEST(SwitchoverEdges, ZeroBandwidthSkipsEverythingAsNeverFinishing) {
  const SwitchoverPlan plan =
      PlanOk({Cold("a", 1, 1 * kGiB), Warm("b", 0, 1 * kGiB, 1 * kMiB)}, Link(/*bandwidth=*/0), seconds(3600));
  for (const VmPlan& vm : plan.vms) {
    EXPECT_EQ(vm.fallback, Fallback::kSkip) << vm.name;
    EXPECT_EQ(vm.expected_finish, kNever);
    EXPECT_EQ(vm.reason, "would not finish before the deadline: needs unbounded time, has 3600.00 s");
  }
}

TEST(SwitchoverEdges, EmptyListGivesAnEmptyPlan) { EXPECT_TRUE(PlanOk({}, Link(), seconds(30)).vms.empty()); }

TEST(SwitchoverEdges, HugeNumbersSaturateInsteadOfOverflowing) {
  // A link fast enough for anything: even 2^64 - 1 bytes of RAM plus as much disk fits in 30 s.
  VmToMove huge = Cold("huge", std::numeric_limits<uint32_t>::max(), kMaxBytes, kMaxBytes, kMaxBytes);
  VmToMove huge_warm = Warm("huge-warm", 0, kMaxBytes, kMaxBytes);
  huge_warm.disk_delta_bytes = kMaxBytes;
  const SwitchoverPlan fast = PlanOk({huge, huge_warm}, Link(1e300), seconds(30));
  EXPECT_TRUE(fast.vms.at(0).feasible);
  EXPECT_TRUE(fast.vms.at(1).feasible);
  EXPECT_LE(fast.vms.at(0).expected_finish, seconds(24));
  EXPECT_LE(fast.vms.at(1).expected_finish, seconds(24));

  // At 1 byte/s nothing finishes, even with an endless deadline.
  const SwitchoverPlan slow = PlanOk({huge, huge_warm}, Link(1.0, 0.0), Duration::max());
  for (const VmPlan& vm : slow.vms) {
    EXPECT_EQ(vm.fallback, Fallback::kSkip) << vm.name;
    EXPECT_EQ(vm.expected_finish, kNever);
  }

  // 2^64 - 1 bytes at 1.5e10 bytes/s take ~1.23e18 ns: seven fit in the ~9.22e18 ns of an endless
  // deadline, the eighth's finish would overflow and saturates to "never" instead.
  std::vector<VmToMove> many;
  for (int i = 0; i < 8; ++i) many.push_back(Cold("vm" + std::to_string(i), 8 - i, kMaxBytes));
  const SwitchoverPlan endless = PlanOk(many, Link(1.5e10, 0.0), Duration::max());
  for (int i = 0; i < 7; ++i) {
    EXPECT_TRUE(endless.vms.at(i).feasible) << i;
    if (i > 0) {
      EXPECT_GT(endless.vms.at(i).start, endless.vms.at(i - 1).start);
    }
  }
  EXPECT_EQ(endless.vms.at(7).fallback, Fallback::kSkip);
  EXPECT_EQ(endless.vms.at(7).expected_finish, kNever);
}

TEST(SwitchoverEdges, RandomPlansKeepTheirInvariants) {
  std::mt19937_64 random(20240611);
  for (int round = 0; round < 300; ++round) {
    std::vector<VmToMove> vms;
    const int count = static_cast<int>(random() % 8);
    for (int i = 0; i < count; ++i) {
      VmToMove vm = Cold("vm" + std::to_string(i), static_cast<uint32_t>(random() % 3), 1 + random() % (4 * kGiB),
                         random() % (150 * kMiB), random() % (512 * kMiB));
      if (random() % 3 == 0) {
        vm.warm = true;
        vm.warm_remaining_bytes = random() % (vm.ram_bytes / 4 + 1);
      }
      vms.push_back(vm);
    }
    const double margin = static_cast<double>(random() % 50) / 100;
    const Duration deadline = milliseconds(static_cast<int64_t>(random() % 120'000) - 5'000);
    const Duration budget = FromSeconds(std::chrono::duration<double>(deadline).count() * (1 - margin));
    const SwitchoverPlan plan = PlanOk(vms, Link(100.0 * kMiB, margin), deadline);
    ASSERT_EQ(plan.vms.size(), vms.size());

    Duration link_free_at = Duration::zero();
    bool fallback_ran = false;
    for (const VmPlan& p : plan.vms) {
      const VmToMove& in = *std::find_if(vms.begin(), vms.end(), [&](const VmToMove& v) { return v.name == p.name; });
      EXPECT_EQ(p.start, link_free_at) << p.name;
      EXPECT_EQ(p.feasible, p.fallback == Fallback::kNone) << p.name;
      EXPECT_EQ(p.reason.empty(), p.feasible) << p.name;
      EXPECT_LE(p.postcopy_bytes, in.ram_bytes) << p.name;
      if (p.feasible) {
        EXPECT_LE(p.expected_finish, budget + Duration(1)) << p.name;
      }
      if (p.fallback == Fallback::kPostcopyImmediately) {
        EXPECT_LE(p.expected_finish, deadline) << p.name;
      }
      if (p.fallback == Fallback::kSkip) {
        EXPECT_GT(p.expected_finish, deadline) << p.name;
      }
      if (p.precopy > Duration::zero()) {
        EXPECT_TRUE(p.feasible && !in.warm && !fallback_ran) << p.name;
      }
      if (p.fallback == Fallback::kPostcopyImmediately) fallback_ran = true;
      if (p.fallback != Fallback::kSkip) link_free_at = p.expected_finish;
    }
  }
}

TEST(SwitchoverValidation, MalformedLinkFactsNameTheField) {
  struct Case {
    LinkFacts link;
    std::string field;
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<Case> cases = {
      {Link(-1), "bandwidth_bytes_per_s"},   {Link(nan), "bandwidth_bytes_per_s"},
      {Link(inf), "bandwidth_bytes_per_s"},  {Link(1e8, 1.0), "safety_margin"},
      {Link(1e8, -0.1), "safety_margin"},    {Link(1e8, nan), "safety_margin"},
  };
  LinkFacts negative_start = Link();
  negative_start.fixed_start_cost = -milliseconds(1);
  cases.push_back({negative_start, "fixed_start_cost"});
  LinkFacts negative_snapshot = Link();
  negative_snapshot.snapshot_cost = -milliseconds(1);
  cases.push_back({negative_snapshot, "snapshot_cost"});

  for (const Case& c : cases) {
    StatusOr<SwitchoverPlan> plan = PlanSwitchover({Cold("vm", 0, kGiB)}, c.link, seconds(30));
    ASSERT_FALSE(plan.ok()) << c.field;
    EXPECT_EQ(plan.status().code(), Code::kInvalidArgument);
    EXPECT_THAT(plan.status().message(), HasSubstr(c.field));
    StatusOr<uint64_t> largest = LargestFittingTransfer(c.link, seconds(30));
    ASSERT_FALSE(largest.ok()) << c.field;
    EXPECT_THAT(largest.status().message(), HasSubstr(c.field));
  }
}

TEST(SwitchoverValidation, MalformedVmsNameTheVmAndTheField) {
  VmToMove too_warm = Warm("w", 0, kGiB, kGiB + 1);
  const std::vector<std::pair<std::vector<VmToMove>, std::string>> cases = {
      {{Cold("", 0, kGiB)}, "VM #0 has an empty name"},
      {{Cold("a", 0, kGiB), Cold("a", 1, kGiB)}, "VM 'a' is listed twice"},
      {{Cold("z", 0, 0)}, "VM 'z' has ram_bytes 0"},
      {{too_warm}, "VM 'w' is warm with warm_remaining_bytes 1073741825 > ram_bytes 1073741824"},
  };
  for (const auto& [vms, message] : cases) {
    StatusOr<SwitchoverPlan> plan = PlanSwitchover(vms, Link(), seconds(30));
    ASSERT_FALSE(plan.ok()) << message;
    EXPECT_EQ(plan.status().code(), Code::kInvalidArgument);
    EXPECT_THAT(plan.status().message(), HasSubstr(message));
  }
}

TEST(SwitchoverLargestFittingTransfer, IsExactlyTheFeasibilityLimitOfTheBudget) {
  struct Case {
    double bandwidth;
    double margin;
    Duration deadline;
  };
  for (const Case& c : {Case{100.0 * kMiB, 0.2, seconds(30)}, Case{125e6, 0.0, seconds(30)},
                        Case{123456789.0, 0.37, milliseconds(7777)}, Case{3.0, 0.1, seconds(5)},
                        Case{1e12, 0.2, seconds(600)}}) {
    const LinkFacts link = Link(c.bandwidth, c.margin);
    StatusOr<uint64_t> largest = LargestFittingTransfer(link, c.deadline);
    ASSERT_TRUE(largest.ok()) << largest.status().ToString();
    const uint64_t x = *largest;
    // The closed form B * (budget - snapshot - start), to rounding.
    const double available_s = std::chrono::duration<double>(c.deadline).count() * (1 - c.margin) - 1.63;
    EXPECT_NEAR(static_cast<double>(x), c.bandwidth * available_s, c.bandwidth * 2e-9 + 1) << c.bandwidth;

    // Split over RAM and dirty disk: exactly x is feasible; one byte more is not.
    const uint64_t disk = x / 4;
    const SwitchoverPlan fits = PlanOk({Cold("vm", 0, x - disk, 0, disk)}, link, c.deadline);
    EXPECT_TRUE(fits.vms.at(0).feasible) << c.bandwidth;
    const SwitchoverPlan over = PlanOk({Cold("vm", 0, x - disk + 1, 0, disk)}, link, c.deadline);
    EXPECT_FALSE(over.vms.at(0).feasible) << c.bandwidth;
  }
}

TEST(SwitchoverLargestFittingTransfer, ZeroWhenNotEvenTheFixedCostsFitOrNothingMoves) {
  EXPECT_EQ(*LargestFittingTransfer(Link(), milliseconds(2000)), 0u);  // budget 1.6 s < 1.63 s
  EXPECT_EQ(*LargestFittingTransfer(Link(), -seconds(1)), 0u);
  EXPECT_EQ(*LargestFittingTransfer(Link(0), seconds(3600)), 0u);
}

TEST(SwitchoverLargestFittingTransfer, SaturatesAtTheLargestByteCount) {
  EXPECT_EQ(*LargestFittingTransfer(Link(1e300), seconds(30)), kMaxBytes);
  EXPECT_EQ(*LargestFittingTransfer(Link(1e10, 0.0), Duration::max()), kMaxBytes);
}

TEST(SwitchoverFallback, NamesAreDistinct) {
  EXPECT_EQ(FallbackName(Fallback::kNone), "none");
  EXPECT_EQ(FallbackName(Fallback::kPostcopyImmediately), "postcopy-immediately");
  EXPECT_EQ(FallbackName(Fallback::kSkip), "skip");
}

}  // namespace
}  // namespace vs::switchover
