#include "shadowd/switchover/libvirt_switchover_steps.h"

#include <filesystem>

#include "shadowd/policy/domain_xml.h"
#include "shadowd/switchover/disk_layers.h"
#include "shadowd/switchover/nova_arrival.h"
#include "shadowd/policy/top_path.h"

namespace vs::switchover {

namespace v1 = virtshadow::v1;

namespace {

// How close to the deadline the postcopy switch is forced whatever the plan said: the remaining RAM
// then crosses on demand, which is the fastest way to finish.
constexpr Duration kDeadlineGuard = std::chrono::seconds(5);
// How long a pending flatten found at the start of a switchover may take before the switchover refuses.
constexpr Duration kRepairGiveUp = std::chrono::seconds(30);
// The guest check: a guest that did I/O here (or whose agent answered) must show progress on the target within
// kGuestBound; one that showed nothing here is looked at for kIdleGuestBound only (it can only end "alive" or
// "unverifiable"). The agent gets kAgentTimeout per ping.
constexpr Duration kGuestBound = std::chrono::seconds(20);
constexpr Duration kIdleGuestBound = std::chrono::seconds(2);
constexpr Duration kGuestSampleInterval = std::chrono::milliseconds(500);
constexpr std::chrono::seconds kAgentTimeout{1};
// How long a rollback waits for a disk to be free of the failed migration's jobs.
constexpr Duration kRollBackFlattenGiveUp = std::chrono::seconds(30);

// What the target prepares: the VM, its disks with their tops, and the source's checkpoints (for a completion the
// target may have to do alone). Callers add the fallback flag or the Nova instance directory.
v1::PrepareSwitchoverRequest PrepareRequestFor(const SwitchoverRecord& record) {
  v1::PrepareSwitchoverRequest request;
  request.set_vm_uuid(record.vm_uuid());
  *request.mutable_disks() = record.disks();
  *request.mutable_source_checkpoints() = record.source_checkpoints();
  return request;
}

// The guest observation as the record keeps it (proto/switchover.proto's GuestObservation), and back.
v1::GuestActivitySample ToProto(const virt::GuestActivity& activity) {
  v1::GuestActivitySample sample;
  sample.set_block_read_requests(activity.block_read_requests);
  sample.set_block_write_requests(activity.block_write_requests);
  sample.set_block_read_bytes(activity.block_read_bytes);
  sample.set_block_write_bytes(activity.block_write_bytes);
  sample.set_net_rx_packets(activity.net_rx_packets);
  sample.set_net_tx_packets(activity.net_tx_packets);
  switch (activity.agent) {
    case virt::AgentPing::kNoChannel: sample.set_agent(v1::GUEST_AGENT_PING_NO_CHANNEL); break;
    case virt::AgentPing::kAnswered: sample.set_agent(v1::GUEST_AGENT_PING_ANSWERED); break;
    case virt::AgentPing::kSilent: sample.set_agent(v1::GUEST_AGENT_PING_SILENT); break;
    case virt::AgentPing::kNotAsked: sample.set_agent(v1::GUEST_AGENT_PING_NOT_ASKED); break;
  }
  sample.set_agent_error(activity.agent_error);
  return sample;
}

virt::GuestActivity FromProto(const v1::GuestActivitySample& sample) {
  virt::GuestActivity activity;
  activity.block_read_requests = sample.block_read_requests();
  activity.block_write_requests = sample.block_write_requests();
  activity.block_read_bytes = sample.block_read_bytes();
  activity.block_write_bytes = sample.block_write_bytes();
  activity.net_rx_packets = sample.net_rx_packets();
  activity.net_tx_packets = sample.net_tx_packets();
  switch (sample.agent()) {
    case v1::GUEST_AGENT_PING_NO_CHANNEL: activity.agent = virt::AgentPing::kNoChannel; break;
    case v1::GUEST_AGENT_PING_ANSWERED: activity.agent = virt::AgentPing::kAnswered; break;
    case v1::GUEST_AGENT_PING_SILENT: activity.agent = virt::AgentPing::kSilent; break;
    default: activity.agent = virt::AgentPing::kNotAsked; break;
  }
  activity.agent_error = sample.agent_error();
  return activity;
}

v1::GuestObservation ToProto(const SourceObservation& observation) {
  v1::GuestObservation kept;
  kept.set_host(observation.host);
  *kept.mutable_first() = ToProto(observation.first);
  *kept.mutable_second() = ToProto(observation.second);
  kept.set_window_ms(ToMillis(observation.window));
  return kept;
}

SourceObservation FromProto(const v1::GuestObservation& kept) {
  return {.host = kept.host(), .first = FromProto(kept.first()), .second = FromProto(kept.second()),
          .window = std::chrono::milliseconds(kept.window_ms())};
}

v1::AbortSwitchoverRequest AbortRequestFor(const SwitchoverRecord& record) {
  v1::AbortSwitchoverRequest abort;
  abort.set_vm_uuid(record.vm_uuid());
  *abort.mutable_disks() = record.disks();
  return abort;
}

}  // namespace

LibvirtSwitchoverSteps::LibvirtSwitchoverSteps(cluster::ClusterHosts hosts, Settings settings,
                                               virt::LibvirtRuntime& runtime, virt::Hypervisor& local,
                                               SwitchoverPeer& peer, replication::RoundScheduler& rounds,
                                               WarmUpGate& warm_up, Clock& clock, SwitchedCallback on_switched,
                                               NovaMover* nova)
    : hosts_(std::move(hosts)), settings_(settings), runtime_(runtime), local_(local), peer_(peer), nova_(nova),
      rounds_(rounds), warm_up_(warm_up), clock_(clock), on_switched_(std::move(on_switched)) {}

StatusOr<virt::Hypervisor*> LibvirtSwitchoverSteps::TargetConn(const std::string& host) {
  // Warm-ups ask from their own threads. A connection, once made, stays (its pointer is handed out).
  MutexLock lock(targets_mutex_);
  auto& conn = targets_[host];
  if (!conn) {
    const cluster::HostConfig* target = hosts_.Find(host);
    if (target == nullptr) return NotFound("host " + host + " is not in shadowd's configuration");
    VS_ASSIGN_OR_RETURN(conn, runtime_.Connect(target->uri, clock_));
  }
  return conn.get();
}

StatusOr<CheckFindings> LibvirtSwitchoverSteps::Check(SwitchoverRecord& record) {
  // What the guest does here, before anything changes (the second sample follows Prepare).
  record.clear_source_observation();
  auto sample = local_.GetGuestActivity(record.vm_name(), kAgentTimeout);
  {
    MutexLock lock(samples_mutex_);
    first_samples_.erase(record.vm_uuid());
    if (sample.ok()) first_samples_[record.vm_uuid()] = {*sample, clock_.Now()};
  }
  // No scheduled round may start from now on, and one that runs must end before the snapshot (and before
  // a repair below: a round's backup job holds the disks).
  rounds_.Hold(record.vm_uuid());
  (void)rounds_.Quiesce(record.vm_uuid()).get();
  // A VM still on the tops of an earlier switchover (its new host could not flatten them) must be on its
  // own images before it moves again: a snapshot over a live top loses the writes in it.
  VS_RETURN_IF_ERROR(FlattenTops(local_, record.vm_name(), clock_, kRepairGiveUp)
                         .Annotate(record.vm_name() + " still runs on the tops of an earlier switchover and they "
                                   "could not be flattened; it does not move until they are"));
  VS_ASSIGN_OR_RETURN(std::string xml, local_.GetDomainXml(record.vm_name()));
  VS_ASSIGN_OR_RETURN(policy::DomainFacts facts, policy::ParseDomain(xml));
  // Checkpoint metadata stays here; the bitmaps go with the VM. The target needs their names to remove them.
  VS_ASSIGN_OR_RETURN(std::vector<std::string> checkpoints, local_.ListCheckpoints(record.vm_name()));
  record.clear_source_checkpoints();
  for (std::string& checkpoint : checkpoints) record.add_source_checkpoints(std::move(checkpoint));
  record.clear_disks();
  const std::string tag = std::to_string(record.requested_unix_ms());
  for (const auto& disk : facts.disks) {
    if (disk.source_kind != policy::DiskFacts::SourceKind::kFile || disk.source_path.empty()) continue;
    auto* out = record.add_disks();
    out->set_target(disk.target_dev);
    out->set_base_path(disk.source_path);
    out->set_top_path(policy::TopPathOf(disk.source_path, tag));
    out->set_format(disk.format.empty() ? "raw" : disk.format);
  }
  // A Nova instance moves through Nova when shadowd can talk to it: its disks must then all be in its instance
  // directory, which the target sets aside for Nova's checks.
  record.clear_nova_instance_dir();
  if (facts.nova && nova_ != nullptr) {
    std::vector<std::string> bases;
    for (const auto& disk : record.disks()) bases.push_back(disk.base_path());
    VS_ASSIGN_OR_RETURN(std::string dir, InstanceDirOf(bases));
    record.set_nova_instance_dir(dir);
  }

  v1::CheckSwitchoverRequest request;
  request.set_vm_uuid(record.vm_uuid());
  request.set_vcpus(facts.current_vcpus);
  request.set_memory_kib(facts.memory_kib);
  VS_ASSIGN_OR_RETURN(v1::CheckSwitchoverReply reply, peer_.CheckSwitchover(record.target_host(), request));
  CheckFindings findings;
  findings.problems.assign(reply.problems().begin(), reply.problems().end());

  VS_ASSIGN_OR_RETURN(v1::ReplicationRecord ours, rounds_.RecordOf(record.vm_uuid()));
  // A Nova instance's checkpoints are hidden from libvirt between rounds (docs/nova.md): its record names its bitmap.
  const std::string& applied = ours.applied().checkpoint();
  if (!applied.empty() && std::find(record.source_checkpoints().begin(), record.source_checkpoints().end(), applied) ==
                              record.source_checkpoints().end()) {
    record.add_source_checkpoints(applied);
  }
  const v1::AppliedRound& theirs = reply.replica().applied();
  if (ours.applied().taken_unix_ms() == 0) {
    findings.problems.push_back("no replication round of " + record.vm_name() + " was ever applied");
  } else if (reply.replica_known() && (theirs.checkpoint() != ours.applied().checkpoint() ||
                                       theirs.taken_unix_ms() != ours.applied().taken_unix_ms() ||
                                       theirs.digest() != ours.applied().digest())) {
    findings.problems.push_back("the replica on " + record.target_host() + " is at round '" + theirs.checkpoint() +
                                "' (digest " + std::to_string(theirs.digest()) + "), this host applied '" +
                                ours.applied().checkpoint() + "' (digest " + std::to_string(ours.applied().digest()) +
                                ")");
  }
  // The plain migration only needs the target's capacity and images of the right paths.
  findings.fallback_possible = reply.capacity_ok() && !reply.draining() && reply.replica().disks_size() > 0;
  return findings;
}

Status LibvirtSwitchoverSteps::Prepare(SwitchoverRecord& record) {
  VS_RETURN_IF_ERROR(peer_.PrepareSwitchover(record.target_host(), PrepareRequestFor(record)));
  ObserveGuestHere(record);  // before the snapshot, so that the guest's own pace is what is seen
  return Status::Ok();
}

void LibvirtSwitchoverSteps::ObserveGuestHere(SwitchoverRecord& record) {
  std::map<std::string, FirstSample>::node_type first;
  {
    MutexLock lock(samples_mutex_);
    first = first_samples_.extract(record.vm_uuid());
  }
  if (first.empty()) return;  // observed already, or the first sample failed
  auto second = local_.GetGuestActivity(record.vm_name(), kAgentTimeout);
  if (!second.ok()) return;
  // In the record (saved before the next step), so that a restarted shadowd still has it.
  *record.mutable_source_observation() =
      ToProto({.host = hosts_.this_host, .first = first.mapped().activity, .second = *second,
               .window = clock_.Now() - first.mapped().at});
}

Status LibvirtSwitchoverSteps::Snapshot(const SwitchoverRecord& record) {
  std::vector<virt::SnapshotOverlay> overlays;
  for (const auto& disk : record.disks()) {
    // This switchover's own top, left by a crash before the snapshot took, is removed; a file that any
    // domain's chain contains never is.
    if (std::filesystem::exists(disk.top_path())) {
      VS_ASSIGN_OR_RETURN(std::optional<std::string> user, DomainUsingPath(local_, disk.top_path()));
      if (user) {
        return FailedPrecondition("the snapshot's overlay " + disk.top_path() + " is already in use by domain " +
                                  *user + "; not snapshotting over it");
      }
      std::error_code ec;
      std::filesystem::remove(disk.top_path(), ec);
      if (ec) return Internal("removing the stale overlay " + disk.top_path() + ": " + ec.message());
    }
    overlays.push_back({disk.target(), disk.top_path()});
  }
  return local_.CreateDiskOnlySnapshot(record.vm_name(), overlays);
}

StatusOr<uint64_t> LibvirtSwitchoverSteps::FinalRound(const SwitchoverRecord& record) {
  VS_ASSIGN_OR_RETURN(v1::AppliedRound round, rounds_.RequestFinalRound(record.vm_uuid()).get());
  return round.bytes_sent();
}

StatusOr<MigrationFigures> LibvirtSwitchoverSteps::Migrate(SwitchoverRecord& record, bool copy_storage_all) {
  const cluster::HostConfig* target = hosts_.Find(record.target_host());
  if (target == nullptr) return NotFound("host " + record.target_host() + " is not in shadowd's configuration");
  ObserveGuestHere(record);  // the fallback had no Prepare
  if (copy_storage_all) {
    // The target's replicas must not carry bitmaps of the names the VM's bitmaps have, or its QEMU refuses
    // the migration ("Bitmap with the same name ... already exists on destination").
    v1::PrepareSwitchoverRequest request = PrepareRequestFor(record);
    request.set_fallback(true);
    request.set_nova_instance_dir(record.nova_instance_dir());
    VS_RETURN_IF_ERROR(peer_.PrepareSwitchover(record.target_host(), request)
                           .Annotate("preparing " + record.target_host() + " for the fallback migration"));
  }
  if (!record.nova_instance_dir().empty()) {
    if (!copy_storage_all) {
      // Prepared again, now with the instance directory: the target sets it aside for Nova only after the final
      // round has written its replicas (Prepare is idempotent: the tops are made anew, still empty).
      v1::PrepareSwitchoverRequest request = PrepareRequestFor(record);
      request.set_nova_instance_dir(record.nova_instance_dir());
      VS_RETURN_IF_ERROR(peer_.PrepareSwitchover(record.target_host(), request)
                             .Annotate("setting the shadow's files aside on " + record.target_host() + " for Nova"));
    }
    return MigrateThroughNova(record);
  }
  const Duration hold = std::chrono::milliseconds(record.precopy_planned_ms());
  const std::optional<WallTime> deadline =
      record.deadline_unix_ms() > 0 ? std::optional<WallTime>(FromUnixMillis(record.deadline_unix_ms())) : std::nullopt;
  virt::MigrationOptions options;
  options.postcopy = true;
  options.copy_storage_all = copy_storage_all;
  options.copy_storage_incremental = !copy_storage_all;
  options.move_definition = true;
  options.timeout = std::chrono::minutes(10);
  options.tls = settings_.migration_tls;
  const bool warm = record.warm();
  if (warm) options.precopy_bandwidth_mibs = settings_.warmup_bandwidth_mibs;
  if (warm) options.cancel = [this, vm = record.vm_uuid()] { return warm_up_.Cancelled(vm); };
  options.switch_to_postcopy = [this, hold, deadline, warm, vm = record.vm_uuid()](Duration since_start) {
    if (deadline && clock_.WallNow() + kDeadlineGuard >= *deadline) return true;
    return warm ? warm_up_.Released(vm) : since_start >= hold;
  };
  const WallTime started = clock_.WallNow();
  StatusOr<virt::MigrationResult> migrated = local_.MigrateLive(record.vm_name(), target->uri, options);
  warm_up_.Forget(record.vm_uuid());
  VS_ASSIGN_OR_RETURN(virt::MigrationResult result, std::move(migrated));
  MigrationFigures figures;
  figures.disk_bytes = result.disk_bytes_processed.value_or(0);
  figures.memory_bytes = result.memory_bytes_processed.value_or(0);
  figures.downtime_ms = result.downtime_ms.value_or(0);
  figures.postcopy_switched = result.postcopy_started_after.has_value();
  if (!result.completed_event_lag) {
    figures.figures_note = "libvirt's job-completed event did not come: its downtime and byte counts are unknown (0)";
  } else if (*result.completed_event_lag >= std::chrono::seconds(1)) {
    figures.figures_note = "libvirt's job-completed event came " +
                           std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                              *result.completed_event_lag).count()) +
                           " ms after the migration returned";
  }
  if (result.postcopy_started_after) {
    figures.running_on_target =
        started + std::chrono::duration_cast<WallTime::duration>(*result.postcopy_started_after);
  } else {
    figures.running_on_target = started + std::chrono::duration_cast<WallTime::duration>(result.elapsed);
  }
  return figures;
}

