#include "shadowd/failover/promotion.h"

#include <algorithm>

namespace vs::failover {

GrowthPlan PlanGrowth(const VmSize& running, const VmSize& full, const VmSize& host_free) {
  GrowthPlan plan;
  plan.target.vcpus = std::max(running.vcpus, std::min<std::uint32_t>(full.vcpus, running.vcpus + host_free.vcpus));
  plan.target.memory_kib =
      std::max(running.memory_kib, std::min<std::uint64_t>(full.memory_kib, running.memory_kib + host_free.memory_kib));
  std::string missing;
  if (plan.target.vcpus < full.vcpus) {
    missing += std::to_string(plan.target.vcpus) + " of " + std::to_string(full.vcpus) + " vCPUs";
  }
  if (plan.target.memory_kib < full.memory_kib) {
    if (!missing.empty()) missing += " and ";
    missing += std::to_string(plan.target.memory_kib / 1024) + " of " + std::to_string(full.memory_kib / 1024) +
               " MiB of memory";
  }
  if (!missing.empty()) plan.shortfall = "runs with " + missing + ": the host has no more room unreserved";
  return plan;
}

RecoveryPoint RecoveryPointOf(WallTime checkpoint_at, WallTime failed_at, Duration interval, Duration round_duration) {
  RecoveryPoint point;
  point.rpo = failed_at > checkpoint_at ? std::chrono::duration_cast<Duration>(failed_at - checkpoint_at) : Duration(0);
  point.bound = interval + round_duration;
  point.within_bound = point.rpo <= point.bound;
  return point;
}

}  // namespace vs::failover
