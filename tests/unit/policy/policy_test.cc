// Policy attributes -> Policy, rendering, hook failure modes and shadow sizing (no XML involved).
#include "shadowd/policy/policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace vs::policy {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using std::chrono::milliseconds;

constexpr std::uint64_t kMiB = 1024;  // in KiB
constexpr std::uint64_t kGiB = 1024 * 1024;

RawPolicy Raw(std::vector<std::pair<std::string, std::string>> attributes) {
  RawPolicy raw;
  raw.element_name = "policy";
  raw.attributes = std::move(attributes);
  return raw;
}

StatusOr<Policy> Parse(std::vector<std::pair<std::string, std::string>> attributes) {
  return ParsePolicyElement(Raw(std::move(attributes)));
}

TEST(PolicyParseTest, NoAttributesGivesEveryDefault) {
  StatusOr<Policy> policy = Parse({});
  ASSERT_TRUE(policy.ok()) << policy.status().ToString();
  EXPECT_TRUE(policy->enabled);
  EXPECT_EQ(policy->vcpus, ResourceSpec::Percent(50));
  EXPECT_EQ(policy->memory, ResourceSpec::Percent(50));
  EXPECT_EQ(policy->interval, milliseconds(5000));
  EXPECT_TRUE(policy->warmup);
  EXPECT_EQ(policy->priority, 100u);
  EXPECT_FALSE(policy->critical);
  EXPECT_EQ(policy->shadows, 1u);
  EXPECT_EQ(policy->zone, ZonePreference::kPreferOther);
  EXPECT_FALSE(policy->cost_cap_per_hour.has_value());
  EXPECT_FALSE(policy->hook_failure.has_value());
  EXPECT_EQ(EffectiveHookFailure(*policy), HookFailureMode::kOpen);
  EXPECT_EQ(*policy, Policy{});
}

