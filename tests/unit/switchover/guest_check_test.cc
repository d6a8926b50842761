// The post-switchover guest check over scripted samples and a FakeClock: every verdict, the counters of the
// new QEMU process (compared only with each other, reset handled), rx not counting, the agent expected only
// where it answered on the source, the bound reached exactly, the sampling cadence, and failing samples.
#include "shadowd/switchover/guest_check.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace vs::switchover {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using std::chrono::milliseconds;
using std::chrono::seconds;
using virt::AgentPing;
using virt::GuestActivity;

constexpr char kSilentAgent[] =
    "guest-ping to the agent of vm1 on qemu+tcp://h2/system: Guest agent is not responding: QEMU guest agent is "
    "not connected";

GuestActivity Idle(AgentPing agent = AgentPing::kNoChannel) {
  GuestActivity activity;
  activity.state = virt::DomainState::kRunning;
  activity.agent = agent;
  if (agent == AgentPing::kSilent) activity.agent_error = kSilentAgent;
  return activity;
}
GuestActivity Writes(uint64_t requests, AgentPing agent = AgentPing::kNoChannel) {
  GuestActivity activity = Idle(agent);
  activity.block_write_requests = requests;
  activity.block_write_bytes = requests * 4096;
  return activity;
}

SourceObservation Source(GuestActivity first, GuestActivity second) {
  return SourceObservation{.host = "h1", .first = std::move(first), .second = std::move(second), .window = seconds(3)};
}
// The guest did 312 writes on h1 in the 3 s before the switchover; no agent channel.
SourceObservation BusySource() { return Source(Writes(5000), Writes(5312)); }
SourceObservation IdleSource(AgentPing agent = AgentPing::kNoChannel) { return Source(Idle(agent), Idle(agent)); }

// The target: its activity as a function of the time since the check began; records when it was sampled.
class ScriptedTarget {
 public:
  using Script = std::function<StatusOr<GuestActivity>(Duration since_start)>;
  ScriptedTarget(FakeClock& clock, Script script) : clock_(clock), start_(clock.Now()), script_(std::move(script)) {}

  ActivitySampler Sampler() {
    return [this]() -> StatusOr<GuestActivity> {
      const Duration since_start = clock_.Now() - start_;
      times.push_back(since_start);
      return script_(since_start);
    };
  }
  std::vector<Duration> times;

 private:
  FakeClock& clock_;
  const MonoTime start_;
  Script script_;
};

class GuestCheckTest : public ::testing::Test {
 protected:
  StatusOr<GuestCheckResult> Check(const SourceObservation& source, ScriptedTarget::Script script,
                                   GuestCheckOptions options = {}) {
    target_ = std::make_unique<ScriptedTarget>(clock_, std::move(script));
    return CheckTarget(source, "h2", target_->Sampler(), options, clock_);
  }
  const std::vector<Duration>& times() const { return target_->times; }

  FakeClock clock_;
  std::unique_ptr<ScriptedTarget> target_;
};

// ---- kAlive ----

TEST_F(GuestCheckTest, AliveAtOnceWhenTheAgentAnswersOnTheTarget) {
  auto result = Check(IdleSource(AgentPing::kAnswered), [](Duration) { return Idle(AgentPing::kAnswered); });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->verdict, GuestVerdict::kAlive);
  EXPECT_EQ(result->samples, 1);
  EXPECT_EQ(result->waited, Duration::zero());
  EXPECT_EQ(result->explanation, "the guest agent answered guest-ping on h2 at sample 1, 0 s into the check");
}

TEST_F(GuestCheckTest, AliveWhenTheAgentAnswersAfterAWhile) {
  auto result = Check(IdleSource(AgentPing::kAnswered), [](Duration t) {
    return t < milliseconds(1500) ? Idle(AgentPing::kSilent) : Idle(AgentPing::kAnswered);
  });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->verdict, GuestVerdict::kAlive);
  EXPECT_EQ(result->samples, 4);
  EXPECT_EQ(result->waited, milliseconds(1500));
  EXPECT_THAT(result->explanation, HasSubstr("at sample 4, 1.5 s into the check"));
}