StatusOr<MigrationFigures> LibvirtSwitchoverSteps::MigrateThroughNova(const SwitchoverRecord& record) {
  if (nova_ == nullptr) {
    return FailedPrecondition("VM " + record.vm_name() + " was to move through Nova, but shadowd has no [nova] "
                              "section any more; it moves only through Nova, so that Nova's records stay true");
  }
  // Nova runs the migration with its own flags ([libvirt] live_migration_permit_post_copy for the postcopy
  // switch that force-complete asks for); without a notice's deadline, libvirt's own ten minutes bound it.
  const WallTime deadline = record.deadline_unix_ms() > 0 ? FromUnixMillis(record.deadline_unix_ms())
                                                          : clock_.WallNow() + std::chrono::minutes(10);
  StatusOr<NovaMoveResult> moved = nova_->LiveMigrate(record.vm_uuid(), record.target_host(), deadline);
  if (!moved.ok()) {
    return moved.status().Annotate("Nova's live migration of " + record.vm_name() + " to " + record.target_host());
  }
  MigrationFigures figures;
  figures.postcopy_switched = moved->force_completed;
  figures.running_on_target = moved->running_on_target;
  figures.figures_note = "moved by Nova's live migration: its downtime and byte counts are in Nova's migration "
                         "record and nova-compute's log, not here (0)";
  return figures;
}

