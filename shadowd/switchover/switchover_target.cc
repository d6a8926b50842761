#include "shadowd/switchover/switchover_target.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "shadowd/controller/shadow_domain_xml.h"
#include "shadowd/switchover/disk_layers.h"
#include "shadowd/switchover/nova_arrival.h"
#include "shadowd/cluster/domain_scan.h"
#include "shadowd/policy/domain_xml.h"
#include "shadowd/replication/replicator.h"
#include "shadowd/store/keys.h"
#include "shadowd/policy/top_path.h"

namespace vs::switchover {

namespace v1 = virtshadow::v1;

namespace {

// How long the flatten keeps retrying while something still holds the disk (libvirt lets go of the incoming
// migration's storage job a moment after the migration ends). Past it the completion fails and is retried
// later as a whole: the switchover is not Done while the VM runs on a top.
constexpr Duration kFlattenGiveUp = std::chrono::seconds(30);


std::vector<std::string> BasePaths(const google::protobuf::RepeatedPtrField<v1::SwitchoverDisk>& disks) {
  std::vector<std::string> paths;
  for (const auto& disk : disks) paths.push_back(disk.base_path());
  return paths;
}

// Tops must be "<base>.vs-top-<tag>": the only files a peer may ask this host to create or delete.
Status CheckTops(const google::protobuf::RepeatedPtrField<v1::SwitchoverDisk>& disks) {
  for (const auto& disk : disks) {
    if (disk.base_path().empty() || !policy::IsTopPath(disk.top_path()) ||
        policy::BasePathOf(disk.top_path()) != disk.base_path()) {
      return InvalidArgument("switchover disk " + disk.target() + ": top '" + disk.top_path() +
                             "' must be its base path plus .vs-top-<letters and digits>");
    }
  }
  return Status::Ok();
}

bool PostcopyReady() {
  std::ifstream in("/proc/sys/vm/unprivileged_userfaultfd");
  int value = 0;
  return (in >> value) && value == 1;
}

}  // namespace

SwitchoverTarget::SwitchoverTarget(virt::Hypervisor& local, replication::ReplicaKeeper& keeper, ArrivalRecords& arrivals,
                                   DrainState& drain, replication::RoundScheduler& rounds, const nbd::ImageTool& images,
                                   std::string this_host, Clock& clock, std::function<void(const std::string&)> log,
                                   std::function<bool()> postcopy_ready)
    : local_(local), keeper_(keeper), arrivals_(arrivals), drain_(drain), rounds_(rounds), this_host_(std::move(this_host)),
      clock_(clock), log_(std::move(log)), images_(images),
      postcopy_ready_(postcopy_ready ? std::move(postcopy_ready) : std::function<bool()>(PostcopyReady)) {}

v1::HostStateReply SwitchoverTarget::HostState() const {
  v1::HostStateReply reply;
  if (auto drain = drain_.Current()) {
    reply.set_draining(true);
    reply.set_drain_deadline_unix_ms(drain->deadline_unix_ms());
    reply.set_drain_reason(drain->source() + " " + drain->kind() + (drain->detail().empty() ? "" : ": " + drain->detail()));
  }
  return reply;
}

StatusOr<v1::CheckSwitchoverReply> SwitchoverTarget::Check(const v1::CheckSwitchoverRequest& request) {
  v1::CheckSwitchoverReply reply;
  auto problem = [&](std::string text) { reply.add_problems(this_host_ + ": " + std::move(text)); };

  VS_ASSIGN_OR_RETURN(auto shadow, cluster::FindShadowOf(local_, this_host_, request.vm_uuid()));
  if (!shadow) {
    problem("no shadow of VM " + request.vm_uuid() + " is defined here (its capacity is not reserved)");
  } else {
    VS_ASSIGN_OR_RETURN(virt::DomainState state, local_.GetDomainState(shadow->shadow_name));
    reply.set_shadow_defined(state == virt::DomainState::kShutoff);
    if (state != virt::DomainState::kShutoff) {
      problem("shadow " + shadow->shadow_name + " is " + std::string(virt::DomainStateName(state)) + ", not shut off");
    }
  }
  // The VM's primary is about to move it: a round a crash or a lost primary left pending is settled now (a copied
  // one is discarded, a committing one finished), so that the check sees the round the replica is really at.
  VS_RETURN_IF_ERROR(keeper_.Settle(request.vm_uuid()));
  v1::GetReplicaRequest get;
  get.set_vm_uuid(request.vm_uuid());
  VS_ASSIGN_OR_RETURN(auto replica, keeper_.GetReplica(get));
  reply.set_replica_known(replica.known());
  *reply.mutable_replica() = replica.record();
  if (!replica.known()) {
    problem("no replica of VM " + request.vm_uuid() + " has been applied here yet");
  } else if (replica.record().phase() != v1::ReplicaRecord::PHASE_IDLE) {
    problem("a replication round of VM " + request.vm_uuid() + " is still pending here");
  }
  for (const auto& missing : replica.missing_replicas()) problem("replica " + missing + " is missing");
  reply.set_postcopy_ready(postcopy_ready_());
  if (!reply.postcopy_ready()) problem("vm.unprivileged_userfaultfd is not 1: QEMU cannot use postcopy here");
  if (auto drain = drain_.Current()) {
    reply.set_draining(true);
    problem("this host is draining itself (" + drain->source() + " " + drain->kind() + ")");
  }
  VS_ASSIGN_OR_RETURN(virt::NodeCapacity capacity, local_.GetNodeCapacity());
  const uint64_t free_kib = capacity.memory_kib > capacity.running_memory_kib
                                ? capacity.memory_kib - capacity.running_memory_kib : 0;
  reply.set_capacity_ok(free_kib >= request.memory_kib());
  if (!reply.capacity_ok()) {
    problem("only " + std::to_string(free_kib / 1024) + " MiB of memory are free, the VM needs " +
            std::to_string(request.memory_kib() / 1024) + " MiB");
  }
  return reply;
}

Status SwitchoverTarget::Prepare(const v1::PrepareSwitchoverRequest& request) {
  if (!request.nova_instance_dir().empty()) {
    VS_RETURN_IF_ERROR(CheckNovaInstanceDir(request));
    // An earlier Prepare of this VM set the directory aside: back first, so the replicas are where they belong.
    VS_RETURN_IF_ERROR(RestoreStash(request.nova_instance_dir()));
  }
  if (request.fallback()) return PrepareFallback(request);
  VS_RETURN_IF_ERROR(CheckTops(request.disks()));
  VS_RETURN_IF_ERROR(cluster::CheckShadowOwnsReplicas(local_, this_host_, request.vm_uuid(), BasePaths(request.disks())));
  VS_ASSIGN_OR_RETURN(auto shadow, cluster::FindShadowOf(local_, this_host_, request.vm_uuid()));
  if (!shadow) return NotFound("the shadow of VM " + request.vm_uuid() + " went from " + this_host_ + " meanwhile");
  // Recorded before any top exists, so that an Abort after a Prepare that failed half-way finds what to delete.
  v1::SwitchoverRecord prepared;
  prepared.set_vm_uuid(request.vm_uuid());
  prepared.set_vm_name(shadow->primary_name);
  prepared.set_source_host(shadow->primary_host);
  prepared.set_target_host(this_host_);
  *prepared.mutable_disks() = request.disks();
  *prepared.mutable_source_checkpoints() = request.source_checkpoints();
  prepared.set_nova_instance_dir(request.nova_instance_dir());
  VS_RETURN_IF_ERROR(arrivals_.RecordPrepared(std::move(prepared)));
  for (const auto& disk : request.disks()) {
    if (!std::filesystem::exists(disk.base_path())) {
      return FailedPrecondition("replica " + disk.base_path() + " does not exist on " + this_host_);
    }
    VS_RETURN_IF_ERROR(DeleteUnlessUsed(disk.top_path()));  // a stale top of an earlier attempt
    VS_RETURN_IF_ERROR(images_.CreateOverlay(disk.top_path(), disk.base_path(), disk.format())
                           .Annotate("creating the switchover top on " + this_host_));
  }
  return StashForNova(request.nova_instance_dir());
}

Status SwitchoverTarget::CheckNovaInstanceDir(const v1::PrepareSwitchoverRequest& request) const {
  std::vector<std::string> bases;
  for (const auto& disk : request.disks()) bases.push_back(disk.base_path());
  VS_ASSIGN_OR_RETURN(std::string dir, InstanceDirOf(bases));
  if (dir != request.nova_instance_dir()) {
    return InvalidArgument("the VM's disks are in " + dir + ", not in the Nova instance directory " +
                           request.nova_instance_dir() + " named by the switchover");
  }
  return Status::Ok();
}

Status SwitchoverTarget::StashForNova(const std::string& instance_dir) {
  if (instance_dir.empty()) return Status::Ok();
  VS_RETURN_IF_ERROR(StashInstanceDir(instance_dir).Annotate("setting the shadow's files aside for Nova on " +
                                                             this_host_));
  log_("set " + instance_dir + " aside as " + StashedPathOf(instance_dir) +
       " for Nova's live migration (moved back when the migration arrives)");
  return Status::Ok();
}

Status SwitchoverTarget::OnIncomingMigration(const std::string& vm_uuid) {
  VS_ASSIGN_OR_RETURN(std::optional<v1::SwitchoverRecord> prepared, arrivals_.PreparedOf(vm_uuid));
  if (!prepared || prepared->finished_unix_ms() != 0 || prepared->nova_instance_dir().empty()) return Status::Ok();
  // The fallback migration brings the whole disk: Nova's files are the right ones then.
  if (prepared->fallback()) return Status::Ok();
  VS_RETURN_IF_ERROR(MoveStashInto(prepared->nova_instance_dir())
                         .Annotate("putting the replicas and tops of VM " + vm_uuid + " in place of Nova's files"));
  log_("the migration of " + prepared->vm_name() + " arrives: its replicas and tops are in " +
       prepared->nova_instance_dir() + " in place of the files Nova made");
  return Status::Ok();
}

Status SwitchoverTarget::PrepareFallback(const v1::PrepareSwitchoverRequest& request) {
  v1::GetReplicaRequest get;
  get.set_vm_uuid(request.vm_uuid());
  VS_ASSIGN_OR_RETURN(auto replica, keeper_.GetReplica(get));
  if (!replica.known()) {
    return FailedPrecondition("no replica of VM " + request.vm_uuid() + " is kept on " + this_host_ +
                              ": nothing to migrate onto");
  }
  // The VM's own shadow, shut off, uses no image: its disks are these replicas, kept for this very migration (it
  // is undefined when the switchover completes). Any other domain is a user, and so is the shadow when it runs.
  VS_ASSIGN_OR_RETURN(std::vector<cluster::ScannedDomain> domains, cluster::ScanDomains(local_, this_host_));
  v1::SwitchoverRecord prepared;
  prepared.set_vm_uuid(request.vm_uuid());
  prepared.set_target_host(this_host_);
  prepared.set_fallback(true);
  prepared.set_source_host(replica.record().primary_host());
  *prepared.mutable_disks() = request.disks();  // their bases are checked below; an Abort names the same
  if (std::optional<controller::PeerShadow> shadow = cluster::ShadowOf(domains, request.vm_uuid())) {
    prepared.set_source_host(shadow->primary_host);
    VS_ASSIGN_OR_RETURN(virt::DomainState state, local_.GetDomainState(shadow->shadow_name));
    if (state == virt::DomainState::kShutoff) {
      std::erase_if(domains, [&](const cluster::ScannedDomain& domain) { return domain.name == shadow->shadow_name; });
    }
  }
  for (const auto& disk : request.disks()) {
    const auto& kept = replica.record().disks();
    const bool ours = std::any_of(kept.begin(), kept.end(), [&](const v1::ReplicaDisk& replica_disk) {
      return replica_disk.replica_path() == disk.base_path();
    });
    if (!ours) {
      return FailedPrecondition(disk.base_path() + " on " + this_host_ + " is not a replica of VM " +
                                request.vm_uuid() + "; not touching it");
    }
    if (disk.format() != "qcow2") continue;  // only qcow2 keeps bitmaps
    const std::optional<std::string> user =
        cluster::DomainUsing(domains, disk.base_path(), cluster::ShadowsCount::kYes);
    if (user) {
      return FailedPrecondition(disk.base_path() + " on " + this_host_ + " is in use by domain " + *user +
                                "; the fallback migration cannot write onto it");
    }
    VS_ASSIGN_OR_RETURN(nbd::ImageFacts facts, images_.Info(disk.base_path()));
    for (const std::string& bitmap : facts.bitmaps) {
      if (!bitmap.starts_with(replication::kCheckpointPrefix)) continue;  // not virt-shadow's
      VS_RETURN_IF_ERROR(images_.RemoveBitmap(disk.base_path(), bitmap)
                             .Annotate("preparing " + this_host_ + " for the fallback migration"));
      log_("removed bitmap " + bitmap + " from the replica " + disk.base_path() +
           " before the fallback migration (the migrated VM brings its own)");
    }
  }
  prepared.set_nova_instance_dir(request.nova_instance_dir());
  VS_RETURN_IF_ERROR(arrivals_.RecordPrepared(std::move(prepared)));
  return StashForNova(request.nova_instance_dir());
}

StatusOr<v1::SwitchoverRecord> SwitchoverTarget::PreparedFor(
    const std::string& vm_uuid, const google::protobuf::RepeatedPtrField<v1::SwitchoverDisk>& disks) const {
  VS_ASSIGN_OR_RETURN(std::optional<v1::SwitchoverRecord> prepared, arrivals_.PreparedOf(vm_uuid));
  if (!prepared) {
    return FailedPrecondition("no switchover of VM " + vm_uuid + " was prepared on " + this_host_ +
                              " (PrepareSwitchover first; an aborted one is forgotten)");
  }
  for (const auto& disk : disks) {
    const bool named = std::any_of(prepared->disks().begin(), prepared->disks().end(), [&](const v1::SwitchoverDisk& ours) {
      return ours.base_path() == disk.base_path() && ours.top_path() == disk.top_path();
    });
    if (!named) {
      return FailedPrecondition("switchover disk " + disk.target() + " (" + disk.top_path() + ") of VM " + vm_uuid +
                              " is not one " + this_host_ + " prepared; not touching it");
    }
  }
  return *prepared;
}

Status SwitchoverTarget::CheckRunsHere(const std::string& vm_uuid, const std::string& vm_name) {
  VS_ASSIGN_OR_RETURN(std::string xml, local_.GetDomainXml(vm_name));
  VS_ASSIGN_OR_RETURN(policy::DomainFacts facts, policy::ParseDomain(xml));
  if (facts.uuid != vm_uuid) {
    return FailedPrecondition("domain " + vm_name + " on " + this_host_ + " is " + facts.uuid + ", not VM " + vm_uuid +
                            ": the switchover completes only the VM it moved");
  }
  return Status::Ok();
}

Status SwitchoverTarget::Complete(const v1::CompleteSwitchoverRequest& request) {
  VS_RETURN_IF_ERROR(CheckTops(request.disks()));
  VS_ASSIGN_OR_RETURN(v1::SwitchoverRecord prepared, PreparedFor(request.vm_uuid(), request.disks()));
  // Completed already: the origin retries (its shadowd restarted, or its call timed out while this one went on).
  if (prepared.finished_unix_ms() != 0) return Status::Ok();
  VS_RETURN_IF_ERROR(CheckRunsHere(request.vm_uuid(), request.vm_name()));
  if (!request.guest_failed().empty()) {
    // The guest arrived but shows no progress: nothing is changed (no flatten, the shadow's definition
    // stays, the source keeps its copy); it is remembered, reported and never moved again as if healthy.
    log_(request.vm_name() + " arrived from " + request.origin_host() + " but its guest makes no progress: " +
         request.guest_failed());
    VS_RETURN_IF_ERROR(arrivals_.RecordGuestFailure(request.vm_uuid(), request.vm_name(), request.origin_host(),
                                                    request.guest_failed()));
    return arrivals_.RecordCompleted(std::move(prepared));  // this switchover ends here
  }
  VS_RETURN_IF_ERROR(arrivals_.RecordOrigin(request.vm_uuid(), request.vm_name(), request.origin_host(),
                                            v1::OriginRecord::ARRIVAL_SWITCHOVER, "a switchover"));

  // The shadow's images are the VM's now: only its definition goes.
  VS_ASSIGN_OR_RETURN(auto shadow, cluster::FindShadowOf(local_, this_host_, request.vm_uuid()));
  if (shadow) VS_RETURN_IF_ERROR(local_.UndefineDomain(shadow->shadow_name).Annotate("undefining the used shadow"));

  // The arrived VM runs on its tops until they are flattened. No round of this host may hold its disks
  // meanwhile (a round refuses a VM on a top anyway; one that began earlier is waited for).
  rounds_.Hold(request.vm_uuid());
  (void)rounds_.Quiesce(request.vm_uuid()).get();  // an error only says the VM is not scheduled here yet
  Status flattened = FlattenTops(local_, request.vm_name(), clock_, kFlattenGiveUp);
  if (flattened.ok()) DiscardForeignBitmaps(request);  // before a round of this host makes its own
  rounds_.Unhold(request.vm_uuid());
  VS_RETURN_IF_ERROR(flattened.Annotate("completing the switchover of " + request.vm_name() + " on " + this_host_));
  for (const auto& disk : request.disks()) VS_RETURN_IF_ERROR(DeleteUnlessUsed(disk.top_path()));
  // After a fallback, Nova's block migration brought the whole disk: the replicas set aside are stale copies.
  if (prepared.fallback() && !prepared.nova_instance_dir().empty()) {
    VS_RETURN_IF_ERROR(DiscardStash(prepared.nova_instance_dir()));
  }
  return arrivals_.RecordCompleted(std::move(prepared));
}

StatusOr<int> SwitchoverTarget::CompleteLeftBehind(const std::string& gone_host) {
  VS_ASSIGN_OR_RETURN(std::vector<v1::SwitchoverRecord> unfinished, arrivals_.UnfinishedFrom(gone_host));
  int completed = 0;
  Status first_error;
  for (const v1::SwitchoverRecord& record : unfinished) {
    if (record.vm_name().empty()) continue;  // prepared by an older version, which did not keep it
    auto state = local_.GetDomainState(record.vm_name());
    if (!state.ok() || *state != virt::DomainState::kRunning) continue;
    v1::CompleteSwitchoverRequest request;
    request.set_vm_uuid(record.vm_uuid());
    request.set_vm_name(record.vm_name());
    request.set_origin_host(gone_host);
    *request.mutable_disks() = record.disks();
    *request.mutable_source_checkpoints() = record.source_checkpoints();
    log_(record.vm_name() + " runs here on the tops of its switchover from " + gone_host +
         ", which left the cluster before completing it: completing it here");
    Status done = Complete(request);
    if (done.ok()) {
      ++completed;
    } else if (first_error.ok()) {
      first_error = done;
    }
  }
  if (!first_error.ok()) return first_error;
  return completed;
}

Status SwitchoverTarget::Abort(const v1::AbortSwitchoverRequest& request) {
  VS_RETURN_IF_ERROR(CheckTops(request.disks()));
  VS_ASSIGN_OR_RETURN(std::optional<v1::SwitchoverRecord> any, arrivals_.PreparedOf(request.vm_uuid()));
  // Nothing prepared here, aborted already, or completed (its tops flattened and gone): nothing to delete.
  if (!any || any->finished_unix_ms() != 0) return Status::Ok();
  VS_RETURN_IF_ERROR(PreparedFor(request.vm_uuid(), request.disks()).status());
  // A Nova rollback removes the instance directory Nova made here; whatever was moved into it goes with it, and
  // the next round seeds the replica again.
  if (!any->nova_instance_dir().empty()) VS_RETURN_IF_ERROR(RestoreStash(any->nova_instance_dir()));
  for (const auto& disk : request.disks()) VS_RETURN_IF_ERROR(DeleteUnlessUsed(disk.top_path()));
  return arrivals_.ForgetPrepared(request.vm_uuid());
}

void SwitchoverTarget::DiscardForeignBitmaps(const v1::CompleteSwitchoverRequest& request) {
  auto fail = [&](const Status& status) { log_("bitmaps of " + request.vm_name() + ": " + status.ToString()); };
  auto checkpoints = local_.ListCheckpoints(request.vm_name());
  if (!checkpoints.ok()) return fail(checkpoints.status());
  // The VM's disks as it runs now (after the flatten, on its usual paths; a fallback sends no disk list).
  auto xml = local_.GetDomainXml(request.vm_name());
  if (!xml.ok()) return fail(xml.status());
  auto facts = policy::ParseDomain(*xml);
  if (!facts.ok()) return fail(facts.status());
  for (const policy::DiskFacts& disk : facts->disks) {
    if (disk.format != "qcow2" || disk.source_kind != policy::DiskFacts::SourceKind::kFile) continue;
    // Two places hold foreign bitmaps: the image file (bitmaps stored when a QEMU closed it, e.g. when the VM
    // left this host before), and the running QEMU's memory (the bitmaps that came along with the migration:
    // they reach the file only when this QEMU closes it, so qemu-img cannot see them). The source named the
    // latter: its checkpoints.
    std::set<std::string> candidates(request.source_checkpoints().begin(), request.source_checkpoints().end());
    if (auto image = images_.Info(disk.source_path); image.ok()) {
      candidates.insert(image->bitmaps.begin(), image->bitmaps.end());
    } else {
      fail(image.status());
    }
    for (const std::string& bitmap : candidates) {
      if (!bitmap.starts_with(replication::kCheckpointPrefix) ||
          std::find(checkpoints->begin(), checkpoints->end(), bitmap) != checkpoints->end()) {
        continue;  // not virt-shadow's, or this host's own
      }
      Status discarded = local_.DiscardForeignBitmap(request.vm_name(), disk.target_dev, bitmap);
      log_("removing bitmap " + bitmap + " (left by an earlier host) from " + disk.source_path + ": " +
           (discarded.ok() ? "done" : discarded.ToString()));
    }
  }
}

Status SwitchoverTarget::DeleteUnlessUsed(const std::string& path) {
  if (!std::filesystem::exists(path)) return Status::Ok();
  VS_ASSIGN_OR_RETURN(std::optional<std::string> user, DomainUsingPath(local_, path));
  if (user) return FailedPrecondition(path + " on " + this_host_ + " is in use by domain " + *user + "; not deleting it");
  std::error_code ec;
  std::filesystem::remove(path, ec);
  if (ec) return Internal("deleting " + path + " on " + this_host_ + ": " + ec.message());
  return Status::Ok();
}

}  // namespace vs::switchover