TEST_F(GuestCheckTest, AliveWhenBlockWritesRiseOnTheTarget) {
  auto result = Check(BusySource(), [](Duration t) { return Writes(t < milliseconds(1000) ? 0 : 3); });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->verdict, GuestVerdict::kAlive);
  EXPECT_EQ(result->waited, seconds(1));
  EXPECT_EQ(result->explanation, "on h2 the guest did 3 block writes (12288 bytes) in 1 s");
}

TEST_F(GuestCheckTest, AliveOnBlockReadsOnly) {
  auto result = Check(IdleSource(), [](Duration t) {
    GuestActivity a = Idle();
    if (t >= milliseconds(500)) {
      a.block_read_requests = 1;
      a.block_read_bytes = 512;
    }
    return a;
  });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->verdict, GuestVerdict::kAlive);
  EXPECT_EQ(result->explanation, "on h2 the guest did 1 block read (512 bytes) in 0.5 s");
}

TEST_F(GuestCheckTest, AliveOnPacketsSentOnly) {
  auto result = Check(IdleSource(), [](Duration t) {
    GuestActivity a = Idle();
    a.net_tx_packets = t < milliseconds(2000) ? 0 : 4;
    return a;
  });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->verdict, GuestVerdict::kAlive);
  EXPECT_EQ(result->waited, seconds(2));
  EXPECT_EQ(result->explanation, "on h2 the guest sent 4 packets in 2 s");
}

TEST_F(GuestCheckTest, IoCountsEvenWhenTheAgentIsSilentAndSaysSo) {
  auto result = Check(IdleSource(AgentPing::kAnswered),
                      [](Duration t) { return Writes(t < milliseconds(500) ? 10 : 11, AgentPing::kSilent); });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->verdict, GuestVerdict::kAlive);
  EXPECT_EQ(result->explanation, std::string("on h2 the guest did 1 block write (4096 bytes) in 0.5 s (its guest "
                                             "agent, which answered on h1, did not answer there: ") +
                                     kSilentAgent + ")");
}

// ---- counters of the new QEMU process ----

TEST_F(GuestCheckTest, TargetCountersAreNeverComparedWithTheSource) {
  // The target QEMU starts at zero, far below the source's 5312: rising from 0 to 7 is progress.
  auto result = Check(BusySource(), [](Duration t) { return Writes(t < seconds(1) ? 0 : 7); });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->verdict, GuestVerdict::kAlive);
  EXPECT_EQ(result->explanation, "on h2 the guest did 7 block writes (28672 bytes) in 1 s");
}

TEST_F(GuestCheckTest, CountersGoingBackwardsStartANewBaseline) {
  // 900, then a restart of the counters (3), then 10: progress is 7 writes since the reset, seen at 2 s.
  auto result = Check(BusySource(), [](Duration t) {
    if (t < seconds(1)) return Writes(900);
    return Writes(t < seconds(2) ? 3 : 10);
  });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->verdict, GuestVerdict::kAlive);
  EXPECT_EQ(result->waited, seconds(2));
  EXPECT_EQ(result->explanation, "on h2 the guest did 7 block writes (28672 bytes) in 1 s");
}

TEST_F(GuestCheckTest, ACounterResetIsNotProgress) {
  auto result = Check(BusySource(), [](Duration t) { return Writes(t < seconds(1) ? 900 : 0); });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->verdict, GuestVerdict::kDead);
  EXPECT_THAT(result->explanation, HasSubstr("; its counters on h2 went backwards 1 time (each taken as a new "
                                             "baseline)"));
}

TEST_F(GuestCheckTest, PacketsReceivedDoNotCount) {
  // The host fills rx buffers a dead guest posted earlier: 10 more packets at every sample.
  int sample = 0;
  auto result = Check(IdleSource(), [&](Duration) {
    GuestActivity a = Idle();
    a.net_rx_packets = 10 * static_cast<uint64_t>(sample++);
    return a;
  });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->verdict, GuestVerdict::kUnverifiable);
  EXPECT_EQ(result->samples, 41);
  EXPECT_THAT(result->explanation, HasSubstr("; it received 400 packets on h2, which the host delivers without the "
                                             "guest's help, so they do not count"));
}

