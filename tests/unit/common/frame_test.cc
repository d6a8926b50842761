// Frames over a real socketpair: whole, in pieces, oversize, garbage, cut short, silent peers and stops.
#include "common/frame.h"

#include <sys/socket.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <thread>

#include "common/wakeable_fd.h"

namespace vs::frame {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

// Two connected stream sockets; `a` is the side under test, `b` the peer.
struct Pair {
  Pair() {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) std::abort();
    a = fds[0];
    b = fds[1];
  }
  ~Pair() {
    if (a >= 0) ::close(a);
    if (b >= 0) ::close(b);
  }
  void Send(std::string_view bytes) const {
    if (::send(b, bytes.data(), bytes.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(bytes.size())) std::abort();
  }
  void ClosePeer() {
    ::close(b);
    b = -1;
  }
  int a = -1;
  int b = -1;
};

class FrameTest : public ::testing::Test {
 protected:
  StatusOr<std::string> ReadWithin(int fd, Duration wait, std::size_t max = 1 << 20, int stop_fd = -1) {
    return Read(fd, max, clock_->Now() + wait, *clock_, stop_fd);
  }
  std::unique_ptr<Clock> clock_ = NewRealClock();
};

TEST(FrameCodingTest, TheHeaderIsTheLengthBigEndian) {
  EXPECT_EQ(Encode("abc"), std::string("\0\0\0\3abc", 7));
  EXPECT_EQ(Encode(""), std::string(4, '\0'));
  EXPECT_EQ(EncodeHeader(0x01020304), (Header{1, 2, 3, 4}));
  EXPECT_EQ(DecodeHeader(Header{1, 2, 3, 4}), 0x01020304u);
  EXPECT_EQ(DecodeHeader(Header{0xff, 0xff, 0xff, 0xff}), 0xffffffffu);
}

TEST_F(FrameTest, AFrameWrittenIsTheFrameRead) {
  Pair pair;
  ASSERT_TRUE(Write(pair.b, "hello", clock_->Now() + 1s, *clock_).ok());
  StatusOr<std::string> payload = ReadWithin(pair.a, 1s);
  ASSERT_TRUE(payload.ok()) << payload.status().ToString();
  EXPECT_EQ(*payload, "hello");
  ASSERT_TRUE(Write(pair.b, "", clock_->Now() + 1s, *clock_).ok());
  payload = ReadWithin(pair.a, 1s);
  ASSERT_TRUE(payload.ok()) << payload.status().ToString();
  EXPECT_EQ(*payload, "");
}

// Larger than a socket's buffer: both sides wait for each other in turns.
TEST_F(FrameTest, ALargeFrameCrossesInManyReadsAndWrites) {
  Pair pair;
  std::string big(8 << 20, 'x');
  big[12345] = 'y';
  std::future<Status> written =
      std::async(std::launch::async, [&] { return Write(pair.b, big, clock_->Now() + 10s, *clock_); });
  StatusOr<std::string> payload = ReadWithin(pair.a, 10s, 16 << 20);
  ASSERT_TRUE(written.get().ok());
  ASSERT_TRUE(payload.ok()) << payload.status().ToString();
  EXPECT_TRUE(*payload == big);
}

// Short reads: a byte at a time, header and payload.
TEST_F(FrameTest, AFrameArrivingAByteAtATimeIsReassembled) {
  Pair pair;
  const std::string frame = Encode("piecemeal");
  std::thread sender([&] {
    for (char byte : frame) {
      pair.Send(std::string_view(&byte, 1));
      std::this_thread::sleep_for(1ms);
    }
  });
  StatusOr<std::string> payload = ReadWithin(pair.a, 5s);
  sender.join();
  ASSERT_TRUE(payload.ok()) << payload.status().ToString();
  EXPECT_EQ(*payload, "piecemeal");
}

TEST_F(FrameTest, BytesAfterTheFrameStayUnread) {
  Pair pair;
  pair.Send(Encode("one") + Encode("two"));
  EXPECT_EQ(*ReadWithin(pair.a, 1s), "one");
  EXPECT_EQ(*ReadWithin(pair.a, 1s), "two");
}

TEST_F(FrameTest, ALengthAboveTheLimitIsRefusedBeforeThePayload) {
  Pair pair;
  const Header header = EncodeHeader(1001);
  pair.Send(std::string(header.begin(), header.end()));  // no payload follows: it must not be waited for
  const MonoTime start = clock_->Now();
  StatusOr<std::string> payload = ReadWithin(pair.a, 5s, 1000);
  EXPECT_LT(clock_->Now() - start, 1s);
  ASSERT_FALSE(payload.ok());
  EXPECT_EQ(payload.status().code(), Code::kResourceExhausted);
  EXPECT_THAT(payload.status().message(), HasSubstr("announces 1001 bytes, above the limit of 1000 bytes"));
}

// Whatever a confused client sends reads as a length, here of about 1.2 GB.
TEST_F(FrameTest, GarbageReadsAsAnOversizeLength) {
  Pair pair;
  pair.Send("GET / HTTP/1.1\r\n\r\n");
  StatusOr<std::string> payload = ReadWithin(pair.a, 1s);
  ASSERT_FALSE(payload.ok());
  EXPECT_EQ(payload.status().code(), Code::kResourceExhausted);
}

TEST_F(FrameTest, APeerThatClosesSaysHowFarTheFrameGot) {
  {
    Pair pair;
    pair.ClosePeer();
    StatusOr<std::string> payload = ReadWithin(pair.a, 1s);
    EXPECT_EQ(payload.status().code(), Code::kUnavailable) << payload.status().ToString();
    EXPECT_THAT(payload.status().message(), HasSubstr("without sending a frame"));
  }
  {
    Pair pair;
    pair.Send(std::string("\0\0", 2));
    pair.ClosePeer();
    StatusOr<std::string> payload = ReadWithin(pair.a, 1s);
    EXPECT_EQ(payload.status().code(), Code::kDataLoss) << payload.status().ToString();
    EXPECT_THAT(payload.status().message(), HasSubstr("2 of the 4 bytes of its length"));
  }
  {
    Pair pair;
    pair.Send(Encode("truncated").substr(0, 7));
    pair.ClosePeer();
    StatusOr<std::string> payload = ReadWithin(pair.a, 1s);
    EXPECT_EQ(payload.status().code(), Code::kDataLoss) << payload.status().ToString();
    EXPECT_THAT(payload.status().message(), HasSubstr("7 bytes of the frame received (3 of the 9 bytes of its payload)"));
  }
}

TEST_F(FrameTest, ASilentPeerHoldsTheReaderUntilTheDeadlineOnly) {
  Pair pair;
  pair.Send(Encode("half a frame").substr(0, 8));
  const MonoTime start = clock_->Now();
  StatusOr<std::string> payload = ReadWithin(pair.a, 100ms);
  const Duration waited = clock_->Now() - start;
  EXPECT_EQ(payload.status().code(), Code::kDeadlineExceeded) << payload.status().ToString();
  EXPECT_GE(waited, 100ms);
  EXPECT_LT(waited, 2s);
}

// A simulated clock stands still while poll waits: the deadline is still kept, by poll's own timeout.
TEST_F(FrameTest, TheDeadlineHoldsOnAClockThatStandsStill) {
  Pair pair;
  FakeClock still;
  const MonoTime start = clock_->Now();
  StatusOr<std::string> payload = Read(pair.a, 100, still.Now() + 50ms, still);
  EXPECT_EQ(payload.status().code(), Code::kDeadlineExceeded) << payload.status().ToString();
  EXPECT_LT(clock_->Now() - start, 2s);
}

TEST_F(FrameTest, AStopEndsTheWaitAtOnce) {
  Pair pair;
  StatusOr<StopSignal> stop = StopSignal::Create();
  ASSERT_TRUE(stop.ok());
  std::thread stopper([&] {
    std::this_thread::sleep_for(20ms);
    stop->Raise();
  });
  const MonoTime start = clock_->Now();
  StatusOr<std::string> payload = ReadWithin(pair.a, 30s, 100, stop->fd());
  stopper.join();
  EXPECT_EQ(payload.status().code(), Code::kAborted) << payload.status().ToString();
  EXPECT_LT(clock_->Now() - start, 5s);
}

TEST_F(FrameTest, WritingToAGonePeerFailsWithoutASignal) {
  Pair pair;
  pair.ClosePeer();
  Status written = Write(pair.a, "anyone?", clock_->Now() + 1s, *clock_);  // SIGPIPE would end the test here
  EXPECT_EQ(written.code(), Code::kUnavailable) << written.ToString();
}

TEST_F(FrameTest, WritingToAPeerThatNeverReadsEndsAtTheDeadline) {
  Pair pair;
  const std::string big(8 << 20, 'x');  // far more than the socket buffers hold
  Status written = Write(pair.a, big, clock_->Now() + 100ms, *clock_);
  EXPECT_EQ(written.code(), Code::kDeadlineExceeded) << written.ToString();
  EXPECT_THAT(written.message(), HasSubstr("of a frame of 8388612 bytes sent"));
}

}  // namespace
}  // namespace vs::frame
