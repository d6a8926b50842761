// The socket deliverer against no shadowd, a hung one, shadowd's real hook socket listener and a shadowd that
// answers nonsense: what each failure becomes, when its deadline starts, and that the largest hook event passes
// the listener's limits.
#include "libvirt-hook/socket_deliverer.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <thread>

#include "common/frame.h"
#include "common/wakeable_fd.h"
#include "shadowd/policy/domain_xml.h"
#include "tests/unit/hook/hook_process_harness.h"
#include "tests/unit/hook/test_support.h"

namespace vs::hook::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using namespace std::chrono_literals;

virtshadow::v1::HookEvent PrepareEvent() {
  virtshadow::v1::HookEvent event;
  event.set_domain_name("web-1");
  event.set_operation("prepare");
  event.set_sub_operation("begin");
  return event;
}

// A listening socket at `path` (bound, not accepting unless asked).
UniqueFd Listen(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 || ::listen(fd.get(), 8) != 0) {
    std::abort();
  }
  return fd;
}

// A shadowd that takes one event and answers `answer` (raw bytes, frames or not), then closes.
class OneAnswer {
 public:
  OneAnswer(const std::string& path, std::string answer) : listener_(Listen(path)) {
    thread_ = std::thread([this, answer = std::move(answer)] {
      UniqueFd connection(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
      StatusOr<std::string> event = frame::Read(connection.get(), 1 << 20, clock_->Now() + 5s, *clock_);
      if (event.ok()) ::send(connection.get(), answer.data(), answer.size(), MSG_NOSIGNAL);
    });
  }
  ~OneAnswer() { thread_.join(); }

 private:
  UniqueFd listener_;
  std::unique_ptr<Clock> clock_ = NewRealClock();
  std::thread thread_;
};

// Reading and parsing a large XML may take longer than the whole budget: the deadline counts from Deliver.
TEST(SocketDelivererTest, TheDeadlineStartsWhenDeliverIsCalled) {
  TempDir dir;
  const std::string socket = dir.Sub("hook.sock");
  StatusOr<std::unique_ptr<HungListener>> hung = HungListener::Start(socket);
  ASSERT_TRUE(hung.ok()) << hung.status().ToString();
  FakeClock clock;
  SocketDeliverer deliverer(socket, kShadowdAnswerWithin, clock);
  clock.Advance(1s);  // reading and parsing the XML, after main began
  StatusOr<virtshadow::v1::HookVerdict> verdict = deliverer.Deliver(PrepareEvent());
  ASSERT_FALSE(verdict.ok());
  EXPECT_EQ(verdict.status().code(), Code::kDeadlineExceeded) << verdict.status().ToString();
  // All of the 20 ms, not kMinCallTime's 5 left of a budget counted from start-up.
  EXPECT_THAT(verdict.status().message(), HasSubstr("did not answer within 20 ms"));
}

TEST(SocketDelivererTest, AHungShadowdIsGivenUpAtTheDeadline) {
  TempDir dir;
  const std::string socket = dir.Sub("hook.sock");
  StatusOr<std::unique_ptr<HungListener>> hung = HungListener::Start(socket);
  ASSERT_TRUE(hung.ok()) << hung.status().ToString();
  std::unique_ptr<Clock> clock = NewRealClock();
  SocketDeliverer deliverer(socket, 50ms, *clock);
  const MonoTime start = clock->Now();
  StatusOr<virtshadow::v1::HookVerdict> verdict = deliverer.Deliver(PrepareEvent());
  const Duration waited = clock->Now() - start;
  EXPECT_EQ(verdict.status().code(), Code::kDeadlineExceeded) << verdict.status().ToString();
  EXPECT_THAT(verdict.status().message(), HasSubstr("shadowd at unix:" + socket + " did not answer within "));
  EXPECT_GE(waited, 50ms);
  EXPECT_LT(waited, 1s);
}

// shadowd down: no socket at all, or one that a stopped shadowd left behind. Neither waits.
TEST(SocketDelivererTest, AnAbsentOrDeadSocketIsUnavailableAtOnce) {
  TempDir dir;
  std::unique_ptr<Clock> clock = NewRealClock();
  const std::string absent = dir.Sub("absent.sock");
  const std::string dead = dir.Sub("dead.sock");
  { UniqueFd gone = Listen(dead); }  // the file stays, nobody listens
  for (const std::string& socket : {absent, dead}) {
    SocketDeliverer deliverer(socket, 5s, *clock);
    const MonoTime start = clock->Now();
    StatusOr<virtshadow::v1::HookVerdict> verdict = deliverer.Deliver(PrepareEvent());
    EXPECT_LT(clock->Now() - start, 100ms) << socket;
    EXPECT_EQ(verdict.status().code(), Code::kUnavailable) << verdict.status().ToString();
    EXPECT_THAT(verdict.status().message(), HasSubstr("cannot reach shadowd at unix:" + socket + ": connect: "));
  }
}

TEST(SocketDelivererTest, AnAnswerThatIsNoVerdictIsAnError) {
  TempDir dir;
  std::unique_ptr<Clock> clock = NewRealClock();
  const std::string socket = dir.Sub("hook.sock");
  {
    OneAnswer garbage(socket, frame::Encode("\x0f\xff"));  // wire type 7: no message parses from it
    StatusOr<virtshadow::v1::HookVerdict> verdict = SocketDeliverer(socket, 5s, *clock).Deliver(PrepareEvent());
    EXPECT_EQ(verdict.status().code(), Code::kDataLoss) << verdict.status().ToString();
    EXPECT_THAT(verdict.status().message(), HasSubstr("an answer of 2 bytes that is not a HookVerdict"));
  }
  ::unlink(socket.c_str());
  {
    OneAnswer cut_short(socket, frame::Encode("\x08\x01").substr(0, 5));
    StatusOr<virtshadow::v1::HookVerdict> verdict = SocketDeliverer(socket, 5s, *clock).Deliver(PrepareEvent());
    EXPECT_EQ(verdict.status().code(), Code::kDataLoss) << verdict.status().ToString();
    EXPECT_THAT(verdict.status().message(), HasSubstr("gave a malformed answer"));
  }
  ::unlink(socket.c_str());
  {
    OneAnswer none(socket, "");  // reads the event, closes without a word (as shadowd does with a refused frame)
    StatusOr<virtshadow::v1::HookVerdict> verdict = SocketDeliverer(socket, 5s, *clock).Deliver(PrepareEvent());
    EXPECT_EQ(verdict.status().code(), Code::kUnavailable) << verdict.status().ToString();
  }
}

// The worst case kMaxHookEventBytes allows for: an XML of the limit whose <name> is almost all of it.
TEST(SocketDelivererTest, TheLargestHookEventReachesTheHookSocket) {
  TempDir dir;
  const std::string socket = dir.Sub("hook.sock");
  StatusOr<std::unique_ptr<FakeShadowd>> shadowd = FakeShadowd::Start(socket);
  ASSERT_TRUE(shadowd.ok()) << shadowd.status().ToString();
  virtshadow::v1::HookEvent event = PrepareEvent();
  event.set_domain_xml(std::string(policy::kMaxDomainXmlBytes, 'x'));
  event.set_domain_name(std::string(policy::kMaxDomainXmlBytes - 100, 'n'));
  event.set_domain_uuid("8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d");
  event.set_extra(std::string(4096, 'e'));
  ASSERT_LE(event.ByteSizeLong(), policy::kMaxHookEventBytes);
  std::unique_ptr<Clock> clock = NewRealClock();
  SocketDeliverer deliverer(socket, 30s, *clock);
  StatusOr<virtshadow::v1::HookVerdict> verdict = deliverer.Deliver(event);
  ASSERT_TRUE(verdict.ok()) << verdict.status().ToString();
  EXPECT_TRUE(verdict->allow());
  std::vector<virtshadow::v1::HookEvent> events = (*shadowd)->events();
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_EQ(events[0].domain_xml().size(), policy::kMaxDomainXmlBytes);
  EXPECT_THAT((*shadowd)->log(), IsEmpty());
}

// One byte more than shadowd takes is not sent at all (shadowd would refuse it unread).
TEST(SocketDelivererTest, AnEventAboveTheLimitIsNotSent) {
  TempDir dir;
  const std::string socket = dir.Sub("hook.sock");
  StatusOr<std::unique_ptr<FakeShadowd>> shadowd = FakeShadowd::Start(socket);
  ASSERT_TRUE(shadowd.ok()) << shadowd.status().ToString();
  virtshadow::v1::HookEvent event = PrepareEvent();
  event.set_domain_xml(std::string(policy::kMaxHookEventBytes, 'x'));
  std::unique_ptr<Clock> clock = NewRealClock();
  StatusOr<virtshadow::v1::HookVerdict> verdict = SocketDeliverer(socket, 30s, *clock).Deliver(event);
  EXPECT_EQ(verdict.status().code(), Code::kResourceExhausted) << verdict.status().ToString();
  EXPECT_THAT((*shadowd)->events(), IsEmpty());
  EXPECT_THAT((*shadowd)->log(), IsEmpty());
}

}  // namespace
}  // namespace vs::hook::testing
