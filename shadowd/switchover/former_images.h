// FormerImages: the image a VM leaves on the host it came from. A switchover moves the VM, not its image: the
// origin host keeps the VM's disks at their usual paths, a whole disk of data that is stale from the moment the
// VM runs here. It is worth keeping for the grace period (a failback resyncs from it by digests instead of
// copying the disk); after that it is removed, unless the VM's shadow is on that host or a failback asked for it
// there: then the image is (or is about to be adopted as) the shadow's replica and lives as long as the shadow.
// A promoted VM's origin keeps its stale copy's image: a failback adopts it (docs/failover.md).
//
// Decided by the VM's new host, because only its controller places the VM's shadow: the decision and a placement
// that would adopt the image both run on the daemon's loop thread, one after the other, so no placement can
// adopt an image while it is being removed. On the origin host the image is removed through its libvirtd only
// when no domain there (shadow or not) uses the path.
//
// Thread-safety: loop thread only (the controller and the cluster are). Failure modes: an origin that is down
// (or draining) is skipped until it is back; an image another domain there uses is kept and the record says so;
// any other failure is logged and tried again at the next pass. Nothing is ever removed before the grace period
// has passed since the arrival.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/status.h"
#include "proto/switchover.pb.h"
#include "shadowd/controller/controller.h"
#include "shadowd/cluster/libvirt_cluster.h"
#include "shadowd/switchover/arrival_records.h"

namespace vs::switchover {

// What to do with the image an origin host kept, from what is known on the VM's new host. Pure.
struct FormerImageVerdict {
  enum class Action {
    kWait,    // the grace period is running, or the VM is still on the tops of its arrival
    kKeep,    // the image is (or will be) the replica of the VM's shadow on that host: settled, not removed
    kLeave,   // the VM no longer runs here: whoever holds it now decides; settled, not removed
    kRemove,  // remove it, then settle
  };
  Action action = Action::kWait;
  std::string outcome;  // what the settled record says (kKeep, kLeave)
};
// `defined_here`: a domain with the VM's UUID is defined on this host; `view`: its protection record, if any;
// `on_tops`: the VM still runs on a switchover's tops (its arrival is not completed).
FormerImageVerdict JudgeFormerImage(const virtshadow::v1::OriginRecord& origin, bool defined_here, bool on_tops,
                                    const std::optional<controller::VmStatusView>& view, WallTime now,
                                    Duration grace);

// One pass over every unsettled origin record: removes the images whose grace period is over.
void SettleFormerImages(ArrivalRecords& arrivals, controller::ProtectionController& controller,
                        cluster::LibvirtCluster& cluster, Duration grace, const Clock& clock,
                        const std::function<void(const std::string&)>& log);

}  // namespace vs::switchover