StatusOr<GuestSeen> LibvirtSwitchoverSteps::VerifyGuest(const SwitchoverRecord& record) {
  VS_ASSIGN_OR_RETURN(virt::Hypervisor * target, TargetConn(record.target_host()));
  // Without an observation (its sample failed) nothing was seen here: the target's own progress can still prove
  // the guest alive, but not its absence dead.
  const SourceObservation source = record.has_source_observation()
                                       ? FromProto(record.source_observation())
                                       : SourceObservation{.host = hosts_.this_host};
  const bool busy_here = SourceShowedProgress(source);
  VS_ASSIGN_OR_RETURN(
      GuestCheckResult result,
      CheckTarget(
          source, record.target_host(),
          [&] { return target->GetGuestActivity(record.vm_name(), kAgentTimeout); },
          {.bound = busy_here ? kGuestBound : kIdleGuestBound, .interval = kGuestSampleInterval}, clock_));
  GuestSeen seen{.dead = result.verdict == GuestVerdict::kDead,
                             .seen = std::string(GuestVerdictName(result.verdict)) + ": " +
                                     result.explanation};
  if (seen.dead) {
    // The target keeps the VM as it is and moves it no more; this host keeps its copy (base and tops).
    v1::CompleteSwitchoverRequest request;
    request.set_vm_uuid(record.vm_uuid());
    request.set_vm_name(record.vm_name());
    request.set_origin_host(record.source_host());
    request.set_guest_failed(seen.seen);
    if (Status told = peer_.CompleteSwitchover(record.target_host(), request); !told.ok()) {
      seen.seen += " (" + record.target_host() + " could not be told: " + told.message() + ")";
    }
  }
  return seen;
}

