#include "scheduler/placement.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <tuple>

namespace vs::scheduler {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr uint64_t kMiB = 1024;
constexpr uint64_t kGiB = 1024 * kMiB;

// A 16-vCPU, 64 GiB host with nothing on it.
Host MakeHost(std::string name, std::string zone, double cost = 0.10) {
  Host h;
  h.name = std::move(name);
  h.zone = std::move(zone);
  h.cost_per_hour = cost;
  h.total_vcpus = 16;
  h.total_memory_kib = 64 * kGiB;
  return h;
}

// A 2-vCPU, 4 GiB shadow of a VM on `primary`.
ShadowRequest MakeRequest(std::string primary, ZoneRule rule = ZoneRule::kPreferOther, std::string vm_id = "vm-1") {
  ShadowRequest r;
  r.vm_id = std::move(vm_id);
  r.vm_name = "web-" + r.vm_id;
  r.primary_host = std::move(primary);
  r.shadow_vcpus = 2;
  r.shadow_memory_kib = 4 * kGiB;
  r.zone_rule = rule;
  return r;
}

Placement PlaceOk(const std::vector<Host>& hosts, const ShadowRequest& r, const PlacementOptions& o = {}) {
  StatusOr<Placement> p = Place(hosts, r, o);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  return p.ok() ? *p : Placement{};
}

Explanation ExplainOk(const std::vector<Host>& hosts, const ShadowRequest& r, const PlacementOptions& o = {}) {
  StatusOr<Explanation> e = Explain(hosts, r, o);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return e.ok() ? *e : Explanation{};
}

const HostVerdict& VerdictFor(const Explanation& e, const std::string& host) {
  auto it = std::find_if(e.hosts.begin(), e.hosts.end(), [&](const HostVerdict& v) { return v.host == host; });
  EXPECT_NE(it, e.hosts.end()) << host;
  static const HostVerdict kMissing{};
  return it == e.hosts.end() ? kMissing : *it;
}

std::string ReasonFor(const std::vector<Host>& hosts, const ShadowRequest& r, const std::string& host,
                      const PlacementOptions& o = {}) {
  return VerdictFor(ExplainOk(hosts, r, o), host).reason;
}

// ---------------------------------------------------------------- basic rules

TEST(SchedulerPlaceTest, ChoosesTheCheapestHost) {
  std::vector<Host> hosts = {MakeHost("p", "a", 0.01), MakeHost("x", "b", 0.30), MakeHost("y", "b", 0.10),
                             MakeHost("z", "b", 0.20)};
  Placement p = PlaceOk(hosts, MakeRequest("p"));
  EXPECT_EQ(p.outcome, PlacementOutcome::kPlaced);
  EXPECT_THAT(p.hosts, ElementsAre("y"));
  EXPECT_EQ(p.vm_id, "vm-1");
  EXPECT_THAT(p.summary, IsEmpty());
}

TEST(SchedulerPlaceTest, NeverOnThePrimaryHostEvenIfItIsTheBest) {
  std::vector<Host> hosts = {MakeHost("p", "a", 0.01), MakeHost("q", "a", 0.50)};
  EXPECT_THAT(PlaceOk(hosts, MakeRequest("p", ZoneRule::kAny)).hosts, ElementsAre("q"));

  std::vector<Host> only_primary = {MakeHost("p", "a")};
  Placement p = PlaceOk(only_primary, MakeRequest("p", ZoneRule::kAny));
  EXPECT_EQ(p.outcome, PlacementOutcome::kUnplaced);
  EXPECT_EQ(p.summary, "no host can take a shadow of 4096 MiB and 2 vCPUs: there is no host other than the primary's");
}

TEST(SchedulerPlaceTest, NeverOnADownHost) {
  std::vector<Host> hosts = {MakeHost("p", "a"), MakeHost("cheap", "b", 0.05), MakeHost("dear", "b", 0.20)};
  hosts[1].up = false;
  EXPECT_THAT(PlaceOk(hosts, MakeRequest("p")).hosts, ElementsAre("dear"));
}

TEST(SchedulerPlaceTest, PrimaryMayBeDown) {
  std::vector<Host> hosts = {MakeHost("p", "a"), MakeHost("q", "b")};
  hosts[0].up = false;
  EXPECT_THAT(PlaceOk(hosts, MakeRequest("p")).hosts, ElementsAre("q"));
}

TEST(SchedulerPlaceTest, ExcludedHostsAreSkippedAndUnknownNamesIgnored) {
  std::vector<Host> hosts = {MakeHost("p", "a"), MakeHost("b1", "b", 0.05), MakeHost("b2", "b", 0.10),
                             MakeHost("b3", "b", 0.20)};
  ShadowRequest r = MakeRequest("p");
  r.exclude_hosts = {"b1", "gone-host"};
  EXPECT_THAT(PlaceOk(hosts, r).hosts, ElementsAre("b2"));
  r.exclude_hosts = {"b1", "b2", "b3"};
  Placement p = PlaceOk(hosts, r);
  EXPECT_EQ(p.outcome, PlacementOutcome::kUnplaced);
  EXPECT_THAT(p.summary, HasSubstr("of the 3 other hosts, 3 are excluded by the request"));
}

// ---------------------------------------------------------------- k shadows

TEST(SchedulerPlaceTest, TwoShadowsGoToTwoDistinctHostsBestFirst) {
  std::vector<Host> hosts = {MakeHost("p", "a"), MakeHost("c", "b", 0.30), MakeHost("b", "b", 0.20),
                             MakeHost("a", "b", 0.10)};
  ShadowRequest r = MakeRequest("p");
  r.shadow_count = 2;
  Placement p = PlaceOk(hosts, r);
  EXPECT_EQ(p.outcome, PlacementOutcome::kPlaced);
  EXPECT_THAT(p.hosts, ElementsAre("a", "b"));
}

TEST(SchedulerPlaceTest, ThreeShadowsUseThreeHostsEvenWhenOneHostCouldHoldAll) {
  std::vector<Host> hosts = {MakeHost("p", "a"), MakeHost("big", "b", 0.01), MakeHost("m1", "b", 0.10),
                             MakeHost("m2", "c", 0.10)};
  hosts[1].total_memory_kib = 1024 * kGiB;
  ShadowRequest r = MakeRequest("p");
  r.shadow_count = 3;
  Placement p = PlaceOk(hosts, r);
  EXPECT_EQ(p.outcome, PlacementOutcome::kPlaced);
  EXPECT_THAT(p.hosts, ElementsAre("big", "m1", "m2"));
}

TEST(SchedulerPlaceTest, FewerHostsThanShadowsIsPartialWithReason) {
  std::vector<Host> hosts = {MakeHost("p", "a"), MakeHost("b1", "b"), MakeHost("b2", "b"), MakeHost("b3", "b")};
  hosts[2].used_memory_kib = 63 * kGiB;
  hosts[3].up = false;
  ShadowRequest r = MakeRequest("p");
  r.shadow_count = 3;
  Placement p = PlaceOk(hosts, r);
  EXPECT_EQ(p.outcome, PlacementOutcome::kPartiallyPlaced);
  EXPECT_THAT(p.hosts, ElementsAre("b1"));
  EXPECT_EQ(p.summary, "only 1 of 3 shadows placed: of the 3 other hosts, 1 lacks memory and 1 is down");
}

TEST(SchedulerPlaceTest, PartialWhenEveryOtherHostIsAlreadyChosen) {
  std::vector<Host> hosts = {MakeHost("p", "a"), MakeHost("b1", "b")};
  ShadowRequest r = MakeRequest("p");
  r.shadow_count = 2;
  Placement p = PlaceOk(hosts, r);
  EXPECT_EQ(p.outcome, PlacementOutcome::kPartiallyPlaced);
  EXPECT_EQ(p.summary, "only 1 of 2 shadows placed: there is only 1 other host");
}

// ---------------------------------------------------------------- capacity

TEST(SchedulerPlaceTest, MemoryFitsExactlyButNotOneKiBMore) {
  std::vector<Host> hosts = {MakeHost("p", "a"), MakeHost("q", "b")};
  hosts[1].total_memory_kib = 64 * kGiB;
  hosts[1].used_memory_kib = 40 * kGiB;
  hosts[1].reserved_memory_kib = 20 * kGiB;  // 4 GiB free
  ShadowRequest r = MakeRequest("p");
  EXPECT_EQ(PlaceOk(hosts, r).outcome, PlacementOutcome::kPlaced);
  r.shadow_memory_kib = 4 * kGiB + 1;
  EXPECT_EQ(PlaceOk(hosts, r).outcome, PlacementOutcome::kUnplaced);
}

TEST(SchedulerPlaceTest, MemoryIsNeverOvercommittedWhateverTheVcpuRatio) {
  std::vector<Host> hosts = {MakeHost("p", "a"), MakeHost("q", "b")};
  hosts[1].used_memory_kib = 62 * kGiB;
  PlacementOptions generous;
  generous.vcpu_overcommit_ratio = 100;
  Placement p = PlaceOk(hosts, MakeRequest("p"), generous);
  EXPECT_EQ(p.outcome, PlacementOutcome::kUnplaced);
  EXPECT_THAT(p.summary, HasSubstr("1 lacks memory"));
}

TEST(SchedulerPlaceTest, VcpusOvercommitFourToOneByDefault) {
  std::vector<Host> hosts = {MakeHost("p", "a"), MakeHost("q", "b")};
  hosts[1].total_vcpus = 4;   // capacity 16
  hosts[1].used_vcpus = 10;
  hosts[1].reserved_vcpus = 4;  // 2 free
  ShadowRequest r = MakeRequest("p");
  r.shadow_vcpus = 2;
  EXPECT_EQ(PlaceOk(hosts, r).outcome, PlacementOutcome::kPlaced);
  r.shadow_vcpus = 3;
  Placement p = PlaceOk(hosts, r);
  EXPECT_EQ(p.outcome, PlacementOutcome::kUnplaced);
  EXPECT_THAT(p.summary, HasSubstr("1 lacks vCPUs"));
}

TEST(SchedulerPlaceTest, OvercommitRatioIsConfigurableAndRoundsDown) {
  std::vector<Host> hosts = {MakeHost("p", "a"), MakeHost("q", "b")};
  hosts[1].total_vcpus = 3;
  hosts[1].used_vcpus = 2;
  ShadowRequest r = MakeRequest("p");
  r.shadow_vcpus = 2;
  PlacementOptions none;
  none.vcpu_overcommit_ratio = 1.0;  // 3 capacity, 1 free
  EXPECT_EQ(PlaceOk(hosts, r, none).outcome, PlacementOutcome::kUnplaced);
  PlacementOptions one_and_a_half;
  one_and_a_half.vcpu_overcommit_ratio = 1.5;  // 4.5 -> 4 capacity, 2 free
  EXPECT_EQ(PlaceOk(hosts, r, one_and_a_half).outcome, PlacementOutcome::kPlaced);
  r.shadow_vcpus = 3;
  EXPECT_EQ(PlaceOk(hosts, r, one_and_a_half).outcome, PlacementOutcome::kUnplaced);
}

TEST(SchedulerPlaceTest, AnAlreadyOvercommittedHostHasNoRoom) {
  std::vector<Host> hosts = {MakeHost("p", "a"), MakeHost("q", "b")};
  hosts[1].used_memory_kib = 70 * kGiB;  // more than its 64 GiB total
  Placement p = PlaceOk(hosts, MakeRequest("p"));
  EXPECT_EQ(p.outcome, PlacementOutcome::kUnplaced);
  EXPECT_EQ(ReasonFor(hosts, MakeRequest("p"), "q"),
            "rejected: not enough memory: needs 4096 MiB, 0 MiB free "
            "(65536 MiB total, 71680 MiB used, 0 MiB reserved)");
}

TEST(SchedulerPlaceTest, NoCapacityAnywhereIsUnplacedWithACountOfReasons) {
  std::vector<Host> hosts = {MakeHost("p", "a"), MakeHost("b1", "b"), MakeHost("b2", "b"), MakeHost("b3", "b"),
                             MakeHost("b4", "b", 0.90)};
  hosts[1].used_memory_kib = 63 * kGiB;
  hosts[2].used_memory_kib = 62 * kGiB;
  hosts[3].up = false;
  ShadowRequest r = MakeRequest("p");
  r.max_cost_per_hour = 0.5;
  Placement p = PlaceOk(hosts, r);
  EXPECT_EQ(p.outcome, PlacementOutcome::kUnplaced);
  EXPECT_THAT(p.hosts, IsEmpty());
  EXPECT_EQ(p.summary,
            "no host can take a shadow of 4096 MiB and 2 vCPUs: of the 4 other hosts, 2 lack memory, 1 is down "
            "and 1 costs more than the cap 0.50/h");
}

// ---------------------------------------------------------------- zones

TEST(SchedulerPlaceTest, RequireOtherRejectsThePrimarysZone) {
  std::vector<Host> hosts = {MakeHost("p", "a"), MakeHost("same", "a", 0.01), MakeHost("other", "b", 0.50)};
  EXPECT_THAT(PlaceOk(hosts, MakeRequest("p", ZoneRule::kRequireOther)).hosts, ElementsAre("other"));
}

// prefer-other ranks the zone before cost: a shadow in the primary's zone fails with it.
TEST(SchedulerPlaceTest, PreferOtherTakesAnotherZoneEvenIfDearer) {
  std::vector<Host> hosts = {MakeHost("p", "a"), MakeHost("same", "a", 0.01), MakeHost("other", "b", 0.50)};
  ShadowRequest r = MakeRequest("p", ZoneRule::kPreferOther);
  EXPECT_THAT(PlaceOk(hosts, r).hosts, ElementsAre("other"));
  r.shadow_count = 2;
  EXPECT_THAT(PlaceOk(hosts, r).hosts, ElementsAre("other", "same"));
}

TEST(SchedulerPlaceTest, PreferOtherFallsBackToThePrimarysZone) {
  std::vector<Host> hosts = {MakeHost("p", "a"), MakeHost("same", "a"), MakeHost("other", "b")};
  hosts[2].used_memory_kib = 64 * kGiB;
  EXPECT_THAT(PlaceOk(hosts, MakeRequest("p", ZoneRule::kPreferOther)).hosts, ElementsAre("same"));
}

TEST(SchedulerPlaceTest, AnyIgnoresZones) {
  std::vector<Host> hosts = {MakeHost("p", "a"), MakeHost("same", "a", 0.01), MakeHost("other", "b", 0.50)};
  EXPECT_THAT(PlaceOk(hosts, MakeRequest("p", ZoneRule::kAny)).hosts, ElementsAre("same"));
}

TEST(SchedulerPlaceTest, OneZoneOnlyUnderEachRule) {
  std::vector<Host> hosts = {MakeHost("p", "a"), MakeHost("q", "a"), MakeHost("r", "a", 0.05)};
  Placement require = PlaceOk(hosts, MakeRequest("p", ZoneRule::kRequireOther));
  EXPECT_EQ(require.outcome, PlacementOutcome::kUnplaced);
  EXPECT_EQ(require.summary,
            "no host can take a shadow of 4096 MiB and 2 vCPUs: of the 2 other hosts, 2 are in the primary's zone "
            "(the policy requires another)");
  EXPECT_THAT(PlaceOk(hosts, MakeRequest("p", ZoneRule::kPreferOther)).hosts, ElementsAre("r"));
  EXPECT_THAT(PlaceOk(hosts, MakeRequest("p", ZoneRule::kAny)).hosts, ElementsAre("r"));
}

// ---------------------------------------------------------------- cost cap

TEST(SchedulerPlaceTest, CostCapExcludesDearerHostsButAllowsEqual) {
  std::vector<Host> hosts = {MakeHost("p", "a"), MakeHost("dear", "b", 0.30), MakeHost("at-cap", "b", 0.20)};
  hosts[2].used_memory_kib = 60 * kGiB;  // fits, but only just
  ShadowRequest r = MakeRequest("p");
  r.shadow_count = 2;
  r.max_cost_per_hour = 0.20;
  Placement p = PlaceOk(hosts, r);
  EXPECT_EQ(p.outcome, PlacementOutcome::kPartiallyPlaced);
  EXPECT_THAT(p.hosts, ElementsAre("at-cap"));
  EXPECT_EQ(p.summary, "only 1 of 2 shadows placed: of the 2 other hosts, 1 costs more than the cap 0.20/h");
  r.max_cost_per_hour = 0.10;
  EXPECT_EQ(PlaceOk(hosts, r).outcome, PlacementOutcome::kUnplaced);
  r.max_cost_per_hour.reset();
  EXPECT_THAT(PlaceOk(hosts, r).hosts, ElementsAre("at-cap", "dear"));
}

// ---------------------------------------------------------------- ties

TEST(SchedulerPlaceTest, SameCostPrefersMoreFreeMemory) {
  std::vector<Host> hosts = {MakeHost("p", "a"), MakeHost("fuller", "b"), MakeHost("emptier", "b")};
  hosts[1].used_memory_kib = 10 * kGiB;
  hosts[2].used_memory_kib = 5 * kGiB;
  EXPECT_THAT(PlaceOk(hosts, MakeRequest("p")).hosts, ElementsAre("emptier"));
}

TEST(SchedulerPlaceTest, FullTieIsBrokenByNameNotInputOrder) {
  std::vector<Host> hosts = {MakeHost("p", "a"), MakeHost("zeta", "b"), MakeHost("alpha", "b"), MakeHost("mu", "b")};
  ShadowRequest r = MakeRequest("p");
  r.shadow_count = 3;
  EXPECT_THAT(PlaceOk(hosts, r).hosts, ElementsAre("alpha", "mu", "zeta"));
  std::reverse(hosts.begin(), hosts.end());
  EXPECT_THAT(PlaceOk(hosts, r).hosts, ElementsAre("alpha", "mu", "zeta"));
}

TEST(SchedulerPlaceTest, PreferOtherTieGoesToOtherZoneBeforeFreeMemory) {
  std::vector<Host> hosts = {MakeHost("p", "a"), MakeHost("same-roomy", "a"), MakeHost("other-tight", "b")};
  hosts[2].used_memory_kib = 50 * kGiB;
  EXPECT_THAT(PlaceOk(hosts, MakeRequest("p", ZoneRule::kPreferOther)).hosts, ElementsAre("other-tight"));
  EXPECT_THAT(PlaceOk(hosts, MakeRequest("p", ZoneRule::kAny)).hosts, ElementsAre("same-roomy"));
}

// ---------------------------------------------------------------- explanations

TEST(SchedulerExplainTest, RejectionReasonsInPlainWords) {
  std::vector<Host> hosts = {MakeHost("p", "zone-a"),        MakeHost("excl", "zone-b"),
                             MakeHost("down", "zone-b"),     MakeHost("same-zone", "zone-a"),
                             MakeHost("dear", "zone-b", 0.30), MakeHost("no-mem", "zone-b"),
                             MakeHost("no-cpu", "zone-b")};
  hosts[2].up = false;
  Host& no_mem = hosts[5];
  no_mem.total_memory_kib = 512 * kMiB;
  no_mem.used_memory_kib = 320 * kMiB;
  no_mem.reserved_memory_kib = 128 * kMiB;
  Host& no_cpu = hosts[6];
  no_cpu.total_vcpus = 8;
  no_cpu.used_vcpus = 20;
  no_cpu.reserved_vcpus = 10;
  ShadowRequest r = MakeRequest("p", ZoneRule::kRequireOther);
  r.shadow_memory_kib = 128 * kMiB;
  r.shadow_vcpus = 4;
  r.max_cost_per_hour = 0.20;
  r.exclude_hosts = {"excl"};

  Explanation e = ExplainOk(hosts, r);
  EXPECT_EQ(e.placement.outcome, PlacementOutcome::kUnplaced);
  EXPECT_EQ(VerdictFor(e, "p").reason, "rejected: it is the primary's host");
  EXPECT_EQ(VerdictFor(e, "excl").reason,
            "rejected: excluded by the request (it holds another shadow of this VM, still defines the VM, "
            "or is not the host a failback asked for)");
  EXPECT_EQ(VerdictFor(e, "down").reason, "rejected: host is down");
  EXPECT_EQ(VerdictFor(e, "same-zone").reason,
            "rejected: zone-a is the primary's zone and the policy requires another zone");
  EXPECT_EQ(VerdictFor(e, "dear").reason, "rejected: costs 0.30/h, above the policy's cap 0.20/h");
  EXPECT_EQ(VerdictFor(e, "no-mem").reason,
            "rejected: not enough memory: needs 128 MiB, 64 MiB free (512 MiB total, 320 MiB used, 128 MiB reserved)");
  EXPECT_EQ(VerdictFor(e, "no-cpu").reason,
            "rejected: not enough vCPUs: needs 4, 2 free (8 physical x 4 overcommit = 32, 20 used, 10 reserved)");
  for (const HostVerdict& v : e.hosts) {
    EXPECT_EQ(v.verdict, Verdict::kRejected) << v.host;
    EXPECT_EQ(v.rank, 0) << v.host;
  }
}

TEST(SchedulerExplainTest, FirstFailingRuleIsTheOneReported) {
  std::vector<Host> hosts = {MakeHost("p", "a"), MakeHost("q", "a", 0.90)};
  hosts[1].up = false;
  hosts[1].used_memory_kib = 64 * kGiB;
  ShadowRequest r = MakeRequest("p", ZoneRule::kRequireOther);
  r.max_cost_per_hour = 0.10;
  EXPECT_EQ(ReasonFor(hosts, r, "q"), "rejected: host is down");
  hosts[1].up = true;
  EXPECT_EQ(ReasonFor(hosts, r, "q"), "rejected: a is the primary's zone and the policy requires another zone");
  r.zone_rule = ZoneRule::kAny;
  EXPECT_EQ(ReasonFor(hosts, r, "q"), "rejected: costs 0.90/h, above the policy's cap 0.10/h");
}

TEST(SchedulerExplainTest, ChosenAndEligibleHostsSayTheirRankAndWhy) {
  std::vector<Host> hosts = {MakeHost("p", "zone-a"), MakeHost("c", "zone-b", 0.30), MakeHost("b", "zone-b", 0.125),
                             MakeHost("a", "zone-b", 0.10), MakeHost("s", "zone-a", 0.01)};
  ShadowRequest r = MakeRequest("p", ZoneRule::kPreferOther);
  r.shadow_count = 2;
  Explanation e = ExplainOk(hosts, r);
  EXPECT_THAT(e.placement.hosts, ElementsAre("a", "b"));
  ASSERT_EQ(e.hosts.size(), hosts.size());
  EXPECT_EQ(e.hosts[0].host, "a");
  EXPECT_EQ(e.hosts[0].verdict, Verdict::kChosen);
  EXPECT_EQ(e.hosts[0].rank, 1);
  EXPECT_EQ(e.hosts[0].reason, "chosen: cheapest eligible host (0.10/h) in another zone (zone-b)");
  EXPECT_EQ(e.hosts[1].reason,
            "chosen: rank 2 of 4 eligible hosts (0.125/h) in another zone (zone-b); ranked after a, which is "
            "cheaper (0.10/h vs 0.125/h)");
  EXPECT_EQ(e.hosts[2].host, "c");
  EXPECT_EQ(e.hosts[2].verdict, Verdict::kEligibleNotChosen);
  EXPECT_EQ(e.hosts[2].reason,
            "eligible but not chosen: rank 3 of 4 (0.30/h) in another zone (zone-b); ranked after b, which is "
            "cheaper (0.125/h vs 0.30/h)");
  EXPECT_EQ(e.hosts[3].reason,
            "eligible but not chosen: rank 4 of 4 (0.01/h) in the primary's zone (zone-a); ranked after c, which "
            "is outside the primary's zone");
  EXPECT_EQ(e.hosts[4].host, "p");
  EXPECT_EQ(e.hosts[4].verdict, Verdict::kRejected);
}

TEST(SchedulerExplainTest, TieBreaksAreExplained) {
  std::vector<Host> hosts = {MakeHost("p", "a"), MakeHost("roomy", "b"), MakeHost("tight", "b"),
                             MakeHost("twin", "b")};
  hosts[2].used_memory_kib = 32 * kGiB;
  hosts[3].used_memory_kib = 32 * kGiB;
  Explanation e = ExplainOk(hosts, MakeRequest("p", ZoneRule::kAny));
  EXPECT_EQ(VerdictFor(e, "roomy").reason,
            "chosen: cheapest eligible host (0.10/h) in zone b; ahead of tight because it costs the same and has "
            "more free memory (65536 MiB vs 32768 MiB)");
  EXPECT_EQ(VerdictFor(e, "twin").reason,
            "eligible but not chosen: rank 3 of 3 (0.10/h) in zone b; ranked after tight, which costs the same, "
            "has as much free memory and sorts first by name");
}

TEST(SchedulerExplainTest, FallbackToThePrimarysZoneIsExplained) {
  std::vector<Host> hosts = {MakeHost("p", "a"), MakeHost("same", "a"), MakeHost("other", "b")};
  hosts[2].up = false;
  EXPECT_EQ(ReasonFor(hosts, MakeRequest("p"), "same"),
            "chosen: cheapest eligible host (0.10/h) in the primary's zone (a), as no host in another zone fits");
}

TEST(SchedulerExplainTest, PlacementMatchesPlaceIncludingSummary) {
  std::vector<Host> hosts = {MakeHost("p", "a"), MakeHost("b1", "b"), MakeHost("b2", "b")};
  hosts[2].up = false;
  ShadowRequest r = MakeRequest("p");
  r.shadow_count = 2;
  Placement placed = PlaceOk(hosts, r);
  Explanation e = ExplainOk(hosts, r);
  EXPECT_EQ(e.placement.hosts, placed.hosts);
  EXPECT_EQ(e.placement.outcome, PlacementOutcome::kPartiallyPlaced);
  EXPECT_EQ(e.placement.summary, placed.summary);
}

// ---------------------------------------------------------------- batch

TEST(SchedulerPlaceAllTest, HigherPriorityTakesTheCapacityFirst) {
  std::vector<Host> hosts = {MakeHost("p", "a"), MakeHost("cheap", "b", 0.05), MakeHost("dear", "b", 0.20)};
  hosts[1].used_memory_kib = 58 * kGiB;  // room for one 4 GiB shadow
  std::vector<ShadowRequest> requests = {MakeRequest("p", ZoneRule::kPreferOther, "low"),
                                         MakeRequest("p", ZoneRule::kPreferOther, "high")};
  requests[1].priority = 10;
  StatusOr<std::vector<Placement>> out = PlaceAll(hosts, requests);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->size(), 2u);
  EXPECT_EQ((*out)[0].vm_id, "low");  // index-aligned with the requests, not in placing order
  EXPECT_THAT((*out)[0].hosts, ElementsAre("dear"));
  EXPECT_THAT((*out)[1].hosts, ElementsAre("cheap"));
}

