#include "shadowd/notice/azure_scheduled_events.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "tests/unit/notice/test_support.h"

namespace vs::notice {
namespace {

using test_support::UnixSeconds;

const WallTime kNow = UnixSeconds(1474309700);

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The shape Azure documents, with one event of each kind that matters.
const std::string kDocument = R"({
  "DocumentIncarnation": 7,
  "Events": [
    {"EventId": "602d9444-d2cd-49c7-8624-8643e7171297", "EventType": "Freeze", "ResourceType": "VirtualMachine",
     "Resources": ["shadow-host-1"], "EventStatus": "Scheduled", "NotBefore": "Mon, 19 Sep 2016 18:29:47 GMT",
     "Description": "Host update", "EventSource": "Platform", "DurationInSeconds": 9},
    {"EventId": "C7061BAC-AFDC-4513-B24B-AA5F13A16123", "EventType": "Preempt", "ResourceType": "VirtualMachine",
     "Resources": ["shadow-host-1"], "EventStatus": "Scheduled", "NotBefore": "Mon, 19 Sep 2016 18:29:47 GMT",
     "Description": "Spot eviction", "EventSource": "Platform", "DurationInSeconds": -1}
  ]
})";

TEST(AzureScheduledEventsTest, PreemptIsAPreemptionDueAtNotBeforeAndOtherTypesAreNamedOnly) {
  StatusOr<std::vector<Notice>> notices = ParseAzureScheduledEvents(kDocument, "", kNow);
  ASSERT_TRUE(notices.ok()) << notices.status().ToString();
  ASSERT_EQ(notices->size(), 1u);
  const Notice& n = (*notices)[0];
  EXPECT_EQ(n.source, Notice::Source::kAzure);
  EXPECT_EQ(n.kind, Notice::Kind::kPreemption);
  EXPECT_EQ(n.id, "C7061BAC-AFDC-4513-B24B-AA5F13A16123");
  EXPECT_EQ(n.deadline, UnixSeconds(1474309787));
  EXPECT_TRUE(Contains(n.detail, "Azure Preempt event C7061BAC")) << n.detail;
  EXPECT_TRUE(Contains(n.detail, "Spot eviction")) << n.detail;
  EXPECT_TRUE(Contains(n.detail, "ignored: Freeze 602d9444-d2cd-49c7-8624-8643e7171297")) << n.detail;
}

TEST(AzureScheduledEventsTest, TerminateCountsAndRebootRedeployFreezeDoNot) {
  const std::string body = R"({"DocumentIncarnation": 2, "Events": [
    {"EventId": "a", "EventType": "Reboot", "NotBefore": ""},
    {"EventId": "b", "EventType": "Redeploy", "NotBefore": ""},
    {"EventId": "c", "EventType": "Freeze", "NotBefore": ""},
    {"EventId": "d", "EventType": "SomethingNew", "NotBefore": ""},
    {"EventId": "e", "EventType": "Terminate", "EventStatus": "Started", "NotBefore": ""}]})";
  StatusOr<std::vector<Notice>> notices = ParseAzureScheduledEvents(body, "", kNow);
  ASSERT_TRUE(notices.ok()) << notices.status().ToString();
  ASSERT_EQ(notices->size(), 1u);
  EXPECT_EQ((*notices)[0].id, "e");
  // An empty NotBefore: 30 s after it was seen.
  EXPECT_EQ((*notices)[0].deadline, kNow + std::chrono::seconds(30));
  EXPECT_TRUE(Contains((*notices)[0].detail, "no NotBefore")) << (*notices)[0].detail;
  EXPECT_TRUE(Contains((*notices)[0].detail, "Reboot a, Redeploy b, Freeze c, SomethingNew d")) << (*notices)[0].detail;

  StatusOr<std::vector<Notice>> none =
      ParseAzureScheduledEvents(R"({"DocumentIncarnation": 3, "Events": []})", "", kNow);
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->empty());
}

TEST(AzureScheduledEventsTest, UnreadableOrMissingNotBeforeFallsBackToThirtySeconds) {
  for (const std::string& event :
       {std::string(R"({"EventId": "x", "EventType": "Preempt"})"),
        std::string(R"({"EventId": "x", "EventType": "Preempt", "NotBefore": null})"),
        std::string(R"({"EventId": "x", "EventType": "Preempt", "NotBefore": "2016-09-19"})")}) {
    StatusOr<std::vector<Notice>> notices = ParseAzureScheduledEvents(R"({"Events": [)" + event + "]}", "", kNow);
    ASSERT_TRUE(notices.ok()) << event << ": " << notices.status().ToString();
    ASSERT_EQ(notices->size(), 1u) << event;
    EXPECT_EQ((*notices)[0].deadline, kNow + std::chrono::seconds(30)) << event;
  }
}

