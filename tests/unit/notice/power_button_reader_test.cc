#include "shadowd/notice/power_button_reader.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/input.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/common/temp_dir.h"
#include "tests/unit/notice/test_support.h"

namespace vs::notice {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

void WriteAll(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = write(fd, p, size);
    ASSERT_GT(n, 0) << std::strerror(errno);
    p += n;
    size -= static_cast<size_t>(n);
  }
}
void WriteAll(int fd, const std::string& s) { WriteAll(fd, s.data(), s.size()); }

// What a blocked Next() returned, how long it took and how much CPU its thread burnt meanwhile.
struct TimedNext {
  StatusOr<std::optional<Notice>> result = Internal("not run");
  std::chrono::steady_clock::duration wall{};
  std::chrono::nanoseconds cpu{};
};

std::chrono::nanoseconds ThreadCpuTime() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec);
}

template <typename Reader>
std::future<TimedNext> NextInThread(Reader& reader) {
  return std::async(std::launch::async, [&reader] {
    TimedNext out;
    const auto start = std::chrono::steady_clock::now();
    const auto cpu_start = ThreadCpuTime();
    out.result = reader.Next();
    out.cpu = ThreadCpuTime() - cpu_start;
    out.wall = std::chrono::steady_clock::now() - start;
    return out;
  });
}

// ---- acpid

// A listening unix socket standing in for acpid, and the connection of the reader under test.
class FakeAcpid {
 public:
  explicit FakeAcpid(const std::string& path) : path_(path) {
    listener_ = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{.sun_family = AF_UNIX};
    std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
    EXPECT_EQ(bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address), 0) << std::strerror(errno);
    EXPECT_EQ(listen(listener_, 4), 0);
  }
  ~FakeAcpid() {
    CloseClient();
    close(listener_);
  }
  // Accepts the reader's connection (already queued by its connect()).
  void Accept() { client_ = accept(listener_, nullptr, nullptr); }
  void Send(const std::string& bytes) { WriteAll(client_, bytes); }
  void CloseClient() {
    if (client_ >= 0) close(client_);
    client_ = -1;
  }

 private:
  std::string path_;
  int listener_ = -1;
  int client_ = -1;
};

class AcpidSocketReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    acpid_ = std::make_unique<FakeAcpid>(path_);
    StatusOr<std::unique_ptr<AcpidSocketReader>> reader =
        AcpidSocketReader::Connect(path_, clock_, {.deadline_after_press = seconds(5)});
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    reader_ = std::move(reader).value();
    acpid_->Accept();
  }

  Notice NextNotice() {
    StatusOr<std::optional<Notice>> next = reader_->Next();
    EXPECT_TRUE(next.ok()) << next.status().ToString();
    if (!next.ok() || !next->has_value()) return Notice{};
    return **next;
  }

  ::vs::test_support::TempDir dir_;
  const std::string path_ = dir_.Sub("acpid.socket");
  FakeClock clock_;
  std::unique_ptr<FakeAcpid> acpid_;
  std::unique_ptr<AcpidSocketReader> reader_;
};

TEST_F(AcpidSocketReaderTest, ReportsEachPowerButtonPressAndSkipsOtherEvents) {
  acpid_->Send("ac_adapter ACPI0003:00 00000080 00000001\nbutton/lid LID close\nbutton/po");
  std::future<TimedNext> pending = NextInThread(*reader_);
  std::this_thread::sleep_for(milliseconds(50));  // the line is split across reads
  acpid_->Send("wer PBTN 00000080 00000000\n");
  TimedNext first = pending.get();
  ASSERT_TRUE(first.result.ok()) << first.result.status().ToString();
  ASSERT_TRUE(first.result->has_value());
  const Notice& n = **first.result;
  EXPECT_EQ(n.source, Notice::Source::kAcpiPowerButton);
  EXPECT_EQ(n.kind, Notice::Kind::kPreemption);
  EXPECT_EQ(n.deadline, clock_.WallNow() + seconds(5));
  EXPECT_EQ(n.detail, "acpid: button/power PBTN 00000080 00000000");

  clock_.Advance(seconds(1));
  acpid_->Send("button/power LNXPWRBN:00 00000080 00000002\n");
  const Notice second = NextNotice();
  EXPECT_EQ(second.deadline, clock_.WallNow() + seconds(5));
  EXPECT_NE(second.id, n.id);  // every press is its own event
  EXPECT_TRUE(second.id.ends_with("/2")) << second.id;
}

