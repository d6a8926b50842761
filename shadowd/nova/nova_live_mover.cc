#include "shadowd/nova/nova_live_mover.h"

#include <utility>

#include "shadowd/lifecycle/shadow_identity.h"

namespace vs::nova {

NovaLiveMover::NovaLiveMover(OpenStackApi& api, Clock& clock, Logger::Line log, Duration poll_interval)
    : api_(api), clock_(clock), log_(std::move(log)), poll_interval_(poll_interval) {}

StatusOr<switchover::NovaMoveResult> NovaLiveMover::LiveMigrate(const std::string& instance_uuid,
                                                                const std::string& target_host, WallTime deadline) {
  VS_ASSIGN_OR_RETURN(NovaServer before, api_.GetServer(instance_uuid));
  if (before.host == target_host && before.task_state.empty()) {
    // A restart after Nova finished: nothing to ask again.
    return switchover::NovaMoveResult{.running_on_target = clock_.WallNow(), .force_completed = false};
  }
  const std::string source_host = before.host;
  VS_ASSIGN_OR_RETURN(std::string shadow_uuid, lifecycle::ShadowUuid(instance_uuid, 0));
  VS_RETURN_IF_ERROR(api_.DeleteAllocation(shadow_uuid)
                         .Annotate("releasing the shadow's reservation on " + target_host + " in Placement"));
  if (before.task_state.empty()) VS_RETURN_IF_ERROR(api_.LiveMigrate(instance_uuid, target_host));

  switchover::NovaMoveResult result;
  bool saw_task = !before.task_state.empty();
  while (clock_.WallNow() < deadline) {
    if (!result.force_completed) {
      StatusOr<std::vector<NovaMigration>> migrations = api_.ListMigrations(instance_uuid);
      if (migrations.ok()) {
        for (const NovaMigration& migration : *migrations) {
          if (migration.status != "running") continue;
          // Refused (409) while Nova still sets the migration up: asked again at the next poll.
          if (api_.ForceComplete(instance_uuid, migration.id).ok()) {
            result.force_completed = true;
            result.running_on_target = clock_.WallNow();
            log_("asked Nova to complete the live migration " + std::to_string(migration.id) + " of " +
                 instance_uuid + " at once (postcopy)");
          }
        }
      }
    }
    VS_ASSIGN_OR_RETURN(NovaServer now, api_.GetServer(instance_uuid));
    if (!now.task_state.empty()) saw_task = true;
    if (now.status == "ERROR") {
      return FailedPrecondition("Nova put instance " + instance_uuid + " in ERROR during its live migration to " +
                                target_host + " (see `openstack server event list " + instance_uuid + "`)");
    }
    if (now.task_state.empty() && saw_task) {
      if (now.host == target_host) {
        if (!result.force_completed) result.running_on_target = clock_.WallNow();
        return result;
      }
      return FailedPrecondition("Nova ended the live migration of instance " + instance_uuid + " to " + target_host +
                                " with the instance still on " + now.host + " (its rollback; see `openstack server "
                                "migration list --server " + instance_uuid + "` and nova-compute's log on " +
                                source_host + ")");
    }
    saw_task = saw_task || now.host != source_host;
    clock_.SleepFor(poll_interval_);
  }
  return DeadlineExceeded("Nova's live migration of instance " + instance_uuid + " to " + target_host +
                          " did not end by the deadline; Nova goes on with it");
}

}  // namespace vs::nova
