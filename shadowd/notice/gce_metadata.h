// The two GCE metadata answers that announce the loss of this host, parsed (pure):
//
//   GET {base}/computeMetadata/v1/instance/preempted          -> "TRUE" | "FALSE"
//   GET {base}/computeMetadata/v1/instance/maintenance-event  -> "NONE" | "MIGRATE_ON_HOST_MAINTENANCE"
//                                                                | "TERMINATE_ON_HOST_MAINTENANCE"
//
// Both are requested with "Metadata-Flavor: Google" and the server answers with the same header;
// CheckGceResponse insists on it, so that something else listening at the address (a proxy, a
// captive portal) is not taken for the metadata server. A trailing newline is tolerated.
// Ownership and thread-safety: pure functions of values. Failure modes: InvalidArgument quoting the unexpected text and
// listing the values expected; for a status other than 200, UnexpectedHttpStatus (parse_util.h).
#pragma once

#include <string_view>

#include "common/status.h"
#include "shadowd/notice/http_client.h"

namespace vs::notice {

enum class GceMaintenanceEvent { kNone, kMigrateOnHostMaintenance, kTerminateOnHostMaintenance };

// OK for a 200 carrying "Metadata-Flavor: Google". `what` names the request in errors.
Status CheckGceResponse(const HttpResponse& response, std::string_view what);

// True when the instance has been preempted.
StatusOr<bool> ParseGcePreempted(std::string_view body);

StatusOr<GceMaintenanceEvent> ParseGceMaintenanceEvent(std::string_view body);

// The metadata server's spelling: "NONE", "MIGRATE_ON_HOST_MAINTENANCE", ...
std::string_view GceMaintenanceEventName(GceMaintenanceEvent event);

}  // namespace vs::notice
