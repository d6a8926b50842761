#include "common/clock.h"

#include <gtest/gtest.h>

namespace vs {
namespace {

using namespace std::chrono_literals;

TEST(FakeClockTest, MovesOnlyWhenAdvancedOrSlept) {
  FakeClock clock;
  MonoTime t0 = clock.Now();
  WallTime w0 = clock.WallNow();
  EXPECT_EQ(clock.Now(), t0);
  clock.Advance(1500ms);
  EXPECT_EQ(clock.Now() - t0, 1500ms);
  clock.SleepFor(2s);
  EXPECT_EQ(clock.Now() - t0, 3500ms);
  EXPECT_EQ(clock.WallNow() - w0, 3500ms);
}

TEST(RealClockTest, IsMonotonic) {
  auto clock = NewRealClock();
  MonoTime a = clock->Now();
  MonoTime b = clock->Now();
  EXPECT_LE(a, b);
}

}  // namespace
}  // namespace vs
