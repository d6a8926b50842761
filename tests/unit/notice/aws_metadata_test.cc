#include "shadowd/notice/aws_metadata.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/unit/notice/test_support.h"

namespace vs::notice {
namespace {

using test_support::UnixSeconds;

const WallTime kNow = UnixSeconds(1505722800);  // two minutes before the sample's time

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(AwsMetadataTest, TokenIsOpaqueVisibleText) {
  const std::string token = "AQAEAMmpDl2Hs8wHnZxJ9ZqDfK7VdK1oYRZ-tl2R-fWyhL0Vy4m6aQ==";
  EXPECT_EQ(*ParseAwsToken(token), token);
  EXPECT_EQ(*ParseAwsToken(token + "\n"), token);
  for (const std::string& bad : {std::string(), std::string("\n"), std::string("abc def"),
                                 std::string("abc\r\nX-Evil: 1"), std::string("t\x7f"), std::string(1025, 'a')}) {
    StatusOr<std::string> parsed = ParseAwsToken(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), Code::kInvalidArgument);
    EXPECT_TRUE(Contains(parsed.status().message(), "AWS IMDSv2 token")) << parsed.status().ToString();
  }
  EXPECT_TRUE(ParseAwsToken(std::string(1024, 'a')).ok());
}

TEST(AwsMetadataTest, InstanceActionIsAPreemptionDueAtItsTime) {
  const std::string body = R"({"action": "terminate", "time": "2017-09-18T08:22:00Z"})";
  StatusOr<Notice> notice = ParseAwsInstanceAction(body, kNow);
  ASSERT_TRUE(notice.ok()) << notice.status().ToString();
  EXPECT_EQ(notice->source, Notice::Source::kAws);
  EXPECT_EQ(notice->kind, Notice::Kind::kPreemption);
  EXPECT_EQ(notice->deadline, UnixSeconds(1505722920));
  EXPECT_EQ(notice->id, "aws/spot/terminate/2017-09-18T08:22:00Z");
  EXPECT_TRUE(Contains(notice->detail, body)) << notice->detail;

  for (const char* action : {"stop", "hibernate"}) {
    StatusOr<Notice> other =
        ParseAwsInstanceAction(std::string(R"({"action":")") + action + R"(","time":"2017-09-18T08:22:00Z"})", kNow);
    ASSERT_TRUE(other.ok()) << other.status().ToString();
    EXPECT_EQ(other->id, std::string("aws/spot/") + action + "/2017-09-18T08:22:00Z");
  }
  // Fields AWS may add later are ignored.
  EXPECT_TRUE(ParseAwsInstanceAction(R"({"action":"stop","time":"2017-09-18T08:22:00Z","extra":[1,2]})", kNow).ok());
}

TEST(AwsMetadataTest, InstanceActionWithoutAReadableTimeIsDueInTwoMinutes) {
  StatusOr<Notice> no_time = ParseAwsInstanceAction(R"({"action": "terminate"})", kNow);
  ASSERT_TRUE(no_time.ok()) << no_time.status().ToString();
  EXPECT_EQ(no_time->deadline, kNow + std::chrono::seconds(120));
  EXPECT_EQ(no_time->id, "aws/spot/terminate/none");
  EXPECT_TRUE(Contains(no_time->detail, "no time given")) << no_time->detail;

  StatusOr<Notice> bad_time = ParseAwsInstanceAction(R"({"action": "terminate", "time": "soon"})", kNow);
  ASSERT_TRUE(bad_time.ok()) << bad_time.status().ToString();
  EXPECT_EQ(bad_time->deadline, kNow + std::chrono::seconds(120));
  EXPECT_TRUE(Contains(bad_time->detail, "'soon'")) << bad_time->detail;
}

TEST(AwsMetadataTest, MalformedInstanceActionsNameWhatIsWrong) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "not valid JSON"},
      {"{", "not valid JSON"},
      {R"({"action": "terminate",})", "not valid JSON"},
      {"<html>404</html>", "not valid JSON"},
      {R"(["terminate"])", "must be a JSON object, got array"},
      {R"("terminate")", "must be a JSON object, got string"},
      {R"({"time": "2017-09-18T08:22:00Z"})", "no \"action\" field"},
      {R"({"action": 1})", "\"action\" must be a string, got number"},
      {R"({"action": null})", "\"action\" must be a string, got null"},
      {R"({"action": "reboot"})", "action 'reboot' is unknown"},
      {R"({"action": "terminate", "time": 1505722920})", "\"time\" must be a string, got number"},
      {std::string(R"({"action": "terminate"})") + "\xff", "not valid JSON"},
  };
  for (const auto& [body, why] : cases) {
    StatusOr<Notice> notice = ParseAwsInstanceAction(body, kNow);
    ASSERT_FALSE(notice.ok()) << body;
    EXPECT_EQ(notice.status().code(), Code::kInvalidArgument) << body;
    EXPECT_TRUE(Contains(notice.status().message(), "AWS spot instance-action")) << notice.status().ToString();
    EXPECT_TRUE(Contains(notice.status().message(), why)) << body << " -> " << notice.status().ToString();
  }
}

TEST(AwsMetadataTest, DeeplyNestedOrHugeJsonFailsCleanly) {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  StatusOr<Notice> nested = ParseAwsInstanceAction(deep, kNow);
  ASSERT_FALSE(nested.ok());
  EXPECT_TRUE(Contains(nested.status().message(), "got array")) << nested.status().ToString();

  const std::string huge = R"({"action": "terminate", "time": ")" + std::string(1 << 20, 'x') + R"("})";
  StatusOr<Notice> notice = ParseAwsInstanceAction(huge, kNow);
  ASSERT_TRUE(notice.ok());
  EXPECT_LT(notice->id.size(), 100u);  // untrusted text is bounded in ids and details
  EXPECT_LT(notice->detail.size(), 1000u);
}

TEST(AwsMetadataTest, RebalanceRecommendationIsAnEarlyWarning) {
  StatusOr<Notice> notice = ParseAwsRebalanceRecommendation(R"({"noticeTime": "2020-10-27T08:22:00Z"})", kNow);
  ASSERT_TRUE(notice.ok()) << notice.status().ToString();
  EXPECT_EQ(notice->source, Notice::Source::kAws);
  EXPECT_EQ(notice->kind, Notice::Kind::kEarlyWarning);
  EXPECT_EQ(notice->deadline, kNow + std::chrono::seconds(120));
  EXPECT_EQ(notice->id, "aws/rebalance/2020-10-27T08:22:00Z");

  for (const std::string& bad : {std::string("{}"), std::string(R"({"noticeTime": 5})"),
                                 std::string(R"({"noticeTime": "yesterday"})"), std::string("[]")}) {
    StatusOr<Notice> parsed = ParseAwsRebalanceRecommendation(bad, kNow);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_EQ(parsed.status().code(), Code::kInvalidArgument);
    EXPECT_TRUE(Contains(parsed.status().message(), "AWS rebalance recommendation")) << parsed.status().ToString();
  }
}

}  // namespace
}  // namespace vs::notice
