#include "shadowd/notice/metadata_poller.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/unit/notice/test_support.h"

namespace vs::notice {
namespace {

using std::chrono::seconds;
using test_support::FakeHttpClient;
using test_support::HeaderOf;

const std::string kBase = "http://169.254.169.254";
const std::string kGcePreempted = kBase + "/computeMetadata/v1/instance/preempted";
const std::string kGceMaintenance = kBase + "/computeMetadata/v1/instance/maintenance-event";
const std::string kAwsToken = kBase + "/latest/api/token";
const std::string kAwsAction = kBase + "/latest/meta-data/spot/instance-action";
const std::string kAwsRebalance = kBase + "/latest/meta-data/events/recommendations/rebalance";
const std::string kAzure = kBase + "/metadata/scheduledevents?api-version=2020-07-01";

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

HttpResponse Gce(const std::string& body) {
  return HttpResponse{.status = 200, .headers = {{"Metadata-Flavor", "Google"}}, .body = body};
}
HttpResponse Plain(int status, const std::string& body = "") { return HttpResponse{.status = status, .body = body}; }

TEST(RecentIdsTest, RemembersUpToItsCapacityForgettingTheOldest) {
  RecentIds ids;
  EXPECT_TRUE(ids.Insert("a"));
  EXPECT_FALSE(ids.Insert("a"));
  for (size_t i = 1; i < RecentIds::kCapacity; ++i) EXPECT_TRUE(ids.Insert("id" + std::to_string(i)));
  EXPECT_FALSE(ids.Insert("a"));  // exactly at capacity: still remembered
  EXPECT_TRUE(ids.Insert("one more"));
  EXPECT_TRUE(ids.Insert("a"));  // the oldest was forgotten
  EXPECT_FALSE(ids.Insert("one more"));
}

// ---- GCE

TEST(GcePollerTest, NothingToReportAsksBothEndpointsWithTheFlavorHeader) {
  FakeHttpClient http;
  FakeClock clock;
  http.Reply("GET", kGcePreempted, Gce("FALSE"));
  http.Reply("GET", kGceMaintenance, Gce("NONE"));
  GcePoller poller(http, clock, {.base_url = kBase + "/", .timeout = seconds(3)});
  StatusOr<std::vector<Notice>> notices = poller.PollOnce();
  ASSERT_TRUE(notices.ok()) << notices.status().ToString();
  EXPECT_TRUE(notices->empty());
  ASSERT_EQ(http.requests.size(), 2u);
  for (const HttpRequest& r : http.requests) {
    EXPECT_EQ(HeaderOf(r, "Metadata-Flavor"), "Google");
    EXPECT_EQ(r.timeout, seconds(3));
  }
}

TEST(GcePollerTest, PreemptionIsReportedOnceWithADeadlineThirtySecondsAfterFirstSeen) {
  FakeHttpClient http;
  FakeClock clock;
  http.Reply("GET", kGcePreempted, Gce("TRUE"));
  http.Reply("GET", kGceMaintenance, Gce("NONE"));
  GcePoller poller(http, clock);
  const WallTime first_seen = clock.WallNow();
  StatusOr<std::vector<Notice>> first = poller.PollOnce();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_EQ(first->size(), 1u);
  EXPECT_EQ((*first)[0], (Notice{.source = Notice::Source::kGce,
                                 .kind = Notice::Kind::kPreemption,
                                 .deadline = first_seen + seconds(30),
                                 .id = "gce/preempted/" + std::to_string(ToUnixMillis(first_seen)),
                                 .detail = (*first)[0].detail}));
  clock.Advance(seconds(5));
  StatusOr<std::vector<Notice>> again = poller.PollOnce();
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty());
}

// The flag has no event id: TRUE after a FALSE (the host was back) is a new preemption, with its own deadline.
TEST(GcePollerTest, PreemptedAgainAfterFalseIsANewPreemption) {
  FakeHttpClient http;
  FakeClock clock;
  std::string preempted = "TRUE";
  http.On("GET", kGcePreempted, [&](const HttpRequest&) -> StatusOr<HttpResponse> { return Gce(preempted); });
  http.Reply("GET", kGceMaintenance, Gce("NONE"));
  GcePoller poller(http, clock);
  ASSERT_EQ(poller.PollOnce()->size(), 1u);
  preempted = "FALSE";
  clock.Advance(seconds(60));
  EXPECT_TRUE(poller.PollOnce()->empty());
  preempted = "TRUE";
  clock.Advance(seconds(60));
  const WallTime second_seen = clock.WallNow();
  StatusOr<std::vector<Notice>> second = poller.PollOnce();
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  ASSERT_EQ(second->size(), 1u);
  EXPECT_EQ((*second)[0].deadline, second_seen + seconds(30));
  clock.Advance(seconds(5));
  EXPECT_TRUE(poller.PollOnce()->empty());
}

TEST(GcePollerTest, EachMaintenanceEventIsOneEarlyWarning) {
  FakeHttpClient http;
  FakeClock clock;
  std::string maintenance = "MIGRATE_ON_HOST_MAINTENANCE";
  http.Reply("GET", kGcePreempted, Gce("FALSE"));
  http.On("GET", kGceMaintenance, [&](const HttpRequest&) -> StatusOr<HttpResponse> { return Gce(maintenance); });
  GcePoller poller(http, clock);

  const WallTime t0 = clock.WallNow();
  StatusOr<std::vector<Notice>> migrate = poller.PollOnce();
  ASSERT_TRUE(migrate.ok()) << migrate.status().ToString();
  ASSERT_EQ(migrate->size(), 1u);
  EXPECT_EQ((*migrate)[0].kind, Notice::Kind::kEarlyWarning);
  EXPECT_EQ((*migrate)[0].deadline, t0 + seconds(60));
  EXPECT_TRUE(Contains((*migrate)[0].detail, "MIGRATE_ON_HOST_MAINTENANCE"));

  clock.Advance(seconds(5));
  EXPECT_TRUE(poller.PollOnce()->empty());  // the same event, still under way

  maintenance = "TERMINATE_ON_HOST_MAINTENANCE";  // a different event: reported
  const WallTime t1 = clock.WallNow();
  StatusOr<std::vector<Notice>> terminate = poller.PollOnce();
  ASSERT_EQ(terminate->size(), 1u);
  EXPECT_EQ((*terminate)[0].deadline, t1 + seconds(60));
  EXPECT_NE((*terminate)[0].id, (*migrate)[0].id);

  maintenance = "NONE";
  EXPECT_TRUE(poller.PollOnce()->empty());
  clock.Advance(seconds(3600));
  maintenance = "MIGRATE_ON_HOST_MAINTENANCE";  // weeks later, a new maintenance: a new event
  StatusOr<std::vector<Notice>> later = poller.PollOnce();
  ASSERT_EQ(later->size(), 1u);
  EXPECT_NE((*later)[0].id, (*migrate)[0].id);
  EXPECT_EQ((*later)[0].deadline, clock.WallNow() + seconds(60));
}

TEST(GcePollerTest, AnswersNotFromTheMetadataServerAreErrors) {
  FakeHttpClient http;
  FakeClock clock;
  http.Reply("GET", kGcePreempted, HttpResponse{.status = 200, .body = "TRUE"});  // no Metadata-Flavor
  http.Reply("GET", kGceMaintenance, HttpResponse{.status = 200, .body = "NONE"});
  GcePoller poller(http, clock);
  StatusOr<std::vector<Notice>> notices = poller.PollOnce();
  ASSERT_FALSE(notices.ok());
  EXPECT_EQ(notices.status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(Contains(notices.status().message(), kGcePreempted)) << notices.status().ToString();
}

TEST(GcePollerTest, ANoticeIsNotHeldBackByTheOtherRequestFailing) {
  FakeHttpClient http;
  FakeClock clock;
  http.On("GET", kGcePreempted, [](const HttpRequest& r) -> StatusOr<HttpResponse> {
    return DeadlineExceeded("GET " + r.url + ": no complete response within 2000 ms");
  });
  http.Reply("GET", kGceMaintenance, Gce("TERMINATE_ON_HOST_MAINTENANCE"));
  GcePoller poller(http, clock);
  StatusOr<std::vector<Notice>> first = poller.PollOnce();
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  ASSERT_EQ(first->size(), 1u);
  EXPECT_EQ((*first)[0].kind, Notice::Kind::kEarlyWarning);
  // Nothing new to report now, so the failure shows.
  StatusOr<std::vector<Notice>> second = poller.PollOnce();
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Code::kDeadlineExceeded);
}

TEST(GcePollerTest, PollingAgainAfterAFailureFindsTheNotice) {
  FakeHttpClient http;
  FakeClock clock;
  bool maintenance_up = false;
  http.Reply("GET", kGcePreempted, Gce("garbage"));
  http.On("GET", kGceMaintenance, [&](const HttpRequest&) -> StatusOr<HttpResponse> {
    if (!maintenance_up) return Unavailable("down");
    return Gce("NONE");
  });
  GcePoller poller(http, clock);
  EXPECT_FALSE(poller.PollOnce().ok());
  http.Reply("GET", kGcePreempted, Gce("TRUE"));
  maintenance_up = true;
  StatusOr<std::vector<Notice>> notices = poller.PollOnce();
  ASSERT_TRUE(notices.ok()) << notices.status().ToString();
  EXPECT_EQ(notices->size(), 1u);
}

// ---- AWS

// IMDSv2 with a token that the test can expire.
struct FakeImds {
  explicit FakeImds(FakeHttpClient& http) {
    http.On("PUT", kAwsToken, [this](const HttpRequest& r) -> StatusOr<HttpResponse> {
      ttl_headers.push_back(HeaderOf(r, "X-aws-ec2-metadata-token-ttl-seconds"));
      token = "token-" + std::to_string(ttl_headers.size());
      return HttpResponse{.status = 200, .body = token};
    });
    auto serve = [this](const std::string* body) {
      return [this, body](const HttpRequest& r) -> StatusOr<HttpResponse> {
        if (HeaderOf(r, "X-aws-ec2-metadata-token") != token) return Plain(401);
        if (body->empty()) return Plain(404, "<html>Not Found</html>");
        return HttpResponse{.status = 200, .body = *body};
      };
    };
    http.On("GET", kAwsAction, serve(&action));
    http.On("GET", kAwsRebalance, serve(&rebalance));
  }
  std::string token;
  std::string action;                    // empty: 404
  std::string rebalance;                 // empty: 404
  std::vector<std::string> ttl_headers;  // one per token fetched
};

TEST(AwsPollerTest, FetchesATokenOnceAndTreats404AsNoEvent) {
  FakeHttpClient http;
  FakeClock clock;
  FakeImds imds(http);
  AwsPoller poller(http, clock);
  for (int i = 0; i < 3; ++i) {
    StatusOr<std::vector<Notice>> notices = poller.PollOnce();
    ASSERT_TRUE(notices.ok()) << notices.status().ToString();
    EXPECT_TRUE(notices->empty());
  }
  EXPECT_EQ(imds.ttl_headers, std::vector<std::string>{"21600"});
  EXPECT_EQ(http.RequestsTo("GET", kAwsAction).size(), 3u);
  EXPECT_EQ(http.RequestsTo("GET", kAwsRebalance).size(), 3u);
  EXPECT_EQ(HeaderOf(http.RequestsTo("GET", kAwsAction)[0], "X-aws-ec2-metadata-token"), "token-1");
}

TEST(AwsPollerTest, SpotInterruptionAndRebalanceAreReportedOnce) {
  FakeHttpClient http;
  FakeClock clock;
  FakeImds imds(http);
  AwsPoller poller(http, clock);
  imds.rebalance = R"({"noticeTime": "2020-10-27T08:22:00Z"})";
  StatusOr<std::vector<Notice>> warning = poller.PollOnce();
  ASSERT_TRUE(warning.ok()) << warning.status().ToString();
  ASSERT_EQ(warning->size(), 1u);
  EXPECT_EQ((*warning)[0].kind, Notice::Kind::kEarlyWarning);

  imds.action = R"({"action": "terminate", "time": "2027-01-15T08:02:00Z"})";
  StatusOr<std::vector<Notice>> preemption = poller.PollOnce();
  ASSERT_TRUE(preemption.ok()) << preemption.status().ToString();
  ASSERT_EQ(preemption->size(), 1u);
  EXPECT_EQ((*preemption)[0].kind, Notice::Kind::kPreemption);
  EXPECT_EQ((*preemption)[0].deadline, test_support::UnixSeconds(1800000120));

  EXPECT_TRUE(poller.PollOnce()->empty());
  imds.action = R"({"action": "stop", "time": "2027-01-15T08:02:00Z"})";  // AWS changed its mind: a new event
  EXPECT_EQ(poller.PollOnce()->size(), 1u);
}

TEST(AwsPollerTest, An401FetchesANewTokenOnceAndRetries) {
  FakeHttpClient http;
  FakeClock clock;
  FakeImds imds(http);
  AwsPoller poller(http, clock);
  ASSERT_TRUE(poller.PollOnce().ok());
  imds.token = "expired-by-imds";  // the poller's token-1 is no longer accepted
  imds.action = R"({"action": "terminate", "time": "2027-01-15T08:02:00Z"})";
  StatusOr<std::vector<Notice>> notices = poller.PollOnce();
  ASSERT_TRUE(notices.ok()) << notices.status().ToString();
  EXPECT_EQ(notices->size(), 1u);
  EXPECT_EQ(imds.ttl_headers.size(), 2u);
  const std::vector<HttpRequest> gets = http.RequestsTo("GET", kAwsAction);
  ASSERT_EQ(gets.size(), 3u);  // first poll, then the refused one and its retry
  EXPECT_EQ(HeaderOf(gets[1], "X-aws-ec2-metadata-token"), "token-1");
  EXPECT_EQ(HeaderOf(gets[2], "X-aws-ec2-metadata-token"), "token-2");
  EXPECT_EQ(HeaderOf(http.RequestsTo("GET", kAwsRebalance).back(), "X-aws-ec2-metadata-token"), "token-2");
}

TEST(AwsPollerTest, A401AfterAFreshTokenIsAnErrorWithoutLooping) {
  FakeHttpClient http;
  FakeClock clock;
  int token_fetches = 0;
  http.On("PUT", kAwsToken, [&](const HttpRequest&) -> StatusOr<HttpResponse> {
    ++token_fetches;
    return HttpResponse{.status = 200, .body = "t"};
  });
  http.Reply("GET", kAwsAction, Plain(401, "Unauthorized"));
  http.Reply("GET", kAwsRebalance, Plain(401, "Unauthorized"));
  AwsPoller poller(http, clock);
  StatusOr<std::vector<Notice>> notices = poller.PollOnce();
  ASSERT_FALSE(notices.ok());
  EXPECT_EQ(notices.status().code(), Code::kFailedPrecondition) << notices.status().ToString();
  EXPECT_TRUE(Contains(notices.status().message(), "HTTP 401")) << notices.status().ToString();
  EXPECT_TRUE(Contains(notices.status().message(), kAwsAction)) << notices.status().ToString();
  EXPECT_EQ(token_fetches, 3);  // the first token, then one refresh per refused request
}

TEST(AwsPollerTest, TokenAndServerErrorsAreReported) {
  FakeHttpClient http;
  FakeClock clock;
  http.Reply("PUT", kAwsToken, Plain(403, "IMDS disabled"));
  AwsPoller forbidden(http, clock);
  StatusOr<std::vector<Notice>> a = forbidden.PollOnce();
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), Code::kFailedPrecondition);
  EXPECT_TRUE(Contains(a.status().message(), "PUT " + kAwsToken)) << a.status().ToString();
  EXPECT_TRUE(Contains(a.status().message(), "IMDS disabled")) << a.status().ToString();

  FakeHttpClient http2;
  FakeImds imds(http2);
  http2.Reply("GET", kAwsAction, Plain(500, "oops"));
  AwsPoller busy(http2, clock);
  StatusOr<std::vector<Notice>> b = busy.PollOnce();
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), Code::kUnavailable) << b.status().ToString();

  FakeHttpClient http3;
  http3.Reply("PUT", kAwsToken, HttpResponse{.status = 200, .body = "bad token\r\nX: 1"});
  AwsPoller bad_token(http3, clock);
  StatusOr<std::vector<Notice>> c = bad_token.PollOnce();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kInvalidArgument) << c.status().ToString();
  EXPECT_EQ(http3.requests.size(), 2u);  // one token attempt per endpoint, no GET with a bad token
}

