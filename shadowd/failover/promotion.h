// The numbers of a crash promotion (issue 12), pure: how far the promoted VM grows on its new host, and the
// recovery point it was promoted at.
//
// Ownership: values only. Thread-safety: pure functions. Failure modes: none (inputs are clamped, and what could
// not be restored is said in the plan).
#pragma once

#include <cstdint>
#include <string>

#include "common/clock.h"

namespace vs::failover {

struct VmSize {
  std::uint32_t vcpus = 0;
  std::uint64_t memory_kib = 0;
};

// The promoted VM runs at the shadow's size; it grows towards its full size (vCPU hotplug up to its <vcpu>
// maximum, the balloon up to its <memory>) as far as the host has room beyond what it already gives it.
struct GrowthPlan {
  VmSize target;
  // Empty when the VM gets its full size; else one sentence naming what is missing and why, for the VM's record
  // and `virt-shadow status`.
  std::string shortfall;
};

// `running`: the size it was started at; `full`: the VM's own size; `host_free`: what the host has unreserved
// besides that. Never shrinks below `running` and never exceeds `full`.
GrowthPlan PlanGrowth(const VmSize& running, const VmSize& full, const VmSize& host_free);

// The recovery point of a crash promotion: the replica holds the VM's disks as of its last committed round's
// checkpoint, so every write after that instant and before the host failed is lost.
struct RecoveryPoint {
  Duration rpo{0};         // failed_at - checkpoint_at (0 when the checkpoint is newer, e.g. the VM was idle)
  Duration bound{0};       // one replication interval plus one round's duration: what virt-shadow promises
  bool within_bound = true;
};

// `checkpoint_at`: the wall time of the last committed round's checkpoint; `failed_at`: the last moment the host
// was known alive (its last heartbeat).
RecoveryPoint RecoveryPointOf(WallTime checkpoint_at, WallTime failed_at, Duration interval, Duration round_duration);

}  // namespace vs::failover
