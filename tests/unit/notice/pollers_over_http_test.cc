// The pollers through BeastHttpClient against a local server speaking each cloud's format: what
// goes over the wire (methods, paths, headers, bodies) and what comes back.
#include <gtest/gtest.h>

#include <atomic>
#include <string>

#include "shadowd/notice/beast_http_client.h"
#include "shadowd/notice/metadata_poller.h"
#include "tests/unit/notice/local_http_server.h"
#include "tests/unit/notice/test_support.h"

namespace vs::notice {
namespace {

using test_support::LocalHttpServer;
using test_support::RawResponse;
using test_support::ReceivedRequest;

TEST(PollersOverHttpTest, Gce) {
  LocalHttpServer server([](const ReceivedRequest& r) -> std::optional<std::string> {
    if (r.headers.count("metadata-flavor") == 0) return RawResponse(403, "missing Metadata-Flavor");
    if (r.target == "/computeMetadata/v1/instance/preempted") {
      return RawResponse(200, "TRUE", "Metadata-Flavor: Google\r\n");
    }
    if (r.target == "/computeMetadata/v1/instance/maintenance-event") {
      return RawResponse(200, "NONE", "Metadata-Flavor: Google\r\n");
    }
    return RawResponse(404, "");
  });
  BeastHttpClient http;
  FakeClock clock;
  GcePoller poller(http, clock, {.base_url = server.base_url()});
  StatusOr<std::vector<Notice>> notices = poller.PollOnce();
  ASSERT_TRUE(notices.ok()) << notices.status().ToString();
  ASSERT_EQ(notices->size(), 1u);
  EXPECT_EQ((*notices)[0].id, "gce/preempted/" + std::to_string(ToUnixMillis(clock.WallNow())));
  EXPECT_EQ(server.requests().size(), 2u);
}

TEST(PollersOverHttpTest, AwsWithTokenExpiry) {
  std::atomic<int> tokens = 0;
  std::atomic<bool> expire_first = true;
  LocalHttpServer server([&](const ReceivedRequest& r) -> std::optional<std::string> {
    if (r.method == "PUT" && r.target == "/latest/api/token") {
      if (r.headers.count("x-aws-ec2-metadata-token-ttl-seconds") == 0) return RawResponse(400, "no ttl");
      return RawResponse(200, "tok" + std::to_string(++tokens));
    }
    auto token = r.headers.find("x-aws-ec2-metadata-token");
    if (token == r.headers.end()) return RawResponse(401, "");
    if (token->second == "tok1" && expire_first) return RawResponse(401, "");
    if (r.target == "/latest/meta-data/spot/instance-action") {
      return RawResponse(200, R"({"action": "terminate", "time": "2027-01-15T08:02:00Z"})",
                         "Content-Type: text/plain\r\n");
    }
    return RawResponse(404, "<?xml version=\"1.0\"?><title>404 - Not Found</title>", "Content-Type: text/html\r\n");
  });
  BeastHttpClient http;
  FakeClock clock;
  AwsPoller poller(http, clock, {.base_url = server.base_url()});
  StatusOr<std::vector<Notice>> notices = poller.PollOnce();
  ASSERT_TRUE(notices.ok()) << notices.status().ToString();
  ASSERT_EQ(notices->size(), 1u);
  EXPECT_EQ((*notices)[0].deadline, test_support::UnixSeconds(1800000120));
  EXPECT_EQ(tokens.load(), 2);
}

TEST(PollersOverHttpTest, AzureEventsAndApproval) {
  LocalHttpServer server([](const ReceivedRequest& r) -> std::optional<std::string> {
    if (r.target != "/metadata/scheduledevents?api-version=2020-07-01" || r.headers.count("metadata") == 0) {
      return RawResponse(400, "bad request");
    }
    if (r.method == "POST") return RawResponse(200, "");
    return RawResponse(200, R"({"DocumentIncarnation": 4, "Events": [{"EventId": "E-42", "EventType": "Preempt",
        "ResourceType": "VirtualMachine", "Resources": ["vm1"], "EventStatus": "Scheduled",
        "NotBefore": "Mon, 19 Sep 2016 18:29:47 GMT", "Description": "", "EventSource": "Platform",
        "DurationInSeconds": -1}]})");
  });
  BeastHttpClient http;
  FakeClock clock;
  AzurePoller poller(http, clock, {.base_url = server.base_url()}, "vm1");
  StatusOr<std::vector<Notice>> notices = poller.PollOnce();
  ASSERT_TRUE(notices.ok()) << notices.status().ToString();
  ASSERT_EQ(notices->size(), 1u);
  ASSERT_TRUE(poller.Approve((*notices)[0].id).ok());
  ASSERT_EQ(server.requests().size(), 2u);
  const ReceivedRequest post = server.requests()[1];
  EXPECT_EQ(post.method, "POST");
  EXPECT_EQ(post.body, R"({"StartRequests":[{"EventId":"E-42"}]})");
  EXPECT_EQ(post.headers.at("metadata"), "true");
}

}  // namespace
}  // namespace vs::notice
