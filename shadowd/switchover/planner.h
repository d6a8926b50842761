// Switchover planning: when a host gets a preemption notice with a deadline, decides in which order
// its protected VMs move to their shadow hosts, when each one starts, how long each stays in precopy
// before the postcopy switch, and which ones cannot make it and what to do about them instead.
// Also answers the reverse question for benchmarks (LargestFittingTransfer) and keeps the bandwidth
// estimate the plan is made with (BandwidthEstimator).
//
// One VM's switchover (docs/switchover.md, "One VM's switchover" and "Warm-up"):
//   cold: disk-only snapshot (S) -> final incremental disk round (delta/B) -> migrate --postcopy,
//         which first starts the destination QEMU (F) -> precopy for p -> migrate-postcopy: the guest
//         runs on the destination -> the remaining pages cross -> done.
//   warm: a warm-up migration already runs (snapshot, final round and QEMU start are done; its
//         precopy is held with only the dirty working set W left) -> migrate-postcopy -> W crosses.
//
// Model (B bandwidth, D guest dirty rate, R RAM, delta dirty disk bytes, W warm working set):
//   remaining(p) = R - (B - D) * p  for 0 <= p <= R/B (one full precopy pass), floored there at
//     R*D/B: the pages dirtied during that pass. Later passes would shrink it only if the guest's
//     working set were smaller than that, which a dirty rate cannot tell, so they are not counted.
//     With D >= B precopy makes no progress: p = 0.
//   finish(cold) = start + S + F + p + (delta + remaining(p))/B = start + S + F + (delta + R)/B + p*D/B
//   finish(warm) = start + (delta + W)/B  (p = 0: the held precopy cannot shrink W any further)
// So precopy never makes a VM finish sooner (each second of it moves B bytes, D of them to be sent
// again): p = 0 gives every VM its earliest finish, and feasibility is decided on that plan. What
// precopy buys is a smaller postcopy phase, i.e. fewer guest page faults served across the network.
// Hence precopy is paid only from slack nobody needs: once all VMs are placed, the time left before
// the budget after the last one is handed out in execution order, each VM taking
// p = min(R/B, slack * B/D) (found by a search over whole nanoseconds, so rounding never pushes a
// finish past the budget), which delays every later VM by p*D/B.
//
// Budget and fallbacks: budget = (1 - safety_margin) * time_to_deadline. A VM whose fastest finish
// is within the budget is feasible. Otherwise, if it still finishes before the deadline itself, it
// runs with kPostcopyImmediately (inside the margin); if not, it gets kSkip with a reason and does
// not run nor occupy the link: shadowd reports it and, if the host dies, promotes the shadow from
// the last replica (crash promotion). A smaller VM after a skipped one may still fit.
//
// Order and sequencing: priority (higher first), then the smaller transfer (delta + R cold,
// delta + W warm), then name. The VMs run one after another, each alone on the link, because:
//   - the bytes to move are the same either way, but in turn each VM finishes as early as it can
//     in priority order, while VMs sharing the link all finish near the end: a deadline that is too
//     short would then miss all of them instead of the last ones;
//   - a precopy sharing the link runs longer, so its guest dirties more pages to resend;
//   - libvirt has no arbitration between concurrent migrations: --bandwidth is a fixed cap per
//     migration (not changeable for the storage mirror once started) and postcopy is uncapped, so
//     concurrent migrations would split the link unpredictably and the plan could not hold;
//   - a failure concerns one migration at a time.
// The price: the link idles during each cold VM's snapshot and destination start (S + F each).
// Warm-up streams still running for VMs not yet switched are capped and ignored here: pass the
// bandwidth left beside them.
//
// Units: durations in nanoseconds, rounded to the safe side (transfer times up, the budget down).
// Duration::max() stands for "never" (no bandwidth, or astronomically long); every sum saturates,
// so no input overflows.
//
// Ownership: values in, values out. Thread-safety: the functions are pure; BandwidthEstimator is a
// plain value for one owner (not synchronised). Failure modes: malformed link facts or VMs give
// InvalidArgument naming the field and value; a deadline that nothing fits is not an error but a
// plan whose VMs say why.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace vs::switchover {

