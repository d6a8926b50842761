#include "shadowd/controller/canonical_policy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vs::controller {
namespace {

using ::testing::HasSubstr;

TEST(CanonicalPolicyTest, RenderedPolicyReadsBackEqual) {
  policy::Policy p;
  p.vcpus = policy::ResourceSpec::Absolute(3);
  p.memory = policy::ResourceSpec::Absolute(2 * 1024 * 1024);
  p.zone = policy::ZonePreference::kRequireOther;
  p.priority = 900;
  p.cost_cap_per_hour = 0.25;
  p.hook_failure = policy::HookFailureMode::kClosed;
  StatusOr<policy::Policy> back = ParseCanonicalPolicy(policy::RenderPolicy(p));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, p);
  StatusOr<policy::Policy> defaults = ParseCanonicalPolicy(policy::RenderPolicy(policy::Policy{}));
  ASSERT_TRUE(defaults.ok());
  EXPECT_EQ(*defaults, policy::Policy{});
}

TEST(CanonicalPolicyTest, DamagedTextIsRefusedNamingWhatIsWrong) {
  EXPECT_THAT(ParseCanonicalPolicy("<policy vcpus=").status().message(), HasSubstr("not well-formed"));
  EXPECT_THAT(ParseCanonicalPolicy("<shadow-of uuid='x'/>").status().message(), HasSubstr("not a <policy>"));
  EXPECT_THAT(ParseCanonicalPolicy("<policy vcpus='0'/>").status().message(), HasSubstr("vcpus"));
  EXPECT_THAT(ParseCanonicalPolicy("<!DOCTYPE p [<!ENTITY e 'x'>]><policy/>").status().message(),
              HasSubstr("DOCTYPE"));
  EXPECT_THAT(ParseCanonicalPolicy("<policy>text</policy>").status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace vs::controller
