#include "shadowd/switchover/planner.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>

namespace vs::switchover {
namespace {

constexpr Duration kNever = Duration::max();
// 2^63 as a double: every double below it converts to an int64 nanosecond count without overflow.
constexpr double kNeverNs = 9223372036854775808.0;

// a + b for a, b >= 0, saturating at kNever.
Duration SatAdd(Duration a, Duration b) {
  if (a == kNever || b == kNever || a > kNever - b) return kNever;
  return a + b;
}

uint64_t SatAddBytes(uint64_t a, uint64_t b) {
  return a > std::numeric_limits<uint64_t>::max() - b ? std::numeric_limits<uint64_t>::max() : a + b;
}

// Moves a planned offset by `shift` (either sign); "never" stays never.
Duration Shifted(Duration d, Duration shift) {
  if (d == kNever) return kNever;
  if (shift > Duration::zero()) return SatAdd(d, shift);
  return d + shift;
}

double Seconds(Duration d) { return static_cast<double>(d.count()) / 1e9; }

// Rounded up: a transfer takes at least this long.
Duration TransferTime(uint64_t bytes, double bandwidth_bytes_per_s) {
  if (bytes == 0) return Duration::zero();
  if (bandwidth_bytes_per_s <= 0) return kNever;
  const double ns = std::ceil(static_cast<double>(bytes) / bandwidth_bytes_per_s * 1e9);
  if (!(ns < kNeverNs)) return kNever;
  return Duration(static_cast<int64_t>(ns));
}

// Rounded down: the time the plan may use before the deadline.
Duration Budget(Duration time_to_deadline, double safety_margin) {
  if (time_to_deadline <= Duration::zero()) return time_to_deadline;
  const double ns = std::floor(static_cast<double>(time_to_deadline.count()) * (1.0 - safety_margin));
  if (!(ns < kNeverNs)) return kNever;
  return Duration(static_cast<int64_t>(ns));
}

bool FinishesBy(Duration finish, Duration limit) { return finish != kNever && finish <= limit; }

Status ValidateLink(const LinkFacts& link) {
  if (!std::isfinite(link.bandwidth_bytes_per_s) || link.bandwidth_bytes_per_s < 0) {
    return InvalidArgument("link bandwidth_bytes_per_s is " + std::to_string(link.bandwidth_bytes_per_s) +
                           ": it must be a finite number >= 0 (0 when the link is down)");
  }
  if (link.fixed_start_cost < Duration::zero()) {
    return InvalidArgument("link fixed_start_cost is " + std::to_string(link.fixed_start_cost.count()) +
                           " ns: it must be >= 0 (about 1.5 s under TCG)");
  }
  if (link.snapshot_cost < Duration::zero()) {
    return InvalidArgument("link snapshot_cost is " + std::to_string(link.snapshot_cost.count()) +
                           " ns: it must be >= 0 (about 0.13 s)");
  }
  if (!(link.safety_margin >= 0 && link.safety_margin < 1)) {
    return InvalidArgument("link safety_margin is " + std::to_string(link.safety_margin) +
                           ": it must be in [0, 1), e.g. 0.2 to finish with 20 % of the time to spare");
  }
  return Status::Ok();
}

Status ValidateVms(const std::vector<VmToMove>& vms) {
  std::set<std::string_view> names;
  for (size_t i = 0; i < vms.size(); ++i) {
    const VmToMove& vm = vms[i];
    if (vm.name.empty()) {
      return InvalidArgument("VM #" + std::to_string(i) + " has an empty name: pass its domain name");
    }
    if (!names.insert(vm.name).second) {
      return InvalidArgument("VM '" + vm.name + "' is listed twice: pass each VM to move once");
    }
    if (vm.ram_bytes == 0) {
      return InvalidArgument("VM '" + vm.name + "' has ram_bytes 0: pass the domain's current memory");
    }
    if (vm.warm && vm.warm_remaining_bytes > vm.ram_bytes) {
      return InvalidArgument("VM '" + vm.name + "' is warm with warm_remaining_bytes " +
                             std::to_string(vm.warm_remaining_bytes) + " > ram_bytes " +
                             std::to_string(vm.ram_bytes) + ": the RAM left to send cannot exceed the RAM");
    }
  }
  return Status::Ok();
}

// The bytes that cross the link for `vm` when it switches to postcopy at once.
uint64_t TransferBytes(const VmToMove& vm) {
  return SatAddBytes(vm.disk_delta_bytes, vm.warm ? vm.warm_remaining_bytes : vm.ram_bytes);
}

// The fixed part of a cold VM's switchover: snapshot and destination start.
Duration ColdFixedCost(const LinkFacts& link) { return SatAdd(link.snapshot_cost, link.fixed_start_cost); }

// A VM's duration from its start to its last page when it switches to postcopy at once: the
// fastest it can go (see the model in planner.h).
Duration FastestDuration(const VmToMove& vm, const LinkFacts& link) {
  const Duration transfer = TransferTime(TransferBytes(vm), link.bandwidth_bytes_per_s);
  return vm.warm ? transfer : SatAdd(ColdFixedCost(link), transfer);
}

// remaining(p) of the model: RAM still to send after `precopy`, for 0 <= precopy <= R/B.
uint64_t RemainingAfterPrecopy(const VmToMove& vm, double bandwidth, Duration precopy) {
  const double net_bytes = (bandwidth - static_cast<double>(vm.dirty_rate_bytes_per_s)) * Seconds(precopy);
  if (!(net_bytes > 0)) return vm.ram_bytes;
  if (net_bytes >= static_cast<double>(vm.ram_bytes)) return 0;
  return vm.ram_bytes - static_cast<uint64_t>(net_bytes);
}

// Feasible cold VM: the longest precopy of at most one full pass whose delay of the finish
// (p*D/B in the model) fits `slack`. Searched over whole nanoseconds rather than taken from the
// closed form min(R/B, slack*B/D), so that rounding can never make the delay exceed the slack.
// Returns the precopy and sets `delay` to what it adds to the finish (may be -1 ns from rounding).
Duration PrecopyWithin(const VmToMove& vm, const LinkFacts& link, Duration slack, Duration* delay) {
  *delay = Duration::zero();
  const double bandwidth = link.bandwidth_bytes_per_s;
  if (static_cast<double>(vm.dirty_rate_bytes_per_s) >= bandwidth) return Duration::zero();
  const Duration fastest = TransferTime(SatAddBytes(vm.disk_delta_bytes, vm.ram_bytes), bandwidth);
  auto delay_of = [&](Duration precopy) {
    const uint64_t after = SatAddBytes(vm.disk_delta_bytes, RemainingAfterPrecopy(vm, bandwidth, precopy));
    // Finite: the VM is feasible, so `fastest` is, and TransferTime is monotonic in the bytes.
    return precopy + TransferTime(after, bandwidth) - fastest;
  };
  Duration lo = Duration::zero();
  Duration hi = TransferTime(vm.ram_bytes, bandwidth);  // one full pass
  while (lo < hi) {
    const Duration mid = lo + (hi - lo + Duration(1)) / 2;
    if (delay_of(mid) <= slack) {
      lo = mid;
    } else {
      hi = mid - Duration(1);
    }
  }
  *delay = delay_of(lo);
  return lo;
}

std::string FormatSeconds(Duration d) {
  if (d == kNever) return "unbounded time";
  char text[48];
  std::snprintf(text, sizeof text, "%.2f s", Seconds(std::max(d, Duration::zero())));
  return text;
}

}  // namespace

std::string_view FallbackName(Fallback fallback) {
  switch (fallback) {
    case Fallback::kNone:
      return "none";
    case Fallback::kPostcopyImmediately:
      return "postcopy-immediately";
    case Fallback::kSkip:
      return "skip";
  }
  return "unknown";
}

StatusOr<SwitchoverPlan> PlanSwitchover(std::vector<VmToMove> vms, const LinkFacts& link,
                                        Duration time_to_deadline) {
  VS_RETURN_IF_ERROR(ValidateLink(link));
  VS_RETURN_IF_ERROR(ValidateVms(vms));
  std::sort(vms.begin(), vms.end(), [](const VmToMove& a, const VmToMove& b) {
    if (a.priority != b.priority) return a.priority > b.priority;
    const uint64_t a_bytes = TransferBytes(a);
    const uint64_t b_bytes = TransferBytes(b);
    if (a_bytes != b_bytes) return a_bytes < b_bytes;
    return a.name < b.name;
  });
  const Duration budget = Budget(time_to_deadline, link.safety_margin);

  // Pass 1: every VM at its fastest, one after another; decides feasibility and fallbacks.
  SwitchoverPlan plan;
  std::vector<Duration> fastest(vms.size());
  Duration link_free_at = Duration::zero();
  for (size_t i = 0; i < vms.size(); ++i) {
    const VmToMove& vm = vms[i];
    fastest[i] = FastestDuration(vm, link);
    VmPlan& p = plan.vms.emplace_back();
    p.name = vm.name;
    p.start = link_free_at;
    p.expected_finish = SatAdd(link_free_at, fastest[i]);
    p.postcopy_bytes = vm.warm ? vm.warm_remaining_bytes : vm.ram_bytes;
    p.feasible = FinishesBy(p.expected_finish, budget);
    if (!p.feasible) {
      p.fallback = FinishesBy(p.expected_finish, time_to_deadline) ? Fallback::kPostcopyImmediately : Fallback::kSkip;
    }
    if (p.fallback != Fallback::kSkip) link_free_at = p.expected_finish;
  }

  // Pass 2: spend the slack after the last VM on precopy, in execution order. Any kPostcopyImmediately
  // VM ran past the budget, so then there is no slack and nothing changes.
  Duration slack = FinishesBy(link_free_at, budget) ? budget - link_free_at : Duration::zero();
  Duration shift = Duration::zero();
  for (size_t i = 0; i < vms.size(); ++i) {
    VmPlan& p = plan.vms[i];
    p.start = Shifted(p.start, shift);
    p.expected_finish = Shifted(p.expected_finish, shift);
    if (slack <= Duration::zero() || !p.feasible || vms[i].warm) continue;
    Duration delay;
    p.precopy = PrecopyWithin(vms[i], link, slack, &delay);
    p.postcopy_bytes = RemainingAfterPrecopy(vms[i], link.bandwidth_bytes_per_s, p.precopy);
    p.expected_finish += delay;
    shift += delay;
    slack -= delay;
  }

  for (size_t i = 0; i < vms.size(); ++i) {
    VmPlan& p = plan.vms[i];
    if (p.fallback == Fallback::kPostcopyImmediately) {
      p.reason = "misses the safety margin: needs " + FormatSeconds(fastest[i]) + ", has " +
                 FormatSeconds(budget - p.start) + " with the margin and " +
                 FormatSeconds(time_to_deadline - p.start) + " before the deadline; switching to postcopy at once";
    } else if (p.fallback == Fallback::kSkip) {
      p.reason = "would not finish before the deadline: needs " + FormatSeconds(fastest[i]) + ", has " +
                 FormatSeconds(time_to_deadline - p.start);
    }
  }
  return plan;
}

StatusOr<uint64_t> LargestFittingTransfer(const LinkFacts& link, Duration deadline) {
  VS_RETURN_IF_ERROR(ValidateLink(link));
  const Duration budget = Budget(deadline, link.safety_margin);
  // The same arithmetic as FastestDuration for a cold VM, so that the answer is exact for the planner.
  auto fits = [&](uint64_t bytes) {
    return FinishesBy(SatAdd(ColdFixedCost(link), TransferTime(bytes, link.bandwidth_bytes_per_s)), budget);
  };
  if (!fits(0)) return uint64_t{0};
  uint64_t lo = 0;  // fits
  uint64_t hi = std::numeric_limits<uint64_t>::max();
  while (lo < hi) {
    const uint64_t mid = lo + (hi - lo) / 2 + 1;
    if (fits(mid)) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

StatusOr<BandwidthEstimator> BandwidthEstimator::Create(double seed_bytes_per_s, double weight) {
  if (!std::isfinite(seed_bytes_per_s) || seed_bytes_per_s <= 0) {
    return InvalidArgument("bandwidth seed is " + std::to_string(seed_bytes_per_s) +
                           " bytes/s: configure the expected link bandwidth, a finite number > 0");
  }
  if (!(weight > 0 && weight <= 1)) {
    return InvalidArgument("bandwidth estimator weight is " + std::to_string(weight) +
                           ": it must be in (0, 1], e.g. 0.3");
  }
  return BandwidthEstimator(seed_bytes_per_s, weight);
}

Status BandwidthEstimator::Observe(uint64_t bytes, Duration interval) {
  if (interval <= Duration::zero()) {
    return InvalidArgument("bandwidth observation of " + std::to_string(bytes) + " bytes over " +
                           std::to_string(interval.count()) + " ns: the interval must be > 0");
  }
  const double observed = static_cast<double>(bytes) / Seconds(interval);
  estimate_ = weight_ * observed + (1 - weight_) * estimate_;
  return Status::Ok();
}

bool ObserveMove(BandwidthEstimator& estimator, const FinishedMove& move) {
  constexpr uint64_t kMinBytes = uint64_t{64} << 20;
  if (move.warm || move.migration <= Duration::zero() || move.bytes <= kMinBytes) return false;
  return estimator.Observe(move.bytes, move.migration).ok();
}

}  // namespace vs::switchover