TEST(AzureScheduledEventsTest, EventsOfOtherVmsInTheSetAreDropped) {
  const std::string body = R"({"Events": [
    {"EventId": "mine", "EventType": "Preempt", "Resources": ["other-vm", "Shadow-Host-1"]},
    {"EventId": "theirs", "EventType": "Preempt", "Resources": ["other-vm"]},
    {"EventId": "nobody", "EventType": "Preempt", "Resources": []},
    {"EventId": "freeze-theirs", "EventType": "Freeze", "Resources": ["other-vm"]}]})";
  StatusOr<std::vector<Notice>> mine = ParseAzureScheduledEvents(body, "shadow-host-1", kNow);
  ASSERT_TRUE(mine.ok()) << mine.status().ToString();
  ASSERT_EQ(mine->size(), 1u);
  EXPECT_EQ((*mine)[0].id, "mine");
  EXPECT_FALSE(Contains((*mine)[0].detail, "freeze-theirs")) << (*mine)[0].detail;

  StatusOr<std::vector<Notice>> all = ParseAzureScheduledEvents(body, "", kNow);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 3u);
}

TEST(AzureScheduledEventsTest, MalformedDocumentsNameTheFieldAndEvent) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "not valid JSON"},
      {"{\"Events\": [", "not valid JSON"},
      {"[]", "must be a JSON object"},
      {"{}", "no \"Events\" array"},
      {R"({"Events": {}})", "\"Events\" must be an array, got object"},
      {R"({"DocumentIncarnation": "7", "Events": []})", "\"DocumentIncarnation\" must be an integer"},
      {R"({"Events": [5]})", "event #0 must be a JSON object, got number"},
      {R"({"Events": [{"EventType": "Preempt"}]})", "event #0 has no \"EventId\""},
      {R"({"Events": [{"EventId": "", "EventType": "Preempt"}]})", "event #0 has no \"EventId\""},
      {R"({"Events": [{"EventId": 12, "EventType": "Preempt"}]})", "\"EventId\" must be a string, got number"},
      {R"({"Events": [{"EventId": "a", "EventType": "Freeze"}, {"EventId": "b"}]})",
       "event #1 (b) has no \"EventType\""},
      {R"({"Events": [{"EventId": "a b", "EventType": "Preempt"}]})", "space or a non-ASCII or control"},
      {R"({"Events": [{"EventId": "a\u0001", "EventType": "Preempt"}]})", "space or a non-ASCII or control"},
      {R"({"Events": [{"EventId": ")" + std::string(129, 'a') + R"(", "EventType": "Preempt"}]})", "more than 128"},
      {R"({"Events": [{"EventId": "a", "EventType": "Preempt", "NotBefore": 5}]})", "\"NotBefore\" must be a string"},
      {R"({"Events": [{"EventId": "a", "EventType": "Preempt", "Resources": "vm"}]})",
       "\"Resources\" must be an array"},
      {R"({"Events": [{"EventId": "a", "EventType": "Preempt", "Resources": [1]}]})", "must hold only strings"},
  };
  for (const auto& [body, why] : cases) {
    StatusOr<std::vector<Notice>> notices = ParseAzureScheduledEvents(body, "", kNow);
    ASSERT_FALSE(notices.ok()) << body;
    EXPECT_EQ(notices.status().code(), Code::kInvalidArgument) << body;
    EXPECT_TRUE(Contains(notices.status().message(), "Azure scheduled event")) << notices.status().ToString();
    EXPECT_TRUE(Contains(notices.status().message(), why)) << body << " -> " << notices.status().ToString();
  }
}

TEST(AzureScheduledEventsTest, StartRequestBodyIsTheDocumentedJson) {
  EXPECT_EQ(AzureStartRequestBody("C7061BAC-AFDC-4513-B24B-AA5F13A16123"),
            R"({"StartRequests":[{"EventId":"C7061BAC-AFDC-4513-B24B-AA5F13A16123"}]})");
  // Whatever the id holds, the body stays one JSON document with that id in it.
  const std::string hostile = "a\"}],\"x\":[{\"EventId\":\"b\\";
  const nlohmann::json parsed = nlohmann::json::parse(AzureStartRequestBody(hostile));
  EXPECT_EQ(parsed["StartRequests"][0]["EventId"], hostile);
  EXPECT_EQ(parsed.size(), 1u);
  EXPECT_NO_THROW(nlohmann::json::parse(AzureStartRequestBody("\xff\xfe")));
}

}  // namespace
}  // namespace vs::notice