// ---- kDead ----

TEST_F(GuestCheckTest, DeadWhenTheGuestDidIoOnTheSourceButNoneOnTheTarget) {
  auto result = Check(BusySource(), [](Duration) { return Writes(0); });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->verdict, GuestVerdict::kDead);
  EXPECT_EQ(result->samples, 41);
  EXPECT_EQ(result->waited, seconds(20));
  EXPECT_EQ(result->explanation,
            "no block I/O and no packets sent by the guest on h2 in 20 s; on h1 it did 312 block writes (1277952 "
            "bytes) in 3 s before the switchover");
}

TEST_F(GuestCheckTest, DeadWhenTheAgentAnsweredOnTheSourceButIsSilentOnTheTarget) {
  // The guest was idle on h1: only the agent can tell, and it no longer answers.
  auto result = Check(IdleSource(AgentPing::kAnswered), [](Duration) { return Idle(AgentPing::kSilent); });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->verdict, GuestVerdict::kDead);
  EXPECT_EQ(result->explanation, std::string("its guest agent answered on h1 before the switchover but not on h2 in "
                                             "20 s (last: ") +
                                     kSilentAgent + "), and the guest did no block I/O and sent no packets there");
}

TEST_F(GuestCheckTest, DeadAndPausedOnTheTargetSaysSo) {
  auto result = Check(BusySource(), [](Duration) {
    GuestActivity a = Writes(0);
    a.state = virt::DomainState::kPaused;
    a.agent = AgentPing::kNotAsked;
    a.agent_error = "the domain is paused, not running";
    return a;
  });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->verdict, GuestVerdict::kDead);
  EXPECT_THAT(result->explanation, HasSubstr("; the domain is paused on h2"));
}

// ---- kUnverifiable ----

TEST_F(GuestCheckTest, UnverifiableWhenIdleEverywhereWithoutAnAgent) {
  auto result = Check(IdleSource(), [](Duration) { return Idle(); });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->verdict, GuestVerdict::kUnverifiable);
  EXPECT_EQ(result->waited, seconds(20));
  EXPECT_EQ(result->explanation,
            "no answering guest agent (on h1: the domain has no agent channel) and no block I/O or packets sent by "
            "the guest, on h1 in 3 s before the switchover nor on h2 in 20 s: nothing the host can see proves or "
            "disproves that the guest makes progress");
}

TEST_F(GuestCheckTest, AChannelWhoseAgentNeverAnsweredOnTheSourceIsNoAgent) {
  auto result = Check(IdleSource(AgentPing::kSilent), [](Duration) { return Idle(AgentPing::kSilent); });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->verdict, GuestVerdict::kUnverifiable);
  EXPECT_THAT(result->explanation, HasSubstr(std::string("no answering guest agent (on h1: ") + kSilentAgent + ")"));
}

TEST_F(GuestCheckTest, SourceCountersGoingBackwardsLeaveItsIoUnknown) {
  auto result = Check(Source(Writes(800), Writes(2)), [](Duration) { return Idle(); });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->verdict, GuestVerdict::kUnverifiable);
  EXPECT_THAT(result->explanation, HasSubstr("its I/O on h1 unknown (the counters went backwards during the 3 s "
                                             "before the switchover)"));
}

// ---- the bound and the cadence ----

TEST_F(GuestCheckTest, SamplesEveryIntervalUpToAndIncludingTheBound) {
  auto result = Check(IdleSource(), [](Duration) { return Idle(); });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_EQ(times().size(), 41u);
  for (size_t i = 0; i < times().size(); ++i) EXPECT_EQ(times()[i], milliseconds(500) * i) << "sample " << i;
}

