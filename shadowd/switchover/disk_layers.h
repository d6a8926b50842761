// What a switchover needs to know and do about a domain's disk layers, over virt::Hypervisor:
//
//   DomainUsingPath  the domain (if any) whose disk chain contains a file: as its active layer or as any
//                    backing file. The one definition of "this path is in use": a switchover never creates,
//                    replaces or deletes a file that some domain's chain contains.
//   DisksOnTops      the disks of a domain that run on a switchover top (top_path.h) instead of their image.
//   FlattenTops      commits every such top into its image and pivots (active block commit). What can hold
//                    a disk meanwhile: an incoming migration's storage job that libvirt has not let go of yet,
//                    a replication round's backup job. The caller stops new rounds first (the worker's Hold
//                    and Quiesce); the flatten then retries every 500 ms until `give_up`, so a job that is
//                    ending is waited out, and reports what still held the disk if it never got free. A
//                    commit counts only once the domain's XML no longer names the top (a job can end
//                    without its pivot taking).
//
// Ownership: borrows the hypervisor and the clock. Thread-safety: as the hypervisor (its methods are
// thread-safe). Failure modes: the hypervisor's errors, annotated with the disk and the path.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "shadowd/virt/hypervisor.h"

namespace vs::switchover {

StatusOr<std::optional<std::string>> DomainUsingPath(virt::Hypervisor& hypervisor, const std::string& path);

struct DiskOnTop {
  std::string target;     // "vda"
  std::string top_path;   // the active layer
  std::string base_path;  // the image it stands for
};
StatusOr<std::vector<DiskOnTop>> DisksOnTops(virt::Hypervisor& hypervisor, const std::string& domain);

// Flattens every disk of `domain` that runs on a top; OK when none does. The top files stay (the caller
// deletes them once no chain contains them).
Status FlattenTops(virt::Hypervisor& hypervisor, const std::string& domain, Clock& clock, Duration give_up);

}  // namespace vs::switchover
