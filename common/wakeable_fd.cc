#include "common/wakeable_fd.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <utility>

namespace vs {

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) close(fd_);
}

StatusOr<StopSignal> StopSignal::Create() {
  const int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (fd < 0) return Internal(std::string("eventfd for a reader's stop signal: ") + ErrnoText(errno));
  return StopSignal(UniqueFd(fd));
}

void StopSignal::Raise() {
  raised_.store(true);
  const uint64_t one = 1;
  // Only fails when the counter would overflow, i.e. after 2^64 - 2 raises: it is readable anyway.
  [[maybe_unused]] ssize_t n = write(fd_.get(), &one, sizeof one);
}

StatusOr<WaitOutcome> WaitReadable(int fd, const StopSignal& stop) {
  pollfd fds[2] = {{.fd = stop.fd(), .events = POLLIN}, {.fd = fd, .events = POLLIN}};
  for (;;) {
    const int n = poll(fds, 2, -1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Internal(std::string("poll: ") + ErrnoText(errno));
    if (fds[0].revents != 0) return WaitOutcome::kStopped;
    if (fds[1].revents & POLLNVAL) return Internal("poll: the descriptor being read was closed");
    return WaitOutcome::kReadable;
  }
}

std::string ErrnoText(int error_number) {
  const char* description = strerrordesc_np(error_number);
  return description != nullptr ? description : "errno " + std::to_string(error_number);
}

}  // namespace vs