TEST_F(GuestCheckTest, ProgressSeenExactlyAtTheBoundCounts) {
  auto result = Check(BusySource(), [](Duration t) { return Writes(t < seconds(20) ? 0 : 1); });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->verdict, GuestVerdict::kAlive);
  EXPECT_EQ(result->waited, seconds(20));
  EXPECT_EQ(result->samples, 41);
}

TEST_F(GuestCheckTest, ProgressJustAfterTheBoundIsNotSeen) {
  auto result = Check(BusySource(), [](Duration t) { return Writes(t <= seconds(20) ? 0 : 1); });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->verdict, GuestVerdict::kDead);
  EXPECT_EQ(times().back(), seconds(20));
}

TEST_F(GuestCheckTest, SlowSamplesAreFollowedAtOnceAndTheOneStartedAtTheBoundIsLast) {
  // Each sample takes 2 s (a silent agent's ping timing out): no sleeping between them.
  auto result = Check(IdleSource(), [&](Duration) {
    clock_.Advance(seconds(2));
    return Idle(AgentPing::kSilent);
  });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->samples, 11);
  EXPECT_EQ(times().front(), Duration::zero());
  EXPECT_EQ(times()[1], seconds(2));
  EXPECT_EQ(times().back(), seconds(20));
  EXPECT_EQ(result->waited, seconds(22));
}

TEST_F(GuestCheckTest, ShorterBoundAndIntervalFromOptions) {
  auto result = Check(IdleSource(), [](Duration) { return Idle(); },
                      GuestCheckOptions{.bound = seconds(5), .interval = seconds(1)});
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_THAT(times(), ElementsAre(seconds(0), seconds(1), seconds(2), seconds(3), seconds(4), seconds(5)));
  EXPECT_THAT(result->explanation, HasSubstr("nor on h2 in 5 s"));
}

// ---- failing samples and options ----

TEST_F(GuestCheckTest, FailingSamplesAreToleratedUntilTheBound) {
  auto result = Check(BusySource(), [](Duration t) -> StatusOr<GuestActivity> {
    if (t < seconds(1)) return Unavailable("counters of vm1 on qemu+tcp://h2/system: cannot connect");
    return Writes(t < seconds(3) ? 0 : 2);
  });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->verdict, GuestVerdict::kAlive);
  EXPECT_EQ(result->waited, seconds(3));
  EXPECT_EQ(result->explanation, "on h2 the guest did 2 block writes (8192 bytes) in 2 s");
}

TEST_F(GuestCheckTest, FailedSamplesAreNamedInTheVerdict) {
  int sample = 0;
  auto result = Check(BusySource(), [&](Duration) -> StatusOr<GuestActivity> {
    if (sample++ % 2 == 1) return Unavailable("cannot connect");
    return Writes(0);
  });
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  EXPECT_EQ(result->verdict, GuestVerdict::kDead);
  EXPECT_THAT(result->explanation, HasSubstr("; 20 of 41 samples failed (last: cannot connect)"));
}

TEST_F(GuestCheckTest, NoVerdictWhenTheTargetCouldNotBeSampled) {
  auto result = Check(BusySource(), [](Duration) -> StatusOr<GuestActivity> {
    return Unavailable("counters of vm1 on qemu+tcp://h2/system: cannot connect");
  });
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), Code::kUnavailable);
  EXPECT_EQ(result.status().message(),
            "checking the guest on h2 after the switchover: 0 of 41 samples succeeded in 20 s, too few to judge; "
            "last error: counters of vm1 on qemu+tcp://h2/system: cannot connect");
}

TEST_F(GuestCheckTest, OneSlowSampleLongerThanTheBoundGivesNoVerdict) {
  auto result = Check(BusySource(), [&](Duration) {
    clock_.Advance(seconds(30));
    return Writes(0);
  });
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), Code::kDeadlineExceeded);
  EXPECT_THAT(result.status().message(), HasSubstr("1 of 1 samples succeeded in 30 s"));
}

