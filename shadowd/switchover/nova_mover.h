// NovaMover: a Nova instance's live migration, asked of Nova (docs/nova.md), so that Nova's records name the
// VM's new host and its next reboot, resize or delete goes there. The switchover's steps are the same as for any
// VM (snapshot onto tops, final round into the replicas); only the migration is Nova's: its pre-live-migration
// step prepares the target's instance directory, its block migration (libvirt's --copy-storage-inc) copies just
// the tops, and its post-live-migration step moves the instance's records and allocations to the target.
//
// Ownership: implementations borrow their OpenStack client. Thread-safety: one call per VM at a time; calls for
// different VMs may run concurrently. Failure modes: DeadlineExceeded when the migration did not end by the
// deadline (Nova goes on with it); FailedPrecondition when Nova ended it without moving the VM (its rollback), or
// refused it; the OpenStack client's errors otherwise, each naming the call.
#pragma once

#include <string>

#include "common/clock.h"
#include "common/status.h"

namespace vs::switchover {

struct NovaMoveResult {
  // When the guest began to run on the target: when Nova accepted the request to complete the migration at once
  // (a postcopy switch), else when the migration was seen ended.
  WallTime running_on_target;
  bool force_completed = false;  // Nova was asked to switch to postcopy and accepted
};

class NovaMover {
 public:
  virtual ~NovaMover() = default;
  // Moves instance `instance_uuid` live to Nova host `target_host` and waits until Nova names that host as the
  // instance's, with no task left. What the VM's shadow reserved in Placement on `target_host` is released first:
  // the VM needs that room now, and Nova's scheduler checks the target's free memory.
  virtual StatusOr<NovaMoveResult> LiveMigrate(const std::string& instance_uuid, const std::string& target_host,
                                               WallTime deadline) = 0;
};

}  // namespace vs::switchover
