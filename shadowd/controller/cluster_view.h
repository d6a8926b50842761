// ClusterView: what the protection controller knows about the other hosts when it places a shadow:
// each host's capacity and usage, and the shadow domains defined anywhere (including other hosts'
// shadowd's). The production implementation refreshes both periodically from every host's libvirtd
// (node info, running domains, PeerOps::ListShadows) and serves the last snapshot; tests use a fake.
//
// Reservations. A shadow is defined, not running, so it uses nothing yet, but the capacity it would
// need at switchover is reserved on its host. The controller computes every host's reservations
// itself (Host::reserved_* from ClusterView are added to, so leave them 0):
//   - each shadow assignment in one of this host's VmRecords, at the record's shadow size (placed
//     or being placed: counted from the moment the placement is recorded, before it is defined);
//   - each shadow domain in Shadows() that is not one of those assignments (another host's shadowd's
//     shadows, orphans not yet swept), at the size its domain XML gives.
//
// The race, and its bound. Each shadowd only sees other hosts' shadows once they are defined and the
// view has been refreshed. Two shadowds placing at the same moment on the same target can therefore
// both count the same free capacity and over-reserve that host. The window is one refresh interval
// plus the duration of a define; within it at most one shadow per concurrently placing peer lands on
// the host uncounted. Nothing runs in the over-reserved capacity (shadows are not started), so the
// cost only shows if all of them switch over at once. There is no distributed lock: placement stays
// local and cheap, and a later placement (new VM, policy change) sees the full picture.
//
// Ownership: borrowed by the controller, must outlive it. Thread-safety: called from the controller's
// thread only. Failure modes: an error (e.g. kUnavailable while no snapshot exists yet) makes the
// placement fail with that reason; it is retried with backoff.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "scheduler/placement.h"
#include "shadowd/controller/peer_ops.h"

namespace vs::controller {

class ClusterView {
 public:
  virtual ~ClusterView() = default;
  // Every host of the cluster, THIS host included (the scheduler needs the primary's zone); used_*
  // from running domains; reserved_* left 0 (see above). A host that cannot be reached is up=false.
  virtual StatusOr<std::vector<scheduler::Host>> Hosts() = 0;
  // The shadow domains defined on all hosts, as last listed.
  virtual StatusOr<std::vector<PeerShadow>> Shadows() = 0;
  // The hosts where a domain with this UUID that is not a shadow was defined, as last listed: the host a
  // VM is still leaving (a migration's source keeps the domain until the migration ends), or a stale
  // definition. A shadow there would collide with the VM's own image at the same path.
  virtual StatusOr<std::vector<std::string>> HostsDefining(const std::string& vm_uuid) = 0;
};

}  // namespace vs::controller