// ---- Azure

TEST(AzurePollerTest, ReportsPreemptionsOnceAndAsksWithTheMetadataHeader) {
  FakeHttpClient http;
  FakeClock clock;
  std::string events = R"({"DocumentIncarnation": 1, "Events": []})";
  http.On("GET", kAzure,
          [&](const HttpRequest&) -> StatusOr<HttpResponse> { return HttpResponse{.status = 200, .body = events}; });
  AzurePoller poller(http, clock, {}, "shadow-host-1");
  ASSERT_TRUE(poller.PollOnce()->empty());
  EXPECT_EQ(HeaderOf(http.requests[0], "Metadata"), "true");

  events = R"({"DocumentIncarnation": 2, "Events": [
    {"EventId": "E1", "EventType": "Preempt", "Resources": ["shadow-host-1"], "EventStatus": "Scheduled",
     "NotBefore": "Mon, 19 Sep 2016 18:29:47 GMT"},
    {"EventId": "E2", "EventType": "Preempt", "Resources": ["another-vm"], "NotBefore": ""}]})";
  StatusOr<std::vector<Notice>> notices = poller.PollOnce();
  ASSERT_TRUE(notices.ok()) << notices.status().ToString();
  ASSERT_EQ(notices->size(), 1u);
  EXPECT_EQ((*notices)[0].id, "E1");
  // Azure moves the event to Started: the same event, not reported again.
  events = R"({"DocumentIncarnation": 3, "Events": [
    {"EventId": "E1", "EventType": "Preempt", "Resources": ["shadow-host-1"], "EventStatus": "Started",
     "NotBefore": ""}]})";
  EXPECT_TRUE(poller.PollOnce()->empty());
}

