#include "common/logger.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace vs {
namespace {

// The lines a Logger wrote into a memory stream.
class LoggerTest : public ::testing::Test {
 protected:
  LoggerTest() : out_(open_memstream(&buffer_, &size_)) {}
  ~LoggerTest() override {
    std::fclose(out_);
    std::free(buffer_);
  }
  std::string Written() {
    std::fflush(out_);
    return std::string(buffer_, size_);
  }

  // 2027-01-15T08:00:00.250Z
  FakeClock clock_{FromUnixMillis(1'800'000'000'250)};
  char* buffer_ = nullptr;
  size_t size_ = 0;
  std::FILE* out_;
};

TEST_F(LoggerTest, OneStampedLinePerMessageWithItsComponent) {
  const Logger log(clock_, out_);
  log.Write("", "host h1 serving");
  log.For("switchover target")("sw-1 arrived from h2");
  clock_.Advance(std::chrono::milliseconds(1));
  log.Failure("orphan sweep", Unavailable("h3 is down"));
  log.Failure("timers", Status::Ok());  // nothing: an OK status is not an event
  EXPECT_EQ(Written(),
            "2027-01-15T08:00:00.250Z shadowd: host h1 serving\n"
            "2027-01-15T08:00:00.250Z shadowd: switchover target: sw-1 arrived from h2\n"
            "2027-01-15T08:00:00.251Z shadowd: orphan sweep: UNAVAILABLE: h3 is down\n");
}

}  // namespace
}  // namespace vs
