#include "libvirt-hook/socket_deliverer.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/frame.h"
#include "common/wakeable_fd.h"
#include "shadowd/policy/domain_xml.h"

namespace vs::hook {
namespace {

// A verdict is a flag and a reason, but a reason may quote a policy's attribute value: bounded by what an event
// may hold, which only stops a garbage length from allocating gigabytes.
constexpr std::size_t kMaxVerdictBytes = policy::kMaxHookEventBytes;

// Every failure of a delivery as the hook reports it (on stderr, which libvirt shows): `status` came from the
// connect or from frame::Read/Write.
Status Classify(const Status& status, const std::string& socket_path, Duration timeout) {
  const std::string shadowd = "shadowd at unix:" + socket_path;
  switch (status.code()) {
    case Code::kUnavailable:
      return Unavailable("cannot reach " + shadowd + ": " + status.message());
    case Code::kDeadlineExceeded:
      return DeadlineExceeded(shadowd + " did not answer within " +
                              std::to_string(std::chrono::ceil<std::chrono::milliseconds>(timeout).count()) + " ms (" +
                              status.message() + ")");
    case Code::kDataLoss:
      return DataLoss(shadowd + " gave a malformed answer: " + status.message());
    default:
      return Status(status.code(), shadowd + ": " + status.message());
  }
}

// A connection to `path`, without waiting: shadowd down is a failed connect, not a wait.
StatusOr<UniqueFd> Connect(const std::string& path) {
  sockaddr_un address{};
  if (path.size() >= sizeof(address.sun_path)) {
    return InvalidArgument("the path is longer than a unix socket's " + std::to_string(sizeof(address.sun_path) - 1) +
                           " bytes");
  }
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0) return Unavailable("socket: " + ErrnoText(errno));
  // ENOENT: no socket (shadowd never ran here); ECONNREFUSED: nobody listens (shadowd stopped); EAGAIN: its listen
  // queue is full. A unix socket connects at once or not at all; were it ever EINPROGRESS, the write would wait.
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 && errno != EINPROGRESS &&
      errno != EINTR) {
    return Unavailable("connect: " + ErrnoText(errno));
  }
  return fd;
}

}  // namespace

SocketDeliverer::SocketDeliverer(std::string socket_path, Duration answer_within, Clock& clock)
    : socket_path_(std::move(socket_path)), answer_within_(answer_within), clock_(clock) {}

StatusOr<virtshadow::v1::HookVerdict> SocketDeliverer::Deliver(const virtshadow::v1::HookEvent& event) {
  const MonoTime answer_by = clock_.Now() + answer_within_;
  const std::size_t size = event.ByteSizeLong();
  if (size > policy::kMaxHookEventBytes) {
    return ResourceExhausted("the event has " + std::to_string(size) + " bytes, more than the " +
                             std::to_string(policy::kMaxHookEventBytes) + " shadowd takes; not sent");
  }
  const std::string request = event.SerializeAsString();
  StatusOr<UniqueFd> connection = Connect(socket_path_);
  const Duration timeout = std::max<Duration>(answer_by - clock_.Now(), kMinCallTime);
  if (!connection.ok()) return Classify(connection.status(), socket_path_, timeout);
  const MonoTime deadline = clock_.Now() + timeout;
  if (Status sent = frame::Write(connection->get(), request, deadline, clock_); !sent.ok()) {
    return Classify(sent, socket_path_, timeout);
  }
  StatusOr<std::string> answer = frame::Read(connection->get(), kMaxVerdictBytes, deadline, clock_);
  if (!answer.ok()) return Classify(answer.status(), socket_path_, timeout);
  virtshadow::v1::HookVerdict verdict;
  if (!verdict.ParseFromString(*answer)) {
    return Classify(DataLoss("an answer of " + std::to_string(answer->size()) + " bytes that is not a HookVerdict"),
                    socket_path_, timeout);
  }
  return verdict;
}

}  // namespace vs::hook
