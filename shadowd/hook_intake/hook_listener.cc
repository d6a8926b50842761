#include "shadowd/hook_intake/hook_listener.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/frame.h"
#include "common/private_paths.h"

namespace vs::hook_intake {
namespace {

// After an accept that failed for want of descriptors or memory: the listen socket stays readable, so the worker
// waits this long (or for the stop) instead of spinning on it.
constexpr int kAcceptBackOffMs = 100;

}  // namespace

StatusOr<std::unique_ptr<HookListener>> HookListener::Start(const std::string& socket_path, Handler handler,
                                                            Clock& clock, Logger::Line log, Options options) {
  sockaddr_un address{};
  if (socket_path.empty() || socket_path.size() >= sizeof(address.sun_path)) {
    return InvalidArgument("hook socket '" + socket_path + "': a unix socket's path has 1 to " +
                           std::to_string(sizeof(address.sun_path) - 1) + " bytes");
  }
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, socket_path.c_str(), socket_path.size() + 1);
  VS_ASSIGN_OR_RETURN(StopSignal stop, StopSignal::Create());
  // Non-blocking: the workers all wait for the one socket, and those that lose the race for a connection must
  // not block in accept.
  UniqueFd listen_fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (listen_fd.get() < 0) return Internal("socket(AF_UNIX) for the hook socket: " + ErrnoText(errno));
  VS_RETURN_IF_ERROR(CreatePrivateSocket(socket_path, [&]() -> Status {
                       ::unlink(socket_path.c_str());  // a socket left by a killed shadowd
                       if (::bind(listen_fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 ||
                           ::listen(listen_fd.get(), SOMAXCONN) != 0) {
                         return Unavailable("cannot listen on " + socket_path + ": " + ErrnoText(errno));
                       }
                       return Status::Ok();
                     }).Annotate("hook socket"));
  return std::unique_ptr<HookListener>(
      new HookListener(std::move(listen_fd), std::move(stop), std::move(handler), clock, std::move(log), options));
}

HookListener::HookListener(UniqueFd listen_fd, StopSignal stop, Handler handler, Clock& clock, Logger::Line log,
                           Options options)
    : listen_fd_(std::move(listen_fd)),
      stop_(std::move(stop)),
      handler_(std::move(handler)),
      clock_(clock),
      log_(std::move(log)),
      options_(options) {
  for (int i = 0; i < options_.workers; ++i) workers_.emplace_back([this] { Work(); });
}

HookListener::~HookListener() { Shutdown(); }

void HookListener::Shutdown() {
  std::call_once(shut_down_, [this] {
    stop_.Raise();
    for (std::thread& worker : workers_) worker.join();
    listen_fd_.reset();
  });
}

void HookListener::Work() {
  for (;;) {
    StatusOr<WaitOutcome> ready = WaitReadable(listen_fd_->get(), stop_);
    if (!ready.ok()) return log_("hook socket: " + ready.status().ToString() + "; this worker stops");
    if (*ready == WaitOutcome::kStopped) return;
    UniqueFd connection(::accept4(listen_fd_->get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (connection.get() >= 0) {
      Serve(connection);
      continue;
    }
    // Another worker took it, or the client gave up already.
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED) continue;
    log_("hook socket: accept: " + ErrnoText(errno));
    pollfd stop = {.fd = stop_.fd(), .events = POLLIN, .revents = 0};
    ::poll(&stop, 1, kAcceptBackOffMs);
  }
}

void HookListener::Serve(const UniqueFd& connection) {
  StatusOr<std::string> frame =
      frame::Read(connection.get(), options_.max_event_bytes, clock_.Now() + options_.read_within, clock_, stop_.fd());
  if (!frame.ok()) {
    if (frame.status().code() != Code::kAborted) {
      log_("hook socket: no event read (" + frame.status().ToString() + "); the connection is closed unanswered");
    }
    return;
  }
  virtshadow::v1::HookEvent event;
  if (!event.ParseFromString(*frame)) {
    log_("hook socket: a frame of " + std::to_string(frame->size()) +
         " bytes is not a HookEvent; the connection is closed unanswered");
    return;
  }
  const virtshadow::v1::HookVerdict verdict = handler_(event);
  Status sent = frame::Write(connection.get(), verdict.SerializeAsString(), clock_.Now() + options_.read_within,
                             clock_, stop_.fd());
  if (!sent.ok() && sent.code() != Code::kAborted) {
    log_("hook socket: answering " + event.operation() + " " + event.sub_operation() + " of " + event.domain_name() +
         ": " + sent.ToString());
  }
}

}  // namespace vs::hook_intake