TEST(AzurePollerTest, ErrorsNameTheUrl) {
  FakeHttpClient http;
  FakeClock clock;
  http.Reply("GET", kAzure, Plain(503, "throttled"));
  AzurePoller poller(http, clock);
  StatusOr<std::vector<Notice>> notices = poller.PollOnce();
  ASSERT_FALSE(notices.ok());
  EXPECT_EQ(notices.status().code(), Code::kUnavailable);
  EXPECT_TRUE(Contains(notices.status().message(), kAzure)) << notices.status().ToString();

  http.Reply("GET", kAzure, HttpResponse{.status = 200, .body = "{not json"});
  StatusOr<std::vector<Notice>> malformed = poller.PollOnce();
  ASSERT_FALSE(malformed.ok());
  EXPECT_EQ(malformed.status().code(), Code::kInvalidArgument);
}

TEST(AzurePollerTest, ApprovePostsTheStartRequest) {
  FakeHttpClient http;
  FakeClock clock;
  http.Reply("POST", kAzure, Plain(200));
  AzurePoller poller(http, clock, {.timeout = seconds(4)});
  ASSERT_TRUE(poller.Approve("C7061BAC-AFDC-4513-B24B-AA5F13A16123").ok());
  ASSERT_EQ(http.requests.size(), 1u);
  const HttpRequest& post = http.requests[0];
  EXPECT_EQ(post.body, R"({"StartRequests":[{"EventId":"C7061BAC-AFDC-4513-B24B-AA5F13A16123"}]})");
  EXPECT_EQ(HeaderOf(post, "Metadata"), "true");
  EXPECT_EQ(HeaderOf(post, "Content-Type"), "application/json");
  EXPECT_EQ(post.timeout, seconds(4));

  http.Reply("POST", kAzure, Plain(400, "unknown event"));
  Status refused = poller.Approve("gone");
  EXPECT_EQ(refused.code(), Code::kFailedPrecondition);
  EXPECT_TRUE(Contains(refused.message(), "'gone'")) << refused.ToString();
  EXPECT_TRUE(Contains(refused.message(), "unknown event")) << refused.ToString();

  EXPECT_EQ(poller.Approve("").code(), Code::kInvalidArgument);
  EXPECT_EQ(http.requests.size(), 2u);
}

}  // namespace
}  // namespace vs::notice
