// ReplicaKeeper: the shadow host's half of disk replication. A primary's shadowd drives each round
// (replicator.h) and calls these methods through the ShadowPeer RPC service.
//
// A round, and why it is atomic:
//   ApplyRound   - record the round as PHASE_COPYING, put a fresh qcow2 overlay on every replica
//                  (<replica>.vs-round), read the chosen blocks from the primary's point-in-time NBD
//                  export and write them into the overlays, read them back and return their digests;
//                  fsync the overlays' directories (their data is flushed as it is written); then
//                  PHASE_COPIED. The replicas themselves are not touched.
//   FinishRound  - the primary compared those digests with its own: on commit=true the record becomes
//                  PHASE_COMMITTING, `qemu-img commit` writes each overlay into its replica, the round
//                  is recorded as `applied` (PHASE_IDLE, the overlays still named), and only then the
//                  overlays go and the record forgets them; on commit=false the record becomes
//                  PHASE_IDLE first and then the overlays are removed the same way.
// A crash (of either shadowd, of the network, of qemu-nbd) before PHASE_COMMITTING leaves the replicas at
// the previous round, and the overlays are discarded at the next call or at Recover(). A crash during
// the commit is rolled forward: the complete overlays are committed again (the same bytes, so repeating
// it is harmless). The consistent image is therefore always "replica" or, while committing, "replica +
// overlay", never a half-written mix. A PHASE_IDLE record still naming overlays only has leftovers to
// remove. Because an overlay of a PHASE_COMMITTING round is durable (directory fsync before
// PHASE_COPIED) and removed only after PHASE_IDLE is stored, a missing one can only have been committed
// and removed (older versions removed the overlays before storing PHASE_IDLE): it counts as committed.
// A power cut may resurrect a removed overlay; the next round removes it before creating its own.
//
// Safety: a peer may only write into images of a shadow domain defined here for that VM: every request
// goes through `shadow_check` (the shadow exists on this host, is not running, and owns these paths), and
// GetReplica inspects requested paths only when that check passes for them. Only the writer's calls
// (ApplyRound, FinishRound, ReplicaDigests, and Settle for the switchover's check, all of them the VM's
// primary's) settle a pending round: GetReplica reads and changes nothing, so that no reader can discard
// a round the primary copied and is verifying. A replica never shrinks (a smaller source is refused: its
// tail would be lost for good), and no disk or round above kMaxVirtualSize (block_map.h) is accepted.
// The peer service validates each request's syntax and authorises its caller before it gets here
// (shadowd/rpc/peer_guard.h); these checks are the ones that need the VM's state.
//
// Ownership: borrows store, storage and clock (they must outlive it). Thread-safety: all methods may be
// called concurrently (gRPC threads); calls for one VM are serialised by a per-VM mutex, which exists only
// while a call holds or waits for it (so that calls naming ever new UUIDs leave nothing behind). Failure modes:
// kFailedPrecondition when the replica is not at the round's base checkpoint or is missing for a
// non-full round (the primary then plans a resync or a full round), kPermissionDenied-like
// kFailedPrecondition from shadow_check, storage and store errors as they come.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "proto/replication.pb.h"
#include "shadowd/replication/block_map.h"
#include "shadowd/replication/replica_storage.h"
#include "shadowd/store/store.h"

namespace vs::replication {

inline constexpr std::string_view kOverlaySuffix = ".vs-round";

class ReplicaKeeper {
 public:
  using ShadowCheck =
      std::function<Status(const std::string& vm_uuid, const std::vector<std::string>& replica_paths)>;

  ReplicaKeeper(store::Store& store, ReplicaStorage& storage, ShadowCheck shadow_check, Clock& clock);

  // Settles every round a crash left pending (see above). Call once at startup, before serving. A record
  // that cannot be settled (damaged, or a storage error) does not stop the others: they are all tried,
  // and the error (the first failure's code) then names every VM whose record failed, with its reason.
  Status Recover();

  // Reads the record and inspects the images it names (and, for a VM without a record, the requested paths a
  // shadow of the VM here owns, for seed-worthy data): a pending round is reported as it is, not settled. A
  // PHASE_COMMITTING round is finished by the writer's next call, so the replica is at its `pending` round then.
  StatusOr<virtshadow::v1::GetReplicaReply> GetReplica(const virtshadow::v1::GetReplicaRequest& request);
  StatusOr<virtshadow::v1::ApplyRoundReply> ApplyRound(const virtshadow::v1::ApplyRoundRequest& request);
  Status FinishRound(const virtshadow::v1::FinishRoundRequest& request);
  StatusOr<virtshadow::v1::ReplicaDigestsReply> ReplicaDigests(const virtshadow::v1::ReplicaDigestsRequest& request);

  // Whether a domain other than a shadow runs on (or is defined with) any of these images: a VM switched over
  // onto its replicas.
  using ReplicasInUse = std::function<StatusOr<bool>(const std::vector<std::string>& replica_paths)>;

