// ReplicaKeeper: the shadow host's half of disk replication. A primary's shadowd drives each round
// (replicator.h) and calls these methods through the ShadowPeer RPC service.
//
// A round, and why it is atomic:
//   ApplyRound   - record the round as PHASE_COPYING, put a fresh qcow2 overlay on every replica
//                  (<replica>.vs-round), read the chosen blocks from the primary's point-in-time NBD
//                  export and write them into the overlays, read them back and return their digests;
//                  then PHASE_COPIED. The replicas themselves are not touched.
//   FinishRound  - the primary compared those digests with its own: on commit=true the record becomes
//                  PHASE_COMMITTING, `qemu-img commit` writes each overlay into its replica, the overlays
//                  go, and the round becomes `applied`; on commit=false the overlays are discarded.
// A crash (of either shadowd, of the network, of qemu-nbd) before PHASE_COMMITTING leaves the replicas at
// the previous round, and the overlays are discarded at the next call or at Recover(). A crash during
// the commit is rolled forward: the complete overlays are committed again (the same bytes, so repeating
// it is harmless). The consistent image is therefore always "replica" or, while committing, "replica +
// overlay", never a half-written mix.
//
// Safety: a peer may only write into images of a shadow domain defined here for that VM: every request
// goes through `shadow_check` (the shadow exists on this host, is not running, and owns these paths).
//
// Ownership: borrows store, storage and clock (they must outlive it). Thread-safety: all methods may be
// called concurrently (gRPC threads); calls for one VM are serialised by a per-VM mutex. Failure modes:
// kFailedPrecondition when the replica is not at the round's base checkpoint or is missing for a
// non-full round (the primary then plans a resync or a full round), kPermissionDenied-like
// kFailedPrecondition from shadow_check, storage and store errors as they come.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "proto/replication.pb.h"
#include "shadowd/replication/replica_storage.h"
#include "shadowd/store/store.h"

namespace vs::replication {

inline constexpr std::string_view kOverlaySuffix = ".vs-round";

class ReplicaKeeper {
 public:
  using ShadowCheck =
      std::function<Status(const std::string& vm_uuid, const std::vector<std::string>& replica_paths)>;

  ReplicaKeeper(store::Store& store, ReplicaStorage& storage, ShadowCheck shadow_check, Clock& clock);

  // Settles every round a crash left pending (see above). Call once at startup, before serving.
  Status Recover();

  StatusOr<virtshadow::v1::GetReplicaReply> GetReplica(const virtshadow::v1::GetReplicaRequest& request);
  StatusOr<virtshadow::v1::ApplyRoundReply> ApplyRound(const virtshadow::v1::ApplyRoundRequest& request);
  Status FinishRound(const virtshadow::v1::FinishRoundRequest& request);
  StatusOr<virtshadow::v1::ReplicaDigestsReply> ReplicaDigests(const virtshadow::v1::ReplicaDigestsRequest& request);

  // Deletes the records of VMs whose shadow is no longer defined here (released by its primary); records with
  // a round in flight are kept. Returns how many went.
  StatusOr<int> ForgetReleased();

  // Every replica record (for status and metrics).
  StatusOr<std::vector<virtshadow::v1::ReplicaRecord>> List() const;

 private:
  std::mutex& LockFor(const std::string& vm_uuid);
  StatusOr<virtshadow::v1::ReplicaRecord> Load(const std::string& vm_uuid) const;
  Status Save(const virtshadow::v1::ReplicaRecord& record);
  // Commits (PHASE_COMMITTING) or discards (COPYING, COPIED) a pending round; IDLE stays as it is.
  Status Settle(virtshadow::v1::ReplicaRecord& record);
  Status DiscardOverlays(virtshadow::v1::ReplicaRecord& record);
  StatusOr<virtshadow::v1::DiskRoundResult> CopyDisk(const virtshadow::v1::DiskRound& disk,
                                                     const std::string& overlay_path);

  store::Store& store_;
  ReplicaStorage& storage_;
  const ShadowCheck shadow_check_;
  Clock& clock_;
  std::mutex locks_mutex_;
  std::map<std::string, std::unique_ptr<std::mutex>> vm_locks_;
};

// "checkpoint/replica:<uuid>" and "checkpoint/primary:<uuid>": the two sides' record keys.
std::string ReplicaRecordKey(const std::string& vm_uuid);
std::string PrimaryRecordKey(const std::string& vm_uuid);
inline constexpr std::string_view kDirtyContextPrefix = "qemu:dirty-bitmap:backup-";
inline constexpr std::string_view kAllocationContext = "base:allocation";

}  // namespace vs::replication
