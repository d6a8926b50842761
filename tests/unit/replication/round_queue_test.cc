// RoundQueue: which replication work runs next when several rounds may run at once, and NextRoundDue: when a
// VM's next round is due.
#include <gtest/gtest.h>
#include <gmock/gmock.h>

#include "shadowd/replication/round_queue.h"

namespace vs::replication {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const MonoTime kStart = MonoTime{} + seconds(1000);

TEST(NextRoundDueTest, RoundsStartOneIntervalApartSoTheReplicaIsAtMostAnIntervalAndARoundOld) {
  // A 0.8 s round every 2 s starts the next one 1.2 s after it ended, not 2 s.
  EXPECT_EQ(NextRoundDue(kStart, kStart + milliseconds(800), seconds(2), 0), kStart + seconds(2));
}

TEST(NextRoundDueTest, ARoundLongerThanTheIntervalIsFollowedAtOnce) {
  const MonoTime ended = kStart + milliseconds(3500);
  EXPECT_EQ(NextRoundDue(kStart, ended, seconds(2), 0), ended);
}

TEST(NextRoundDueTest, FailuresBackOffFromTheFailedRoundsEndDoublingUpToAMinute) {
  const MonoTime ended = kStart + seconds(5);
  EXPECT_EQ(NextRoundDue(kStart, ended, seconds(2), 1), ended + seconds(2));
  EXPECT_EQ(NextRoundDue(kStart, ended, seconds(2), 2), ended + seconds(4));
  EXPECT_EQ(NextRoundDue(kStart, ended, seconds(2), 4), ended + seconds(16));
  EXPECT_EQ(NextRoundDue(kStart, ended, seconds(2), 30), ended + seconds(60));
  EXPECT_EQ(NextRoundDue(kStart, ended, seconds(50), 2), ended + seconds(60));
}

ReplicationSchedule Schedule(const std::string& uuid, Duration interval, uint32_t priority = 100) {
  return ReplicationSchedule{{uuid, "name-" + uuid, "h2"}, interval, priority};
}

// The VM of the work Take hands out; "" when it hands out none.
std::string TakeVm(RoundQueue& queue, MonoTime now) {
  RoundQueue::Next next = queue.Take(now);
  if (auto* work = std::get_if<RoundQueue::Work>(&next)) return work->vm_uuid;
  return "";
}

// Runs a round of every target once, each starting at `at` and taking `took`.
void RoundOfEach(RoundQueue& queue, MonoTime at, Duration took) {
  std::vector<std::string> taken;
  for (std::string vm = TakeVm(queue, at); !vm.empty(); vm = TakeVm(queue, at)) taken.push_back(vm);
  for (const std::string& vm : taken) queue.Finished(vm, at, at + took, true);
}

TEST(RoundQueueTest, NewTargetsAreDueAtOnceAndEachVmRunsOnlyOnceAtATime) {
  RoundQueue queue;
  queue.SetTargets({Schedule("a", seconds(5)), Schedule("b", seconds(5))}, kStart);
  const std::string first = TakeVm(queue, kStart);
  const std::string second = TakeVm(queue, kStart);
  EXPECT_THAT((std::vector<std::string>{first, second}), testing::UnorderedElementsAre("a", "b"));
  // Both run: nothing more to hand out, and nothing falls due while they run.
  EXPECT_TRUE(std::holds_alternative<RoundQueue::Idle>(queue.Take(kStart + seconds(30))));
  EXPECT_EQ(queue.running(), 2u);
  queue.Finished("a", kStart, kStart + seconds(1), true);
  RoundQueue::Next next = queue.Take(kStart + seconds(1));
  ASSERT_TRUE(std::holds_alternative<RoundQueue::IdleUntil>(next));
  EXPECT_EQ(std::get<RoundQueue::IdleUntil>(next).at, kStart + seconds(5));  // start to start
}

TEST(RoundQueueTest, TheVmFurthestBehindRelativeToItsIntervalGoesFirstNotTheOneDueFirst) {
  RoundQueue queue;
  queue.SetTargets({Schedule("slow", seconds(60)), Schedule("fast", seconds(10))}, kStart);
  RoundOfEach(queue, kStart, milliseconds(100));
  ASSERT_EQ(TakeVm(queue, kStart + seconds(55)), "fast");
  queue.Finished("fast", kStart + seconds(55), kStart + seconds(56), true);
  // At 70 s both are due, "slow" since 60 s, "fast" since 65 s. Behind: "slow" 70 s of 60 (1.17 intervals),
  // "fast" 15 s of 10 (1.5 intervals).
  EXPECT_EQ(TakeVm(queue, kStart + seconds(70)), "fast");
  EXPECT_EQ(TakeVm(queue, kStart + seconds(70)), "slow");
}

TEST(RoundQueueTest, TheLagCountsFromTheLastAppliedRoundNotFromTheDueTime) {
  RoundQueue queue;
  queue.SetTargets({Schedule("a", seconds(5)), Schedule("b", seconds(5))}, kStart);
  RoundOfEach(queue, kStart, milliseconds(100));
  // "a" failed its next round (due again after the backoff), "b" applied one: "a"'s replica is older.
  EXPECT_EQ(TakeVm(queue, kStart + seconds(5)), "a");
  queue.Finished("a", kStart + seconds(5), kStart + seconds(6), false);
  EXPECT_EQ(TakeVm(queue, kStart + seconds(6)), "b");
  queue.Finished("b", kStart + seconds(6), kStart + seconds(7), true);
  // At 20 s both are due: "a"'s replica is from 0 s, "b"'s from 6 s.
  EXPECT_EQ(TakeVm(queue, kStart + seconds(20)), "a");
}

TEST(RoundQueueTest, PriorityBreaksTiesAndAVmWithoutAReplicaYetComesFirst) {
  RoundQueue queue;
  queue.SetTargets({Schedule("low", seconds(5), 10), Schedule("high", seconds(5), 900)}, kStart);
  EXPECT_EQ(TakeVm(queue, kStart), "high");
  EXPECT_EQ(TakeVm(queue, kStart), "low");
  queue.Finished("high", kStart, kStart + milliseconds(10), true);
  queue.Finished("low", kStart, kStart + milliseconds(10), true);
  // A VM added later has no replica here: it goes before both, though their priority is higher.
  queue.SetTargets({Schedule("low", seconds(5), 10), Schedule("high", seconds(5), 900), Schedule("new", seconds(5), 0)},
                   kStart + seconds(10));
  EXPECT_EQ(TakeVm(queue, kStart + seconds(10)), "new");
  EXPECT_EQ(TakeVm(queue, kStart + seconds(10)), "high");
}

TEST(RoundQueueTest, RequestsGoFirstButWaitForTheirVmsRunningWork) {
  RoundQueue queue;
  queue.SetTargets({Schedule("a", seconds(5)), Schedule("b", seconds(5))}, kStart);
  ASSERT_EQ(TakeVm(queue, kStart), "a");  // a's round runs
  const uint64_t sync_a = queue.AddRequest("a", false);
  const uint64_t verify_b = queue.AddRequest("b", false);
  const uint64_t final_a = queue.AddRequest("a", true);
  // Both of a's requests wait for a's round; b's passes them.
  RoundQueue::Next next = queue.Take(kStart);
  ASSERT_TRUE(std::holds_alternative<RoundQueue::Work>(next));
  EXPECT_EQ(std::get<RoundQueue::Work>(next).request_id, verify_b);
  EXPECT_TRUE(std::holds_alternative<RoundQueue::Idle>(queue.Take(kStart)));
  queue.Finished("a", kStart, kStart + seconds(1), true);
  // The one put first goes first.
  next = queue.Take(kStart + seconds(1));
  ASSERT_TRUE(std::holds_alternative<RoundQueue::Work>(next));
  EXPECT_EQ(std::get<RoundQueue::Work>(next).request_id, final_a);
  queue.Finished("a", kStart + seconds(1), kStart + seconds(2), std::nullopt);
  next = queue.Take(kStart + seconds(2));
  ASSERT_TRUE(std::holds_alternative<RoundQueue::Work>(next));
  EXPECT_EQ(std::get<RoundQueue::Work>(next).request_id, sync_a);
}

TEST(RoundQueueTest, ARequestForAVmThatIsNotATargetIsHandedOutWithoutATarget) {
  RoundQueue queue;
  const uint64_t id = queue.AddRequest("gone", false);
  RoundQueue::Next next = queue.Take(kStart);
  ASSERT_TRUE(std::holds_alternative<RoundQueue::Work>(next));
  EXPECT_EQ(std::get<RoundQueue::Work>(next).request_id, id);
  EXPECT_FALSE(std::get<RoundQueue::Work>(next).target.has_value());
}

TEST(RoundQueueTest, WorkOfAVmDroppedWhileItRunsStillHoldsTheVm) {
  // A switchover's quiesce must wait for a round that began before the VM stopped being a target here.
  RoundQueue queue;
  queue.SetTargets({Schedule("a", seconds(5))}, kStart);
  ASSERT_EQ(TakeVm(queue, kStart), "a");
  queue.SetTargets({}, kStart);
  (void)queue.AddRequest("a", true);
  EXPECT_TRUE(std::holds_alternative<RoundQueue::Idle>(queue.Take(kStart)));
  queue.Finished("a", kStart, kStart + seconds(1), true);
  EXPECT_EQ(TakeVm(queue, kStart + seconds(1)), "a");
}

TEST(RoundQueueTest, AHeldVmGetsNoScheduledRoundButItsRequestsRun) {
  RoundQueue queue;
  queue.SetTargets({Schedule("a", seconds(5))}, kStart);
  queue.Hold("a");
  EXPECT_TRUE(std::holds_alternative<RoundQueue::Idle>(queue.Take(kStart)));
  const uint64_t id = queue.AddRequest("a", true);
  RoundQueue::Next next = queue.Take(kStart);
  ASSERT_TRUE(std::holds_alternative<RoundQueue::Work>(next));
  EXPECT_EQ(std::get<RoundQueue::Work>(next).request_id, id);
  queue.Finished("a", kStart, kStart, std::nullopt);
  queue.Unhold("a");
  EXPECT_EQ(TakeVm(queue, kStart), "a");
}

TEST(RoundQueueTest, TheSnapshotShowsWhoRunsAndTheOrderOfTheWaiting) {
  RoundQueue queue;
  queue.SetTargets({Schedule("a", seconds(5)), Schedule("b", seconds(1)), Schedule("c", seconds(5))}, kStart);
  RoundOfEach(queue, kStart, milliseconds(100));
  ASSERT_EQ(TakeVm(queue, kStart + seconds(10)), "b");  // 10 intervals behind
  const std::vector<RoundQueue::Entry> entries = queue.Snapshot(kStart + seconds(10));
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[0].vm_uuid, "a");
  EXPECT_FALSE(entries[0].running);
  EXPECT_EQ(entries[0].due_in, -seconds(5));
  EXPECT_EQ(entries[0].position, 1u);  // a and c tie: a was due no later, and sorts first
  EXPECT_TRUE(entries[1].running);
  EXPECT_EQ(entries[1].position, 0u);
  EXPECT_EQ(entries[2].position, 2u);
}

TEST(RoundQueueTest, StoppingTakesEveryQueuedRequest) {
  RoundQueue queue;
  const uint64_t one = queue.AddRequest("a", false);
  const uint64_t two = queue.AddRequest("b", true);
  EXPECT_THAT(queue.TakeRequests(), testing::UnorderedElementsAre(one, two));
  EXPECT_TRUE(std::holds_alternative<RoundQueue::Idle>(queue.Take(kStart)));
}

}  // namespace
}  // namespace vs::replication
