#include "shadowd/rpc/hook_verdict.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vs::rpc {
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

TEST(HookVerdictTest, AFailOpenInvalidPolicyStarts) {
  std::string xml = Domain(std::string("<shadow:policy ") + kNs + " memory='12XB'/>");
  EXPECT_TRUE(HookVerdictFor(Event("prepare", xml)).allow());
}

}  // namespace
}  // namespace vs::rpc
