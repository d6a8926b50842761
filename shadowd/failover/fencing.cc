#include "shadowd/failover/fencing.h"

#include <algorithm>

namespace vs::failover {

namespace {

std::string Millis(Duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

}  // namespace

std::vector<RunningVm> VmsToFence(const PartitionView& partition, const std::vector<RunningVm>& here) {
  std::vector<RunningVm> fence;
  if (partition.quorate) return fence;
  for (const RunningVm& vm : here) {
    const bool shadow_outside = std::any_of(vm.shadow_hosts.begin(), vm.shadow_hosts.end(),
                                            [&](const std::string& host) { return !partition.members.contains(host); });
    if (shadow_outside) fence.push_back(vm);
  }
  return fence;
}

PromotionVerdict MayPromote(bool this_partition_quorate, const PrimaryHostState& primary, MonoTime now,
                            const FenceTiming& timing) {
  if (!this_partition_quorate) {
    return {.why = "this host's partition is not quorate: only the quorate partition promotes"};
  }
  if (primary.member) {
    return {.why = primary.host + " is still a member of the membership: the VM runs there"};
  }
  if (primary.vm_confirmed_stopped) {
    return {.allowed = true, .why = primary.host + "'s libvirtd confirmed the VM stopped there"};
  }
  if (!primary.absent_since) {
    return {.why = primary.host + " was never seen leaving the membership"};
  }
  if (primary.shadowd_stopped) {
    return {.why = primary.host + "'s shadowd had stopped before the host left the membership, so nothing fenced the "
                   "VM there and it may still run; once you know " + primary.host + " is off, run 'virt-shadow "
                   "promote DOMAIN' on this host"};
  }
  if (timing.detection_skew <= Duration::zero()) {
    return {.why = "the membership has not said how long it takes to notice a lost node (Corosync's token plus "
                   "consensus): the fence bound is unknown"};
  }
  const MonoTime safe_at = *primary.absent_since + timing.SurvivorWait();
  if (now >= safe_at) {
    return {.allowed = true,
            .why = primary.host + " left the membership " + Millis(now - *primary.absent_since) +
                   " ago, more than the fence bound (" + Millis(timing.SurvivorWait()) + ")"};
  }
  return {.wait = safe_at - now,
          .why = "waiting out the fence bound: " + primary.host + " left " + Millis(now - *primary.absent_since) +
                 " ago and may still be fencing itself for " + Millis(safe_at - now)};
}

Status CheckOperatorPromote(const std::string& vm_name, const std::string& host, bool host_in_quorate_membership,
                            bool force, const std::string& reason) {
  if (force && reason.empty()) {
    return InvalidArgument("promote " + vm_name + " --force needs a reason (--reason TEXT): it is kept in the "
                           "VM's record, because a forced promotion may run the VM twice");
  }
  if (host_in_quorate_membership && !force) {
    return FailedPrecondition("refusing to promote " + vm_name + ": its host " + host +
                              " is a member of the quorate membership, so the VM may still run there; stop it "
                              "there, or if you know the host is gone, repeat with --force --reason TEXT");
  }
  return Status::Ok();
}

}  // namespace vs::failover
