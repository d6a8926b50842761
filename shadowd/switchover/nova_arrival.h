// NovaArrival: the shadow's files of a Nova instance on a switchover's target, moved out of Nova's way and back.
//
// Nova's pre-live-migration step on the target refuses a target where the instance directory exists
// (DestinationDiskExists, nova/virt/libvirt/driver.py) and then creates it with files of its own: disk.info, the
// kernel and ramdisk, and for each disk of the source a qcow2 over a base image from Glance. The shadow's replicas
// and the switchover's tops live in that very directory (a replica has the primary's path). So the target's
// Prepare moves the directory aside (StashedPathOf), and when the incoming migration begins (libvirt's hook,
// "migrate begin", before QEMU opens any disk) the stashed files replace Nova's files of the same names: QEMU then
// opens the tops over the replicas, and Nova's other files (kernel, ramdisk, disk.info) stay. docs/nova.md.
//
// Thread-safety: stateless functions on the file system; callers serialise per VM. Failure modes: Status naming
// the path and the system's error text; nothing is removed that is not in the stash.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "shadowd/policy/domain_xml.h"

namespace vs::switchover {

// "<instance_dir>.vs-arriving" (a trailing slash of instance_dir ignored).
std::string StashedPathOf(const std::string& instance_dir);

// The one directory all `disk_paths` are directly in; InvalidArgument naming a disk elsewhere (Nova keeps every
// local disk of an instance in its instance directory) or when there is none.
StatusOr<std::string> InstanceDirOf(const std::vector<std::string>& disk_paths);

// Renames instance_dir to its stash. OK when already stashed (instance_dir absent, the stash present).
// FailedPrecondition when both exist (an earlier arrival was not finished: RestoreStash first).
Status StashInstanceDir(const std::string& instance_dir);

// Moves every file of the stash into instance_dir, replacing files of the same names, then removes the stash.
// OK when there is no stash (moved already). FailedPrecondition when instance_dir does not exist (Nova did not
// prepare this host).
Status MoveStashInto(const std::string& instance_dir);

// Undoes StashInstanceDir after a failed or aborted switchover: the stash becomes instance_dir again or, when
// Nova made instance_dir meanwhile, its files are moved into it as MoveStashInto does. OK without a stash.
Status RestoreStash(const std::string& instance_dir);

// The stash of the directory of one of the domain's file-backed disks, if one exists: the libvirt hook's check
// that a migration arriving while shadowd is unreachable is not one whose files shadowd had set aside.
std::optional<std::string> StashOfDisks(const policy::DomainFacts& facts);

// Removes the stash and what it holds (after a fallback migration, whose VM brought its own disks). OK without.
Status DiscardStash(const std::string& instance_dir);

}  // namespace vs::switchover
