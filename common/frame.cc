#include "common/frame.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <climits>

#include "common/wakeable_fd.h"

namespace vs::frame {
namespace {

std::string Bytes(std::size_t count) { return std::to_string(count) + (count == 1 ? " byte" : " bytes"); }

// Waits until `fd` is ready for `events` (or closed, or failed: the next recv or send tells which). `progress`
// says how far the frame got, for the message of a deadline or a stop.
Status WaitReady(int fd, short events, MonoTime deadline, const Clock& clock, int stop_fd,
                 const std::string& progress) {
  for (;;) {
    const Duration left = deadline - clock.Now();
    if (left <= Duration::zero()) return DeadlineExceeded("the deadline passed with " + progress);
    const int64_t ms = std::min<int64_t>(std::chrono::ceil<std::chrono::milliseconds>(left).count(), INT_MAX);
    pollfd fds[2] = {{.fd = fd, .events = events, .revents = 0}, {.fd = stop_fd, .events = POLLIN, .revents = 0}};
    const int n = ::poll(fds, 2, static_cast<int>(ms));  // a negative stop_fd is ignored by poll
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Internal("poll: " + ErrnoText(errno));
    if (fds[1].revents != 0) return Aborted("stopped with " + progress);
    // Timed out after all that was left: the deadline passed, whatever the clock says (a simulated one stands
    // still).
    if (n == 0) return DeadlineExceeded("the deadline passed with " + progress);
    return Status::Ok();
  }
}

// Fills `size` bytes at `into`, `what` of a frame of which `before` bytes came already.
Status ReceiveExactly(int fd, char* into, std::size_t size, std::size_t before, const std::string& what,
                      MonoTime deadline, const Clock& clock, int stop_fd) {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::recv(fd, into + done, size - done, MSG_DONTWAIT);
    if (n > 0) {
      done += static_cast<std::size_t>(n);
      continue;
    }
    const std::string progress = Bytes(before + done) + " of the frame received (" + std::to_string(done) +
                                 " of the " + Bytes(size) + " of " + what + ")";
    if (n == 0) {
      if (before + done == 0) return Unavailable("the peer closed the connection without sending a frame");
      return DataLoss("the peer closed the connection with " + progress);
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return Unavailable("receiving a frame: " + ErrnoText(errno) + ", " + progress);
    }
    VS_RETURN_IF_ERROR(WaitReady(fd, POLLIN, deadline, clock, stop_fd, progress));
  }
  return Status::Ok();
}

}  // namespace

Header EncodeHeader(uint32_t length) {
  return {static_cast<unsigned char>(length >> 24), static_cast<unsigned char>(length >> 16),
          static_cast<unsigned char>(length >> 8), static_cast<unsigned char>(length)};
}

uint32_t DecodeHeader(const Header& header) {
  return uint32_t{header[0]} << 24 | uint32_t{header[1]} << 16 | uint32_t{header[2]} << 8 | uint32_t{header[3]};
}

std::string Encode(std::string_view payload) {
  const Header header = EncodeHeader(static_cast<uint32_t>(payload.size()));
  std::string frame(header.begin(), header.end());
  frame.append(payload);
  return frame;
}

Status Write(int fd, std::string_view payload, MonoTime deadline, const Clock& clock, int stop_fd) {
  Header header = EncodeHeader(static_cast<uint32_t>(payload.size()));
  const std::size_t total = kHeaderBytes + payload.size();
  std::size_t sent = 0;
  while (sent < total) {
    // The header and the payload in one call, without copying the payload (it may be 20 MB).
    iovec parts[2];
    std::size_t count = 0;
    if (sent < kHeaderBytes) parts[count++] = {header.data() + sent, kHeaderBytes - sent};
    const std::size_t payload_sent = sent > kHeaderBytes ? sent - kHeaderBytes : 0;
    if (payload_sent < payload.size()) {
      parts[count++] = {const_cast<char*>(payload.data()) + payload_sent, payload.size() - payload_sent};
    }
    msghdr message{};
    message.msg_iov = parts;
    message.msg_iovlen = count;
    const ssize_t n = ::sendmsg(fd, &message, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n >= 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    const std::string progress = Bytes(sent) + " of a frame of " + Bytes(total) + " sent";
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      return Unavailable("sending a frame: " + ErrnoText(errno) + ", " + progress);
    }
    VS_RETURN_IF_ERROR(WaitReady(fd, POLLOUT, deadline, clock, stop_fd, progress));
  }
  return Status::Ok();
}

StatusOr<std::string> Read(int fd, std::size_t max_payload, MonoTime deadline, const Clock& clock, int stop_fd) {
  Header header{};
  VS_RETURN_IF_ERROR(ReceiveExactly(fd, reinterpret_cast<char*>(header.data()), kHeaderBytes, 0, "its length",
                                    deadline, clock, stop_fd));
  const uint32_t length = DecodeHeader(header);
  if (length > max_payload) {
    return ResourceExhausted("a frame announces " + Bytes(length) + ", above the limit of " + Bytes(max_payload));
  }
  std::string payload(length, '\0');
  VS_RETURN_IF_ERROR(
      ReceiveExactly(fd, payload.data(), length, kHeaderBytes, "its payload", deadline, clock, stop_fd));
  return payload;
}

}  // namespace vs::frame
