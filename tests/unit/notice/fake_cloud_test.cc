// The fake metadata services and acpid that NoticeSources and the lab tests rely on: they must speak
// what the real ones speak (the parsers and pollers accept it, through a host path prefix) and refuse
// what the real ones refuse, or a test against them would prove nothing.
#include "tests/unit/notice/fake_cloud.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <thread>

#include "shadowd/notice/beast_http_client.h"
#include "shadowd/notice/metadata_poller.h"
#include "shadowd/notice/power_button.h"
#include "tests/unit/common/temp_dir.h"
#include "tests/unit/notice/test_support.h"

namespace vs::notice::test_support {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Polls `condition` every 5 ms for up to 5 s.
bool Eventually(const std::function<bool()>& condition) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

class FakeCloudTest : public ::testing::Test {
 protected:
  void SetUp() override {
    StatusOr<std::unique_ptr<FakeCloud>> started = FakeCloud::Start("127.0.0.1", 0);
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    cloud_ = std::move(*started);
  }

  HttpResponse Send(const std::string& method, const std::string& host_path,
                    std::vector<std::pair<std::string, std::string>> headers = {}, std::string body = "") {
    const std::string url = "http://127.0.0.1:" + std::to_string(cloud_->port()) + host_path;
    StatusOr<HttpResponse> response =
        http_.Send({.method = method, .url = url, .headers = std::move(headers), .body = std::move(body)});
    EXPECT_TRUE(response.ok()) << response.status().ToString();
    return response.ok() ? *response : HttpResponse{};
  }

  std::unique_ptr<FakeCloud> cloud_;
  BeastHttpClient http_;
  FakeClock clock_;
};

TEST_F(FakeCloudTest, BaseUrlCarriesTheHostPrefix) {
  EXPECT_EQ(cloud_->BaseUrl("h1"), "http://127.0.0.1:" + std::to_string(cloud_->port()) + "/h1");
}

TEST_F(FakeCloudTest, GcePollerReadsItThroughTheHostPrefix) {
  GcePoller poller(http_, clock_, {.base_url = cloud_->BaseUrl("h1")});
  StatusOr<std::vector<Notice>> none = poller.PollOnce();
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_THAT(*none, IsEmpty());

  cloud_->SetGcePreempted("h1", true);
  cloud_->SetGceMaintenance("h1", "MIGRATE_ON_HOST_MAINTENANCE");
  StatusOr<std::vector<Notice>> both = poller.PollOnce();
  ASSERT_TRUE(both.ok()) << both.status().ToString();
  ASSERT_EQ(both->size(), 2u);
  EXPECT_EQ((*both)[0].kind, Notice::Kind::kPreemption);
  EXPECT_EQ((*both)[1].kind, Notice::Kind::kEarlyWarning);
  EXPECT_EQ(cloud_->RequestCount("h1"), 4u);
  EXPECT_EQ(cloud_->RequestCount("h2"), 0u);
}

TEST_F(FakeCloudTest, GceRefusesRequestsWithoutTheFlavorHeaderOrWithForwarding) {
  const std::string path = "/h1/computeMetadata/v1/instance/preempted";
  EXPECT_EQ(Send("GET", path).status, 403);
  EXPECT_EQ(Send("GET", path, {{"Metadata-Flavor", "Google"}, {"X-Forwarded-For", "10.0.0.9"}}).status, 403);
  const HttpResponse ok = Send("GET", path, {{"Metadata-Flavor", "Google"}});
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "FALSE");
  EXPECT_EQ(ok.Header("Metadata-Flavor"), "Google");
  EXPECT_EQ(Send("GET", "/h1/computeMetadata/v1/instance/nothing", {{"Metadata-Flavor", "Google"}}).status, 404);
}

TEST_F(FakeCloudTest, GceServesAnyMaintenanceTextSoParsersCanBeTried) {
  cloud_->SetGceMaintenance("h1", "SOMETHING_NEW");
  GcePoller poller(http_, clock_, {.base_url = cloud_->BaseUrl("h1")});
  StatusOr<std::vector<Notice>> notices = poller.PollOnce();
  ASSERT_FALSE(notices.ok());
  EXPECT_EQ(notices.status().code(), Code::kInvalidArgument);
}