Status LibvirtSwitchoverSteps::Complete(const SwitchoverRecord& record) {
  v1::CompleteSwitchoverRequest request;
  request.set_vm_uuid(record.vm_uuid());
  request.set_vm_name(record.vm_name());
  request.set_origin_host(record.source_host());
  if (!record.fallback()) *request.mutable_disks() = record.disks();
  *request.mutable_source_checkpoints() = record.source_checkpoints();
  // The VM left this host with its definition: what is ours to tidy goes whatever the target says.
  for (const auto& disk : record.disks()) {
    std::error_code ec;
    std::filesystem::remove(disk.top_path(), ec);
  }
  rounds_.Unhold(record.vm_uuid());
  VS_RETURN_IF_ERROR(rounds_.Forget(record.vm_uuid()));
  if (on_switched_) on_switched_(record.vm_uuid(), record.target_host());
  // Done only once the target runs the VM on its own images (a failure here is retried, see the runner).
  return peer_.CompleteSwitchover(record.target_host(), request)
      .Annotate("completing the switchover on " + record.target_host());
}

Status LibvirtSwitchoverSteps::RollBack(const SwitchoverRecord& record) {
  Status first;
  auto note = [&first](Status status) { if (first.ok() && !status.ok()) first = std::move(status); };
  // The flatten the target's completion uses: retried while a job holds the disk, and counted only once the
  // XML no longer names the top, so the tops below are deleted only when the VM no longer runs on them (a CI
  // run once saw a cancelled warm-up end Failed with the VM still on its top after a single commit attempt).
  if (Status flattened = FlattenTops(local_, record.vm_name(), clock_, kRollBackFlattenGiveUp);
      !flattened.ok() && flattened.code() != Code::kNotFound) {
    note(flattened.Annotate("committing the tops back"));
  }
  if (first.ok()) {
    for (const auto& disk : record.disks()) {
      std::error_code ec;
      std::filesystem::remove(disk.top_path(), ec);
    }
  }
  note(peer_.AbortSwitchover(record.target_host(), AbortRequestFor(record)));
  rounds_.Unhold(record.vm_uuid());
  return first;
}

