// Guest check: after a switchover, does the guest still make progress on the target host?
//
// A guest was once delivered dead: after the move its kernel spun with interrupts off (guest memory
// corrupted), never wrote again, and the switchover reported Done. So after every switchover the guest must
// show, within a bound, progress that only a working guest kernel can produce.
//
// Which signals count, and why:
//   - The QEMU guest agent answering guest-ping (where the domain has an org.qemu.guest_agent.0 channel).
//     qemu-ga is a userspace process in the guest: to answer, the guest's kernel must take the virtio-serial
//     interrupt, schedule the agent and complete its write. The strongest signal, and the only one that does
//     not depend on what the workload does.
//   - Block requests completed on any disk (reads or writes, requests or bytes) and packets the guest sent
//     (net tx): each one needs the guest's kernel to put a new request on a virtio ring and notify the device.
// What does not count, and why:
//   - vCPU time: a kernel spinning with interrupts off burns CPU at full speed and does nothing else.
//   - Packets the guest received (net rx): the host's virtio backend fills receive buffers the guest posted
//     earlier, without the guest's help, so rx keeps rising for a dead guest until its ring is full (hundreds
//     of packets of ARP and broadcast chatter). Sampled and named in the explanation, never counted.
//   - The domain's state: "running" describes QEMU's vCPU threads, not what the guest does with them.
//   - The guest's clock through the agent (guest-get-time): it needs the agent, whose answer to guest-ping
//     already proves more. A watchdog device event: it needs a watchdog device and a daemon in the guest, and
//     fires only after the watchdog's own timeout; it says "dead", late, never "alive".
//   - An idle guest without an agent: nothing the host can see proves or disproves progress. That is
//     reported (kUnverifiable), not treated as a failure.
//
// How: before the switchover the source is sampled twice, `window` apart (ObserveSource): did the guest do
// counted I/O there, and did its agent answer? After it, the target is sampled every `interval` until
// progress is seen or `bound` has passed (CheckTarget). Verdicts:
//   kAlive         the agent answered on the target, or counted counters rose between two target samples;
//   kDead          neither within the bound, although the agent had answered on the source ("there is an
//                  agent": a channel whose agent never answered on the source is not one), or the guest did
//                  counted I/O on the source;
//   kUnverifiable  neither within the bound, and neither on the source: no answering agent, no I/O.
// A sample taken exactly at the bound still counts. Counters are compared only between samples of one host:
// the target QEMU is a new process whose counters start at zero, and counters that go backwards between two
// target samples (QEMU restarted, a disk or interface unplugged: the sums drop) start a new baseline, never
// count as progress. The first target sample is the first baseline: work the guest had queued before the
// move (virtio requests in flight, which QEMU restarts on the target) completes as the target starts, before
// the migration call returns, so call CheckTarget after it returned and that work is not taken for progress.
//
// Ownership: values in, values out; the samplers and the clock are borrowed for the call. Thread-safety: the
// functions keep no state; samplers are called on the caller's thread, one at a time. Failure modes:
// InvalidArgument for options that cannot give a verdict (interval <= 0, bound < interval: two target samples
// are needed to see counters move); ObserveSource returns the source sampler's error; CheckTarget tolerates
// failing target samples until the bound and, if by then fewer than two samples succeeded and no agent
// answered, returns the last sampling error (its code, annotated) instead of a verdict: not being able to
// look is not the guest's fault.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/status.h"
#include "shadowd/virt/hypervisor.h"

namespace vs::switchover {

enum class GuestVerdict { kAlive, kDead, kUnverifiable };
std::string_view GuestVerdictName(GuestVerdict verdict);  // "alive", "dead", "unverifiable"

// One sample of the guest on one host, e.g. [&] { return hypervisor.GetGuestActivity(vm, seconds(2)); }.
using ActivitySampler = std::function<StatusOr<virt::GuestActivity>()>;

// What the guest did on the source just before the switchover.
struct SourceObservation {
  std::string host;  // for the explanation, e.g. "h1"
  virt::GuestActivity first;
  virt::GuestActivity second;
  Duration window{0};  // between the starts of the two samples, by the clock
};

struct GuestCheckOptions {
  Duration bound = std::chrono::seconds(20);         // how long the target may take to show progress
  Duration interval = std::chrono::milliseconds(500);  // between the starts of two target samples
};

struct GuestCheckResult {
  GuestVerdict verdict = GuestVerdict::kUnverifiable;
  // What was seen, naming the hosts, e.g. "no block I/O and no packets sent by the guest on h2 in 20 s; on h1
  // it did 312 block writes (1277952 bytes) in 3 s before the switchover".
  std::string explanation;
  Duration waited{0};  // from the start of the first target sample to the verdict
  int samples = 0;     // target samples taken, failed ones included
};

// Samples `host` twice, `window` apart (sleeping on `clock`). Call it while the guest still runs on the
// source, just before the switchover. Returns the sampler's first error; InvalidArgument for window <= 0.
StatusOr<SourceObservation> ObserveSource(const std::string& host, const ActivitySampler& sample, Duration window,
                                          Clock& clock);

// Whether the guest showed, on the source, a signal that counts (its agent answered, or block I/O or sent
// packets moved). Without one the target's check can only end kAlive or kUnverifiable, so waiting the full
// bound for an idle guest buys nothing (the switchover steps then use a short bound).
bool SourceShowedProgress(const SourceObservation& source);

// Samples the target every options.interval (sleeping on `clock`; a sample that takes longer is followed by
// the next one at once) until the guest shows progress or options.bound has passed since the first sample,
// and judges it against `source`. See the header comment for the verdicts and failure modes.
StatusOr<GuestCheckResult> CheckTarget(const SourceObservation& source, const std::string& target_host,
                                       const ActivitySampler& sample, const GuestCheckOptions& options,
                                       Clock& clock);

}  // namespace vs::switchover
