// The hook socket: shadowd's end of the libvirt hook's one request (libvirt-hook/socket_deliverer.h), without
// gRPC. A unix stream socket ([shadowd] hook_socket, default /run/virt-shadow/hook.sock), mode 0600 in a 0700
// directory like the control socket (common/private_paths.h: only root reaches it). One exchange per connection,
// in frames (common/frame.h):
//
//   hook --HookEvent--> shadowd    the whole frame within `read_within` of the accept, at most `max_event_bytes`
//   hook <--HookVerdict-- shadowd  the handler's answer, written within `read_within`; then shadowd closes
//
// Why a socket of its own: gRPC's client (its static initialisers, threads, channel and HTTP/2 handshake) was
// about half of a tagged VM's start, for one small request on a local socket (libvirt-hook/README.md). The gRPC
// control service keeps DeliverHookEvent for older hooks; both answer through one HookIntake.
//
// `workers` threads each accept and serve one connection at a time, so at most that many are served at once;
// more wait in the listen backlog, where the hook's own deadline bounds their wait. A client that sends nothing or
// half a frame holds its worker until `read_within` has passed, no longer. A frame that announces more than
// `max_event_bytes` (policy::kMaxHookEventBytes, what the control socket takes too), that is cut short or that is
// not a HookEvent is answered by closing the connection, and logged: the hook then spools the event as it does
// when shadowd is down. Nothing a client sends stops the listener.
//
// Ownership: owns its socket, its threads and the handler; borrows the clock, which must outlive it.
// Thread-safety: the handler runs on the workers, several at once. Shutdown (also run by the destructor) from any
// thread but a worker, any number of times. Failure modes: Start returns InvalidArgument for a path too long
// for a unix socket, Unavailable naming the path when it cannot listen, and CreatePrivateSocket's errors when the
// socket's directory belongs to another user or the socket does not end up root's with mode 0600.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/logger.h"
#include "common/status.h"
#include "common/wakeable_fd.h"
#include "proto/hook_event.pb.h"
#include "proto/shadowd.pb.h"
#include "shadowd/policy/domain_xml.h"

namespace vs::hook_intake {

class HookListener {
 public:
  // In production HookIntake::Take.
  using Handler = std::function<virtshadow::v1::HookVerdict(const virtshadow::v1::HookEvent&)>;

  struct Options {
    // Connections served at once. A healthy exchange takes well under a millisecond of a worker (a 10 MB
    // domain XML tens of ms), so four keep up with libvirtd starting VMs in parallel.
    int workers = 4;
    // How long a connection may take to send its event, and then to take the answer: far beyond the hook's own
    // 20 ms, only there so that a stuck client frees its worker.
    Duration read_within = std::chrono::seconds(1);
    std::size_t max_event_bytes = policy::kMaxHookEventBytes;
  };

  static StatusOr<std::unique_ptr<HookListener>> Start(const std::string& socket_path, Handler handler,
                                                       Clock& clock, Logger::Line log, Options options);
  ~HookListener();

  // Stops taking connections: an exchange in flight is cut off (the hook spools its event), the workers are
  // joined and the socket is closed, so that a hook connecting afterwards is refused at once.
  void Shutdown();

 private:
  HookListener(UniqueFd listen_fd, StopSignal stop, Handler handler, Clock& clock, Logger::Line log,
               Options options);
  void Work();
  void Serve(const UniqueFd& connection);

  std::optional<UniqueFd> listen_fd_;  // reset by Shutdown, once the workers are joined
  StopSignal stop_;
  const Handler handler_;
  Clock& clock_;
  const Logger::Line log_;
  const Options options_;
  std::vector<std::thread> workers_;
  std::once_flag shut_down_;
};

}  // namespace vs::hook_intake