StatusOr<VmLocation> LibvirtSwitchoverSteps::Locate(const SwitchoverRecord& record) {
  StatusOr<virt::DomainState> here = local_.GetDomainState(record.vm_name());
  if (here.ok() && (*here == virt::DomainState::kRunning || *here == virt::DomainState::kPaused)) {
    VS_ASSIGN_OR_RETURN(virt::MigrationProgress progress, local_.GetMigrationProgress(record.vm_name()));
    return progress.active ? VmLocation::kMigratingFromHere : VmLocation::kRunningHere;
  }
  if (!here.ok() && here.status().code() != Code::kNotFound) return here.status();
  VS_ASSIGN_OR_RETURN(virt::Hypervisor * target, TargetConn(record.target_host()));
  VS_ASSIGN_OR_RETURN(virt::DomainState there, target->GetDomainState(record.vm_name()));
  if (there == virt::DomainState::kRunning || there == virt::DomainState::kPaused) {
    return VmLocation::kRunningOnTarget;
  }
  return FailedPrecondition(record.vm_name() + " runs neither here nor on " + record.target_host() + " (" +
                            std::string(virt::DomainStateName(there)) + " there)");
}

StatusOr<std::optional<MigrationFigures>> LibvirtSwitchoverSteps::RecoverMigrationFigures(
    const SwitchoverRecord& record, VmLocation location, Duration wait) {
  std::optional<virt::MigrationStats> stats;
  if (location == VmLocation::kMigratingFromHere) {
    // The process that would have asked for the postcopy switch is gone. Left in precopy, the migration would
    // end in a stop-and-copy (where TCG guests were seen to die: docs/switchover.md, "Why postcopy at once") or,
    // under a warm-up's cap, not at all: asked now, while this waits for its end. Nova drives its own.
    const bool switch_now = record.nova_instance_dir().empty();
    VS_ASSIGN_OR_RETURN(stats, local_.AwaitOutgoingMigration(record.vm_name(), wait, switch_now));
  } else if (location == VmLocation::kRunningOnTarget) {
    VS_ASSIGN_OR_RETURN(virt::Hypervisor * target, TargetConn(record.target_host()));
    VS_ASSIGN_OR_RETURN(stats, target->GetCompletedIncomingMigration(record.vm_name()));
  }
  if (!stats || !stats->downtime_ms) return std::optional<MigrationFigures>();
  MigrationFigures figures;
  figures.downtime_ms = *stats->downtime_ms;
  figures.disk_bytes = stats->disk_bytes_processed.value_or(0);
  figures.memory_bytes = stats->memory_bytes_processed.value_or(0);
  // Whether libvirt accepted the switch is known only to the process that asked for it (here when the wait
  // above asked); otherwise pages requested by the target prove one (a switch that needed no page reads as none).
  figures.postcopy_switched = stats->postcopy_switch_accepted || stats->postcopy_page_requests.value_or(0) > 0;
  return std::optional<MigrationFigures>(figures);
}

}  // namespace vs::switchover