TEST_F(GuestCheckTest, OptionsThatCannotGiveAVerdictAreRefused) {
  int calls = 0;
  auto count = [&](Duration) {
    ++calls;
    return Idle();
  };
  auto zero_interval = Check(IdleSource(), count, GuestCheckOptions{.bound = seconds(20), .interval = Duration::zero()});
  EXPECT_EQ(zero_interval.status().code(), Code::kInvalidArgument);
  auto short_bound = Check(IdleSource(), count, GuestCheckOptions{.bound = milliseconds(200), .interval = milliseconds(500)});
  EXPECT_EQ(short_bound.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(short_bound.status().message(), HasSubstr("the bound (0.2 s) must be at least one sampling interval (0.5 s)"));
  EXPECT_EQ(calls, 0);
}

// ---- ObserveSource ----

TEST(ObserveSourceTest, TakesTwoSamplesAWindowApart) {
  FakeClock clock;
  const MonoTime start = clock.Now();
  std::vector<Duration> times;
  auto sampler = [&]() -> StatusOr<GuestActivity> {
    times.push_back(clock.Now() - start);
    clock.Advance(milliseconds(400));  // a sample takes time; the window is measured between their starts
    return Writes(times.size() == 1 ? 100 : 412);
  };
  auto observed = ObserveSource("h1", sampler, seconds(3), clock);
  ASSERT_TRUE(observed.ok()) << observed.status().ToString();
  EXPECT_THAT(times, ElementsAre(Duration::zero(), seconds(3)));
  EXPECT_EQ(observed->host, "h1");
  EXPECT_EQ(observed->first.block_write_requests, 100u);
  EXPECT_EQ(observed->second.block_write_requests, 412u);
  EXPECT_EQ(observed->window, seconds(3));
}

TEST(ObserveSourceTest, ReturnsTheSamplersError) {
  FakeClock clock;
  int calls = 0;
  auto sampler = [&]() -> StatusOr<GuestActivity> {
    if (++calls == 2) return NotFound("domain 'vm1' on qemu+tcp://h1/system: Domain not found");
    return Idle();
  };
  auto observed = ObserveSource("h1", sampler, seconds(3), clock);
  ASSERT_FALSE(observed.ok());
  EXPECT_EQ(observed.status().code(), Code::kNotFound);
  EXPECT_EQ(observed.status().message(),
            "observing the guest on h1 before the switchover: domain 'vm1' on qemu+tcp://h1/system: Domain not found");
}

TEST(ObserveSourceTest, RefusesAnEmptyWindow) {
  FakeClock clock;
  auto observed = ObserveSource("h1", [] { return StatusOr<GuestActivity>(Idle()); }, Duration::zero(), clock);
  EXPECT_EQ(observed.status().code(), Code::kInvalidArgument);
}

TEST(GuestVerdictNameTest, NamesEveryVerdict) {
  EXPECT_EQ(GuestVerdictName(GuestVerdict::kAlive), "alive");
  EXPECT_EQ(GuestVerdictName(GuestVerdict::kDead), "dead");
  EXPECT_EQ(GuestVerdictName(GuestVerdict::kUnverifiable), "unverifiable");
}

}  // namespace
}  // namespace vs::switchover

namespace vs::switchover {
namespace {

TEST(SourceShowedProgressTest, CountsAnAnsweringAgentOrCountedIoAndNothingElse) {
  EXPECT_TRUE(SourceShowedProgress(Source(Writes(5000), Writes(5312))));
  EXPECT_TRUE(SourceShowedProgress(Source(Idle(AgentPing::kAnswered), Idle(AgentPing::kSilent))));
  EXPECT_FALSE(SourceShowedProgress(Source(Idle(), Idle())));
  EXPECT_FALSE(SourceShowedProgress(Source(Idle(AgentPing::kSilent), Idle(AgentPing::kSilent))));
  EXPECT_FALSE(SourceShowedProgress(Source(Writes(5312), Writes(5000))));  // went backwards: not progress
  GuestActivity received = Idle();
  received.net_rx_packets = 400;  // filled by the host into buffers posted earlier: not the guest's doing
  EXPECT_FALSE(SourceShowedProgress(Source(Idle(), received)));
}

}  // namespace
}  // namespace vs::switchover