struct VmToMove {
  std::string name;  // the domain name; non-empty and unique within one plan
  uint32_t priority = 0;  // higher moves first
  uint64_t ram_bytes = 0;  // > 0
  uint64_t dirty_rate_bytes_per_s = 0;
  // Cold: the disk bytes dirtied since the last replication round (from the dirty bitmap), sent by
  // the final round. Warm: the storage mirror's backlog, normally about 0.
  uint64_t disk_delta_bytes = 0;
  bool warm = false;  // a warm-up precopy already runs: its RAM is mostly across
  uint64_t warm_remaining_bytes = 0;  // warm only (ignored otherwise): RAM still to send, <= ram_bytes
};

struct LinkFacts {
  double bandwidth_bytes_per_s = 0;  // finite, >= 0; 0 = the link is down
  Duration fixed_start_cost{};  // >= 0; starting the destination QEMU, ~1.5 s under TCG
  Duration snapshot_cost{};  // >= 0; the disk-only external snapshot, ~0.13 s
  double safety_margin = 0;  // in [0, 1); 0.2 = finish with 20 % of the time to the deadline to spare
};

// What an infeasible VM does instead; kNone for a feasible one.
enum class Fallback {
  kNone,
  kPostcopyImmediately,  // misses the budget but not the deadline: runs, switches at once
  kSkip,  // would not finish before the deadline: does not run
};
std::string_view FallbackName(Fallback fallback);

// One VM's part of the plan. Offsets count from the moment the plan was made.
struct VmPlan {
  std::string name;
  // Cold: take the snapshot then; warm: call migrate-postcopy then. For kSkip: when it would have.
  Duration start{};
  // How long to keep precopy running once the migration accepts the postcopy switch; 0 = switch
  // as soon as it is accepted.
  Duration precopy{};
  // When the last page is expected across (for kSkip: would be); Duration::max() = never.
  Duration expected_finish{};
  // RAM expected to cross after the switch; 0 = precopy is expected to complete by itself.
  uint64_t postcopy_bytes = 0;
  bool feasible = false;
  Fallback fallback = Fallback::kNone;
  std::string reason;  // why it is not feasible; empty when it is
};

struct SwitchoverPlan {
  std::vector<VmPlan> vms;  // every VM passed in, in execution order
};

StatusOr<SwitchoverPlan> PlanSwitchover(std::vector<VmToMove> vms, const LinkFacts& link,
                                        Duration time_to_deadline);

// The largest RAM + dirty disk bytes of one cold VM that does not dirty memory and is feasible
// within `deadline` (budget included): such a VM of exactly that size is feasible, one byte more is
// not. 0 when not even the snapshot and destination start fit.
StatusOr<uint64_t> LargestFittingTransfer(const LinkFacts& link, Duration deadline);

// The link bandwidth the switchover achieves: an exponentially weighted moving average of the
// observed bytes per interval, seeded from configuration until the first observation.
class BandwidthEstimator {
 public:
  // `seed_bytes_per_s`: the configured expectation (finite, > 0). `weight`: the share of each new
  // observation in the estimate, in (0, 1]; 1 keeps only the latest observation.
  static StatusOr<BandwidthEstimator> Create(double seed_bytes_per_s, double weight);

  // Folds in `bytes` moved during `interval` (> 0). Feed only intervals during which a transfer
  // kept the link busy: an idle link says nothing about its capacity.
  Status Observe(uint64_t bytes, Duration interval);

  double bytes_per_s() const { return estimate_; }

 private:
  BandwidthEstimator(double seed_bytes_per_s, double weight)
      : weight_(weight), estimate_(seed_bytes_per_s) {}

  double weight_;
  double estimate_;
};

// A finished switchover, as far as the link is concerned.
struct FinishedMove {
  uint64_t bytes = 0;           // memory and disk the migration moved
  Duration migration{};  // the migration step alone, start to end (0: not known)
  bool warm = false;     // a warm-up: its precopy ran under a bandwidth cap
};
// Folds a finished switchover into `estimator`. Only the migration's own time counts: the rest of a switchover
// (health check, snapshot, final round, the completion's flatten of 5-20 s) moves no bytes over the link, and
// counting it made the estimate fall from 100 to 16 MiB/s over 12 switchovers on unchanged links. A warm-up's
// capped migration, one of unknown length and one of 64 MiB or less (start-up costs dominate) say nothing about
// the link and are skipped. Returns whether the move was observed.
bool ObserveMove(BandwidthEstimator& estimator, const FinishedMove& move);

}  // namespace vs::switchover
