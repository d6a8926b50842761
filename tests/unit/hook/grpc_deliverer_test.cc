// The gRPC deliverer against a hung and a live shadowd socket: when its deadline starts, and that the largest
// hook event passes the control socket's limits.
#include "libvirt-hook/grpc_deliverer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "shadowd/policy/domain_xml.h"
#include "tests/unit/hook/hook_process_harness.h"
#include "tests/unit/hook/test_support.h"

namespace vs::hook::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

virtshadow::v1::HookEvent PrepareEvent() {
  virtshadow::v1::HookEvent event;
  event.set_domain_name("web-1");
  event.set_operation("prepare");
  event.set_sub_operation("begin");
  return event;
}

// Reading and parsing a large XML may take longer than the whole budget: the deadline counts from Deliver.
TEST(GrpcDelivererTest, TheDeadlineStartsWhenDeliverIsCalled) {
  TempDir dir;
  const std::string socket = dir.Sub("shadowd.sock");
  StatusOr<std::unique_ptr<HungListener>> hung = HungListener::Start(socket);
  ASSERT_TRUE(hung.ok()) << hung.status().ToString();
  // Simulated time whose wall time is about the real one once the "parse" is over: gRPC takes a wall deadline.
  FakeClock clock(std::chrono::system_clock::now() - std::chrono::seconds(1));
  GrpcDeliverer deliverer(socket, kShadowdAnswerWithin, clock);
  clock.Advance(std::chrono::seconds(1));  // reading and parsing the XML, after main began
  StatusOr<virtshadow::v1::HookVerdict> verdict = deliverer.Deliver(PrepareEvent());
  ASSERT_FALSE(verdict.ok());
  EXPECT_EQ(verdict.status().code(), Code::kDeadlineExceeded) << verdict.status().ToString();
  // All of the 20 ms, not kMinCallTime's 5 left of a budget counted from start-up.
  EXPECT_THAT(verdict.status().message(), HasSubstr("did not answer within 20 ms"));
}

// The worst case kMaxHookEventBytes allows for: an XML of the limit whose <name> is almost all of it.
TEST(GrpcDelivererTest, TheLargestHookEventReachesTheControlSocket) {
  TempDir dir;
  const std::string socket = dir.Sub("shadowd.sock");
  StatusOr<std::unique_ptr<FakeShadowd>> shadowd = FakeShadowd::Start(socket);
  ASSERT_TRUE(shadowd.ok()) << shadowd.status().ToString();
  virtshadow::v1::HookEvent event = PrepareEvent();
  event.set_domain_xml(std::string(policy::kMaxDomainXmlBytes, 'x'));
  event.set_domain_name(std::string(policy::kMaxDomainXmlBytes - 100, 'n'));
  event.set_domain_uuid("8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d");
  event.set_extra(std::string(4096, 'e'));
  ASSERT_LE(event.ByteSizeLong(), policy::kMaxHookEventBytes);
  std::unique_ptr<Clock> clock = NewRealClock();
  GrpcDeliverer deliverer(socket, std::chrono::seconds(30), *clock);
  StatusOr<virtshadow::v1::HookVerdict> verdict = deliverer.Deliver(event);
  ASSERT_TRUE(verdict.ok()) << verdict.status().ToString();
  EXPECT_TRUE(verdict->allow());
  std::vector<virtshadow::v1::HookEvent> events = (*shadowd)->events();
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_EQ(events[0].domain_xml().size(), policy::kMaxDomainXmlBytes);
}

}  // namespace
}  // namespace vs::hook::testing