TEST(SchedulerPlaceAllTest, LaterRequestStaysUnplacedWhenCapacityIsGone) {
  std::vector<Host> hosts = {MakeHost("p", "a"), MakeHost("only", "b")};
  hosts[1].used_memory_kib = 58 * kGiB;
  std::vector<ShadowRequest> requests = {MakeRequest("p", ZoneRule::kAny, "vm-b"),
                                         MakeRequest("p", ZoneRule::kAny, "vm-a")};
  StatusOr<std::vector<Placement>> out = PlaceAll(hosts, requests);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  // Equal priority: vm-a goes first by id.
  EXPECT_THAT((*out)[1].hosts, ElementsAre("only"));
  EXPECT_EQ((*out)[0].outcome, PlacementOutcome::kUnplaced);
  EXPECT_EQ((*out)[0].summary,
            "no host can take a shadow of 4096 MiB and 2 vCPUs: of the 1 other host, 1 lacks memory");
}

TEST(SchedulerPlaceAllTest, ReservedVcpusAccumulateAcrossRequests) {
  std::vector<Host> hosts = {MakeHost("p", "a"), MakeHost("q", "b")};
  hosts[1].total_vcpus = 1;  // capacity 4: two 2-vCPU shadows
  std::vector<ShadowRequest> requests;
  for (std::string id : {"v1", "v2", "v3"}) requests.push_back(MakeRequest("p", ZoneRule::kAny, id));
  StatusOr<std::vector<Placement>> out = PlaceAll(hosts, requests);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ((*out)[0].outcome, PlacementOutcome::kPlaced);
  EXPECT_EQ((*out)[1].outcome, PlacementOutcome::kPlaced);
  EXPECT_EQ((*out)[2].outcome, PlacementOutcome::kUnplaced);
  EXPECT_THAT((*out)[2].summary, HasSubstr("1 lacks vCPUs"));
}

