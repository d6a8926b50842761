// Replicator: the primary host's half of disk replication: one call runs one round for one VM.
//
// A round (see replica_keeper.h for the shadow host's half and why the replica stays consistent):
//   1. Plan: ask the shadow host where its replica stands (GetReplica) and pick, per disk,
//        FULL        when the shadow host has no replica of it (the seed; zero blocks send no data),
//        INCREMENTAL when the replica is at a checkpoint libvirt still has (only dirty blocks cross),
//        RESYNC      otherwise: QEMU was killed (bitmaps inconsistent), the chain was lost, or the disk
//                    is raw (no persistent bitmaps): only blocks whose digests differ cross.
//   2. Freeze: libvirt pull-mode backup (virDomainBackupBegin) with a new checkpoint "vs-<unix ms>":
//      QEMU exports each disk as it is at that instant over NBD/TCP, plus the dirty bitmap since the
//      base checkpoint. No QMP is used: libvirt has an API for all of this.
//   3. Copy: the shadow host reads the chosen blocks from the export into overlays (ApplyRound).
//   4. Verify: this host reads the same blocks from its export (for a full or incremental disk while the shadow
//      host copies them, on a second thread: the export is frozen) and compares the 64 KiB block digests with
//      those the shadow host read back from its overlays; a mismatch, or other blocks than the export's maps
//      call for, discards the round.
//   5. Commit (FinishRound), end the backup job, record the round here, and delete every older "vs-"
//      checkpoint so that bitmaps do not pile up.
// A failure at any step ends the backup job and leaves the replica at its previous round; the next
// round starts from whatever checkpoint the replica is really at, so a shadowd restart resumes without
// a full copy.
//
// Ownership: borrows everything it is given. Thread-safety: calls for different VMs may run concurrently
// (each on its own export port): a call keeps its state on its stack, touches only its VM's record and
// checkpoints, and what it borrows is thread-safe (the libvirt connection, the peer client, the store, the
// storage's per-call NBD connections). Calls for one VM must not overlap (libvirt allows one backup job per
// domain); the daemon's ReplicationWorker runs at most one piece of work per VM. Failure modes: the returned
// Status names the step and the VM; the failure is also counted in the VM's ReplicationRecord.
#pragma once

#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "proto/replication.pb.h"
#include "shadowd/replication/replica_peer.h"
#include "shadowd/replication/replica_storage.h"
#include "shadowd/replication/replication_target.h"
#include "shadowd/store/store.h"
#include "shadowd/policy/top_path.h"
#include "shadowd/virt/hypervisor.h"

namespace vs::replication {

inline constexpr std::string_view kCheckpointPrefix = "vs-";
// How many applied rounds a ReplicationRecord keeps (status shows them; a seed or resync stays visible).
inline constexpr int kRecentRounds = 16;

struct ReplicatorOptions {
  std::string this_host;
  std::string nbd_address;  // where libvirt's backup exports listen (this host's address on the peers' network)
  bool nbd_tls = false;     // [tls] nbd = mutual: exports served with TLS, read as nbds:// URIs
};

// One disk's part of `virt-shadow verify`.
struct DiskVerification {
  std::string target;
  std::string replica_path;
  uint64_t blocks_compared = 0;
  uint64_t blocks_changed_since = 0;  // written after the checkpoint: not comparable, skipped
  uint64_t blocks_mismatched = 0;
  std::string mismatches;  // byte ranges, DescribeBlocks form
};
struct VerifyReport {
  std::string checkpoint;
  std::vector<DiskVerification> disks;
  bool ok() const;
};

class Replicator {
 public:
  Replicator(virt::Hypervisor& local, ReplicaPeer& peer, ReplicaStorage& storage, store::Store& store, Clock& clock,
             ReplicatorOptions options);

  // Settles what a crash left behind on `domains`: backup jobs of ours still running are ended, and a Nova
  // instance's checkpoints of ours that libvirt still knows (a crash between a round's redefinition and its
  // HideCheckpoints) are hidden again: the revived host's nova-compute undefines the instance evacuated from it,
  // which libvirt refuses while it has one, and then nova-compute exits.
  Status Recover(const std::vector<std::string>& domains);

