// The hook socket as the hook and misbehaving clients meet it: a real listener on a unix socket in a temporary
// directory, with a recording handler.
#include "shadowd/hook_intake/hook_listener.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "common/frame.h"
#include "tests/unit/common/temp_dir.h"

namespace vs::hook_intake {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using namespace std::chrono_literals;

// A client's end of the hook socket (blocking, as tests need no more).
class Client {
 public:
  explicit Client(const std::string& path) : fd_(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
    connect_errno_ = ::connect(fd_.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0 ? 0 : errno;
  }
  int connect_errno() const { return connect_errno_; }
  void Send(std::string_view bytes) const {
    ASSERT_EQ(::send(fd_.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
  }
  StatusOr<std::string> Answer(Duration wait) const { return frame::Read(fd_.get(), 1 << 20, clock_->Now() + wait, *clock_); }

 private:
  UniqueFd fd_;
  int connect_errno_ = 0;
  std::unique_ptr<Clock> clock_ = NewRealClock();
};

virtshadow::v1::HookEvent Prepare(const std::string& name) {
  virtshadow::v1::HookEvent event;
  event.set_domain_name(name);
  event.set_operation("prepare");
  event.set_sub_operation("begin");
  event.set_domain_xml("<domain><name>" + name + "</name></domain>");
  return event;
}

class HookListenerTest : public ::testing::Test {
 protected:
  void Listen(HookListener::Options options) {
    auto listener = HookListener::Start(
        socket_,
        [this](const virtshadow::v1::HookEvent& event) {
          std::lock_guard<std::mutex> lock(mu_);
          events_.push_back(event);
          virtshadow::v1::HookVerdict verdict;
          verdict.set_allow(event.domain_name() != "refused");
          if (!verdict.allow()) verdict.set_reason("refused for " + event.domain_name());
          return verdict;
        },
        *clock_,
        [this](const std::string& line) {
          std::lock_guard<std::mutex> lock(mu_);
          log_.push_back(line);
        },
        options);
    ASSERT_TRUE(listener.ok()) << listener.status().ToString();
    listener_ = std::move(*listener);
  }
  std::vector<virtshadow::v1::HookEvent> Events() {
    std::lock_guard<std::mutex> lock(mu_);
    return events_;
  }
  std::string Log() {
    std::lock_guard<std::mutex> lock(mu_);
    std::string all;
    for (const std::string& line : log_) all += line + "\n";
    return all;
  }
  // What a hook gets for `event`: the verdict, or why not.
  StatusOr<virtshadow::v1::HookVerdict> Exchange(const virtshadow::v1::HookEvent& event) {
    Client client(socket_);
    client.Send(frame::Encode(event.SerializeAsString()));
    VS_ASSIGN_OR_RETURN(std::string answer, client.Answer(5s));
    virtshadow::v1::HookVerdict verdict;
    if (!verdict.ParseFromString(answer)) return DataLoss("not a verdict");
    return verdict;
  }

  test_support::TempDir dir_;
  const std::string socket_ = dir_.Sub("run/hook.sock");
  std::unique_ptr<Clock> clock_ = NewRealClock();
  std::mutex mu_;
  std::vector<virtshadow::v1::HookEvent> events_;  // guarded by mu_
  std::vector<std::string> log_;                   // guarded by mu_
  std::unique_ptr<HookListener> listener_;         // last: stopped before the rest goes
};

TEST_F(HookListenerTest, AnEventIsAnsweredWithTheHandlersVerdict) {
  Listen({});
  StatusOr<virtshadow::v1::HookVerdict> allowed = Exchange(Prepare("web-1"));
  ASSERT_TRUE(allowed.ok()) << allowed.status().ToString();
  EXPECT_TRUE(allowed->allow());
  StatusOr<virtshadow::v1::HookVerdict> refused = Exchange(Prepare("refused"));
  ASSERT_TRUE(refused.ok()) << refused.status().ToString();
  EXPECT_FALSE(refused->allow());
  EXPECT_EQ(refused->reason(), "refused for refused");
  ASSERT_THAT(Events(), SizeIs(2));
  EXPECT_EQ(Events()[0].SerializeAsString(), Prepare("web-1").SerializeAsString());
  EXPECT_EQ(Log(), "");
  // Root's alone, like the control socket.
  struct stat st {};
  ASSERT_EQ(::lstat(socket_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  ASSERT_EQ(::stat(dir_.Sub("run").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
}

TEST_F(HookListenerTest, AFrameAboveTheLimitIsRefusedUnread) {
  Listen({.max_event_bytes = 1000});
  Client client(socket_);
  const frame::Header header = frame::EncodeHeader(1001);
  client.Send(std::string(header.begin(), header.end()));  // the 1001 bytes never come: not waited for
  const MonoTime start = clock_->Now();
  StatusOr<std::string> answer = client.Answer(5s);
  EXPECT_LT(clock_->Now() - start, 900ms);  // before the listener's 1 s read deadline
  EXPECT_EQ(answer.status().code(), Code::kUnavailable) << answer.status().ToString();  // closed unanswered
  EXPECT_THAT(Events(), IsEmpty());
  EXPECT_THAT(Log(), HasSubstr("announces 1001 bytes, above the limit of 1000 bytes"));
  // An event within the limit still passes.
  EXPECT_TRUE(Exchange(Prepare("web-1")).ok());
}

TEST_F(HookListenerTest, HalfAFrameIsClosedAtTheReadDeadline) {
  Listen({.read_within = 200ms});
  Client client(socket_);
  client.Send(frame::Encode(Prepare("web-1").SerializeAsString()).substr(0, 10));
  const MonoTime start = clock_->Now();
  StatusOr<std::string> answer = client.Answer(10s);
  const Duration held = clock_->Now() - start;
  EXPECT_EQ(answer.status().code(), Code::kUnavailable) << answer.status().ToString();
  EXPECT_GE(held, 150ms);  // the 200 ms count from the accept, a little before `start`
  EXPECT_LT(held, 5s);
  EXPECT_THAT(Log(), HasSubstr("DEADLINE_EXCEEDED"));
  EXPECT_THAT(Events(), IsEmpty());
}

TEST_F(HookListenerTest, GarbageIsRefusedAndTheListenerGoesOn) {
  Listen({});
  {
    Client client(socket_);
    client.Send(frame::Encode("\x0f\xff\xff"));  // wire type 7 does not exist: no HookEvent parses from it
    EXPECT_EQ(client.Answer(5s).status().code(), Code::kUnavailable);
  }
  {
    Client client(socket_);
    client.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");  // reads as a length of about 1.2 GB
    EXPECT_EQ(client.Answer(5s).status().code(), Code::kUnavailable);
  }
  { Client hung_up(socket_); }  // connects and goes
  EXPECT_THAT(Log(), HasSubstr("a frame of 3 bytes is not a HookEvent"));
  EXPECT_THAT(Log(), HasSubstr("above the limit"));
  StatusOr<virtshadow::v1::HookVerdict> verdict = Exchange(Prepare("web-1"));
  ASSERT_TRUE(verdict.ok()) << verdict.status().ToString();
  EXPECT_TRUE(verdict->allow());
  EXPECT_THAT(Events(), SizeIs(1));
}

// One client that sends nothing holds one worker only; with every worker held, the next waits in the backlog.
TEST_F(HookListenerTest, StuckClientsHoldAWorkerEachAndNoMore) {
  Listen({.workers = 2, .read_within = 500ms});
  Client stuck(socket_);
  std::this_thread::sleep_for(20ms);  // taken by a worker
  MonoTime start = clock_->Now();
  EXPECT_TRUE(Exchange(Prepare("web-1")).ok());
  EXPECT_LT(clock_->Now() - start, 400ms);
  Client stuck_too(socket_);
  std::this_thread::sleep_for(20ms);
  start = clock_->Now();
  EXPECT_TRUE(Exchange(Prepare("web-2")).ok());  // served once the first stuck client's deadline freed a worker
  EXPECT_GE(clock_->Now() - start, 300ms);
}

TEST_F(HookListenerTest, ShutdownCutsOffAnExchangeAndRefusesLaterConnections) {
  Listen({.read_within = 30s});
  Client waiting(socket_);
  std::this_thread::sleep_for(20ms);
  const MonoTime start = clock_->Now();
  listener_->Shutdown();
  EXPECT_LT(clock_->Now() - start, 5s);
  EXPECT_EQ(waiting.Answer(5s).status().code(), Code::kUnavailable);
  EXPECT_EQ(Client(socket_).connect_errno(), ECONNREFUSED);
  EXPECT_EQ(Log(), "");  // a stop is no client's fault
  listener_->Shutdown();  // again: nothing
}

TEST_F(HookListenerTest, APathTooLongForAUnixSocketIsRefused) {
  auto listener = HookListener::Start(
      "/run/" + std::string(200, 'x'), [](const virtshadow::v1::HookEvent&) { return virtshadow::v1::HookVerdict(); },
      *clock_, [](const std::string&) {}, {});
  ASSERT_FALSE(listener.ok());
  EXPECT_EQ(listener.status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace vs::hook_intake
