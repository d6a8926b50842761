// NextRoundDue: when ReplicationWorker runs a VM's next round.
#include <gtest/gtest.h>

#include "shadowd/replication/replication_worker.h"

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

}  // namespace
}  // namespace vs::replication
