// NoticeSources against the fakes: a press and each cloud notice reach `deliver` exactly once, a
// missing acpid socket is logged once and picked up when it appears, a failing poller is logged
// only when its error changes, and Stop() is prompt whatever the threads are waiting for.
#include "shadowd/notice/notice_sources.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/input.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <mutex>
#include <thread>

#include "shadowd/notice/beast_http_client.h"
#include "tests/unit/common/temp_dir.h"
#include "tests/unit/notice/fake_cloud.h"
#include "tests/unit/notice/test_support.h"

namespace vs::notice {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using test_support::FakeAcpid;
using test_support::FakeCloud;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

// Polls `condition` every 5 ms for up to 5 s.
bool Eventually(const std::function<bool()>& condition) {
  const auto give_up = std::chrono::steady_clock::now() + seconds(5);
  while (!condition()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return true;
}

// What the callbacks received, from whichever thread.
class Recorder {
 public:
  NoticeSources::Deliver deliver() {
    return [this](const Notice& notice) {
      std::lock_guard lock(mu_);
      notices_.push_back(notice);
    };
  }
  NoticeSources::Log log() {
    return [this](const std::string& line) {
      std::lock_guard lock(mu_);
      logs_.push_back(line);
    };
  }
  std::vector<Notice> notices() const {
    std::lock_guard lock(mu_);
    return notices_;
  }
  // The log lines containing `part`.
  std::vector<std::string> logs(const std::string& part) const {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const std::string& line : logs_) {
      if (line.find(part) != std::string::npos) out.push_back(line);
    }
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<Notice> notices_;
  std::vector<std::string> logs_;
};

std::vector<std::string> Ids(const std::vector<Notice>& notices) {
  std::vector<std::string> ids;
  for (const Notice& n : notices) ids.push_back(n.id);
  return ids;
}

class NoticeSourcesTest : public ::testing::Test {
 protected:
  std::unique_ptr<NoticeSources> Make(NoticeSourcesOptions options) {
    return std::make_unique<NoticeSources>(std::move(options), http_, clock_, recorder_.deliver(), recorder_.log());
  }

  // Stops `sources` and returns how long that took.
  static std::chrono::steady_clock::duration TimedStop(NoticeSources& sources) {
    const auto start = std::chrono::steady_clock::now();
    sources.Stop();
    return std::chrono::steady_clock::now() - start;
  }

  vs::test_support::TempDir dir_;
  BeastHttpClient http_;
  FakeClock clock_;
  Recorder recorder_;
};

TEST_F(NoticeSourcesTest, APressIsDeliveredOnce) {
  StatusOr<std::unique_ptr<FakeAcpid>> acpid = FakeAcpid::Start(dir_.Sub("acpid.socket"));
  ASSERT_TRUE(acpid.ok()) << acpid.status().ToString();
  auto sources = Make({.acpid_socket = dir_.Sub("acpid.socket"), .power_button_deadline = seconds(25)});
  ASSERT_TRUE(sources->Start().ok());
  ASSERT_TRUE(Eventually([&] { return (*acpid)->ConnectedClients() == 1; }));

  EXPECT_EQ((*acpid)->Send("button/lid LID close\n"), 1u);  // another event: no notice
  EXPECT_EQ((*acpid)->PressPowerButton(), 1u);
  ASSERT_TRUE(Eventually([&] { return !recorder_.notices().empty(); }));
  std::this_thread::sleep_for(milliseconds(50));  // room for a wrong second delivery
  const std::vector<Notice> notices = recorder_.notices();
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(notices[0].source, Notice::Source::kAcpiPowerButton);
  EXPECT_EQ(notices[0].kind, Notice::Kind::kPreemption);
  EXPECT_EQ(notices[0].deadline, clock_.WallNow() + seconds(25));
}

TEST_F(NoticeSourcesTest, AMalformedAcpidLineIsLoggedAndTheNextPressStillCounts) {
  StatusOr<std::unique_ptr<FakeAcpid>> acpid = FakeAcpid::Start(dir_.Sub("acpid.socket"));
  ASSERT_TRUE(acpid.ok()) << acpid.status().ToString();
  auto sources = Make({.acpid_socket = dir_.Sub("acpid.socket")});
  ASSERT_TRUE(sources->Start().ok());
  ASSERT_TRUE(Eventually([&] { return (*acpid)->ConnectedClients() == 1; }));

  (*acpid)->Send("button/power PBTN zz\n");
  (*acpid)->PressPowerButton();
  ASSERT_TRUE(Eventually([&] { return recorder_.notices().size() == 1; }));
  EXPECT_EQ(recorder_.logs("malformed").size(), 1u);
}

TEST_F(NoticeSourcesTest, AnInputDevicePressIsDeliveredOnce) {
  const std::string fifo = dir_.Sub("event0");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0) << std::strerror(errno);
  auto sources = Make({.input_device = fifo});
  ASSERT_TRUE(sources->Start().ok());
  ASSERT_TRUE(Eventually([&] { return !recorder_.logs("connected").empty(); }));
  const int writer = open(fifo.c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(writer, 0) << std::strerror(errno);

  input_event press{};
  press.type = EV_KEY;
  press.code = KEY_POWER;
  press.value = 1;
  ASSERT_EQ(write(writer, &press, sizeof press), static_cast<ssize_t>(sizeof press));
  ASSERT_TRUE(Eventually([&] { return !recorder_.notices().empty(); }));
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_EQ(recorder_.notices().size(), 1u);
  EXPECT_LT(TimedStop(*sources), seconds(1));
  close(writer);
}

TEST_F(NoticeSourcesTest, AMissingSocketIsLoggedOnceAndConnectedWhenItAppears) {
  const std::string path = dir_.Sub("acpid.socket");
  auto sources = Make({.acpid_socket = path, .reconnect_interval = milliseconds(20)});
  ASSERT_TRUE(sources->Start().ok());
  std::this_thread::sleep_for(milliseconds(300));  // some fifteen attempts
  EXPECT_EQ(recorder_.logs(path).size(), 1u);
  EXPECT_THAT(recorder_.logs(path).at(0), HasSubstr("cannot connect to acpid"));

  StatusOr<std::unique_ptr<FakeAcpid>> acpid = FakeAcpid::Start(path);
  ASSERT_TRUE(acpid.ok()) << acpid.status().ToString();
  ASSERT_TRUE(Eventually([&] { return (*acpid)->ConnectedClients() == 1; }));
  ASSERT_TRUE(Eventually([&] { return recorder_.logs("connected").size() == 1; }));
  (*acpid)->PressPowerButton();
  ASSERT_TRUE(Eventually([&] { return recorder_.notices().size() == 1; }));

  // acpid goes away: the loss is logged, and the source comes back with acpid.
  acpid->reset();
  ASSERT_TRUE(Eventually([&] { return !recorder_.logs("closed by the other end").empty(); }));
  acpid = FakeAcpid::Start(path);
  ASSERT_TRUE(acpid.ok()) << acpid.status().ToString();
  ASSERT_TRUE(Eventually([&] { return (*acpid)->ConnectedClients() == 1; }));
  (*acpid)->PressPowerButton();
  ASSERT_TRUE(Eventually([&] { return recorder_.notices().size() == 2; }));
}

TEST_F(NoticeSourcesTest, EachCloudNoticeIsDeliveredOnce) {
  StatusOr<std::unique_ptr<FakeCloud>> cloud = FakeCloud::Start("127.0.0.1", 0);
  ASSERT_TRUE(cloud.ok()) << cloud.status().ToString();
  FakeCloud& fake = **cloud;
  fake.SetGcePreempted("h1", true);
  fake.SetAwsInstanceAction("h1", "terminate", test_support::UnixSeconds(1'800'000'120));
  const std::string azure_id = fake.AddAzureEvent("h1", "Preempt", "h1", test_support::UnixSeconds(1'800'000'030));
  fake.AddAzureEvent("h1", "Preempt", "another-vm", test_support::UnixSeconds(1'800'000'030));
  auto sources = Make({.gce_url = fake.BaseUrl("h1"),
                       .aws_url = fake.BaseUrl("h1"),
                       .azure_url = fake.BaseUrl("h1"),
                       .azure_vm_name = "h1",
                       .poll_interval = milliseconds(10)});
  ASSERT_TRUE(sources->Start().ok());

  ASSERT_TRUE(Eventually([&] { return recorder_.notices().size() >= 3; }));
  const uint64_t requests = fake.RequestCount("h1");
  ASSERT_TRUE(Eventually([&] { return fake.RequestCount("h1") > requests + 20; }));  // a few more polls
  EXPECT_THAT(Ids(recorder_.notices()),
              UnorderedElementsAre(::testing::StartsWith("gce/preempted/"), "aws/spot/terminate/2027-01-15T08:02:00Z",
                                   azure_id));

  ASSERT_TRUE(sources->ApproveAzure(azure_id).ok());
  EXPECT_THAT(fake.ApprovedAzureEvents("h1"), ::testing::ElementsAre(azure_id));
  EXPECT_LT(TimedStop(*sources), seconds(1));
  const uint64_t after_stop = fake.RequestCount("h1");
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_EQ(fake.RequestCount("h1"), after_stop) << "a poller still runs after Stop()";
}

TEST_F(NoticeSourcesTest, APollerErrorIsLoggedOnlyWhenItChanges) {
  StatusOr<std::unique_ptr<FakeCloud>> cloud = FakeCloud::Start("127.0.0.1", 0);
  ASSERT_TRUE(cloud.ok()) << cloud.status().ToString();
  FakeCloud& fake = **cloud;
  fake.SetGceMaintenance("h1", "BOGUS");
  auto sources = Make({.gce_url = fake.BaseUrl("h1"), .poll_interval = milliseconds(5)});
  ASSERT_TRUE(sources->Start().ok());

  auto polls_later = [&](uint64_t polls) {
    const uint64_t now = fake.RequestCount("h1");
    return Eventually([&] { return fake.RequestCount("h1") >= now + 2 * polls; });  // two requests per GCE poll
  };
  ASSERT_TRUE(polls_later(10));
  EXPECT_EQ(recorder_.logs("gce metadata").size(), 1u);
  EXPECT_THAT(recorder_.logs("gce metadata").at(0), HasSubstr("BOGUS"));

  fake.SetGceMaintenance("h1", "STILL_BOGUS");
  ASSERT_TRUE(polls_later(10));
  EXPECT_EQ(recorder_.logs("gce metadata").size(), 2u);

  fake.SetGceMaintenance("h1", "NONE");
  ASSERT_TRUE(polls_later(10));
  EXPECT_EQ(recorder_.logs("answers again").size(), 1u);
  fake.SetGceMaintenance("h1", "STILL_BOGUS");  // the same error as before the recovery is news again
  ASSERT_TRUE(polls_later(10));
  EXPECT_EQ(recorder_.logs("STILL_BOGUS").size(), 2u);
  EXPECT_EQ(recorder_.logs("gce metadata").size(), 4u);
}

TEST_F(NoticeSourcesTest, StopIsPromptWhateverTheThreadsWaitFor) {
  StatusOr<std::unique_ptr<FakeAcpid>> acpid = FakeAcpid::Start(dir_.Sub("acpid.socket"));
  ASSERT_TRUE(acpid.ok()) << acpid.status().ToString();
  StatusOr<std::unique_ptr<FakeCloud>> cloud = FakeCloud::Start("127.0.0.1", 0);
  ASSERT_TRUE(cloud.ok()) << cloud.status().ToString();
  // One reader blocked in Next(), one source waiting to retry a missing device, and the poller
  // between two polls: each waits for an hour unless Stop() wakes it.
  auto sources = Make({.acpid_socket = dir_.Sub("acpid.socket"),
                       .input_device = dir_.Sub("no-such-device"),
                       .gce_url = (*cloud)->BaseUrl("h1"),
                       .poll_interval = std::chrono::hours(1),
                       .reconnect_interval = std::chrono::hours(1)});
  ASSERT_TRUE(sources->Start().ok());
  ASSERT_TRUE(Eventually([&] { return (*acpid)->ConnectedClients() == 1; }));
  ASSERT_TRUE(Eventually([&] { return !recorder_.logs("no-such-device").empty(); }));
  ASSERT_TRUE(Eventually([&] { return (*cloud)->RequestCount("h1") == 2; }));
  EXPECT_LT(TimedStop(*sources), seconds(1));
  sources->Stop();  // idempotent
  EXPECT_TRUE(Eventually([&] { return (*acpid)->ConnectedClients() == 0; })) << "the reader kept its connection";
}

TEST_F(NoticeSourcesTest, StartChecksItsOptionsAndRunsOnce) {
  Status no_vm = Make({.azure_url = "http://127.0.0.1:1"})->Start();
  EXPECT_EQ(no_vm.code(), Code::kInvalidArgument);
  EXPECT_THAT(no_vm.message(), HasSubstr("azure_vm_name"));
  Status zero_interval = Make({.gce_url = "http://127.0.0.1:1", .poll_interval = Duration::zero()})->Start();
  EXPECT_EQ(zero_interval.code(), Code::kInvalidArgument);
  EXPECT_THAT(zero_interval.message(), HasSubstr("poll_interval"));

  auto sources = Make({});
  ASSERT_TRUE(sources->Start().ok());
  EXPECT_EQ(sources->Start().code(), Code::kFailedPrecondition);
}

TEST_F(NoticeSourcesTest, ApproveAzureNeedsAzure) {
  auto sources = Make({.gce_url = "http://127.0.0.1:1"});
  Status approved = sources->ApproveAzure("E-1");
  EXPECT_EQ(approved.code(), Code::kFailedPrecondition);
  EXPECT_THAT(approved.message(), HasSubstr("E-1"));
}

}  // namespace
}  // namespace vs::notice
