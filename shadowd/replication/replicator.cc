#include "shadowd/replication/replicator.h"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <optional>
#include <thread>
#include <utility>

#include "common/digest.h"
#include "common/host_port.h"
#include "shadowd/policy/domain_xml.h"
#include "shadowd/replication/block_map.h"
#include "shadowd/replication/replica_keeper.h"

namespace vs::replication {

using virtshadow::v1::AppliedRound;
using virtshadow::v1::ApplyRoundRequest;
using virtshadow::v1::ReplicationRecord;
using virtshadow::v1::RoundMode;

struct Replicator::Disk {
  std::string target;
  std::string path;
  std::string format;
  bool bitmaps = false;  // qcow2: QEMU keeps persistent dirty bitmaps for it
  std::string top_path;  // the switchover top the domain runs on instead of `path`; empty: none
};

struct Replicator::Plan {
  std::vector<Disk> disks;
  std::vector<RoundMode> modes;  // per disk
  std::string base_checkpoint;   // for the INCREMENTAL disks
  bool final_round = false;      // a switchover's: no new checkpoint, the replica keeps base_checkpoint
  // A Nova instance's: libvirt knows its checkpoints only while a backup job starts (HideCheckpoints).
  bool hide_checkpoints = false;
};

std::vector<std::string> Replicator::BitmapTargets(const std::vector<Disk>& disks) {
  std::vector<std::string> targets;
  for (const Disk& disk : disks) {
    if (disk.bitmaps) targets.push_back(disk.target);
  }
  return targets;
}

// One pull-mode backup job of ours, from its start to its end. Begin starts it (libvirt creates the request's
// new checkpoint, if it names one, atomically with the job); Finish ends it on the path that succeeded and says
// whether libvirt did; a session dropped unfinished (any failure once the job runs) ends the job all the same
// and ignores how that went: the failure that dropped it is the one to report, and a job left running is
// ended as a stale one of ours by the next round. Either way the new checkpoint stays: when the shadow host
// committed the round and only its reply was lost, the replica is at that checkpoint and the next round goes
// on from it; RunRound deletes the older ones after every applied round.
class Replicator::BackupSession {
 public:
  static StatusOr<BackupSession> Begin(virt::Hypervisor& hypervisor, virt::PullBackupRequest request) {
    VS_RETURN_IF_ERROR(hypervisor.BeginPullBackup(request));
    return BackupSession(hypervisor, std::move(request));
  }
  BackupSession(BackupSession&& other) noexcept
      : hypervisor_(std::exchange(other.hypervisor_, nullptr)), request_(std::move(other.request_)) {}
  BackupSession(const BackupSession&) = delete;
  BackupSession& operator=(const BackupSession&) = delete;
  BackupSession& operator=(BackupSession&&) = delete;
  ~BackupSession() {
    if (hypervisor_ != nullptr) hypervisor_->EndBackup(request_.domain).IgnoreError();
  }

  // Where libvirt's NBD server exports disk `target` while the job runs.
  std::string ExportUri(const std::string& target) const {
    return std::string(request_.tls ? "nbds://" : "nbd://") +
           JoinHostPort(request_.listen_address, static_cast<uint16_t>(request_.port)) + "/" + target;
  }

  // Ends the job; once only (whatever libvirt answers, the job is not ended again).
  Status Finish() {
    assert(hypervisor_ != nullptr && "the backup session already ended");
    return std::exchange(hypervisor_, nullptr)->EndBackup(request_.domain);
  }

 private:
  BackupSession(virt::Hypervisor& hypervisor, virt::PullBackupRequest request)
      : hypervisor_(&hypervisor), request_(std::move(request)) {}