  // Runs one round, its exports on `export_port` of nbd_address (a port no other round uses meanwhile: each
  // domain's QEMU runs its own NBD server); returns what was applied.
  StatusOr<virtshadow::v1::AppliedRound> RunRound(const ReplicationTarget& target, uint16_t export_port);
  // A switchover's final round, after its snapshot froze the bases: copies the blocks written since the
  // replica's checkpoint from the frozen images into the replica, verified like any round, without a new
  // checkpoint (the replica stays labelled with its checkpoint, still a valid base for later rounds if the
  // switchover is rolled back). FailedPrecondition when a disk would need a full copy (no replica yet).
  StatusOr<virtshadow::v1::AppliedRound> RunFinalRound(const ReplicationTarget& target, uint16_t export_port);
  // Compares the replica with the source as of the last applied checkpoint (blocks written since are
  // skipped and counted), by digests computed on each host: no disk data crosses the network.
  StatusOr<VerifyReport> Verify(const ReplicationTarget& target, uint16_t export_port);

  // The persisted record of a VM (a default one when it has none yet).
  StatusOr<virtshadow::v1::ReplicationRecord> Record(const std::string& vm_uuid) const;
  // Every VM's record.
  StatusOr<std::vector<virtshadow::v1::ReplicationRecord>> ListRecords() const;
  // Forgets a VM that is no longer replicated: deletes its record, and ends its backup job and deletes its "vs-"
  // checkpoints when a domain of its name and UUID still exists here (never another VM's under the same name).
  Status Forget(const std::string& vm_uuid, const std::string& vm_name);

 private:
  struct Disk;
  struct Plan;
  class BackupSession;  // one backup job of ours, ended on every path (replicator.cc)
  // `hides_checkpoints` (may be null) receives whether the VM's checkpoints are hidden from libvirt between rounds
  // (a Nova instance's: docs/nova.md).
  StatusOr<std::vector<Disk>> ReplicatedDisks(const std::string& vm_name, bool* hides_checkpoints = nullptr);
  StatusOr<Plan> MakePlan(const ReplicationTarget& target, const std::vector<Disk>& disks,
                          const virtshadow::v1::ReplicationRecord& record, bool hide_checkpoints);
  // The disks whose images keep dirty bitmaps (qcow2), by target.
  static std::vector<std::string> BitmapTargets(const std::vector<Disk>& disks);
  // Makes libvirt forget every "vs-" checkpoint of the VM; their bitmaps stay in QEMU.
  Status HideCheckpoints(const std::string& vm_name);
  // Removes the bitmaps of the hidden checkpoint the VM's record names.
  Status DiscardHiddenCheckpoint(const std::string& vm_uuid, const std::string& vm_name);
  // Sets *chain_broken when libvirt refused the plan's base checkpoint (a resync with a new chain is due).
  // `started`: when the round began planning (its steps and duration count from there).
  StatusOr<virtshadow::v1::AppliedRound> RunPlannedRound(const ReplicationTarget& target, const Plan& plan,
                                                         uint16_t export_port, MonoTime started, bool* chain_broken);
  // Copy, verify and the shadow host's commit (steps 3 to 5 up to FinishRound) from `backup`'s exports: `round`
  // as planned, filled in with what was applied.
  StatusOr<virtshadow::v1::AppliedRound> CopyRound(const ReplicationTarget& target, const Plan& plan,
                                                   const BackupSession& backup, const virtshadow::v1::AppliedRound& round,
                                                   MonoTime started);
  // Verify's comparison, from `backup`'s exports of the disks as they are now.
  StatusOr<VerifyReport> CompareReplica(const ReplicationTarget& target, const std::vector<Disk>& disks,
                                        const std::string& checkpoint, const BackupSession& backup);
  // Records an applied round (or a failure) in the VM's ReplicationRecord.
  Status RecordOutcome(virtshadow::v1::ReplicationRecord& record, const StatusOr<virtshadow::v1::AppliedRound>& round);
  Status EndOurBackup(const std::string& vm_name);
  Status DeleteCheckpointsExcept(const std::string& vm_name, const std::string& keep);
  Status Save(const virtshadow::v1::ReplicationRecord& record);

  virt::Hypervisor& local_;
  ReplicaPeer& peer_;
  ReplicaStorage& storage_;
  store::Store& store_;
  Clock& clock_;
  const ReplicatorOptions options_;
};

}  // namespace vs::replication
