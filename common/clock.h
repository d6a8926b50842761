// Clock: the one source of time. Production code never calls std::chrono::*_clock::now()
// directly; it is handed a Clock, so tests drive simulated time instead of sleeping.
//
// Monotonic time (deadlines, timeouts, intervals) and wall time (what is shown to people and
// persisted as timestamps) are different types, so one cannot be used for the other.
//
// Thread-safety: implementations are safe to call from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>

namespace vs {

using MonoTime = std::chrono::steady_clock::time_point;
using WallTime = std::chrono::system_clock::time_point;
using Duration = std::chrono::nanoseconds;

// Milliseconds since the Unix epoch, the form persisted in records.
inline int64_t ToUnixMillis(WallTime t) {
  return std::chrono::floor<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
inline WallTime FromUnixMillis(int64_t ms) { return WallTime(std::chrono::milliseconds(ms)); }
inline int64_t ToMillis(Duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

class Clock {
 public:
  virtual ~Clock() = default;
  virtual MonoTime Now() const = 0;
  virtual WallTime WallNow() const = 0;
  // Blocks the calling thread for `d` of this clock's time (a simulated clock advances instead).
  virtual void SleepFor(Duration d) = 0;
};

// The production clock.
std::unique_ptr<Clock> NewRealClock();

// Simulated time for tests: Now() moves only when the test advances it or someone sleeps.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(WallTime wall_start = WallTime(std::chrono::seconds(1'800'000'000)))
      : wall_start_(wall_start) {}
  MonoTime Now() const override { return MonoTime(Duration(elapsed_ns_.load())); }
  WallTime WallNow() const override {
    return wall_start_ + std::chrono::duration_cast<WallTime::duration>(Duration(elapsed_ns_.load()));
  }
  void SleepFor(Duration d) override { Advance(d); }
  void Advance(Duration d) { elapsed_ns_ += d.count(); }

 private:
  const WallTime wall_start_;
  std::atomic<int64_t> elapsed_ns_{0};
};

}  // namespace vs
