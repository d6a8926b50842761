#include "shadowd/hook_intake/hook_verdict.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vs::hook_intake {
namespace {

using ::testing::HasSubstr;

std::string Domain(const std::string& metadata) {
  return "<domain type='qemu'><name>vm1</name><uuid>8f4c0a52-3c1e-4d2a-9a51-0e1d2c3b4a59</uuid>"
         "<memory unit='MiB'>256</memory><vcpu>2</vcpu><metadata>" + metadata + "</metadata></domain>";
}

virtshadow::v1::HookEvent Event(const std::string& op, const std::string& xml) {
  virtshadow::v1::HookEvent event;
  event.set_domain_name("vm1");
  event.set_operation(op);
  event.set_sub_operation("begin");
  event.set_domain_xml(xml);
  return event;
}

constexpr char kNs[] = "xmlns:shadow='http://virt-shadow.org/xmlns/policy/1.0'";

TEST(HookVerdictTest, AllowsUntaggedAndValidPolicies) {
  EXPECT_TRUE(HookVerdictFor(Event("prepare", Domain(""))).allow());
  EXPECT_TRUE(HookVerdictFor(Event("prepare", Domain(std::string("<shadow:policy ") + kNs + " vcpus='1'/>"))).allow());
}

TEST(HookVerdictTest, RefusesAFailClosedInvalidPolicyAtPrepareOnly) {
  std::string xml = Domain(std::string("<shadow:policy ") + kNs + " critical='yes' memory='12XB'/>");
  auto verdict = HookVerdictFor(Event("prepare", xml));
  EXPECT_FALSE(verdict.allow());
  EXPECT_THAT(verdict.reason(), HasSubstr("memory"));
  EXPECT_THAT(verdict.reason(), HasSubstr("vm1"));
  EXPECT_TRUE(HookVerdictFor(Event("started", xml)).allow()) << "only prepare can refuse a start";
}

virtshadow::v1::FenceRecord Fence(virtshadow::v1::FenceRecord::State state) {
  virtshadow::v1::FenceRecord fence;
  fence.set_vm_uuid("8f4c0a52-3c1e-4d2a-9a51-0e1d2c3b4a59");
  fence.set_vm_name("vm1");
  fence.set_state(state);
  fence.set_fenced_unix_ms(1'800'000'000'000);
  fence.set_why("host h1 lost quorum (its partition: h1) while the VM's shadow host h2 is outside it");
  fence.add_shadow_hosts("h2");
  return fence;
}

TEST(HookVerdictTest, RefusesToStartAFencedVmAndSaysWhy) {
  const std::string xml = Domain(std::string("<shadow:policy ") + kNs + " vcpus='1'/>");
  auto verdict = HookVerdictFor(Event("prepare", xml), Fence(virtshadow::v1::FenceRecord::FENCE_STATE_FENCED));
  EXPECT_FALSE(verdict.allow());
  EXPECT_THAT(verdict.reason(), HasSubstr("vm1 is fenced on this host since 2027-01-15 08:00:00 UTC"));
  EXPECT_THAT(verdict.reason(), HasSubstr("lost quorum"));
  EXPECT_THAT(verdict.reason(), HasSubstr("until its shadow host h2 confirms"));
  EXPECT_THAT(verdict.reason(), HasSubstr("virt-shadow status vm1"));
  EXPECT_TRUE(HookVerdictFor(Event("started", xml), Fence(virtshadow::v1::FenceRecord::FENCE_STATE_FENCED)).allow())
      << "only prepare can refuse a start";
}

TEST(HookVerdictTest, RefusesAVmPromotedElsewhereNamingWhereAndWhen) {
  auto fence = Fence(virtshadow::v1::FenceRecord::FENCE_STATE_PROMOTED_ELSEWHERE);
  fence.set_promoted_host("h2");
  fence.set_promoted_unix_ms(1'800'000'009'000);
  auto verdict = HookVerdictFor(Event("prepare", Domain("")), fence);
  EXPECT_FALSE(verdict.allow()) << "even with its tag gone";
  EXPECT_THAT(verdict.reason(), HasSubstr("promoted on h2 at 2027-01-15 08:00:09 UTC"));
  EXPECT_THAT(verdict.reason(), HasSubstr("must not run here"));
}

TEST(HookVerdictTest, AReleasedFenceDoesNotStopAStart) {
  const std::string xml = Domain(std::string("<shadow:policy ") + kNs + " vcpus='1'/>");
  EXPECT_TRUE(HookVerdictFor(Event("prepare", xml), Fence(virtshadow::v1::FenceRecord::FENCE_STATE_RELEASED)).allow());
  EXPECT_FALSE(
      HookVerdictFor(Event("prepare", xml), Fence(virtshadow::v1::FenceRecord::FENCE_STATE_RELEASING)).allow());
}

TEST(HookVerdictTest, AFailOpenInvalidPolicyStarts) {
  std::string xml = Domain(std::string("<shadow:policy ") + kNs + " memory='12XB'/>");
  EXPECT_TRUE(HookVerdictFor(Event("prepare", xml)).allow());
}

}  // namespace
}  // namespace vs::hook_intake