TEST_F(AcpidSocketReaderTest, AMalformedLineIsAnErrorAndReadingGoesOn) {
  acpid_->Send("button/power PBTN 0080\nbutton/power PBTN 00000080 00000000\n");
  StatusOr<std::optional<Notice>> bad = reader_->Next();
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(Contains(bad.status().message(), path_)) << bad.status().ToString();
  EXPECT_EQ(NextNotice().detail, "acpid: button/power PBTN 00000080 00000000");
}

TEST_F(AcpidSocketReaderTest, AnOverlongLineIsReportedOnceAndSkippedToItsEnd) {
  acpid_->Send(std::string(3000, 'A'));
  StatusOr<std::optional<Notice>> bad = reader_->Next();
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(Contains(bad.status().message(), "longer than 1024")) << bad.status().ToString();
  acpid_->Send(std::string(3000, 'A') + " still the same line\nbutton/power PBTN 00000080 00000000\n");
  EXPECT_EQ(NextNotice().detail, "acpid: button/power PBTN 00000080 00000000");
}

TEST_F(AcpidSocketReaderTest, AcpidGoingAwayIsUnavailable) {
  acpid_->Send("button/lid LID open\n");
  acpid_->CloseClient();
  StatusOr<std::optional<Notice>> next = reader_->Next();
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.status().code(), Code::kUnavailable);
  EXPECT_TRUE(Contains(next.status().message(), path_)) << next.status().ToString();
}

TEST_F(AcpidSocketReaderTest, StopWakesABlockedNextWhichWaitedWithoutSpinning) {
  std::future<TimedNext> pending = NextInThread(*reader_);
  std::this_thread::sleep_for(milliseconds(300));
  reader_->Stop();
  ASSERT_EQ(pending.wait_for(seconds(5)), std::future_status::ready);
  TimedNext stopped = pending.get();
  ASSERT_TRUE(stopped.result.ok()) << stopped.result.status().ToString();
  EXPECT_FALSE(stopped.result->has_value());
  EXPECT_GE(stopped.wall, milliseconds(250));
  EXPECT_LT(stopped.cpu, milliseconds(50)) << "Next() burnt CPU while it waited";

  // Stopped for good, even with a press waiting.
  acpid_->Send("button/power PBTN 00000080 00000000\n");
  StatusOr<std::optional<Notice>> after = reader_->Next();
  ASSERT_TRUE(after.ok());
  EXPECT_FALSE(after->has_value());
}

TEST(AcpidSocketReaderConnectTest, FailuresNameThePath) {
  FakeClock clock;
  ::vs::test_support::TempDir dir;
  StatusOr<std::unique_ptr<AcpidSocketReader>> missing = AcpidSocketReader::Connect(dir.Sub("none.socket"), clock);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kUnavailable);
  EXPECT_TRUE(Contains(missing.status().message(), dir.Sub("none.socket"))) << missing.status().ToString();

  StatusOr<std::unique_ptr<AcpidSocketReader>> too_long =
      AcpidSocketReader::Connect("/" + std::string(200, 'a'), clock);
  ASSERT_FALSE(too_long.ok());
  EXPECT_EQ(too_long.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(AcpidSocketReader::Connect("", clock).status().code(), Code::kInvalidArgument);
}

// ---- input events

std::string Record(uint16_t type, uint16_t code, int32_t value) {
  input_event event{};
  event.type = type;
  event.code = code;
  event.value = value;
  return std::string(reinterpret_cast<const char*>(&event), sizeof event);
}

class InputEventReaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(mkfifo(path_.c_str(), 0600), 0) << std::strerror(errno);
    StatusOr<std::unique_ptr<InputEventReader>> reader = InputEventReader::Open(path_, clock_);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    reader_ = std::move(reader).value();
    writer_ = open(path_.c_str(), O_WRONLY | O_CLOEXEC);
    ASSERT_GE(writer_, 0) << std::strerror(errno);
  }
  void TearDown() override {
    if (writer_ >= 0) close(writer_);
  }

  ::vs::test_support::TempDir dir_;
  const std::string path_ = dir_.Sub("event0");
  FakeClock clock_;
  std::unique_ptr<InputEventReader> reader_;
  int writer_ = -1;
};

TEST_F(InputEventReaderTest, ReportsEachPressAcrossSplitRecords) {
  const std::string press = Record(EV_KEY, KEY_POWER, 1);
  WriteAll(writer_, Record(EV_KEY, KEY_POWER, 0) + Record(EV_SYN, SYN_REPORT, 0) + press.substr(0, 10));
  std::future<TimedNext> pending = NextInThread(*reader_);
  std::this_thread::sleep_for(milliseconds(50));
  WriteAll(writer_, press.substr(10) + Record(EV_SYN, SYN_REPORT, 0));
  TimedNext first = pending.get();
  ASSERT_TRUE(first.result.ok()) << first.result.status().ToString();
  ASSERT_TRUE(first.result->has_value());
  EXPECT_EQ((*first.result)->source, Notice::Source::kAcpiPowerButton);
  EXPECT_EQ((*first.result)->deadline, clock_.WallNow() + seconds(30));
  EXPECT_EQ((*first.result)->detail, "KEY_POWER pressed on " + path_);

  // Autorepeat and release are not presses; the next press is.
  WriteAll(writer_, Record(EV_KEY, KEY_POWER, 2) + Record(EV_KEY, KEY_POWER, 0) + Record(EV_KEY, KEY_SLEEP, 1) + press);
  StatusOr<std::optional<Notice>> second = reader_->Next();
  ASSERT_TRUE(second.ok() && second->has_value());
  EXPECT_TRUE((*second)->id.ends_with("/2")) << (*second)->id;
}

TEST_F(InputEventReaderTest, AMalformedRecordIsAnErrorAndReadingGoesOn) {
  WriteAll(writer_, Record(EV_KEY, KEY_POWER, 9) + Record(EV_KEY, KEY_POWER, 1));
  StatusOr<std::optional<Notice>> bad = reader_->Next();
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(Contains(bad.status().message(), path_)) << bad.status().ToString();
  StatusOr<std::optional<Notice>> good = reader_->Next();
  ASSERT_TRUE(good.ok()) << good.status().ToString();
  EXPECT_TRUE(good->has_value());
}

TEST_F(InputEventReaderTest, TheDeviceGoingAwayIsUnavailable) {
  close(writer_);
  writer_ = -1;
  StatusOr<std::optional<Notice>> next = reader_->Next();
  ASSERT_FALSE(next.ok());
  EXPECT_EQ(next.status().code(), Code::kUnavailable);
  EXPECT_TRUE(Contains(next.status().message(), path_)) << next.status().ToString();
}

TEST_F(InputEventReaderTest, StopWakesABlockedNextWhichWaitedWithoutSpinning) {
  std::future<TimedNext> pending = NextInThread(*reader_);
  std::this_thread::sleep_for(milliseconds(300));
  reader_->Stop();
  ASSERT_EQ(pending.wait_for(seconds(5)), std::future_status::ready);
  TimedNext stopped = pending.get();
  ASSERT_TRUE(stopped.result.ok()) << stopped.result.status().ToString();
  EXPECT_FALSE(stopped.result->has_value());
  EXPECT_LT(stopped.cpu, milliseconds(50)) << "Next() burnt CPU while it waited";
}

TEST(InputEventReaderOpenTest, AMissingDeviceIsUnavailableNamingIt) {
  FakeClock clock;
  StatusOr<std::unique_ptr<InputEventReader>> reader = InputEventReader::Open("/dev/input/no-such-event99", clock);
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), Code::kUnavailable);
  EXPECT_TRUE(Contains(reader.status().message(), "/dev/input/no-such-event99")) << reader.status().ToString();
}

}  // namespace
}  // namespace vs::notice
