#include "shadowd/replication/replica_keeper.h"

#include <filesystem>
#include <optional>
#include <set>

#include "shadowd/replication/block_map.h"

namespace vs::replication {

using virtshadow::v1::ApplyRoundReply;
using virtshadow::v1::ApplyRoundRequest;
using virtshadow::v1::DiskRound;
using virtshadow::v1::DiskRoundResult;
using virtshadow::v1::FinishRoundRequest;
using virtshadow::v1::GetReplicaReply;
using virtshadow::v1::GetReplicaRequest;
using virtshadow::v1::ReplicaDigestsReply;
using virtshadow::v1::ReplicaDigestsRequest;
using virtshadow::v1::ReplicaRecord;

std::string ReplicaRecordKey(const std::string& vm_uuid) {
  return store::Key(store::Table::kCheckpoint, "replica:" + vm_uuid);
}
std::string PrimaryRecordKey(const std::string& vm_uuid) {
  return store::Key(store::Table::kCheckpoint, "primary:" + vm_uuid);
}

ReplicaKeeper::ReplicaKeeper(store::Store& store, ReplicaStorage& storage, ShadowCheck shadow_check, Clock& clock)
    : store_(store), storage_(storage), shadow_check_(std::move(shadow_check)), clock_(clock) {}

ReplicaKeeper::VmMutex& ReplicaKeeper::Acquire(const std::string& vm_uuid) {
  MutexLock lock(locks_mutex_);
  auto& slot = vm_locks_[vm_uuid];
  if (!slot) slot = std::make_unique<VmMutex>();
  ++slot->users;
  return *slot;
}

void ReplicaKeeper::Release(const std::string& vm_uuid) {
  MutexLock lock(locks_mutex_);
  auto entry = vm_locks_.find(vm_uuid);
  if (--entry->second->users == 0) vm_locks_.erase(entry);
}

size_t ReplicaKeeper::LockEntries() const {
  MutexLock lock(locks_mutex_);
  return vm_locks_.size();
}

// The VM's mutex is taken after the entry is counted and released before it is uncounted, so that the last
// user erases an entry nobody holds or waits for.
ReplicaKeeper::VmLock::VmLock(ReplicaKeeper& keeper, const std::string& vm_uuid)
    : keeper_(keeper), vm_uuid_(vm_uuid), entry_(keeper.Acquire(vm_uuid)) {
  entry_.mutex.lock();
}

ReplicaKeeper::VmLock::~VmLock() {
  entry_.mutex.unlock();
  keeper_.Release(vm_uuid_);
}

StatusOr<ReplicaRecord> ReplicaKeeper::Load(const std::string& vm_uuid) const {
  VS_ASSIGN_OR_RETURN(auto stored, store::GetProto<ReplicaRecord>(store_, ReplicaRecordKey(vm_uuid)));
  if (stored) return *stored;
  ReplicaRecord fresh;
  fresh.set_vm_uuid(vm_uuid);
  return fresh;
}

Status ReplicaKeeper::Save(const ReplicaRecord& record) {
  store::WriteBatch batch;
  batch.PutProto(ReplicaRecordKey(record.vm_uuid()), record);
  return store_.Write(batch);
}

Status ReplicaKeeper::RemoveOverlays(ReplicaRecord& record) {
  bool any = false;
  for (auto& disk : *record.mutable_disks()) {
    if (disk.overlay_path().empty()) continue;
    VS_RETURN_IF_ERROR(storage_.Remove(disk.overlay_path()));
    disk.clear_overlay_path();
    any = true;
  }
  // Only tidies the record: an overlay it still names would merely be removed again.
  return any ? Save(record) : Status::Ok();
}

Status ReplicaKeeper::EndRound(ReplicaRecord& record) {
  // The round's outcome is recorded before any overlay goes, so that no crash can leave a record
  // that still waits for an overlay which is already gone.
  record.set_phase(ReplicaRecord::PHASE_IDLE);
  record.clear_pending();
  VS_RETURN_IF_ERROR(Save(record));
  return RemoveOverlays(record);
}

Status ReplicaKeeper::CommitOverlays(ReplicaRecord& record) {
  for (auto& disk : *record.mutable_disks()) {
    if (disk.overlay_path().empty()) continue;
    VS_ASSIGN_OR_RETURN(std::optional<ImageState> overlay, storage_.Inspect(disk.overlay_path()));
    // Overlays exist durably from PHASE_COPIED on (their directory is synced before) and are removed
    // only after the round is recorded as applied, except by older versions, which removed them
    // after committing every one and before recording it: a missing overlay was committed.
    if (!overlay) continue;
    VS_RETURN_IF_ERROR(storage_.Commit(disk.overlay_path()));
  }
  *record.mutable_applied() = record.pending();
  record.mutable_applied()->set_applied_unix_ms(ToUnixMillis(clock_.WallNow()));
  return EndRound(record);
}

Status ReplicaKeeper::Settle(ReplicaRecord& record) {
  switch (record.phase()) {
    case ReplicaRecord::PHASE_IDLE:
      return RemoveOverlays(record);  // left by a crash after the round ended
    case ReplicaRecord::PHASE_COPYING:
    case ReplicaRecord::PHASE_COPIED:
      return EndRound(record);  // discarded: the replicas were not touched
    case ReplicaRecord::PHASE_COMMITTING:
      return CommitOverlays(record);
    default:
      return DataLoss("replica record of " + record.vm_uuid() + " has unknown phase " +
                      std::to_string(record.phase()));
  }
}

Status ReplicaKeeper::Recover() {
  // Keys, not records: a damaged record must not keep the others from being settled.
  const std::string prefix = ReplicaRecordKey("");
  VS_ASSIGN_OR_RETURN(std::vector<std::string> keys, store_.ScanKeys(prefix));
  std::vector<Status> failures;
  for (const std::string& key : keys) {
    const std::string vm_uuid = key.substr(prefix.size());
    VmLock lock(*this, vm_uuid);
    StatusOr<std::optional<ReplicaRecord>> stored = store::GetProto<ReplicaRecord>(store_, key);
    Status settled = stored.status();
    if (stored.ok() && stored->has_value()) settled = Settle(**stored);
    if (!settled.ok()) failures.push_back(settled.Annotate("VM " + vm_uuid));
  }
  if (failures.empty()) return Status::Ok();
  std::string message = std::to_string(failures.size()) + " of " + std::to_string(keys.size()) +
                        " replica records could not be settled (the others were): ";
  for (size_t i = 0; i < failures.size(); ++i) message += (i ? "; " : "") + failures[i].message();
  return Status(failures.front().code(), message);
}

StatusOr<int> ReplicaKeeper::ForgetReleased(const ReplicasInUse& replicas_in_use) {
  VS_ASSIGN_OR_RETURN(auto records, List());
  int forgotten = 0;
  for (auto& record : records) {
    VmLock lock(*this, record.vm_uuid());
    if (record.phase() != ReplicaRecord::PHASE_IDLE) continue;
    const Status owned = shadow_check_(record.vm_uuid(), {});
    if (owned.code() != Code::kNotFound) continue;  // still a shadow here, or the check itself failed
    StatusOr<bool> released = Released(record, replicas_in_use);
    if (!released.ok() || !*released) continue;  // unsure, or the replicas are still the VM's copy
    // Overlays a crash left after the round ended go first: the record is the last to name them. If
    // that fails, the record stays for a later pass.
    if (!RemoveOverlays(record).ok()) continue;
    store::WriteBatch batch;
    batch.Delete(ReplicaRecordKey(record.vm_uuid()));
    VS_RETURN_IF_ERROR(store_.Write(batch));
    ++forgotten;
  }
  return forgotten;
}

StatusOr<bool> ReplicaKeeper::Released(const ReplicaRecord& record, const ReplicasInUse& replicas_in_use) {
  std::vector<std::string> paths;
  for (const auto& disk : record.disks()) paths.push_back(disk.replica_path());
  VS_ASSIGN_OR_RETURN(bool in_use, replicas_in_use(paths));
  if (in_use) return true;  // the VM runs on them: they are no shadow's replicas any more
  for (const auto& path : paths) {
    VS_ASSIGN_OR_RETURN(std::optional<ImageState> image, storage_.Inspect(path));
    if (image) return false;
  }
  return true;
}

StatusOr<std::vector<ReplicaRecord>> ReplicaKeeper::List() const {
  return store::ScanProtos<ReplicaRecord>(store_, ReplicaRecordKey(""));
}

StatusOr<std::optional<ReplicaRecord>> ReplicaKeeper::RecordOf(const std::string& vm_uuid) const {
  return store::GetProto<ReplicaRecord>(store_, ReplicaRecordKey(vm_uuid));
}

Status ReplicaKeeper::Settle(const std::string& vm_uuid) {
  VmLock lock(*this, vm_uuid);
  VS_ASSIGN_OR_RETURN(auto stored, RecordOf(vm_uuid));
  return stored ? Settle(*stored) : Status::Ok();
}

StatusOr<GetReplicaReply> ReplicaKeeper::GetReplica(const GetReplicaRequest& request) {
  VmLock lock(*this, request.vm_uuid());
  VS_ASSIGN_OR_RETURN(auto stored, RecordOf(request.vm_uuid()));
  GetReplicaReply reply;
  reply.set_known(stored.has_value());
  if (!stored) {
    // `qemu-img info` runs as root on each path: only on paths a shadow of this VM here owns.
    const std::vector<std::string> paths(request.replica_paths().begin(), request.replica_paths().end());
    if (!paths.empty()) VS_RETURN_IF_ERROR(shadow_check_(request.vm_uuid(), paths));
    for (const auto& path : paths) {
      VS_ASSIGN_OR_RETURN(auto image, storage_.Inspect(path));
      if (image && image->allocated_bytes >= kSeedWorthyAllocation) reply.add_unrecorded_images(path);
    }
    return reply;
  }
  for (const auto& disk : stored->disks()) {
    VS_ASSIGN_OR_RETURN(auto image, storage_.Inspect(disk.replica_path()));
    if (!image) reply.add_missing_replicas(disk.replica_path());
  }
  *reply.mutable_record() = std::move(*stored);
  return reply;
}

StatusOr<DiskRoundResult> ReplicaKeeper::CopyDisk(const DiskRound& disk, const std::string& overlay_path,
                                                  BlockDigestKind digest_kind) {
  const MonoTime opening = clock_.Now();
  std::vector<std::string> contexts = {std::string(kAllocationContext)};
  if (disk.mode() == virtshadow::v1::ROUND_MODE_INCREMENTAL) contexts.push_back(disk.dirty_context());
  VS_ASSIGN_OR_RETURN(auto source, storage_.ConnectExport(disk.source_uri(), contexts));
  if (source->size() != disk.virtual_size()) {
    return FailedPrecondition("export " + disk.source_uri() + " has " + std::to_string(source->size()) +
                              " bytes, the round announced " + std::to_string(disk.virtual_size()));
  }
  VS_ASSIGN_OR_RETURN(auto overlay, storage_.OpenImage(overlay_path, "qcow2", /*writable=*/true));
  const uint64_t size = source->size();
  VS_ASSIGN_OR_RETURN(auto allocation, source->Map(kAllocationContext));
  VS_ASSIGN_OR_RETURN(std::vector<bool> zero, ZeroBlocks(allocation, size));

  std::vector<bool> changed;
  switch (disk.mode()) {
    case virtshadow::v1::ROUND_MODE_FULL:
      changed.assign(BlockCount(size), true);
      break;
    case virtshadow::v1::ROUND_MODE_INCREMENTAL: {
      VS_ASSIGN_OR_RETURN(auto dirty_map, source->Map(disk.dirty_context()));
      VS_ASSIGN_OR_RETURN(changed, BlocksWithFlag(dirty_map, size, kNbdStateDirty));
      break;
    }
    case virtshadow::v1::ROUND_MODE_RESYNC: {
      // The fresh overlay reads through to the replica: these are the replica's digests. Its zero areas are not read.
      VS_ASSIGN_OR_RETURN(auto replica_allocation, overlay->Map(kAllocationContext));
      VS_ASSIGN_OR_RETURN(std::vector<bool> replica_zero, ZeroBlocks(replica_allocation, size));
      VS_ASSIGN_OR_RETURN(auto replica_digests, DigestAllBlocks(*overlay, digest_kind, replica_zero));
      const std::vector<uint64_t> source_digests(disk.source_digests().begin(), disk.source_digests().end());
      VS_ASSIGN_OR_RETURN(changed, DifferingBlocks(source_digests, replica_digests));
      break;
    }
    default:
      return InvalidArgument("disk " + disk.target() + ": round mode " + std::to_string(disk.mode()) +
                             " is not FULL, INCREMENTAL or RESYNC");
  }
  const std::vector<BlockOp> ops = PlanOps(changed, zero, size);
  const MonoTime transferring = clock_.Now();
  VS_ASSIGN_OR_RETURN(uint64_t bytes_sent, ApplyOps(*source, *overlay, ops));
  const MonoTime reading_back = clock_.Now();
  // Read back what landed in the overlay: the primary compares these with its own reading. Digests of the bytes
  // in hand would miss a write that went wrong between here and the overlay (docs/replication.md).
  VS_ASSIGN_OR_RETURN(auto digests, DigestOps(*overlay, digest_kind, ops, {}));

  DiskRoundResult result;
  result.set_target(disk.target());
  result.set_bytes_sent(bytes_sent);
  result.set_block_digest(static_cast<virtshadow::v1::BlockDigest>(digest_kind));
  result.set_open_ms(ToMillis(transferring - opening));
  result.set_transfer_ms(ToMillis(reading_back - transferring));
  result.set_read_back_ms(ToMillis(clock_.Now() - reading_back));
  for (const BlockOp& op : ops) {
    auto* msg = result.add_ops();
    msg->set_offset(op.offset);
    msg->set_length(op.length);
    msg->set_zero(op.action == BlockAction::kZero);
  }
  result.mutable_digests()->Add(digests.begin(), digests.end());
  return result;
}

StatusOr<ApplyRoundReply> ReplicaKeeper::ApplyRound(const ApplyRoundRequest& request) {
  std::vector<std::string> paths;
  for (const auto& disk : request.disks()) paths.push_back(disk.replica_path());
  if (paths.empty()) return InvalidArgument("round " + request.round().checkpoint() + " names no disk");
  VS_ASSIGN_OR_RETURN(BlockDigestKind digest_kind, BlockDigestKindOf(request.block_digest()));
  uint64_t round_bytes = 0;
  for (const auto& disk : request.disks()) {
    VS_RETURN_IF_ERROR(CheckDeviceSize(disk.virtual_size()).Annotate("disk " + disk.target()));
    round_bytes += disk.virtual_size();
  }
  VS_RETURN_IF_ERROR(CheckDeviceSize(round_bytes).Annotate("the disks of round " + request.round().checkpoint()));
  VS_RETURN_IF_ERROR(shadow_check_(request.vm_uuid(), paths));

  VmLock lock(*this, request.vm_uuid());
  VS_ASSIGN_OR_RETURN(ReplicaRecord record, Load(request.vm_uuid()));
  if (record.promoted()) {
    return FailedPrecondition("the replicas of " + request.vm_uuid() +
                              " were promoted on this host (the VM runs on them): no round is accepted");
  }
  VS_RETURN_IF_ERROR(Settle(record));

  bool needs_base = false;
  for (const auto& disk : request.disks()) needs_base |= disk.mode() == virtshadow::v1::ROUND_MODE_INCREMENTAL;
  if (needs_base && record.applied().checkpoint() != request.base_checkpoint()) {
    return FailedPrecondition("replica of " + request.vm_uuid() + " is at checkpoint '" +
                              record.applied().checkpoint() + "', the incremental round is based on '" +
                              request.base_checkpoint() + "': a resync is needed");
  }
  for (const auto& disk : request.disks()) {
    VS_ASSIGN_OR_RETURN(auto image, storage_.Inspect(disk.replica_path()));
    if (!image) {
      if (disk.mode() != virtshadow::v1::ROUND_MODE_FULL) {
        return FailedPrecondition("replica " + disk.replica_path() + " is missing: it needs a full round");
      }
      // A blank replica is at no checkpoint: forget the old one first, so that if this round is not
      // committed the next one cannot build incrementally on the blank image.
      record.clear_applied();
      VS_RETURN_IF_ERROR(Save(record));
      VS_RETURN_IF_ERROR(storage_.Create(disk.replica_path(), disk.format(), disk.virtual_size()));
    } else if (image->virtual_size > disk.virtual_size()) {
      return FailedPrecondition("replica " + disk.replica_path() + " has " + std::to_string(image->virtual_size) +
                                " bytes, the round announces " + std::to_string(disk.virtual_size()) +
                                ": a replica is never shrunk (its tail would be lost); if the VM's disk really "
                                "shrank, release and place the shadow again");
    } else if (image->virtual_size != disk.virtual_size()) {
      // A resized source disk: growing reads as zeros on both sides, so the replica stays consistent.
      VS_RETURN_IF_ERROR(storage_.Resize(disk.replica_path(), image->format, disk.virtual_size()));
    }
  }

  // Intent first: after a crash from here on, the overlays named in the record are discarded.
  record.set_primary_host(request.primary_host());
  record.set_phase(ReplicaRecord::PHASE_COPYING);
  *record.mutable_pending() = request.round();
  record.clear_disks();
  for (const auto& disk : request.disks()) {
    auto* entry = record.add_disks();
    entry->set_target(disk.target());
    entry->set_replica_path(disk.replica_path());
    entry->set_format(disk.format());
    entry->set_overlay_path(disk.replica_path() + std::string(kOverlaySuffix));
  }
  VS_RETURN_IF_ERROR(Save(record));

  // Any failure from here on discards the round, and reports the discard's failure too.
  auto discard = [&](const Status& failure) {
    Status discarded = EndRound(record);
    if (discarded.ok()) return failure;
    return Status(failure.code(),
                  failure.message() + " (and discarding the overlays failed: " + discarded.message() + ")");
  };
  ApplyRoundReply reply;
  std::set<std::string> directories;
  for (int i = 0; i < request.disks_size(); ++i) {
    const DiskRound& disk = request.disks(i);
    const std::string& overlay = record.disks(i).overlay_path();
    Status status = storage_.Remove(overlay);  // left by a crash before the intent was cleared
    if (status.ok()) status = storage_.CreateOverlay(overlay, disk.replica_path(), disk.format());
    StatusOr<DiskRoundResult> result = status.ok() ? CopyDisk(disk, overlay, digest_kind) : StatusOr<DiskRoundResult>(status);
    if (!result.ok()) return discard(result.status());
    *reply.add_disks() = std::move(*result);
    std::string directory = std::filesystem::path(overlay).parent_path().string();
    directories.insert(directory.empty() ? "." : directory);
  }
  // The overlays (and replicas this round created) must survive a power cut once the round can be
  // committed: a committing round whose overlay is missing counts as committed (CommitOverlays).
  for (const std::string& directory : directories) {
    if (Status synced = storage_.SyncDirectory(directory); !synced.ok()) return discard(synced);
  }
  record.set_phase(ReplicaRecord::PHASE_COPIED);
  VS_RETURN_IF_ERROR(Save(record));
  return reply;
}

Status ReplicaKeeper::FinishRound(const FinishRoundRequest& request) {
  VmLock lock(*this, request.vm_uuid());
  VS_ASSIGN_OR_RETURN(ReplicaRecord record, Load(request.vm_uuid()));
  if (record.phase() != ReplicaRecord::PHASE_COPIED || record.pending().checkpoint() != request.checkpoint()) {
    return FailedPrecondition("no copied round '" + request.checkpoint() + "' is pending for " + request.vm_uuid() +
                              " (it was discarded after a restart or replaced): run the round again");
  }
  if (!request.commit()) return EndRound(record);
  record.set_phase(ReplicaRecord::PHASE_COMMITTING);
  *record.mutable_pending() = request.round();
  VS_RETURN_IF_ERROR(Save(record));
  return CommitOverlays(record);
}

StatusOr<ReplicaRecord> ReplicaKeeper::SettleForPromotion(const std::string& vm_uuid) {
  VmLock lock(*this, vm_uuid);
  VS_ASSIGN_OR_RETURN(auto stored, store::GetProto<ReplicaRecord>(store_, ReplicaRecordKey(vm_uuid)));
  if (!stored) return NotFound("no replica of VM " + vm_uuid + " is recorded on this host");
  ReplicaRecord& record = *stored;
  VS_RETURN_IF_ERROR(Settle(record));
  if (record.applied().checkpoint().empty()) {
    return FailedPrecondition("the replicas of VM " + vm_uuid +
                              " never completed a round: they hold no consistent copy to promote");
  }
  if (!record.promoted()) {
    record.set_promoted(true);
    VS_RETURN_IF_ERROR(Save(record));
  }
  return record;
}

StatusOr<ReplicaDigestsReply> ReplicaKeeper::ReplicaDigests(const ReplicaDigestsRequest& request) {
  VS_ASSIGN_OR_RETURN(BlockDigestKind digest_kind, BlockDigestKindOf(request.block_digest()));
  VS_RETURN_IF_ERROR(shadow_check_(request.vm_uuid(), {request.replica_path()}));
  VmLock lock(*this, request.vm_uuid());
  VS_ASSIGN_OR_RETURN(ReplicaRecord record, Load(request.vm_uuid()));
  VS_RETURN_IF_ERROR(Settle(record));
  VS_ASSIGN_OR_RETURN(auto replica, storage_.OpenImage(request.replica_path(), request.format(), /*writable=*/false));
  VS_ASSIGN_OR_RETURN(auto allocation, replica->Map(kAllocationContext));
  VS_ASSIGN_OR_RETURN(std::vector<bool> zero, ZeroBlocks(allocation, replica->size()));
  VS_ASSIGN_OR_RETURN(auto digests, DigestAllBlocks(*replica, digest_kind, zero));
  ReplicaDigestsReply reply;
  reply.set_size(replica->size());
  reply.set_block_digest(request.block_digest());
  reply.mutable_digests()->Add(digests.begin(), digests.end());
  return reply;
}

}  // namespace vs::replication
