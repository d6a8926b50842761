// LibvirtSwitchoverSteps: the production SwitchoverSteps (shadowd/switchover/switchover_runner.h) on the
// VM's current host: libvirt here, the peer service on the target (switchover_target.h), the replication
// worker for the final round. The sequence is the one verified on this platform (docs/switchover.md):
//
//   Check      the target's findings (CheckSwitchover) plus the replica's checkpoint and round digest
//              compared with this host's ReplicationRecord ("the replica is where we think, and it
//              verified"); holds the VM's scheduled rounds and waits for a running one to end.
//   Prepare    "<image>.vs-top-<tag>" over each replica on the target (top_path.h: new files every time).
//   Snapshot   disk-only, atomic, external snapshot of every disk onto "<image>.vs-top-<tag>" here (no metadata):
//              the images beneath are frozen from this instant.
//   FinalRound the frozen images' changes since the replica's checkpoint, into the replicas (verified).
//   Migrate    virDomainMigrateToURI3 --live --p2p --persistent --undefinesource --postcopy with
//              --copy-storage-inc: only the tops' blocks cross with the memory; the postcopy switch comes
//              after the planned precopy hold (record.precopy_planned_ms), or at once when the deadline
//              draws near. The fallback uses --copy-storage-all onto the replica images instead, after the
//              target removed virt-shadow's bitmaps from them (PrepareSwitchover with fallback). A warm-up
//              (record.warm) runs capped at [switchover] warmup_bandwidth_mibs and switches only once the
//              WarmUpGate releases the VM (or the deadline draws near).
//   VerifyGuest the guest must show progress on the target (switchover/guest_check.h), judged against what
//              it showed here: a sample at the start of Check and one after Prepare (kept in the record, so
//              that a restarted shadowd judges as the one that saw them would have). A dead guest's target
//              is told (CompleteSwitchover with guest_failed) so that it keeps the VM as it is.
//   Complete   the target undefines the used shadow and flattens the tops; here the local tops go, the
//              replication record is forgotten and the controller ends the VM's record (`on_switched`).
//   RollBack   the tops are committed back into the images here (the VM keeps running on them), the
//              target's tops are deleted, rounds resume.
//   RecoverMigrationFigures (after a restart mid-migration) the job-completed event of the migration still
//              running here, awaited after asking libvirt for the postcopy switch; or, once the VM runs on the target, the target's completed-job
//              statistics of the incoming migration (libvirt 9.0 keeps them only for a precopy completion).
//
// Ownership: borrows everything. Thread-safety: the runner's contract (switchover_runner.h): steps of
// different VMs may run at once (the coordinator's thread and warm-up threads), one thread per VM; the
// per-VM state and the target connections are behind mutexes.
// Failure modes: Status naming the step and the host; see switchover_runner.h for what follows.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "common/thread_annotations.h"
#include "shadowd/cluster/cluster_hosts.h"
#include "shadowd/replication/round_scheduler.h"
#include "shadowd/switchover/guest_check.h"
#include "shadowd/switchover/settings.h"
#include "shadowd/switchover/switchover_peer.h"
#include "shadowd/switchover/nova_mover.h"
#include "shadowd/switchover/switchover_runner.h"
#include "shadowd/switchover/warm_up_gate.h"
#include "shadowd/virt/hypervisor.h"

namespace vs::switchover {

class LibvirtSwitchoverSteps final : public SwitchoverSteps {
 public:
  using SwitchedCallback = std::function<void(const std::string& vm_uuid, const std::string& host)>;

  LibvirtSwitchoverSteps(cluster::ClusterHosts hosts, Settings settings, virt::LibvirtRuntime& runtime,
                         virt::Hypervisor& local, SwitchoverPeer& peer, replication::RoundScheduler& rounds,
                         WarmUpGate& warm_up, Clock& clock, SwitchedCallback on_switched,
                         NovaMover* nova = nullptr);

  StatusOr<CheckFindings> Check(SwitchoverRecord& record) override;
  Status Prepare(SwitchoverRecord& record) override;
  Status Snapshot(const SwitchoverRecord& record) override;
  StatusOr<uint64_t> FinalRound(const SwitchoverRecord& record) override;
  StatusOr<MigrationFigures> Migrate(SwitchoverRecord& record, bool copy_storage_all) override;
  StatusOr<GuestSeen> VerifyGuest(const SwitchoverRecord& record) override;
  Status Complete(const SwitchoverRecord& record) override;
  Status RollBack(const SwitchoverRecord& record) override;
  StatusOr<VmLocation> Locate(const SwitchoverRecord& record) override;
  StatusOr<std::optional<MigrationFigures>> RecoverMigrationFigures(
      const SwitchoverRecord& record, VmLocation location, Duration wait) override;

 private:
  StatusOr<virt::Hypervisor*> TargetConn(const std::string& host);
  // Migrate for a Nova instance: Nova's live migration (nova_mover.h).
  StatusOr<MigrationFigures> MigrateThroughNova(const SwitchoverRecord& record);
  // Turns the first sample of the guest here into the observation VerifyGuest judges against (once), kept in
  // the record's source_observation.
  void ObserveGuestHere(SwitchoverRecord& record);

  const cluster::ClusterHosts hosts_;
  const Settings settings_;
  virt::LibvirtRuntime& runtime_;
  virt::Hypervisor& local_;
  SwitchoverPeer& peer_;
  NovaMover* const nova_;  // nullptr: Nova is not configured, Nova instances move like any VM
  replication::RoundScheduler& rounds_;
  WarmUpGate& warm_up_;
  Clock& clock_;
  const SwitchedCallback on_switched_;
  Mutex targets_mutex_;
  std::map<std::string, std::unique_ptr<virt::Hypervisor>> targets_ VS_GUARDED_BY(targets_mutex_);
  // The first sample of the guest here (Check), by VM uuid, until Prepare turns it into the record's
  // observation. A mutex, because warm-ups run their steps on their own threads (each its own VM).
  struct FirstSample {
    virt::GuestActivity activity;
    MonoTime at;
  };
  Mutex samples_mutex_;
  std::map<std::string, FirstSample> first_samples_ VS_GUARDED_BY(samples_mutex_);
};

}  // namespace vs::switchover
