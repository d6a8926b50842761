// The production EventDeliverer: one unary ShadowD.DeliverHookEvent call over shadowd's unix socket.
//
// The channel is created inside Deliver, so a hook run that never delivers (an untagged domain)
// never initialises gRPC. Calls fail fast (no wait-for-ready): a missing socket or a refused
// connect returns Unavailable within about a millisecond; a hung shadowd returns DeadlineExceeded
// at the deadline. gRPC status codes become vs::Status here and nowhere else.
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
// read and parsed: an absolute deadline, so that time lost to gRPC's initialisation comes out of the
// wait, not on top of it. Reading and parsing are not in it: they take < 1 ms for a usual domain XML
// but grow with its size (a 10 MB one takes tens of ms), and a large XML must not turn into a missed
// deadline, a spooled event and, for a fail-closed VM, a refused start. The rest of the 50 ms is for
// what cannot be cut short: exec, stdin and parse before, the spool's two fsyncs and exit after.
// Measured on the 2-core test VM with other builds running (libvirt-hook/README.md has the table):
// exec of the static binary 3-7 ms, stdin + XML parse < 1 ms, gRPC init + channel 2-3 ms, spool
// append 1-10 ms, exit < 1 ms. A healthy shadowd answers in about 1 ms, so the ~17 ms left for the
// call itself is ample.
inline constexpr std::chrono::milliseconds kShadowdAnswerWithin{20};
// The call always gets at least this long, even when start-up ate the budget: enough for a healthy
// shadowd, whose answer is worth more than the few ms (refusing a fail-closed VM is the alternative).
inline constexpr std::chrono::milliseconds kMinCallTime{5};

class GrpcDeliverer final : public EventDeliverer {
 public:
  // `socket_path`: shadowd's unix socket, e.g. /run/virt-shadow/shadowd.sock. `answer_within`: how
  // long after Deliver begins (on `clock`) the call gives up, but never less than kMinCallTime after
  // the call itself starts. Events up to policy::kMaxHookEventBytes are sent, what shadowd receives.
  GrpcDeliverer(std::string socket_path, Duration answer_within, Clock& clock);
  StatusOr<virtshadow::v1::HookVerdict> Deliver(const virtshadow::v1::HookEvent& event) override;

 private:
  std::string socket_path_;
  Duration answer_within_;
  Clock& clock_;
};

}  // namespace vs::hook