  virt::Hypervisor* hypervisor_;  // null once ended (or moved from)
  virt::PullBackupRequest request_;
};

bool VerifyReport::ok() const {
  return std::all_of(disks.begin(), disks.end(), [](const DiskVerification& d) { return d.blocks_mismatched == 0; });
}

namespace {

bool IsOurs(const std::string& checkpoint) { return checkpoint.rfind(kCheckpointPrefix, 0) == 0; }

// A digest over a round's block digests, in order: what both sides record for the round.
uint64_t FoldDigests(const std::vector<uint64_t>& digests) {
  // Recorded on both hosts from this one value (FinishRound carries it): no other host recomputes it.
  return Xxh3_64(std::as_bytes(std::span(digests)));
}

// The shadow host's ops, checked before this host reads anything by them: block-aligned, in order, inside
// the disk (the last block may be short).
StatusOr<std::vector<BlockOp>> OpsFromReply(const virtshadow::v1::DiskRoundResult& result, uint64_t size) {
  std::vector<BlockOp> ops;
  uint64_t end = 0;
  for (const auto& op : result.ops()) {
    // Written so that nothing wraps: offset + length can pass 2^64 and come back small.
    const bool inside = op.offset() <= size && op.length() <= size - op.offset();
    const bool aligned =
        op.offset() % kBlockSize == 0 && (op.length() % kBlockSize == 0 || op.length() == size - op.offset());
    if (!inside || !aligned || op.length() == 0 || op.offset() < end) {
      return DataLoss("disk " + result.target() + ": the shadow host reported a malformed block range " +
                      std::to_string(op.offset()) + "+" + std::to_string(op.length()) + " for a " +
                      std::to_string(size) + "-byte disk");
    }
    end = op.offset() + op.length();
    ops.push_back({op.offset(), op.length(), op.zero() ? BlockAction::kZero : BlockAction::kCopy});
  }
  return ops;
}

// The byte ranges `ops` cover, whatever their action: the two hosts map the export at different moments, and a
// block may read as zeros by one map and as data by the other (QEMU copies it aside when the guest writes it
// during the backup), though its bytes, and so its digest, are the same.
std::vector<ByteRange> Covered(const std::vector<BlockOp>& ops) {
  std::vector<ByteRange> ranges;
  for (const BlockOp& op : ops) {
    if (!ranges.empty() && ranges.back().offset + ranges.back().length == op.offset) {
      ranges.back().length += op.length;
    } else {
      ranges.push_back({op.offset, op.length});
    }
  }
  return ranges;
}

// DigestOps in the preferred kind, a group of ops of at most 256 MiB at a time, until `stop` is set (then
// Aborted): the digests of consecutive groups, joined, are those of all the ops.
StatusOr<std::vector<uint64_t>> DigestOpsUnless(const std::atomic<bool>& stop, BlockDevice& device,
                                                const std::vector<BlockOp>& ops, const std::vector<bool>& zero) {
  constexpr uint64_t kGroupBytes = uint64_t{256} << 20;
  std::vector<uint64_t> digests;
  for (size_t first = 0; first < ops.size();) {
    if (stop) return Aborted("the copy failed: the rest was not read");
    std::vector<BlockOp> group;
    for (uint64_t bytes = 0; first < ops.size() && (group.empty() || bytes + ops[first].length <= kGroupBytes);) {
      bytes += ops[first].length;
      group.push_back(ops[first++]);
    }
    VS_ASSIGN_OR_RETURN(std::vector<uint64_t> part, DigestOps(device, kPreferredBlockDigest, group, zero));
    digests.insert(digests.end(), part.begin(), part.end());
  }
  return digests;
}

Status WithContext(const Status& status, const std::string& context) {
  if (status.ok()) return status;
  return Status(status.code(), context + ": " + status.message());
}

}  // namespace

Replicator::Replicator(virt::Hypervisor& local, ReplicaPeer& peer, ReplicaStorage& storage, store::Store& store,
                       Clock& clock, ReplicatorOptions options)
    : local_(local), peer_(peer), storage_(storage), store_(store), clock_(clock), options_(std::move(options)) {}

StatusOr<ReplicationRecord> Replicator::Record(const std::string& vm_uuid) const {
  VS_ASSIGN_OR_RETURN(auto stored, store::GetProto<ReplicationRecord>(store_, PrimaryRecordKey(vm_uuid)));
  if (stored) return *stored;
  ReplicationRecord fresh;
  fresh.set_vm_uuid(vm_uuid);
  return fresh;
}

StatusOr<std::vector<ReplicationRecord>> Replicator::ListRecords() const {
  return store::ScanProtos<ReplicationRecord>(store_, PrimaryRecordKey(""));
}

Status Replicator::Save(const ReplicationRecord& record) {
  store::WriteBatch batch;
  batch.PutProto(PrimaryRecordKey(record.vm_uuid()), record);
  return store_.Write(batch);
}

Status Replicator::EndOurBackup(const std::string& vm_name) {
  VS_ASSIGN_OR_RETURN(auto running, local_.GetBackupXml(vm_name));
  // Only jobs we started (their scratch files carry our suffix): an admin's own backup is left alone.
  if (!running || running->find(virt::kScratchSuffix) == std::string::npos) return Status::Ok();
  return local_.EndBackup(vm_name);
}

Status Replicator::Recover(const std::vector<std::string>& domains) {
  for (const std::string& name : domains) {
    Status status = EndOurBackup(name);
    if (!status.ok() && status.code() != Code::kNotFound) return WithContext(status, "ending a stale backup");
    StatusOr<std::string> xml = local_.GetDomainXml(name);
    if (!xml.ok() && xml.status().code() == Code::kNotFound) continue;  // undefined meanwhile
    VS_RETURN_IF_ERROR(WithContext(xml.status(), "reading the domain " + name));
    VS_ASSIGN_OR_RETURN(policy::DomainFacts facts, policy::ParseDomain(*xml));
    if (facts.nova) {
      VS_RETURN_IF_ERROR(WithContext(HideCheckpoints(name), "hiding the checkpoints a crash left on " + name));
    }
  }
  return Status::Ok();
}

Status Replicator::DeleteCheckpointsExcept(const std::string& vm_name, const std::string& keep) {
  VS_ASSIGN_OR_RETURN(auto checkpoints, local_.ListCheckpoints(vm_name));
  // Newest first: deleting a leaf never has to merge its bitmap into a child.
  for (auto it = checkpoints.rbegin(); it != checkpoints.rend(); ++it) {
    if (IsOurs(*it) && *it != keep) VS_RETURN_IF_ERROR(local_.DeleteCheckpoint(vm_name, *it));
  }
  return Status::Ok();
}

Status Replicator::Forget(const std::string& vm_uuid, const std::string& vm_name) {
  if (!vm_name.empty()) {
    // Only while the name is still this VM's: a VM defined again under the same name (a new UUID) has its own backup
    // jobs and checkpoints. Ending its backup while a reader connects hung QEMU 7.2's nbd-server-stop, and with it
    // that guest, for minutes (lab_shadow_host_crash_test run again under the same name).
    StatusOr<std::string> xml = local_.GetDomainXml(vm_name);
    if (!xml.ok() && xml.status().code() != Code::kNotFound) return xml.status();
    if (xml.ok()) {
      VS_ASSIGN_OR_RETURN(policy::DomainFacts facts, policy::ParseDomain(*xml));
      if (facts.uuid == vm_uuid) {
        Status status = EndOurBackup(vm_name);
        if (status.ok()) status = DeleteCheckpointsExcept(vm_name, "");
        if (status.ok() && facts.nova) status = DiscardHiddenCheckpoint(vm_uuid, vm_name);
        if (!status.ok() && status.code() != Code::kNotFound) return status;
      }
    }
  }
  store::WriteBatch batch;
  batch.Delete(PrimaryRecordKey(vm_uuid));
  return store_.Write(batch);
}

// A hidden checkpoint is not listed: the one the VM's record names has its bitmaps removed by name.
Status Replicator::DiscardHiddenCheckpoint(const std::string& vm_uuid, const std::string& vm_name) {
  VS_ASSIGN_OR_RETURN(ReplicationRecord record, Record(vm_uuid));
  const std::string& checkpoint = record.applied().checkpoint();
  if (checkpoint.empty()) return Status::Ok();
  VS_ASSIGN_OR_RETURN(auto disks, ReplicatedDisks(vm_name));
  for (const std::string& target : BitmapTargets(disks)) {
    Status gone = local_.DiscardForeignBitmap(vm_name, target, checkpoint);
    // A stopped domain's bitmaps are in its images (libvirt cannot remove them then): the next rounds after it
    // starts again use or remove them.
    if (gone.code() == Code::kFailedPrecondition) return Status::Ok();
    if (!gone.ok() && gone.code() != Code::kNotFound) return gone;
  }
  return Status::Ok();
}

StatusOr<std::vector<Replicator::Disk>> Replicator::ReplicatedDisks(const std::string& vm_name,
                                                                    bool* hides_checkpoints) {
  VS_ASSIGN_OR_RETURN(std::string xml, local_.GetDomainXml(vm_name));
  VS_ASSIGN_OR_RETURN(policy::DomainFacts facts, policy::ParseDomain(xml));
  // Nova undefines a stopped instance (hard reboot, delete, resize) without libvirt's flag for checkpoint metadata,
  // and libvirt refuses that while the domain has checkpoints: a Nova instance's are known to libvirt only for the
  // moment a backup job starts (docs/nova.md).
  if (hides_checkpoints != nullptr) *hides_checkpoints = facts.nova.has_value();
  std::vector<Disk> disks;
  for (const auto& disk : facts.disks) {
    if (disk.source_kind != policy::DiskFacts::SourceKind::kFile || disk.source_path.empty()) continue;
    const std::string format = disk.format.empty() ? "raw" : disk.format;
    if (format != "qcow2" && format != "raw") {
      return FailedPrecondition("disk " + disk.target_dev + " of " + vm_name + " is " + format +
                                ": only qcow2 and raw images are replicated");
    }
    // On a switchover top the format to mirror is the base's (the top is always qcow2).
    // On a switchover top, the image beneath (frozen by the snapshot) is what the replica mirrors.
    const bool on_top = policy::IsTopPath(disk.source_path);
    const std::string base_format = on_top && !disk.backing_format.empty() ? disk.backing_format : format;
    disks.push_back({disk.target_dev, policy::BasePathOf(disk.source_path), base_format, base_format == "qcow2",
                     on_top ? disk.source_path : ""});
  }
  if (disks.empty()) return FailedPrecondition(vm_name + " has no file-backed disk to replicate");
  return disks;
}

StatusOr<Replicator::Plan> Replicator::MakePlan(const ReplicationTarget& target, const std::vector<Disk>& disks,
                                                const ReplicationRecord& record, bool hide_checkpoints) {
  virtshadow::v1::GetReplicaRequest request;
  request.set_vm_uuid(target.vm_uuid);
  for (const Disk& disk : disks) request.add_replica_paths(disk.path);
  VS_ASSIGN_OR_RETURN(auto replica, peer_.GetReplica(target.shadow_host, request));
  VS_ASSIGN_OR_RETURN(auto checkpoints, local_.ListCheckpoints(target.vm_name));

  Plan plan;
  plan.disks = disks;
  plan.hide_checkpoints = hide_checkpoints;
  // The replica is the truth about where it stands; use its checkpoint if libvirt still has it. A round whose
  // commit began is finished by this round's ApplyRound before anything else (the shadow host settles it there):
  // the replica stands at that round then. A round only copied is discarded there: `applied` stays.
  const auto& replica_record = replica.record();
  const std::string& replica_at = replica_record.phase() == virtshadow::v1::ReplicaRecord::PHASE_COMMITTING
                                      ? replica_record.pending().checkpoint()
                                      : replica_record.applied().checkpoint();
  // A hidden checkpoint is made known again for the job that starts from it (its bitmaps are QEMU's).
  // Only while the domain runs: a definition on a stopped one would stay and refuse Nova's undefine.
  if (hide_checkpoints && !replica_at.empty() &&
      std::find(checkpoints.begin(), checkpoints.end(), replica_at) == checkpoints.end()) {
    StatusOr<virt::DomainState> state = local_.GetDomainState(target.vm_name);
    if (state.ok() && *state == virt::DomainState::kRunning &&
        local_.RedefineCheckpoint(target.vm_name, replica_at, BitmapTargets(disks)).ok()) {
      checkpoints.push_back(replica_at);
    }
  }
  const bool chain_usable = replica.known() && !record.resync_needed() && !replica_at.empty() &&
                            std::find(checkpoints.begin(), checkpoints.end(), replica_at) != checkpoints.end();
  for (const Disk& disk : disks) {
    const bool missing = !replica.known() || std::find(replica.missing_replicas().begin(),
                                                       replica.missing_replicas().end(),
                                                       disk.path) != replica.missing_replicas().end();
    bool known_disk = false;
    for (const auto& d : replica.record().disks()) known_disk |= d.replica_path() == disk.path;
    const bool unrecorded = std::find(replica.unrecorded_images().begin(), replica.unrecorded_images().end(),
                                      disk.path) != replica.unrecorded_images().end();
    if (!replica.known() && unrecorded) {
      plan.modes.push_back(virtshadow::v1::ROUND_MODE_RESYNC);  // data already there: send what differs
    } else if (missing || !known_disk) {
      plan.modes.push_back(virtshadow::v1::ROUND_MODE_FULL);
    } else if (disk.bitmaps && chain_usable) {
      plan.modes.push_back(virtshadow::v1::ROUND_MODE_INCREMENTAL);
      plan.base_checkpoint = replica_at;
    } else {
      plan.modes.push_back(virtshadow::v1::ROUND_MODE_RESYNC);
    }
  }
  return plan;
}

StatusOr<AppliedRound> Replicator::RunRound(const ReplicationTarget& target, uint16_t export_port) {
  VS_ASSIGN_OR_RETURN(ReplicationRecord record, Record(target.vm_uuid));
  record.set_vm_name(target.vm_name);
  record.set_shadow_host(target.shadow_host);

  const MonoTime started = clock_.Now();
  bool hides = false;
  std::string old_base;  // a hidden checkpoint the round leaves behind: its bitmaps go after the round
  std::vector<std::string> bitmap_targets;
  StatusOr<AppliedRound> round = [&]() -> StatusOr<AppliedRound> {
    VS_ASSIGN_OR_RETURN(auto disks, ReplicatedDisks(target.vm_name, &hides));
    bitmap_targets = BitmapTargets(disks);
    // Only a switchover's final round reads a VM on its tops. Any other round would hold the disk with its
    // backup job while the switchover's completion must flatten it (and would replicate a chain that is
    // about to change).
    for (const Disk& disk : disks) {
      if (!disk.top_path.empty()) {
        return FailedPrecondition("disk " + disk.target + " of " + target.vm_name + " runs on the switchover top " +
                                  disk.top_path + ": no round until the switchover's completion flattens it");
      }
    }
    VS_ASSIGN_OR_RETURN(Plan plan, MakePlan(target, disks, record, hides));
    old_base = plan.base_checkpoint;
    bool chain_broken = false;
    StatusOr<AppliedRound> result = RunPlannedRound(target, plan, export_port, started, &chain_broken);
    if (!chain_broken) return result;
    // The base checkpoint's bitmap is unusable (QEMU was killed) or gone: start a new chain now,
    // comparing digests instead of copying everything.
    record.set_resync_needed(true);
    VS_RETURN_IF_ERROR(Save(record));
    VS_RETURN_IF_ERROR(DeleteCheckpointsExcept(target.vm_name, ""));
    for (size_t i = 0; i < plan.modes.size(); ++i) {
      if (plan.modes[i] == virtshadow::v1::ROUND_MODE_INCREMENTAL) plan.modes[i] = virtshadow::v1::ROUND_MODE_RESYNC;
    }
    plan.base_checkpoint.clear();
    return RunPlannedRound(target, plan, export_port, started, &chain_broken);
  }();

  VS_RETURN_IF_ERROR(RecordOutcome(record, round));
  // Housekeeping after the record: a crash in between only leaves checkpoints the next round deletes.
  VS_RETURN_IF_ERROR(WithContext(DeleteCheckpointsExcept(target.vm_name, round->checkpoint()),
                                 "deleting old checkpoints of " + target.vm_name));
  // Hidden checkpoints are not listed: the base the round started from has its bitmaps removed by name.
  if (hides && !old_base.empty() && old_base != round->checkpoint()) {
    for (const std::string& disk : bitmap_targets) {
      if (Status gone = local_.DiscardForeignBitmap(target.vm_name, disk, old_base);
          !gone.ok() && gone.code() != Code::kNotFound) {
        return WithContext(gone, "removing the bitmap of the hidden checkpoint " + old_base + " of " + target.vm_name);
      }
    }
  }
  return round;
}

Status Replicator::HideCheckpoints(const std::string& vm_name) {
  VS_ASSIGN_OR_RETURN(auto checkpoints, local_.ListCheckpoints(vm_name));
  for (const std::string& checkpoint : checkpoints) {
    if (IsOurs(checkpoint)) VS_RETURN_IF_ERROR(local_.DeleteCheckpointMetadata(vm_name, checkpoint));
  }
  return Status::Ok();
}

Status Replicator::RecordOutcome(ReplicationRecord& record, const StatusOr<AppliedRound>& round) {
  if (!round.ok()) {
    record.set_rounds_failed(record.rounds_failed() + 1);
    record.set_consecutive_failures(record.consecutive_failures() + 1);
    record.set_last_error(round.status().message());
    record.set_last_failure_unix_ms(ToUnixMillis(clock_.WallNow()));
    Status saved = Save(record);
    (void)saved;  // the round's own error is the one to report
    return round.status();
  }
  *record.mutable_applied() = *round;
  *record.add_recent_rounds() = *round;
  if (record.recent_rounds_size() > kRecentRounds) {
    record.mutable_recent_rounds()->DeleteSubrange(0, record.recent_rounds_size() - kRecentRounds);
  }
  record.set_resync_needed(false);
  record.set_rounds_applied(record.rounds_applied() + 1);
  record.set_bytes_sent_total(record.bytes_sent_total() + round->bytes_sent());
  record.set_consecutive_failures(0);
  return Save(record);
}

StatusOr<AppliedRound> Replicator::RunFinalRound(const ReplicationTarget& target, uint16_t export_port) {
  VS_ASSIGN_OR_RETURN(ReplicationRecord record, Record(target.vm_uuid));
  record.set_vm_name(target.vm_name);
  record.set_shadow_host(target.shadow_host);
  const MonoTime started = clock_.Now();
  StatusOr<AppliedRound> round = [&]() -> StatusOr<AppliedRound> {
    bool hides = false;
    VS_ASSIGN_OR_RETURN(auto disks, ReplicatedDisks(target.vm_name, &hides));
    VS_ASSIGN_OR_RETURN(Plan plan, MakePlan(target, disks, record, hides));
    for (size_t i = 0; i < plan.modes.size(); ++i) {
      if (plan.modes[i] == virtshadow::v1::ROUND_MODE_FULL) {
        return FailedPrecondition("the shadow host " + target.shadow_host + " has no replica of disk " +
                                  plan.disks[i].target + " of " + target.vm_name +
                                  " yet: a switchover's final round cannot seed it");
      }
    }
    plan.final_round = true;
    bool chain_broken = false;
    return RunPlannedRound(target, plan, export_port, started, &chain_broken);
  }();
  if (!round.ok()) return RecordOutcome(record, round).Annotate("final round");
  VS_RETURN_IF_ERROR(RecordOutcome(record, round));
  return round;
}

StatusOr<AppliedRound> Replicator::RunPlannedRound(const ReplicationTarget& target, const Plan& plan,
                                                   uint16_t export_port, MonoTime started, bool* chain_broken) {
  const MonoTime planned = clock_.Now();
  VS_RETURN_IF_ERROR(WithContext(EndOurBackup(target.vm_name), "ending a stale backup of " + target.vm_name));

  virt::PullBackupRequest backup;
  backup.domain = target.vm_name;
  backup.listen_address = options_.nbd_address;
  backup.port = export_port;
  backup.tls = options_.nbd_tls;
  backup.incremental_from = plan.base_checkpoint;
  bool any_bitmaps = false;
  for (size_t i = 0; i < plan.disks.size(); ++i) {
    const Disk& disk = plan.disks[i];
    // Only an INCREMENTAL disk is exported incrementally; the others are exported whole.
    const bool incremental = plan.modes[i] == virtshadow::v1::ROUND_MODE_INCREMENTAL;
    backup.disks.push_back({disk.target, disk.path, /*join_checkpoint=*/disk.bitmaps && !plan.final_round, incremental});
    any_bitmaps |= disk.bitmaps;
  }
  AppliedRound round;
  if (plan.final_round) {
    round.set_checkpoint(plan.base_checkpoint);  // backup.new_checkpoint stays empty
  } else if (any_bitmaps) {
    round.set_checkpoint(std::string(kCheckpointPrefix) + std::to_string(ToUnixMillis(clock_.WallNow())));
    backup.new_checkpoint = round.checkpoint();
  }
  round.set_taken_unix_ms(ToUnixMillis(clock_.WallNow()));
  StatusOr<BackupSession> session = BackupSession::Begin(local_, std::move(backup));
  round.mutable_steps()->set_plan_ms(ToMillis(planned - started));
  round.mutable_steps()->set_freeze_ms(ToMillis(clock_.Now() - planned));
  if (!session.ok()) {
    // Only libvirt refusing the base checkpoint (its bitmap is inconsistent after QEMU was killed, or it is
    // gone) means the chain is broken; every other failure is just this round's.
    const Code code = session.status().code();
    // The job did not start (the domain stopped, say): the checkpoint made known for it is forgotten again at once.
    if (plan.hide_checkpoints) HideCheckpoints(target.vm_name).IgnoreError();
    *chain_broken = !plan.base_checkpoint.empty() &&
                    (code == Code::kDataLoss || code == Code::kNotFound ||
                     // a redefined hidden checkpoint whose bitmaps QEMU no longer has
                     (plan.hide_checkpoints && code != Code::kAborted && code != Code::kUnavailable));
    return session.status();
  }
  if (plan.hide_checkpoints) {
    VS_RETURN_IF_ERROR(WithContext(HideCheckpoints(target.vm_name), "hiding the checkpoints of " + target.vm_name));
  }
  // From here the job ends on every path: by Finish once the shadow host committed, else when `session` goes.
  StatusOr<AppliedRound> result = CopyRound(target, plan, *session, round, started);
  if (!result.ok()) return WithContext(result.status(), "round of " + target.vm_name + " to " + target.shadow_host);
  const MonoTime committed = clock_.Now();
  VS_RETURN_IF_ERROR(WithContext(session->Finish(), "ending the backup of " + target.vm_name));
  result->mutable_steps()->set_end_ms(ToMillis(clock_.Now() - committed));
  result->set_duration_ms(ToMillis(clock_.Now() - started));
  return result;
}

StatusOr<AppliedRound> Replicator::CopyRound(const ReplicationTarget& target, const Plan& plan,
                                             const BackupSession& backup, const AppliedRound& round, MonoTime started) {
  const MonoTime connecting = clock_.Now();
  ApplyRoundRequest request;
  request.set_vm_uuid(target.vm_uuid);
  request.set_primary_host(options_.this_host);
  request.set_base_checkpoint(plan.base_checkpoint);
  request.set_block_digest(static_cast<virtshadow::v1::BlockDigest>(kPreferredBlockDigest));
  *request.mutable_round() = round;
  // One connection per export for the whole round, and its maps read once: a TLS handshake with QEMU costs tens of
  // ms here, a good part of a small round.
  std::vector<std::unique_ptr<BlockDevice>> sources;
  std::vector<std::vector<bool>> zero_blocks;
  std::vector<std::optional<std::vector<BlockOp>>> expected_ops;  // what the shadow host will copy, where known
  for (size_t i = 0; i < plan.disks.size(); ++i) {
    const Disk& disk = plan.disks[i];
    const bool incremental = plan.modes[i] == virtshadow::v1::ROUND_MODE_INCREMENTAL;
    const std::string dirty_context = std::string(kDirtyContextPrefix) + disk.target;
    std::vector<std::string> contexts = {std::string(kAllocationContext)};
    if (incremental) contexts.push_back(dirty_context);
    VS_ASSIGN_OR_RETURN(auto source, storage_.ConnectExport(backup.ExportUri(disk.target), contexts));
    VS_ASSIGN_OR_RETURN(auto allocation, source->Map(kAllocationContext));
    VS_ASSIGN_OR_RETURN(auto zero, ZeroBlocks(allocation, source->size()));
    // The shadow host plans from the same maps of the same frozen export (replica_keeper.cc, CopyDisk), so this
    // host knows the blocks of a full or incremental disk before the answer; a resync's depend on the replica.
    if (plan.modes[i] == virtshadow::v1::ROUND_MODE_FULL) {
      expected_ops.push_back(PlanOps(std::vector<bool>(BlockCount(source->size()), true), zero, source->size()));
    } else if (incremental) {
      VS_ASSIGN_OR_RETURN(auto dirty_map, source->Map(dirty_context));
      VS_ASSIGN_OR_RETURN(std::vector<bool> dirty, BlocksWithFlag(dirty_map, source->size(), kNbdStateDirty));
      expected_ops.push_back(PlanOps(dirty, zero, source->size()));
    } else {
      expected_ops.push_back(std::nullopt);
    }
    auto* msg = request.add_disks();
    msg->set_target(disk.target);
    msg->set_replica_path(disk.path);
    msg->set_format(disk.format);
    msg->set_virtual_size(source->size());
    msg->set_source_uri(backup.ExportUri(disk.target));
    msg->set_mode(plan.modes[i]);
    if (incremental) msg->set_dirty_context(dirty_context);
    if (plan.modes[i] == virtshadow::v1::ROUND_MODE_RESYNC) {
      VS_ASSIGN_OR_RETURN(auto digests, DigestAllBlocks(*source, kPreferredBlockDigest, zero));
      msg->mutable_source_digests()->Add(digests.begin(), digests.end());
    }
    sources.push_back(std::move(source));
    zero_blocks.push_back(std::move(zero));
  }
  const MonoTime copying = clock_.Now();
  // This host reads the blocks it expects while the shadow host copies them: the export is a frozen point-in-time
  // view, so reading it now gives the bytes reading it after the answer would, and the read no longer adds to
  // the round (0.7 s of a 512 MiB round here). Each device is used by this thread only until it is joined, which
  // the jthread does on every path out of this function, before the devices go.
  std::vector<StatusOr<std::vector<uint64_t>>> expected_digests(sources.size(), Internal("not read"));
  std::atomic<bool> answer_failed = false;
  std::jthread reader([&] {
    for (size_t i = 0; i < sources.size(); ++i) {
      if (expected_ops[i]) {
        expected_digests[i] = DigestOpsUnless(answer_failed, *sources[i], *expected_ops[i], zero_blocks[i]);
      }
    }
  });
  StatusOr<virtshadow::v1::ApplyRoundReply> answer = peer_.ApplyRound(target.shadow_host, request);
  const MonoTime verifying = clock_.Now();
  // A refused or failed copy needs no reading: the rest of a seed's could take minutes.
  if (!answer.ok()) answer_failed = true;
  reader.join();
  VS_RETURN_IF_ERROR(answer.status());
  const virtshadow::v1::ApplyRoundReply& reply = *answer;

  // Verify every block the shadow host wrote against this host's own reading of the export.
  virtshadow::v1::RoundSteps steps = round.steps();
  std::vector<uint64_t> all_digests;
  uint64_t bytes_sent = 0, bytes_zeroed = 0, changed = 0;
  std::string mismatch;
  if (reply.disks_size() != request.disks_size()) {
    return DataLoss(target.shadow_host + " answered for " + std::to_string(reply.disks_size()) + " of " +
                    std::to_string(request.disks_size()) + " disks of " + target.vm_name);
  }
  for (int i = 0; i < reply.disks_size(); ++i) {
    const auto& result = reply.disks(i);
    if (result.target() != request.disks(i).target()) {
      return DataLoss(target.shadow_host + " answered for disk " + result.target() + " instead of " +
                      request.disks(i).target());
    }
    BlockDevice& source = *sources[i];
    VS_ASSIGN_OR_RETURN(std::vector<BlockOp> ops, OpsFromReply(result, source.size()));
    // In the kind the shadow host used: one of an earlier version ignores the request's and uses SHA-1.
    VS_ASSIGN_OR_RETURN(BlockDigestKind kind, BlockDigestKindOf(result.block_digest()));
    // A full or incremental disk must come back with exactly the blocks the export's maps call for: a shadow host
    // that left one out would otherwise have its round verified on the blocks it chose, and committed incomplete.
    if (expected_ops[i] && Covered(*expected_ops[i]) != Covered(ops)) {
      const OpTotals expected = Totals(*expected_ops[i]), reported = Totals(ops);
      mismatch += (mismatch.empty() ? "" : "; ") + result.target() + ": the export's maps call for " +
                  std::to_string(expected.copy_bytes + expected.zero_bytes) + " bytes of blocks, " +
                  target.shadow_host + " reported " + std::to_string(reported.copy_bytes + reported.zero_bytes);
      continue;
    }
    // The reading made during the copy counts when it was of those blocks in that kind; otherwise (a resync, an
    // older host's SHA-1, a failed read) this host reads them now.
    const bool read_during_copy = expected_ops[i] && kind == kPreferredBlockDigest && expected_digests[i].ok();
    VS_ASSIGN_OR_RETURN(auto ours, read_during_copy ? std::move(expected_digests[i])
                                                    : DigestOps(source, kind, ops, zero_blocks[i]));
    const std::vector<uint64_t> theirs(result.digests().begin(), result.digests().end());
    if (ours != theirs) {
      mismatch += (mismatch.empty() ? "" : "; ") + result.target() + ": " + std::to_string(ours.size()) +
                  " block digests here, " + std::to_string(theirs.size()) + " on " + target.shadow_host;
      for (size_t b = 0; b < std::min(ours.size(), theirs.size()); ++b) {
        if (ours[b] != theirs[b]) { mismatch += ", first difference at block " + std::to_string(b) + " of the round"; break; }
      }
    }
    all_digests.insert(all_digests.end(), theirs.begin(), theirs.end());
    const OpTotals totals = Totals(ops);
    steps.set_shadow_open_ms(steps.shadow_open_ms() + result.open_ms());
    steps.set_shadow_transfer_ms(steps.shadow_transfer_ms() + result.transfer_ms());
    steps.set_shadow_read_back_ms(steps.shadow_read_back_ms() + result.read_back_ms());
    bytes_sent += result.bytes_sent();
    bytes_zeroed += totals.zero_bytes;
    changed += totals.copy_bytes + totals.zero_bytes;
  }
  virtshadow::v1::FinishRoundRequest finish;
  finish.set_vm_uuid(target.vm_uuid);
  finish.set_checkpoint(round.checkpoint());
  if (!mismatch.empty()) {
    finish.set_commit(false);
    Status discarded = peer_.FinishRound(target.shadow_host, finish);
    return DataLoss("round " + round.checkpoint() + " of " + target.vm_name + " was discarded: the replica's " +
                    "digests differ from the source's (" + mismatch + ")" +
                    (discarded.ok() ? "" : "; discarding failed: " + discarded.message()));
  }
  AppliedRound applied = round;
  RoundMode mode = virtshadow::v1::ROUND_MODE_INCREMENTAL;
  for (RoundMode m : plan.modes) {
    if (m == virtshadow::v1::ROUND_MODE_FULL) mode = m;
    if (m == virtshadow::v1::ROUND_MODE_RESYNC && mode != virtshadow::v1::ROUND_MODE_FULL) mode = m;
  }
  applied.set_mode(mode);
  applied.set_bytes_sent(bytes_sent);
  applied.set_bytes_zeroed(bytes_zeroed);
  applied.set_changed_bytes(changed);
  applied.set_digest(FoldDigests(all_digests));
  const MonoTime verified = clock_.Now();
  steps.set_connect_ms(ToMillis(copying - connecting));
  steps.set_copy_ms(ToMillis(verifying - copying));
  steps.set_verify_ms(ToMillis(verified - verifying));
  *applied.mutable_steps() = steps;
  applied.set_duration_ms(ToMillis(verified - started));
  finish.set_commit(true);
  *finish.mutable_round() = applied;
  VS_RETURN_IF_ERROR(peer_.FinishRound(target.shadow_host, finish));
  applied.mutable_steps()->set_commit_ms(ToMillis(clock_.Now() - verified));
  applied.set_applied_unix_ms(ToUnixMillis(clock_.WallNow()));
  return applied;
}

StatusOr<VerifyReport> Replicator::Verify(const ReplicationTarget& target, uint16_t export_port) {
  VS_ASSIGN_OR_RETURN(ReplicationRecord record, Record(target.vm_uuid));
  if (record.applied().taken_unix_ms() == 0) {
    return FailedPrecondition(target.vm_name + " has no applied round yet: nothing to verify against");
  }
  bool hides = false;
  VS_ASSIGN_OR_RETURN(auto disks, ReplicatedDisks(target.vm_name, &hides));
  VS_RETURN_IF_ERROR(EndOurBackup(target.vm_name));
  const std::string& checkpoint = record.applied().checkpoint();
  if (hides && !checkpoint.empty()) {
    Status known = local_.RedefineCheckpoint(target.vm_name, checkpoint, BitmapTargets(disks));
    if (!known.ok() && known.code() != Code::kAlreadyExists) return WithContext(known, "verify of " + target.vm_name);
  }
  virt::PullBackupRequest backup;
  backup.domain = target.vm_name;
  backup.listen_address = options_.nbd_address;
  backup.port = export_port;
  backup.tls = options_.nbd_tls;
  backup.incremental_from = checkpoint;  // no new checkpoint: the chain is not touched
  for (const Disk& disk : disks) {
    backup.disks.push_back({disk.target, disk.path, /*join_checkpoint=*/false, disk.bitmaps && !checkpoint.empty()});
  }
  StatusOr<BackupSession> session = BackupSession::Begin(local_, std::move(backup));
  if (hides) {
    Status hidden = HideCheckpoints(target.vm_name);  // also after a failed start
    if (!hidden.ok() && session.ok()) return WithContext(hidden, "verify of " + target.vm_name);
  }
  if (!session.ok()) return WithContext(session.status(), "verify of " + target.vm_name);
  StatusOr<VerifyReport> report = CompareReplica(target, disks, checkpoint, *session);
  if (!report.ok()) return report;
  VS_RETURN_IF_ERROR(session->Finish());
  return report;
}

StatusOr<VerifyReport> Replicator::CompareReplica(const ReplicationTarget& target, const std::vector<Disk>& disks,
                                                  const std::string& checkpoint, const BackupSession& backup) {
  VerifyReport out;
  out.checkpoint = checkpoint;
  for (const Disk& disk : disks) {
    std::vector<std::string> contexts = {std::string(kAllocationContext)};
    const bool incremental = disk.bitmaps && !checkpoint.empty();
    if (incremental) contexts.push_back(std::string(kDirtyContextPrefix) + disk.target);
    VS_ASSIGN_OR_RETURN(auto source, storage_.ConnectExport(backup.ExportUri(disk.target), contexts));
    const uint64_t size = source->size();
    VS_ASSIGN_OR_RETURN(auto allocation, source->Map(kAllocationContext));
    VS_ASSIGN_OR_RETURN(auto zero, ZeroBlocks(allocation, size));
    std::vector<bool> changed(BlockCount(size), false);
    if (incremental) {
      VS_ASSIGN_OR_RETURN(auto dirty, source->Map(contexts[1]));
      VS_ASSIGN_OR_RETURN(changed, BlocksWithFlag(dirty, size, kNbdStateDirty));
    }
    virtshadow::v1::ReplicaDigestsRequest request;
    request.set_vm_uuid(target.vm_uuid);
    request.set_replica_path(disk.path);
    request.set_format(disk.format);
    request.set_block_digest(static_cast<virtshadow::v1::BlockDigest>(kPreferredBlockDigest));
    VS_ASSIGN_OR_RETURN(auto reply, peer_.ReplicaDigests(target.shadow_host, request));
    VS_ASSIGN_OR_RETURN(BlockDigestKind kind, BlockDigestKindOf(reply.block_digest()));
    VS_ASSIGN_OR_RETURN(auto ours, DigestAllBlocks(*source, kind, zero));
    const std::vector<uint64_t> theirs(reply.digests().begin(), reply.digests().end());
    DiskVerification result{disk.target, disk.path};
    std::vector<bool> bad(ours.size(), false);
    if (theirs.size() != ours.size()) {
      result.mismatches = "the replica has " + std::to_string(reply.size()) + " bytes, the source " + std::to_string(size);
      result.blocks_mismatched = ours.size();
    } else {
      for (size_t b = 0; b < ours.size(); ++b) {
        if (changed[b]) { ++result.blocks_changed_since; continue; }
        ++result.blocks_compared;
        if (ours[b] != theirs[b]) { bad[b] = true; ++result.blocks_mismatched; }
      }
      result.mismatches = DescribeBlocks(bad, size);
    }
    out.disks.push_back(std::move(result));
  }
  return out;
}

}  // namespace vs::replication
