// NovaLiveMover: switchover::NovaMover over Nova's API (docs/nova.md, "A live switchover through Nova").
//
//   1. the shadow's Placement allocation on the target is deleted (consumer: the shadow domain's UUID, index 0):
//      the VM needs that room now, and Nova's scheduler checks the target's free memory;
//   2. os-migrateLive to the target with block_migration (Nova's pre-live-migration makes the instance directory
//      there, the hook puts the replicas and tops in it, libvirt's storage mirror copies the tops only);
//   3. as soon as Nova's migration record says "running", force-complete (Nova switches the running migration to
//      postcopy, as virt-shadow's own switchover does at once; nova.conf [libvirt] live_migration_permit_post_copy);
//   4. done when Nova names the target as the instance's host with no task left. A task that ended with the instance
//      still on its source, or in ERROR, is Nova's rollback: FailedPrecondition with Nova's state.
//
// Ownership: borrows the client and the clock. Thread-safety: as the client (one call per VM at a time). Failure
// modes: see nova_mover.h; every error names the instance and the step.
#pragma once

#include <chrono>
#include <string>

#include "common/clock.h"
#include "common/logger.h"
#include "shadowd/nova/openstack_api.h"
#include "shadowd/switchover/nova_mover.h"

namespace vs::nova {

class NovaLiveMover final : public switchover::NovaMover {
 public:
  NovaLiveMover(OpenStackApi& api, Clock& clock, Logger::Line log,
                Duration poll_interval = std::chrono::milliseconds(250));

  StatusOr<switchover::NovaMoveResult> LiveMigrate(const std::string& instance_uuid, const std::string& target_host,
                                                   WallTime deadline) override;

 private:
  OpenStackApi& api_;
  Clock& clock_;
  const Logger::Line log_;
  const Duration poll_interval_;
};

}  // namespace vs::nova
