#include "shadowd/notice/power_button_reader.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <span>
#include <utility>

#include "shadowd/notice/parse_util.h"

namespace vs::notice {
namespace {

constexpr size_t kMaxAcpidLineBytes = 1024;

enum class ReadOutcome { kData, kStopped };

// Waits for `fd` and appends what read() returns to `pending`. `what` names the source in errors.
StatusOr<ReadOutcome> WaitAndRead(int fd, const StopSignal& stop, std::string& pending, const std::string& what) {
  std::array<char, 4096> buffer;
  for (;;) {
    VS_ASSIGN_OR_RETURN(const WaitOutcome wait, WaitReadable(fd, stop));
    if (wait == WaitOutcome::kStopped) return ReadOutcome::kStopped;
    const ssize_t n = read(fd, buffer.data(), buffer.size());
    if (n > 0) {
      pending.append(buffer.data(), static_cast<size_t>(n));
      return ReadOutcome::kData;
    }
    if (n == 0) return Unavailable(what + " was closed by the other end");
    if (errno == EINTR || errno == EAGAIN) continue;  // a spurious wake-up: wait again
    return Unavailable("cannot read " + what + ": " + ErrnoText(errno));
  }
}

}  // namespace

// ---- acpid

AcpidSocketReader::AcpidSocketReader(UniqueFd socket, StopSignal stop, std::string path, Clock& clock,
                                     PowerButtonOptions options)
    : socket_(std::move(socket)), stop_(std::move(stop)), path_(std::move(path)), clock_(clock), options_(options) {}

StatusOr<std::unique_ptr<AcpidSocketReader>> AcpidSocketReader::Connect(const std::string& socket_path, Clock& clock,
                                                                        PowerButtonOptions options) {
  sockaddr_un address{.sun_family = AF_UNIX};
  if (socket_path.empty() || socket_path.size() >= sizeof address.sun_path) {
    return InvalidArgument("acpid socket path '" + Printable(socket_path) + "' must be 1 to " +
                           std::to_string(sizeof address.sun_path - 1) + " bytes long");
  }
  std::memcpy(address.sun_path, socket_path.data(), socket_path.size());
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0) return Internal("socket(AF_UNIX) for acpid: " + ErrnoText(errno));
  if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    return Unavailable("cannot connect to acpid at '" + socket_path + "': " + ErrnoText(errno) +
                       "; is acpid running (and is this the socket it serves)?");
  }
  VS_ASSIGN_OR_RETURN(StopSignal stop, StopSignal::Create());
  return std::unique_ptr<AcpidSocketReader>(
      new AcpidSocketReader(std::move(fd), std::move(stop), socket_path, clock, options));
}

StatusOr<std::optional<Notice>> AcpidSocketReader::Next() {
  for (;;) {
    if (stop_.raised()) return std::optional<Notice>();
    for (size_t newline = pending_.find('\n'); newline != std::string::npos; newline = pending_.find('\n')) {
      const std::string line = pending_.substr(0, newline);
      pending_.erase(0, newline + 1);
      if (std::exchange(skipping_line_, false)) continue;  // the tail of a line already reported as too long
      const StatusOr<bool> power = IsAcpidPowerButtonEvent(line);
      if (!power.ok()) return power.status().Annotate("from '" + path_ + "'");
      if (*power) {
        return std::optional<Notice>(PowerButtonNotice(clock_.WallNow(), options_, ++presses_, "acpid: " + line));
      }
    }
    if (pending_.size() > kMaxAcpidLineBytes) {
      pending_.clear();
      if (!skipping_line_) {
        skipping_line_ = true;
        return InvalidArgument("acpid at '" + path_ + "' sent a line longer than " +
                               std::to_string(kMaxAcpidLineBytes) + " bytes; skipping it");
      }
    }
    VS_ASSIGN_OR_RETURN(const ReadOutcome read,
                        WaitAndRead(socket_.get(), stop_, pending_, "acpid socket '" + path_ + "'"));
    if (read == ReadOutcome::kStopped) return std::optional<Notice>();
  }
}

// ---- input events

InputEventReader::InputEventReader(UniqueFd device, StopSignal stop, std::string path, Clock& clock,
                                   PowerButtonOptions options)
    : device_(std::move(device)), stop_(std::move(stop)), path_(std::move(path)), clock_(clock), options_(options) {}

StatusOr<std::unique_ptr<InputEventReader>> InputEventReader::Open(const std::string& device_path, Clock& clock,
                                                                   PowerButtonOptions options) {
  // Non-blocking: the open of a FIFO does not wait for a writer, and a read after a spurious
  // wake-up returns EAGAIN instead of blocking where Stop() cannot reach it.
  UniqueFd fd(open(device_path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0) {
    return Unavailable("cannot open input device '" + device_path + "': " + ErrnoText(errno) +
                       "; it is the /dev/input/eventN whose name is 'Power Button' (see /proc/bus/input/devices)");
  }
  VS_ASSIGN_OR_RETURN(StopSignal stop, StopSignal::Create());
  return std::unique_ptr<InputEventReader>(
      new InputEventReader(std::move(fd), std::move(stop), device_path, clock, options));
}

StatusOr<std::optional<Notice>> InputEventReader::Next() {
  for (;;) {
    if (stop_.raised()) return std::optional<Notice>();
    while (pending_.size() >= kInputEventBytes) {
      const StatusOr<bool> press = IsPowerKeyPress(std::as_bytes(std::span(pending_.data(), kInputEventBytes)));
      pending_.erase(0, kInputEventBytes);
      if (!press.ok()) return press.status().Annotate("from '" + path_ + "'");
      if (*press) {
        return std::optional<Notice>(
            PowerButtonNotice(clock_.WallNow(), options_, ++presses_, "KEY_POWER pressed on " + path_));
      }
    }
    VS_ASSIGN_OR_RETURN(const ReadOutcome read,
                        WaitAndRead(device_.get(), stop_, pending_, "input device '" + path_ + "'"));
    if (read == ReadOutcome::kStopped) return std::optional<Notice>();
  }
}

}  // namespace vs::notice
