// SwitchoverTarget: the shadow host's half of a live switchover, behind the peer calls CheckSwitchover,
// PrepareSwitchover, CompleteSwitchover, AbortSwitchover and HostState (PeerService forwards them here).
//
//   Check     health of the shadow as the VM's primary sees it before it commits to the switchover: the
//             shadow domain is defined and shut off (its capacity is still reserved), the replica is
//             settled (no round pending) and names its checkpoint, userfaultfd is open to QEMU (postcopy),
//             this host is not draining itself, and its memory fits the VM's full size.
//   Prepare   creates "<replica>.vs-top-<tag>" over each replica (qemu-img), the file the migration's
//             storage mirror writes into; a stale top no domain's chain contains is replaced.
//   Complete  after the migration: remembers where the VM came from (OriginRecord, for failback),
//             undefines the shadow domain (its images are now the VM's), holds this host's rounds of the
//             VM and flattens each top into its replica (active block commit + pivot, retried while
//             something still holds the disk), so that the VM runs on the image at its usual path. It
//             fails, and is asked again, while the VM still runs on a top. Then virt-shadow's bitmaps
//             that this host's libvirt has no checkpoint for (earlier hosts': checkpoint metadata does
//             not migrate, the bitmaps do) are removed from the images, or they would pile up hop by
//             hop; a bitmap that cannot be removed is logged and does not fail the completion.
//             With guest_failed set (the guest showed no progress here after the move) nothing is
//             changed: the VM is remembered as failed after switchover (GuestFailureOf).
//             With fallback set (the health check failed; a plain --copy-storage-all migration onto the
//             replicas comes next) no top is made: virt-shadow's bitmaps are removed from the VM's replica
//             images instead. The migration brings the VM's bitmaps along, and the destination QEMU refuses the
//             whole migration when the image already has a bitmap of the same name (seen in the lab: a replica
//             that had been the VM's image here before kept the checkpoint bitmaps of that time).
//   Abort     deletes the tops no domain uses.
//   Nova      for a Nova instance (nova_instance_dir set, docs/nova.md) Prepare also sets the instance directory
//             aside, as Nova's live migration refuses a target where it exists; OnIncomingMigration (the libvirt
//             hook's "migrate begin" on this host, before QEMU opens a disk) moves the replicas and tops back into
//             the directory Nova made, in place of Nova's files; Abort restores it (nova_arrival.h).
//   CompleteLeftBehind  the source left the cluster after its migration ended (the VM runs here on its tops)
//             and will never call Complete: this host completes the switchover itself, as Complete would with
//             what Prepare kept (the VM's name, its tops, the source's checkpoints). Only a VM that runs here
//             is completed: one that does not (the migration never ended) is its shadow's promotion's case.
// Prepare records the switchover (ArrivalRecords' prepared record: the VM's primary, the tops) before it
// creates anything; Complete and Abort act only on a switchover prepared here and only on the tops it names,
// and Complete only on the domain that runs here with the VM's UUID. They forget it once done. Abort without a prepared switchover succeeds and touches nothing. The
// check settles the VM's pending round (ReplicaKeeper::Settle): it is the VM's primary acting, the writer.
// Only paths of this VM's shadow domain are touched (CheckShadowOwnsReplicas), so a peer cannot make this
// host create or delete other files; the fallback, whose shadow may be gone (often why the check failed),
// touches only the replica images this host keeps for the VM (its ReplicaRecord) that no domain uses (the VM's
// own shadow counts only while it runs: shut off, its disks are just these replicas).
//
// What the target remembers of arrived VMs (origin, failed guest) is in ArrivalRecords.
//
// Images are touched through nbd::ImageTool (production: nbd::QemuImg), so that the unit tests script them.
// Whether QEMU may use postcopy here is read from /proc/sys/vm/unprivileged_userfaultfd unless a test hands
// in its own answer.
//
// Ownership: borrows everything. Thread-safety: calls may come concurrently from gRPC threads; libvirt
// and the store are thread-safe, and calls for one VM come from its primary one at a time. Failure
// modes: Status naming the step, the VM and the path.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "common/clock.h"
#include "proto/switchover.pb.h"
#include "shadowd/switchover/arrival_records.h"
#include "shadowd/switchover/drain_state.h"
#include "shadowd/nbd/image_tool.h"
#include "shadowd/replication/replica_keeper.h"
#include "shadowd/replication/round_scheduler.h"
#include "shadowd/virt/hypervisor.h"

namespace vs::switchover {

class SwitchoverTarget {
 public:
  // `postcopy_ready` empty: read vm.unprivileged_userfaultfd.
  SwitchoverTarget(virt::Hypervisor& local, replication::ReplicaKeeper& keeper, ArrivalRecords& arrivals,
                   DrainState& drain, replication::RoundScheduler& rounds, const nbd::ImageTool& images,
                   std::string this_host, Clock& clock, std::function<void(const std::string&)> log,
                   std::function<bool()> postcopy_ready = {});

  StatusOr<virtshadow::v1::CheckSwitchoverReply> Check(const virtshadow::v1::CheckSwitchoverRequest& request);
  Status Prepare(const virtshadow::v1::PrepareSwitchoverRequest& request);
  Status Complete(const virtshadow::v1::CompleteSwitchoverRequest& request);
  Status Abort(const virtshadow::v1::AbortSwitchoverRequest& request);
  // Completes the unfinished switchovers prepared here by `gone_host`, whose VM runs here; returns how many.
  StatusOr<int> CompleteLeftBehind(const std::string& gone_host);
  // An incoming migration of VM `vm_uuid` begins here (libvirt hook "migrate begin"): a Nova switchover prepared
  // here gets its files back in place. OK when nothing was prepared for it. An error refuses the migration.
  Status OnIncomingMigration(const std::string& vm_uuid);
  virtshadow::v1::HostStateReply HostState() const;

 private:
  void DiscardForeignBitmaps(const virtshadow::v1::CompleteSwitchoverRequest& request);
  Status PrepareFallback(const virtshadow::v1::PrepareSwitchoverRequest& request);
  // InvalidArgument unless every disk of the request is directly in its nova_instance_dir.
  Status CheckNovaInstanceDir(const virtshadow::v1::PrepareSwitchoverRequest& request) const;
  // Sets `instance_dir` aside for Nova's live migration; nothing when it is empty.
  Status StashForNova(const std::string& instance_dir);
  // The VM's prepared switchover, if it names every one of `disks`: FailedPrecondition when none was prepared,
  // FailedPrecondition naming a disk it does not name.
  StatusOr<virtshadow::v1::SwitchoverRecord> PreparedFor(
      const std::string& vm_uuid, const google::protobuf::RepeatedPtrField<virtshadow::v1::SwitchoverDisk>& disks) const;
  // FailedPrecondition unless the domain `vm_name` here is VM `vm_uuid` (the one that arrived).
  Status CheckRunsHere(const std::string& vm_uuid, const std::string& vm_name);
  // Deletes `path` unless a domain's disk chain here contains it.
  Status DeleteUnlessUsed(const std::string& path);

  virt::Hypervisor& local_;
  replication::ReplicaKeeper& keeper_;
  ArrivalRecords& arrivals_;
  DrainState& drain_;
  replication::RoundScheduler& rounds_;
  const std::string this_host_;
  Clock& clock_;
  const std::function<void(const std::string&)> log_;
  const nbd::ImageTool& images_;
  const std::function<bool()> postcopy_ready_;
};

}  // namespace vs::switchover
