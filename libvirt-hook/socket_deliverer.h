// The production EventDeliverer: the event as one frame on shadowd's hook socket, the verdict as one frame back
// (common/frame.h; shadowd's end is shadowd/hook_intake/hook_listener.h).
//
// Why not gRPC: its client (static initialisers that ran for untagged domains too, six threads, the channel, the
// HTTP/2 handshake) was about half of a tagged VM's start for one small request on a local socket
// (libvirt-hook/README.md has the numbers).
//
// The connect does not block: a missing socket or a refused connect (shadowd down) returns Unavailable within
// microseconds; a hung shadowd returns DeadlineExceeded at the deadline. Errors become vs::Status in one place
// (socket_deliverer.cc, Classify): Unavailable (no socket, refused, the connection closed before an answer, the
// listen queue full), DeadlineExceeded (no whole answer by the deadline), DataLoss (an answer cut short, or one
// that is not a HookVerdict), ResourceExhausted (an event above what shadowd takes, not sent). Any error means
// "not delivered".
//
// Ownership: borrows `clock`, which must outlive the deliverer. Thread-safety: one call at a time.
#pragma once

#include <chrono>
#include <string>

#include "common/clock.h"
#include "libvirt-hook/hook.h"

namespace vs::hook {

// The hook may hold a VM start for at most 50 ms, exec to exit, also when shadowd is down or hung.
// So shadowd must have answered kShadowdAnswerWithin after Deliver began, that is after the XML was
// read and parsed: an absolute deadline, so that time lost before the call (connecting, serialising the event)
// comes out of the wait, not on top of it. Reading and parsing are not in it: they take < 1 ms for a usual domain
// XML but grow with its size (a 10 MB one takes tens of ms), and a large XML must not turn into a missed
// deadline, a spooled event and, for a fail-closed VM, a refused start. The rest of the 50 ms is for
// what cannot be cut short: exec, stdin and parse before, the spool's two fsyncs and exit after.
// Measured on the 2-core test VM (libvirt-hook/README.md has the table): a tagged start with shadowd answering
// takes 1-3 ms exec to exit, the hung case about 21 ms (this deadline plus exec and the spool). A healthy shadowd
// answers well within 1 ms, so the 20 ms are ample.
inline constexpr std::chrono::milliseconds kShadowdAnswerWithin{20};
// The call always gets at least this long, even when start-up ate the budget: enough for a healthy
// shadowd, whose answer is worth more than the few ms (refusing a fail-closed VM is the alternative).
inline constexpr std::chrono::milliseconds kMinCallTime{5};

class SocketDeliverer final : public EventDeliverer {
 public:
  // `socket_path`: shadowd's hook socket, e.g. /run/virt-shadow/hook.sock. `answer_within`: how long after
  // Deliver begins (on `clock`) the call gives up, but never less than kMinCallTime after the connect.
  // Events up to policy::kMaxHookEventBytes are sent, what shadowd receives.
  SocketDeliverer(std::string socket_path, Duration answer_within, Clock& clock);
  StatusOr<virtshadow::v1::HookVerdict> Deliver(const virtshadow::v1::HookEvent& event) override;

 private:
  std::string socket_path_;
  Duration answer_within_;
  Clock& clock_;
};

}  // namespace vs::hook
