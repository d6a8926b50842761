// The failover rules of issue 12, as pure functions over values (docs/failover.md says why each holds):
//   - which VMs a host fences when its partition loses quorum (VmsToFence);
//   - when the survivors may promote a VM's shadow after its host left (MayPromote, with FenceTiming);
//   - when an operator's `virt-shadow promote` is allowed (CheckOperatorPromote).
// No libvirt, no Corosync and no clock reads: the membership, the VMs and the time are passed in, so that every
// rule is tested without a hypervisor (tests/unit/failover).
//
// Ownership: values only. Thread-safety: pure functions. Failure modes: CheckOperatorPromote returns
// kFailedPrecondition or kInvalidArgument naming what is wrong and what to do; the others cannot fail.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace vs::failover {

// What this host's membership engine says of the partition this host is in.
struct PartitionView {
  bool quorate = false;
  std::set<std::string> members;  // host names, this host included
};

// A tagged VM that runs on this host, and the hosts of its shadows.
struct RunningVm {
  std::string uuid;
  std::string name;
  std::vector<std::string> shadow_hosts;
};

// The VMs this host must fence now. None while its partition is quorate. Otherwise every VM with a shadow on a
// host outside the partition: that host may be in the quorate part, which promotes the shadow once it waited out
// the fence bound. A VM whose shadows all sit inside this (non-quorate) partition is left running: no host that
// could promote it may do so (promotion needs quorum), so fencing it would only cost its availability.
std::vector<RunningVm> VmsToFence(const PartitionView& partition, const std::vector<RunningVm>& here);

// The timing assumptions behind the survivors' wait (docs/failover.md, "The bound").
struct FenceTiming {
  // How much later than the survivors a cut-off host may notice that it lost quorum: Corosync's token timeout
  // plus consensus timeout (both sides detect the same missing token, each by its own timer). Not a setting:
  // the membership reports Corosync's effective values (MembershipView::failure_detection; WithDetection).
  // While it is 0 (not reported), MayPromote refuses rather than guess.
  Duration detection_skew{0};
  // From noticing the loss to every VM that must be fenced being paused or destroyed (a libvirt call per VM;
  // tens of ms each were measured, docs/failover.md).
  Duration fence_action{std::chrono::seconds(1)};
  // Scheduling delays and clock rate differences between hosts.
  Duration margin{std::chrono::milliseconds(500)};

  // This timing for a partition whose membership notices a silent node within `failure_detection`.
  FenceTiming WithDetection(Duration failure_detection) const {
    FenceTiming timing = *this;
    timing.detection_skew = failure_detection;
    return timing;
  }
  // How long the survivors wait after they saw a host leave before they promote its VMs' shadows.
  Duration SurvivorWait() const { return detection_skew + fence_action + margin; }
};

// What the survivors know of the host a VM ran on.
struct PrimaryHostState {
  std::string host;
  bool member = false;                    // in this host's (quorate) partition right now
  std::optional<MonoTime> absent_since;   // when this host saw it leave the membership
  bool vm_confirmed_stopped = false;      // its libvirtd answered and the VM does not run there (destroyed)
  // Its shadowd had stopped (its Corosync staying) and had not come back when it left: nothing fenced it.
  bool shadowd_stopped = false;
};

struct PromotionVerdict {
  bool allowed = false;
  Duration wait{0};   // when not allowed yet but will be by the rule's clock alone: how much longer
  std::string why;    // one sentence for logs and `virt-shadow status`
};

// May this host promote a shadow of a VM whose primary is `primary`, at `now`? Only from a quorate partition;
// never while the primary is a member; at once when the primary's libvirtd confirmed the VM stopped; otherwise
// once `timing.SurvivorWait()` has passed since the primary left (by then it has fenced itself), and never on a
// timing whose detection skew is unknown (0) nor for a primary whose shadowd had stopped before it left: waiting
// proves nothing when no shadowd was there to fence (an operator's `virt-shadow promote` decides then).
PromotionVerdict MayPromote(bool this_partition_quorate, const PrimaryHostState& primary, MonoTime now,
                            const FenceTiming& timing);

// `virt-shadow promote DOMAIN` by an operator who says the VM's host is gone. Refused (kFailedPrecondition)
// while that host is a member of a quorate membership, unless `force` comes with a reason (kInvalidArgument
// for --force without one); the reason is what the record and the log keep.
Status CheckOperatorPromote(const std::string& vm_name, const std::string& host, bool host_in_quorate_membership,
                            bool force, const std::string& reason);

}  // namespace vs::failover
