// VmRecord persistence: a record survives SerializeToString/ParseFromString with every field, and
// damaged or future-version bytes are detected instead of being acted upon.
#include <string>

#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include "test_records.h"

namespace vs::lifecycle {
namespace {

using namespace fixtures;
using google::protobuf::util::MessageDifferencer;

v1::VmRecord EveryFieldSet() {
  v1::VmRecord r = RecordIn(v1::PROTECTION_STATE_GRACE_PERIOD);
  r.set_last_error("UNAVAILABLE: defining shadow on host hostB: busy");
  r.set_unprotected_reason("no host has 2 GiB free");
  r.set_retry_count(3);
  r.set_retry_backoff_ms(8000);
  r.set_next_retry_unix_ms(UnixMs(kNow + 8s));
  r.set_version(41);
  return r;
}

TEST(LifecycleVmRecord, RoundTripKeepsEveryField) {
  const v1::VmRecord original = EveryFieldSet();
  std::string bytes;
  ASSERT_TRUE(original.SerializeToString(&bytes));
  v1::VmRecord parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  std::string differences;
  MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&differences);
  EXPECT_TRUE(differencer.Compare(original, parsed)) << differences;
  EXPECT_EQ(parsed.shadows(0).domain_uuid(), kShadowUuid);
  EXPECT_EQ(parsed.grace_deadline_unix_ms(), UnixMs(kNow - 1s));
  EXPECT_EQ(parsed.state(), v1::PROTECTION_STATE_GRACE_PERIOD);
}

TEST(LifecycleVmRecord, RoundTripOfATransitionResultRecoversTheSameCommands) {
  StatusOr<Transition> t =
      Apply(RecordIn(v1::PROTECTION_STATE_UNPLACED), PlacementChosen{kTarget, kSizeA}, kNow, kGrace);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  std::string bytes;
  ASSERT_TRUE(t->record.SerializeToString(&bytes));
  v1::VmRecord parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  EXPECT_TRUE(MessageDifferencer::Equals(t->record, parsed));
  StatusOr<std::vector<Command>> recovered = Recover(parsed);
  ASSERT_TRUE(recovered.ok()) << recovered.status().ToString();
  EXPECT_EQ(recovered.value(), t->commands);
}

TEST(LifecycleVmRecord, BytesCutInsideAFieldDoNotParse) {
  std::string bytes;
  ASSERT_TRUE(EveryFieldSet().SerializeToString(&bytes));
  const std::size_t policy_at = bytes.find(kPolicyA);
  ASSERT_NE(policy_at, std::string::npos);
  v1::VmRecord parsed;
  EXPECT_FALSE(parsed.ParseFromString(bytes.substr(0, policy_at + 5)));  // the policy string is cut short
}

TEST(LifecycleVmRecord, AStateFromANewerVersionSurvivesParsingButIsRefused) {
  v1::VmRecord future = RecordIn(v1::PROTECTION_STATE_UNPLACED);
  future.set_state(static_cast<ProtectionState>(42));  // e.g. a later "Replicating"
  std::string bytes;
  ASSERT_TRUE(future.SerializeToString(&bytes));
  v1::VmRecord parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  EXPECT_EQ(static_cast<int>(parsed.state()), 42);  // proto3 enums are open: the value is kept
  EXPECT_EQ(Apply(parsed, VmStarted{}, kNow, kGrace).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(Recover(parsed).status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace vs::lifecycle
