#include "shadowd/notice/gce_metadata.h"

#include <string>

#include "shadowd/notice/parse_util.h"

namespace vs::notice {
namespace {

std::string_view TrimTrailingNewline(std::string_view body) {
  while (body.ends_with('\n') || body.ends_with('\r')) body.remove_suffix(1);
  return body;
}

}  // namespace

Status CheckGceResponse(const HttpResponse& response, std::string_view what) {
  if (response.status != 200) return UnexpectedHttpStatus(what, response);
  const std::optional<std::string_view> flavor = response.Header("Metadata-Flavor");
  if (flavor != "Google") {
    return InvalidArgument(std::string(what) + ": the response lacks the header 'Metadata-Flavor: Google' (got '" +
                           Printable(flavor.value_or("<none>"), 64) +
                           "'), so it does not come from the GCE metadata server; check the metadata endpoint");
  }
  return Status::Ok();
}

StatusOr<bool> ParseGcePreempted(std::string_view body) {
  const std::string_view value = TrimTrailingNewline(body);
  if (value == "TRUE") return true;
  if (value == "FALSE") return false;
  return InvalidArgument("GCE instance/preempted is '" + Printable(body, 64) + "'; expected TRUE or FALSE");
}

StatusOr<GceMaintenanceEvent> ParseGceMaintenanceEvent(std::string_view body) {
  const std::string_view value = TrimTrailingNewline(body);
  for (GceMaintenanceEvent event : {GceMaintenanceEvent::kNone, GceMaintenanceEvent::kMigrateOnHostMaintenance,
                                    GceMaintenanceEvent::kTerminateOnHostMaintenance}) {
    if (value == GceMaintenanceEventName(event)) return event;
  }
  return InvalidArgument("GCE instance/maintenance-event is '" + Printable(body, 64) +
                         "'; expected NONE, MIGRATE_ON_HOST_MAINTENANCE or TERMINATE_ON_HOST_MAINTENANCE");
}

std::string_view GceMaintenanceEventName(GceMaintenanceEvent event) {
  switch (event) {
    case GceMaintenanceEvent::kNone:
      return "NONE";
    case GceMaintenanceEvent::kMigrateOnHostMaintenance:
      return "MIGRATE_ON_HOST_MAINTENANCE";
    case GceMaintenanceEvent::kTerminateOnHostMaintenance:
      return "TERMINATE_ON_HOST_MAINTENANCE";
  }
  return "UNKNOWN";
}

}  // namespace vs::notice