TEST_F(FakeCloudTest, AwsPollerReadsItThroughTheHostPrefix) {
  AwsPoller poller(http_, clock_, {.base_url = cloud_->BaseUrl("h2")});
  StatusOr<std::vector<Notice>> none = poller.PollOnce();
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_THAT(*none, IsEmpty());

  cloud_->SetAwsInstanceAction("h2", "stop", UnixSeconds(1'800'000'120));
  cloud_->SetAwsRebalance("h2", UnixSeconds(1'800'000'000));
  StatusOr<std::vector<Notice>> both = poller.PollOnce();
  ASSERT_TRUE(both.ok()) << both.status().ToString();
  ASSERT_EQ(both->size(), 2u);
  EXPECT_EQ((*both)[0].id, "aws/spot/stop/2027-01-15T08:02:00Z");
  EXPECT_EQ((*both)[0].deadline, UnixSeconds(1'800'000'120));
  EXPECT_EQ((*both)[1].id, "aws/rebalance/2027-01-15T08:00:00Z");
  EXPECT_EQ((*both)[1].kind, Notice::Kind::kEarlyWarning);
}

TEST_F(FakeCloudTest, AwsIsImdsV2Only) {
  EXPECT_EQ(Send("GET", "/h1/latest/meta-data/spot/instance-action").status, 401);
  EXPECT_EQ(Send("PUT", "/h1/latest/api/token").status, 400);
  EXPECT_EQ(Send("PUT", "/h1/latest/api/token", {{"X-aws-ec2-metadata-token-ttl-seconds", "0"}}).status, 400);
  EXPECT_EQ(Send("PUT", "/h1/latest/api/token", {{"X-aws-ec2-metadata-token-ttl-seconds", "21601"}}).status, 400);
  EXPECT_EQ(Send("PUT", "/h1/latest/api/token",
                 {{"X-aws-ec2-metadata-token-ttl-seconds", "60"}, {"X-Forwarded-For", "10.0.0.9"}})
                .status,
            403);
  const HttpResponse token = Send("PUT", "/h1/latest/api/token", {{"X-aws-ec2-metadata-token-ttl-seconds", "60"}});
  ASSERT_EQ(token.status, 200);
  EXPECT_EQ(token.Header("X-Aws-Ec2-Metadata-Token-Ttl-Seconds"), "60");
  EXPECT_EQ(Send("GET", "/h1/latest/meta-data/spot/instance-action", {{"X-aws-ec2-metadata-token", "forged"}}).status,
            401);
  EXPECT_EQ(
      Send("GET", "/h1/latest/meta-data/spot/instance-action", {{"X-aws-ec2-metadata-token", token.body}}).status,
      404);
  // A token belongs to the instance (host) it was issued to.
  EXPECT_EQ(
      Send("GET", "/h2/latest/meta-data/spot/instance-action", {{"X-aws-ec2-metadata-token", token.body}}).status,
      401);
}

TEST_F(FakeCloudTest, AzurePollerSeesItsVmsEventsAndApprovalStartsThem) {
  const std::string mine = cloud_->AddAzureEvent("h3", "Preempt", "h3", UnixSeconds(1'800'000'030));
  cloud_->AddAzureEvent("h3", "Preempt", "someone-else", UnixSeconds(1'800'000'030));
  AzurePoller poller(http_, clock_, {.base_url = cloud_->BaseUrl("h3")}, "h3");
  StatusOr<std::vector<Notice>> notices = poller.PollOnce();
  ASSERT_TRUE(notices.ok()) << notices.status().ToString();
  ASSERT_EQ(notices->size(), 1u);
  EXPECT_EQ((*notices)[0].id, mine);
  EXPECT_EQ((*notices)[0].deadline, UnixSeconds(1'800'000'030));  // NotBefore survived RFC 1123 both ways

  ASSERT_TRUE(poller.Approve(mine).ok());
  EXPECT_THAT(cloud_->ApprovedAzureEvents("h3"), ElementsAre(mine));
  const HttpResponse after =
      Send("GET", "/h3/metadata/scheduledevents?api-version=2020-07-01", {{"Metadata", "true"}});
  EXPECT_THAT(after.body, ::testing::HasSubstr("\"EventStatus\":\"Started\""));
  EXPECT_FALSE(poller.Approve("no-such-event").ok());

  cloud_->ClearAll("h3");
  EXPECT_THAT(cloud_->ApprovedAzureEvents("h3"), IsEmpty());
  StatusOr<std::vector<Notice>> cleared = poller.PollOnce();
  ASSERT_TRUE(cleared.ok()) << cleared.status().ToString();
  EXPECT_THAT(*cleared, IsEmpty());
}

TEST_F(FakeCloudTest, AzureRefusesWhatAzureRefuses) {
  const std::string path = "/h1/metadata/scheduledevents";
  EXPECT_EQ(Send("GET", path + "?api-version=2020-07-01").status, 400);  // no Metadata: true
  EXPECT_EQ(Send("GET", path + "?api-version=2020-07-01", {{"Metadata", "false"}}).status, 400);
  EXPECT_EQ(Send("GET", path, {{"Metadata", "true"}}).status, 400);  // no api-version
  EXPECT_EQ(Send("GET", path + "?api-version=1999-01-01", {{"Metadata", "true"}}).status, 400);
  EXPECT_EQ(
      Send("GET", path + "?api-version=2020-07-01", {{"Metadata", "true"}, {"X-Forwarded-For", "1.2.3.4"}}).status,
      400);
  EXPECT_EQ(Send("POST", path + "?api-version=2020-07-01", {{"Metadata", "true"}}, "not json").status, 400);
  const HttpResponse ok = Send("GET", path + "?api-version=2020-07-01", {{"Metadata", "true"}});
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, R"({"DocumentIncarnation":1,"Events":[]})");
}

TEST_F(FakeCloudTest, UnknownPathsAndMissingHostPrefix) {
  EXPECT_EQ(Send("GET", "/").status, 404);
  EXPECT_EQ(Send("GET", "/computeMetadata").status, 404);
  EXPECT_EQ(Send("GET", "/h1/elsewhere").status, 404);
  EXPECT_EQ(cloud_->RequestCount("h1"), 1u);
}

TEST(FakeCloudStartTest, ReportsAnAddressInUse) {
  StatusOr<std::unique_ptr<FakeCloud>> first = FakeCloud::Start("127.0.0.1", 0);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  StatusOr<std::unique_ptr<FakeCloud>> second = FakeCloud::Start("127.0.0.1", (*first)->port());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Code::kUnavailable);
  EXPECT_THAT(second.status().message(), ::testing::HasSubstr(std::to_string((*first)->port())));
  EXPECT_EQ(FakeCloud::Start("not-an-ip", 0).status().code(), Code::kInvalidArgument);
}

// ---- FakeAcpid

int ConnectTo(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{.sun_family = AF_UNIX};
  std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
  EXPECT_EQ(connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address), 0) << std::strerror(errno);
  return fd;
}

std::string ReadSome(int fd) {
  char buffer[256];
  const ssize_t n = read(fd, buffer, sizeof buffer);
  return n > 0 ? std::string(buffer, static_cast<size_t>(n)) : "";
}

TEST(FakeAcpidTest, PressReachesEveryClientAsAcpidWritesIt) {
  vs::test_support::TempDir dir;
  StatusOr<std::unique_ptr<FakeAcpid>> acpid = FakeAcpid::Start(dir.Sub("acpid.socket"));
  ASSERT_TRUE(acpid.ok()) << acpid.status().ToString();
  const int a = ConnectTo(dir.Sub("acpid.socket"));
  const int b = ConnectTo(dir.Sub("acpid.socket"));
  ASSERT_TRUE(Eventually([&] { return (*acpid)->ConnectedClients() == 2; }));

  EXPECT_EQ((*acpid)->PressPowerButton(), 2u);
  const std::string line = ReadSome(a);
  EXPECT_EQ(ReadSome(b), line);
  ASSERT_TRUE(line.ends_with('\n'));
  StatusOr<bool> power = IsAcpidPowerButtonEvent(line.substr(0, line.size() - 1));
  ASSERT_TRUE(power.ok()) << power.status().ToString();
  EXPECT_TRUE(*power);

  close(a);
  EXPECT_TRUE(Eventually([&] { return (*acpid)->ConnectedClients() == 1; }));
  EXPECT_EQ((*acpid)->PressPowerButton(), 1u);
  close(b);
}

TEST(FakeAcpidTest, ReplacesAStaleSocketButNoOtherFileAndRemovesItsOwn) {
  vs::test_support::TempDir dir;
  const std::string path = dir.Sub("acpid.socket");
  { ASSERT_TRUE(FakeAcpid::Start(path).ok()); }
  EXPECT_NE(access(path.c_str(), F_OK), 0) << "the socket file outlived its FakeAcpid";

  const int stale = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{.sun_family = AF_UNIX};
  std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
  ASSERT_EQ(bind(stale, reinterpret_cast<const sockaddr*>(&address), sizeof address), 0);
  close(stale);  // leaves the socket file behind, as a crashed acpid would
  EXPECT_TRUE(FakeAcpid::Start(path).ok());

  const std::string regular = dir.Sub("file");
  close(creat(regular.c_str(), 0600));
  EXPECT_EQ(FakeAcpid::Start(regular).status().code(), Code::kAlreadyExists);
  EXPECT_EQ(access(regular.c_str(), F_OK), 0);
}

}  // namespace
}  // namespace vs::notice::test_support