  // Deletes the records of VMs whose shadow was released here: no shadow of the VM is defined, and its replica
  // images are gone (a primary's release deletes them before the definition) or another domain uses them (the
  // VM itself, after a switchover). Kept: records with a round in flight, and records whose shadow definition
  // went but whose replicas are still here and unused (undefined by hand, or a release cut short): those
  // replicas are the VM's last consistent copy, which a fallback migration or a promotion may still need.
  // Returns how many went.
  StatusOr<int> ForgetReleased(const ReplicasInUse& replicas_in_use);

  // A crash promotion of the VM (shadowd/failover): settles its pending round as Recover() would (COPYING and
  // COPIED discarded, COMMITTING rolled forward), marks the record `promoted` so that no round is accepted for
  // the VM any more (ApplyRound refuses it), and returns the settled record: its `applied` round is what the
  // replicas hold. Idempotent (a promotion resumed after a crash calls it again). Serialised with the VM's
  // rounds by the VM's mutex, so a round in flight either ends before (and counts, if committed) or is refused.
  // kNotFound when no replica record of the VM is here; kFailedPrecondition when it never applied a round (the
  // replicas hold no consistent copy); storage and store errors as they come.
  StatusOr<virtshadow::v1::ReplicaRecord> SettleForPromotion(const std::string& vm_uuid);

  // The VM's primary acts on its replica (the switchover's check): settles the round a crash or a lost primary
  // left pending, as Recover() does. OK when no record of the VM is here.
  Status Settle(const std::string& vm_uuid);

  // The VM's record, nullopt when none is kept here (read only, as GetReplica).
  StatusOr<std::optional<virtshadow::v1::ReplicaRecord>> RecordOf(const std::string& vm_uuid) const;

  // How many VMs have a mutex entry now: only those with a call in progress.
  size_t LockEntries() const VS_EXCLUDES(locks_mutex_);

  // Every replica record (for status and metrics).
  StatusOr<std::vector<virtshadow::v1::ReplicaRecord>> List() const;

 private:
  // The VM's mutex, held for the scope of a VmLock. It guards the VM's record in the store and its image files,
  // not a member, so the helpers below that need it held (Load to Save, Settle, the round's steps) cannot say
  // so to the analysis. The entry is created by the first VmLock of the VM and erased by the last.
  struct VmMutex {
    Mutex mutex;
    int users = 0;  // VmLocks holding or waiting for `mutex`; read and written under locks_mutex_
  };
  // Holds the VM's mutex for its scope. Not a capability the analysis follows (see above): its constructor and
  // destructor only pair Acquire and Release around the VM's mutex.
  class VmLock {
   public:
    VmLock(ReplicaKeeper& keeper, const std::string& vm_uuid) VS_NO_THREAD_SAFETY_ANALYSIS;
    ~VmLock() VS_NO_THREAD_SAFETY_ANALYSIS;
    VmLock(const VmLock&) = delete;
    VmLock& operator=(const VmLock&) = delete;

   private:
    ReplicaKeeper& keeper_;
    const std::string vm_uuid_;
    VmMutex& entry_;
  };
  // The VM's entry, created if needed, with one more user; Release drops the user and the entry with the last.
  VmMutex& Acquire(const std::string& vm_uuid) VS_EXCLUDES(locks_mutex_);
  void Release(const std::string& vm_uuid) VS_EXCLUDES(locks_mutex_);
  StatusOr<virtshadow::v1::ReplicaRecord> Load(const std::string& vm_uuid) const;
  Status Save(const virtshadow::v1::ReplicaRecord& record);
  // For ForgetReleased: whether the record's replicas are gone or somebody else's now. Needs the VM's mutex.
  StatusOr<bool> Released(const virtshadow::v1::ReplicaRecord& record, const ReplicasInUse& replicas_in_use);
  // Commits (PHASE_COMMITTING) or discards (COPYING, COPIED) a pending round; IDLE only loses the
  // overlays a crash left behind.
  Status Settle(virtshadow::v1::ReplicaRecord& record);
  // Commits the overlays that still exist (see above), then EndRound with `pending` as `applied`.
  Status CommitOverlays(virtshadow::v1::ReplicaRecord& record);
  // Stores PHASE_IDLE without `pending`, then RemoveOverlays.
  Status EndRound(virtshadow::v1::ReplicaRecord& record);
  // Removes the overlays the record names and, when there were any, stores it without them.
  Status RemoveOverlays(virtshadow::v1::ReplicaRecord& record);
  StatusOr<virtshadow::v1::DiskRoundResult> CopyDisk(const virtshadow::v1::DiskRound& disk,
                                                      const std::string& overlay_path, BlockDigestKind digest_kind);

  store::Store& store_;
  ReplicaStorage& storage_;
  const ShadowCheck shadow_check_;
  Clock& clock_;
  mutable Mutex locks_mutex_;
  std::map<std::string, std::unique_ptr<VmMutex>> vm_locks_ VS_GUARDED_BY(locks_mutex_);
};

// "checkpoint/replica:<uuid>" and "checkpoint/primary:<uuid>": the two sides' record keys.
std::string ReplicaRecordKey(const std::string& vm_uuid);
std::string PrimaryRecordKey(const std::string& vm_uuid);
inline constexpr std::string_view kDirtyContextPrefix = "qemu:dirty-bitmap:backup-";
inline constexpr std::string_view kAllocationContext = "base:allocation";

}  // namespace vs::replication