TEST(PolicyParseTest, EveryAttributeSetsItsField) {
  StatusOr<Policy> policy = Parse({{"enabled", "no"},
                                   {"vcpus", "3"},
                                   {"memory", "2GiB"},
                                   {"interval", "2m"},
                                   {"warmup", "no"},
                                   {"priority", "1000"},
                                   {"critical", "yes"},
                                   {"shadows", "3"},
                                   {"zone", "require-other"},
                                   {"cost-cap", "0.25"},
                                   {"hook-failure", "open"}});
  ASSERT_TRUE(policy.ok()) << policy.status().ToString();
  EXPECT_FALSE(policy->enabled);
  EXPECT_EQ(policy->vcpus, ResourceSpec::Absolute(3));
  EXPECT_EQ(policy->memory, ResourceSpec::Absolute(2 * kGiB));
  EXPECT_EQ(policy->interval, milliseconds(120'000));
  EXPECT_FALSE(policy->warmup);
  EXPECT_EQ(policy->priority, 1000u);
  EXPECT_TRUE(policy->critical);
  EXPECT_EQ(policy->shadows, 3u);
  EXPECT_EQ(policy->zone, ZonePreference::kRequireOther);
  EXPECT_EQ(policy->cost_cap_per_hour, 0.25);
  EXPECT_EQ(policy->hook_failure, HookFailureMode::kOpen);
}

TEST(PolicyParseTest, ZoneValues) {
  EXPECT_EQ(Parse({{"zone", "prefer-other"}})->zone, ZonePreference::kPreferOther);
  EXPECT_EQ(Parse({{"zone", "require-other"}})->zone, ZonePreference::kRequireOther);
  EXPECT_EQ(Parse({{"zone", "any"}})->zone, ZonePreference::kAny);
}

TEST(PolicyParseTest, PercentagesStayUnresolved) {
  EXPECT_EQ(Parse({{"vcpus", "1%"}})->vcpus, ResourceSpec::Percent(1));
  EXPECT_EQ(Parse({{"vcpus", "100%"}})->vcpus, ResourceSpec::Percent(100));
  EXPECT_EQ(Parse({{"memory", "25%"}})->memory, ResourceSpec::Percent(25));
}

TEST(PolicyParseTest, MemoryUnitsAreBinary) {
  const std::pair<std::string, std::uint64_t> cases[] = {
      {"65536KiB", 64 * kMiB}, {"65536K", 64 * kMiB}, {"64MiB", 64 * kMiB}, {"512M", 512 * kMiB},
      {"1GiB", kGiB},          {"3G", 3 * kGiB},      {"65537KiB", 65537},
  };
  for (const auto& [text, kib] : cases) {
    StatusOr<Policy> policy = Parse({{"memory", text}});
    ASSERT_TRUE(policy.ok()) << text << ": " << policy.status().ToString();
    EXPECT_EQ(policy->memory, ResourceSpec::Absolute(kib)) << text;
  }
}

TEST(PolicyParseTest, IntervalUnits) {
  const std::pair<std::string, std::int64_t> cases[] = {
      {"1000ms", 1000}, {"1500ms", 1500}, {"1s", 1000}, {"90s", 90'000}, {"60m", 3'600'000}, {"1h", 3'600'000},
  };
  for (const auto& [text, ms] : cases) {
    StatusOr<Policy> policy = Parse({{"interval", text}});
    ASSERT_TRUE(policy.ok()) << text << ": " << policy.status().ToString();
    EXPECT_EQ(policy->interval, milliseconds(ms)) << text;
  }
}

TEST(PolicyParseTest, CostCapDecimals) {
  EXPECT_EQ(Parse({{"cost-cap", "0"}})->cost_cap_per_hour, 0.0);
  EXPECT_EQ(Parse({{"cost-cap", "12"}})->cost_cap_per_hour, 12.0);
  EXPECT_EQ(Parse({{"cost-cap", "0.125"}})->cost_cap_per_hour, 0.125);
}

TEST(PolicyParseTest, BadSizeMessageNamesAttributeValueAndExample) {
  StatusOr<Policy> policy = Parse({{"memory", "12XB"}});
  ASSERT_FALSE(policy.ok());
  EXPECT_EQ(policy.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(policy.status().message(),
            "policy attribute 'memory': '12XB' is not a size; use a number with KiB, MiB or GiB, or a percentage "
            "such as 50%");
}

// Each bad value is rejected with a message that names the attribute, quotes the value, and says
// what to write instead.
TEST(PolicyParseTest, EveryAttributeRejectsBadValuesWithAdvice) {
  struct Bad {
    std::string attribute, value, advice;
  };
  const Bad cases[] = {
      {"enabled", "true", "use enabled=\"yes\" or enabled=\"no\""},
      {"warmup", "1", "use warmup=\"yes\" or warmup=\"no\""},
      {"critical", "maybe", "use critical=\"yes\" or critical=\"no\""},
      {"vcpus", "0", "use at least 1 vCPU"},
      {"vcpus", "two", "use a whole number such as 2, or a percentage such as 50%"},
      {"vcpus", "02", "use a whole number such as 2"},
      {"vcpus", "101%", "from 1% to 100%"},
      {"vcpus", "0%", "from 1% to 100%"},
      {"vcpus", "99999999999999999999", "use a whole number such as 2"},
      {"memory", "63MiB", "below the 64 MiB minimum; use at least 64MiB"},
      {"memory", "512", "is not a size"},
      {"memory", "512MB", "is not a size"},
      {"memory", "1.5GiB", "is not a size"},
      {"memory", "150%", "from 1% to 100%"},
      {"memory", "18014398509481984GiB", "is too large"},
      {"interval", "500ms", "use a duration from 1s to 1h, such as 5s"},
      {"interval", "2h", "use a duration from 1s to 1h"},
      {"interval", "99999999999999h", "use a duration from 1s to 1h"},
      {"interval", "5", "use a number with ms, s, m or h, such as 5s"},
      {"interval", "5sec", "use a number with ms, s, m or h"},
      {"priority", "1001", "from 0 to 1000; use e.g. 100"},
      {"priority", "-1", "from 0 to 1000"},
      {"shadows", "4", "from 1 to 3; use e.g. 1"},
      {"shadows", "0", "from 1 to 3"},
      {"zone", "other", "use prefer-other, require-other or any"},
      {"cost-cap", "-1", "decimal number >= 0; use e.g. 0.25"},
      {"cost-cap", "1e3", "decimal number >= 0"},
      {"cost-cap", "inf", "decimal number >= 0"},
      {"cost-cap", std::string(400, '9'), "out of range"},
      {"hook-failure", "fail", "use open (let the VM start) or closed (refuse the start)"},
  };
  for (const Bad& bad : cases) {
    StatusOr<Policy> policy = Parse({{bad.attribute, bad.value}});
    ASSERT_FALSE(policy.ok()) << bad.attribute << "=" << bad.value;
    EXPECT_EQ(policy.status().code(), Code::kInvalidArgument);
    EXPECT_THAT(policy.status().message(),
                AllOf(HasSubstr("policy attribute '" + bad.attribute + "'"),
                      HasSubstr("'" + bad.value.substr(0, 64)), HasSubstr(bad.advice)));
  }
}

TEST(PolicyParseTest, UnknownAttributeIsAnErrorListingTheKnownOnes) {
  StatusOr<Policy> policy = Parse({{"vcpus", "2"}, {"vpcus", "2"}});
  ASSERT_FALSE(policy.ok());
  EXPECT_THAT(policy.status().message(),
              AllOf(HasSubstr("unknown attribute 'vpcus'"),
                    HasSubstr("enabled, vcpus, memory, interval, warmup, priority, critical, shadows, zone, cost-cap, "
                              "hook-failure")));
}

TEST(PolicyParseTest, NamespacedAttributeIsUnknown) {
  StatusOr<Policy> policy = Parse({{"shadow:vcpus", "2"}});
  ASSERT_FALSE(policy.ok());
  EXPECT_THAT(policy.status().message(), HasSubstr("unknown attribute 'shadow:vcpus'"));
}

TEST(PolicyParseTest, AttributeGivenTwiceIsAnError) {
  StatusOr<Policy> policy = Parse({{"vcpus", "2"}, {"vcpus", "3"}});
  ASSERT_FALSE(policy.ok());
  EXPECT_THAT(policy.status().message(), HasSubstr("'vcpus' is given twice"));
}

TEST(PolicyParseTest, ElementMustBeAnEmptyPolicy) {
  RawPolicy misspelled = Raw({});
  misspelled.element_name = "polcy";
  EXPECT_THAT(ParsePolicyElement(misspelled).status().message(), HasSubstr("unexpected element 'polcy'"));

  RawPolicy with_child = Raw({});
  with_child.child_elements = {"vcpus"};
  EXPECT_THAT(ParsePolicyElement(with_child).status().message(), HasSubstr("has a child element <vcpus>"));

  RawPolicy with_text = Raw({});
  with_text.has_text = true;
  EXPECT_THAT(ParsePolicyElement(with_text).status().message(), HasSubstr("contains text"));
}

TEST(PolicyParseTest, HugeValueIsQuotedShort) {
  const std::string huge(1 << 20, 'x');
  StatusOr<Policy> policy = Parse({{"zone", huge}});
  ASSERT_FALSE(policy.ok());
  EXPECT_LT(policy.status().message().size(), 300u);
  EXPECT_THAT(policy.status().message(), HasSubstr("(1048576 characters)"));
}

TEST(PolicyHookFailureTest, EffectiveModeFollowsCriticalUnlessChosen) {
  struct Case {
    bool critical;
    std::optional<HookFailureMode> chosen;
    HookFailureMode effective;
  };
  const Case cases[] = {
      {false, std::nullopt, HookFailureMode::kOpen},
      {true, std::nullopt, HookFailureMode::kClosed},
      {false, HookFailureMode::kClosed, HookFailureMode::kClosed},
      {true, HookFailureMode::kOpen, HookFailureMode::kOpen},
  };
  for (const Case& c : cases) {
    Policy policy;
    policy.critical = c.critical;
    policy.hook_failure = c.chosen;
    EXPECT_EQ(EffectiveHookFailure(policy), c.effective) << c.critical;
  }
}

TEST(PolicyHookFailureTest, BestEffortWhenOtherAttributesAreBroken) {
  struct Case {
    std::vector<std::pair<std::string, std::string>> attributes;
    HookFailureMode expected;
  };
  const Case cases[] = {
      {{{"critical", "yes"}, {"memory", "12XB"}}, HookFailureMode::kClosed},
      {{{"hook-failure", "closed"}, {"vcpus", "0"}}, HookFailureMode::kClosed},
      {{{"hook-failure", "open"}, {"critical", "yes"}, {"vcpus", "0"}}, HookFailureMode::kOpen},
      {{{"hook-failure", "clsoed"}, {"critical", "yes"}}, HookFailureMode::kClosed},
      {{{"hook-failure", "clsoed"}}, HookFailureMode::kOpen},
      {{{"critical", "YES"}, {"bogus", "1"}}, HookFailureMode::kOpen},
      {{{"memory", "12XB"}}, HookFailureMode::kOpen},
  };
  for (const Case& c : cases) {
    RawPolicy raw = Raw(c.attributes);
    EXPECT_FALSE(ParsePolicyElement(raw).ok());
    EXPECT_EQ(BestEffortHookFailure(raw), c.expected) << raw.attributes.front().first;
  }
}

TEST(PolicyHookFailureTest, BestEffortEqualsEffectiveForValidPolicies) {
  const std::vector<std::pair<std::string, std::string>> cases[] = {
      {},
      {{"critical", "yes"}},
      {{"critical", "no"}, {"hook-failure", "closed"}},
      {{"critical", "yes"}, {"hook-failure", "open"}},
      {{"hook-failure", "open"}},
  };
  for (const auto& attributes : cases) {
    RawPolicy raw = Raw(attributes);
    StatusOr<Policy> policy = ParsePolicyElement(raw);
    ASSERT_TRUE(policy.ok());
    EXPECT_EQ(BestEffortHookFailure(raw), EffectiveHookFailure(*policy));
  }
}

TEST(PolicyRenderTest, DefaultsRenderEveryAttribute) {
  EXPECT_EQ(RenderPolicy(Policy{}),
            R"(<policy enabled="yes" vcpus="50%" memory="50%" interval="5s" warmup="yes" priority="100" )"
            R"(critical="no" shadows="1" zone="prefer-other"/>)");
}

TEST(PolicyRenderTest, EveryFieldRendered) {
  Policy policy;
  policy.enabled = false;
  policy.vcpus = ResourceSpec::Absolute(2);
  policy.memory = ResourceSpec::Absolute(1536 * kMiB);
  policy.interval = milliseconds(1500);
  policy.warmup = false;
  policy.priority = 0;
  policy.critical = true;
  policy.shadows = 2;
  policy.zone = ZonePreference::kAny;
  policy.cost_cap_per_hour = 0.1;
  policy.hook_failure = HookFailureMode::kOpen;
  EXPECT_EQ(RenderPolicy(policy),
            R"(<policy enabled="no" vcpus="2" memory="1536MiB" interval="1500ms" warmup="no" priority="0" )"
            R"(critical="yes" shadows="2" zone="any" cost-cap="0.1" hook-failure="open"/>)");
}

TEST(PolicyRenderTest, SizesAndDurationsUseTheLargestExactUnit) {
  Policy policy;
  const std::pair<std::uint64_t, std::string> memory[] = {
      {4 * kGiB, "memory=\"4GiB\""}, {1025 * kMiB, "memory=\"1025MiB\""}, {65537, "memory=\"65537KiB\""}};
  for (const auto& [kib, text] : memory) {
    policy.memory = ResourceSpec::Absolute(kib);
    EXPECT_THAT(RenderPolicy(policy), HasSubstr(text));
  }
  const std::pair<std::int64_t, std::string> intervals[] = {{3'600'000, "interval=\"1h\""},
                                                            {120'000, "interval=\"2m\""},
                                                            {90'000, "interval=\"90s\""},
                                                            {1'001, "interval=\"1001ms\""}};
  for (const auto& [ms, text] : intervals) {
    policy.interval = milliseconds(ms);
    EXPECT_THAT(RenderPolicy(policy), HasSubstr(text));
  }
  policy.zone = ZonePreference::kRequireOther;
  policy.cost_cap_per_hour = 12;
  policy.hook_failure = HookFailureMode::kClosed;
  EXPECT_THAT(RenderPolicy(policy), AllOf(HasSubstr("zone=\"require-other\""), HasSubstr("cost-cap=\"12\""),
                                          HasSubstr("hook-failure=\"closed\"")));
}

StatusOr<ShadowSize> Resolve(std::vector<std::pair<std::string, std::string>> attributes, std::uint32_t vcpus,
                             std::uint64_t memory_kib) {
  StatusOr<Policy> policy = Parse(std::move(attributes));
  EXPECT_TRUE(policy.ok()) << policy.status().ToString();
  if (!policy.ok()) return policy.status();
  return ResolveShadowSize(*policy, vcpus, memory_kib);
}

TEST(PolicyResolveTest, DefaultIsHalfOfThePrimary) {
  EXPECT_EQ(*Resolve({}, 4, 8 * kGiB), (ShadowSize{2, 4 * kGiB}));
}

TEST(PolicyResolveTest, VcpuPercentageRoundsUpToAtLeastOne) {
  EXPECT_EQ(Resolve({{"vcpus", "50%"}}, 3, kGiB)->vcpus, 2u);   // 1.5 -> 2
  EXPECT_EQ(Resolve({{"vcpus", "33%"}}, 10, kGiB)->vcpus, 4u);  // 3.3 -> 4
  EXPECT_EQ(Resolve({{"vcpus", "50%"}}, 1, kGiB)->vcpus, 1u);
  EXPECT_EQ(Resolve({{"vcpus", "1%"}}, 8, kGiB)->vcpus, 1u);
  EXPECT_EQ(Resolve({{"vcpus", "100%"}}, 8, kGiB)->vcpus, 8u);
}

TEST(PolicyResolveTest, VcpuCountIsClampedToThePrimary) {
  EXPECT_EQ(Resolve({{"vcpus", "2"}}, 4, kGiB)->vcpus, 2u);
  EXPECT_EQ(Resolve({{"vcpus", "8"}}, 4, kGiB)->vcpus, 4u);
}

TEST(PolicyResolveTest, MemoryPercentageRoundsUpToAWholeMiB) {
  // 50% of 1000001 KiB = 500000.5 KiB = 488.28 MiB -> 489 MiB.
  EXPECT_EQ(Resolve({{"memory", "50%"}}, 2, 1'000'001)->memory_kib, 489 * kMiB);
  // Exact multiples stay exact.
  EXPECT_EQ(Resolve({{"memory", "25%"}}, 2, 4 * kGiB)->memory_kib, kGiB);
  EXPECT_EQ(Resolve({{"memory", "100%"}}, 2, 4 * kGiB)->memory_kib, 4 * kGiB);
}

TEST(PolicyResolveTest, MemoryHasA64MiBFloorButNeverExceedsThePrimary) {
  EXPECT_EQ(Resolve({{"memory", "10%"}}, 1, 256 * kMiB)->memory_kib, 64 * kMiB);  // 25.6 MiB -> 64 MiB
  EXPECT_EQ(Resolve({{"memory", "50%"}}, 1, 32 * kMiB)->memory_kib, 32 * kMiB);   // primary below the floor
  EXPECT_EQ(Resolve({{"memory", "100%"}}, 1, 100'000)->memory_kib, 100'000u);     // not MiB-aligned primary
}

TEST(PolicyResolveTest, AbsoluteMemoryIsClampedToThePrimary) {
  EXPECT_EQ(Resolve({{"memory", "512MiB"}}, 1, 4 * kGiB)->memory_kib, 512 * kMiB);
  EXPECT_EQ(Resolve({{"memory", "16GiB"}}, 1, 4 * kGiB)->memory_kib, 4 * kGiB);
}

TEST(PolicyResolveTest, HugePrimaryDoesNotOverflow) {
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  EXPECT_EQ(Resolve({{"memory", "100%"}}, 1, kMax)->memory_kib, kMax);
  EXPECT_EQ(Resolve({{"memory", "50%"}}, 1, kMax)->memory_kib, std::uint64_t{1} << 63);
  EXPECT_EQ(Resolve({{"vcpus", "100%"}}, std::numeric_limits<std::uint32_t>::max(), kGiB)->vcpus,
            std::numeric_limits<std::uint32_t>::max());
}

TEST(PolicyResolveTest, PrimaryWithoutVcpusOrMemoryIsAnError) {
  EXPECT_EQ(ResolveShadowSize(Policy{}, 0, kGiB).status().code(), Code::kInvalidArgument);
  StatusOr<ShadowSize> no_memory = ResolveShadowSize(Policy{}, 2, 0);
  ASSERT_FALSE(no_memory.ok());
  EXPECT_THAT(no_memory.status().message(), HasSubstr("0 KiB of memory"));
}

}  // namespace
}  // namespace vs::policy