TEST(SchedulerPlaceAllTest, EarlierReservationChangesTheMemoryTieBreak) {
  std::vector<Host> hosts = {MakeHost("p", "a"), MakeHost("x", "b"), MakeHost("y", "b")};
  std::vector<ShadowRequest> requests = {MakeRequest("p", ZoneRule::kAny, "v1"),
                                         MakeRequest("p", ZoneRule::kAny, "v2")};
  StatusOr<std::vector<Placement>> out = PlaceAll(hosts, requests);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_THAT((*out)[0].hosts, ElementsAre("x"));  // tie: name
  EXPECT_THAT((*out)[1].hosts, ElementsAre("y"));  // x now has less free memory
}

TEST(SchedulerPlaceAllTest, EmptyBatchIsFine) {
  std::vector<Host> hosts = {MakeHost("p", "a")};
  StatusOr<std::vector<Placement>> out = PlaceAll(hosts, {});
  ASSERT_TRUE(out.ok());
  EXPECT_THAT(*out, IsEmpty());
}

TEST(SchedulerPlaceAllTest, DuplicateVmIdIsRejected) {
  std::vector<Host> hosts = {MakeHost("p", "a"), MakeHost("q", "b")};
  std::vector<ShadowRequest> requests = {MakeRequest("p"), MakeRequest("p")};
  StatusOr<std::vector<Placement>> out = PlaceAll(hosts, requests);
  EXPECT_EQ(out.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(out.status().message(), HasSubstr("vm_id vm-1 appears in requests #0 and #1"));
}

// ---------------------------------------------------------------- malformed input

struct BadInputCase {
  const char* name;
  void (*spoil)(std::vector<Host>&, ShadowRequest&, PlacementOptions&);
  const char* message_part;
};

class SchedulerValidationTest : public ::testing::TestWithParam<BadInputCase> {};

TEST_P(SchedulerValidationTest, IsInvalidArgumentNamingTheField) {
  std::vector<Host> hosts = {MakeHost("p", "a"), MakeHost("q", "b")};
  ShadowRequest r = MakeRequest("p");
  PlacementOptions o;
  GetParam().spoil(hosts, r, o);
  StatusOr<Placement> placed = Place(hosts, r, o);
  EXPECT_EQ(placed.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(placed.status().message(), HasSubstr(GetParam().message_part));
  StatusOr<Explanation> explained = Explain(hosts, r, o);
  EXPECT_EQ(explained.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(explained.status().message(), HasSubstr(GetParam().message_part));
}

INSTANTIATE_TEST_SUITE_P(
    All, SchedulerValidationTest,
    ::testing::Values(
        BadInputCase{"EmptyHostName", [](auto& h, auto&, auto&) { h[1].name = ""; }, "host #1 has an empty name"},
        BadInputCase{"DuplicateHostName", [](auto& h, auto&, auto&) { h[1].name = "p"; },
                     "host name 'p' appears twice (#0 and #1)"},
        BadInputCase{"NanCost", [](auto& h, auto&, auto&) { h[1].cost_per_hour = std::nan(""); },
                     "host 'q': cost_per_hour nan"},
        BadInputCase{"NegativeCost", [](auto& h, auto&, auto&) { h[1].cost_per_hour = -1; },
                     "host 'q': cost_per_hour -1"},
        BadInputCase{"HugeMemory", [](auto& h, auto&, auto&) { h[1].used_memory_kib = ~uint64_t{0}; },
                     "host 'q': used_memory_kib 18446744073709551615 is above 1 EiB"},
        BadInputCase{"ZeroShadows", [](auto&, auto& r, auto&) { r.shadow_count = 0; }, "shadow_count 0"},
        BadInputCase{"FourShadows", [](auto&, auto& r, auto&) { r.shadow_count = 4; }, "shadow_count 4"},
        BadInputCase{"NoVcpus", [](auto&, auto& r, auto&) { r.shadow_vcpus = 0; }, "shadow_vcpus is 0"},
        BadInputCase{"NoMemory", [](auto&, auto& r, auto&) { r.shadow_memory_kib = 0; }, "shadow_memory_kib 0"},
        BadInputCase{"UnknownPrimary", [](auto&, auto& r, auto&) { r.primary_host = "nowhere"; },
                     "primary_host 'nowhere' is not among the 2 hosts"},
        BadInputCase{"EmptyVmId", [](auto&, auto& r, auto&) { r.vm_id = ""; }, "has an empty vm_id"},
        BadInputCase{"NegativeCap", [](auto&, auto& r, auto&) { r.max_cost_per_hour = -0.5; },
                     "max_cost_per_hour -0.5"},
        BadInputCase{"InfiniteCap",
                     [](auto&, auto& r, auto&) { r.max_cost_per_hour = std::numeric_limits<double>::infinity(); },
                     "max_cost_per_hour inf"},
        BadInputCase{"BogusZoneRule", [](auto&, auto& r, auto&) { r.zone_rule = static_cast<ZoneRule>(7); },
                     "zone_rule 7"},
        BadInputCase{"RatioBelowOne", [](auto&, auto&, auto& o) { o.vcpu_overcommit_ratio = 0.5; },
                     "vcpu_overcommit_ratio 0.5"},
        BadInputCase{"RatioNan", [](auto&, auto&, auto& o) { o.vcpu_overcommit_ratio = std::nan(""); },
                     "vcpu_overcommit_ratio nan"}),
    [](const ::testing::TestParamInfo<BadInputCase>& info) { return std::string(info.param.name); });

// ---------------------------------------------------------------- property

// Rules restated independently of the implementation, to check every placement of a random batch.
struct Oracle {
  const PlacementOptions& options;

  int64_t FreeMemory(const Host& h) const {
    return int64_t(h.total_memory_kib) - int64_t(h.used_memory_kib) - int64_t(h.reserved_memory_kib);
  }
  int64_t FreeVcpus(const Host& h) const {
    return int64_t(std::floor(h.total_vcpus * options.vcpu_overcommit_ratio)) - h.used_vcpus - h.reserved_vcpus;
  }
  bool Eligible(const Host& h, const Host& primary, const ShadowRequest& r) const {
    bool excluded = std::find(r.exclude_hosts.begin(), r.exclude_hosts.end(), h.name) != r.exclude_hosts.end();
    return h.name != primary.name && !excluded && h.up &&
           !(r.zone_rule == ZoneRule::kRequireOther && h.zone == primary.zone) &&
           (!r.max_cost_per_hour || h.cost_per_hour <= *r.max_cost_per_hour) &&
           FreeMemory(h) >= int64_t(r.shadow_memory_kib) && FreeVcpus(h) >= r.shadow_vcpus;
  }
  auto Key(const Host& h, const Host& primary, const ShadowRequest& r) const {
    bool fallback = r.zone_rule == ZoneRule::kPreferOther && h.zone == primary.zone;
    return std::make_tuple(fallback, h.cost_per_hour, -FreeMemory(h), h.name);
  }
};

TEST(SchedulerPropertyTest, RandomBatchesNeverBreakARuleAndPickTheBestHosts) {
  std::mt19937 rng(20240607);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  int placed_shadows = 0;
  int short_requests = 0;
  for (int round = 0; round < 40; ++round) {
    PlacementOptions options;
    options.vcpu_overcommit_ratio = pick(0, 1) ? 4.0 : 1.5;
    std::vector<Host> hosts;
    for (int i = 0, n = pick(1, 30); i < n; ++i) {
      Host h = MakeHost("h" + std::to_string(i), "z" + std::to_string(pick(0, 2)), pick(1, 4) / 10.0);
      h.up = pick(0, 9) > 0;
      h.total_vcpus = pick(2, 16);
      h.total_memory_kib = uint64_t(pick(8, 64)) * kGiB;
      h.used_vcpus = pick(0, h.total_vcpus * 3);
      h.used_memory_kib = uint64_t(pick(0, 70)) * h.total_memory_kib / 64;  // sometimes already overcommitted
      h.reserved_vcpus = pick(0, 4);
      h.reserved_memory_kib = uint64_t(pick(0, 4)) * kGiB;
      hosts.push_back(h);
    }
    std::vector<ShadowRequest> requests;
    for (int i = 0, n = pick(0, 60); i < n; ++i) {
      ShadowRequest r = MakeRequest(hosts[pick(0, int(hosts.size()) - 1)].name, static_cast<ZoneRule>(pick(0, 2)),
                                    "vm-" + std::to_string(i));
      r.shadow_vcpus = pick(1, 4);
      r.shadow_memory_kib = uint64_t(pick(1, 16)) * kGiB;
      r.shadow_count = pick(1, 3);
      r.priority = pick(0, 3);
      if (pick(0, 3) == 0) r.max_cost_per_hour = pick(1, 4) / 10.0;
      if (pick(0, 3) == 0) r.exclude_hosts.push_back(hosts[pick(0, int(hosts.size()) - 1)].name);
      requests.push_back(r);
    }
    StatusOr<std::vector<Placement>> out = PlaceAll(hosts, requests, options);
    ASSERT_TRUE(out.ok()) << out.status().ToString();

    // Replay in placing order with the oracle's own accounting.
    std::vector<size_t> order(requests.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return std::make_pair(-requests[a].priority, requests[a].vm_id) <
             std::make_pair(-requests[b].priority, requests[b].vm_id);
    });
    Oracle oracle{options};
    std::map<std::string, size_t> index;
    for (size_t i = 0; i < hosts.size(); ++i) index[hosts[i].name] = i;
    for (size_t i : order) {
      const ShadowRequest& r = requests[i];
      const Placement& p = (*out)[i];
      const Host& primary = hosts[index.at(r.primary_host)];
      SCOPED_TRACE("round " + std::to_string(round) + ", " + r.vm_id);

      // The implementation's own single-request view of this state must agree with the batch.
      StatusOr<Explanation> explained = Explain(hosts, r, options);
      ASSERT_TRUE(explained.ok());
      EXPECT_EQ(explained->placement.hosts, p.hosts);
      EXPECT_EQ(explained->hosts.size(), hosts.size());

      std::vector<const Host*> eligible;
      for (const Host& h : hosts) {
        if (oracle.Eligible(h, primary, r)) eligible.push_back(&h);
      }
      std::sort(eligible.begin(), eligible.end(), [&](const Host* a, const Host* b) {
        return oracle.Key(*a, primary, r) < oracle.Key(*b, primary, r);
      });
      std::vector<std::string> best;
      for (size_t j = 0; j < eligible.size() && j < size_t(r.shadow_count); ++j) best.push_back(eligible[j]->name);
      EXPECT_EQ(p.hosts, best);

      std::set<std::string> distinct(p.hosts.begin(), p.hosts.end());
      EXPECT_EQ(distinct.size(), p.hosts.size()) << "two shadows of one VM on one host";
      EXPECT_LE(p.hosts.size(), size_t(r.shadow_count));
      EXPECT_EQ(p.outcome == PlacementOutcome::kPlaced, p.hosts.size() == size_t(r.shadow_count));
      EXPECT_EQ(p.outcome == PlacementOutcome::kUnplaced, p.hosts.empty());
      EXPECT_EQ(p.summary.empty(), p.outcome == PlacementOutcome::kPlaced);
      if (p.outcome != PlacementOutcome::kPlaced) ++short_requests;
      for (const std::string& name : p.hosts) {
        Host& h = hosts[index.at(name)];
        EXPECT_TRUE(oracle.Eligible(h, primary, r)) << name;
        EXPECT_NE(name, r.primary_host);
        h.reserved_memory_kib += r.shadow_memory_kib;
        h.reserved_vcpus += r.shadow_vcpus;
        EXPECT_GE(oracle.FreeMemory(h), 0) << name << " memory overcommitted";
        EXPECT_GE(oracle.FreeVcpus(h), 0) << name << " vCPUs beyond the overcommit ratio";
        ++placed_shadows;
      }
    }
  }
  // The random clusters must exercise both outcomes, or the checks above prove little.
  EXPECT_GT(placed_shadows, 200);
  EXPECT_GT(short_requests, 50);
}

}  // namespace
}  // namespace vs::scheduler
