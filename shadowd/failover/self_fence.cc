#include "shadowd/failover/self_fence.h"

#include <algorithm>
#include <set>

#include "proto/vm_record.pb.h"
#include "shadowd/failover/fence_machine.h"
#include "shadowd/policy/domain_xml.h"
#include "shadowd/store/keys.h"

namespace vs::failover {
namespace {

using virtshadow::v1::FenceRecord;

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

std::string ActionName(FenceRecord::Action action) {
  return action == FenceRecord::FENCE_ACTION_DESTROY ? "destroyed" : "paused";
}

}  // namespace

SelfFence::SelfFence(SelfFenceOptions options, Parts parts, std::function<void(const std::string&)> log)
    : options_(std::move(options)), parts_(parts), log_(std::move(log)) {}

void SelfFence::OnMembership(const cluster::MembershipSnapshot& snapshot) {
  {
    MutexLock lock(mu_);
    // A newer snapshot replaces one not yet evaluated, but the noticing time stays the first one's: the fence's
    // latency counts from the first change that asked for it.
    if (!pending_) pending_since_ = parts_.clock.Now();
    pending_ = snapshot;
    last_ = snapshot;
  }
  cv_.notify_all();
}

void SelfFence::Start(std::function<cluster::MembershipSnapshot()> current) {
  thread_ = std::thread([this, current = std::move(current)] { Run(current); });
}

void SelfFence::Stop() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SelfFence::Run(std::function<cluster::MembershipSnapshot()> current) {
  const MonoTime started = parts_.clock.Now();
  while (true) {
    std::optional<cluster::MembershipSnapshot> snapshot;
    MonoTime noticed{};
    {
      MutexLock lock(mu_);
      // Real time, not the Clock's: this only paces the retries.
      if (!pending_ && !stopping_) cv_.wait_for(mu_, options_.retry_interval);
      if (stopping_) return;
      if (pending_) {
        snapshot = std::move(pending_);
        noticed = pending_since_;
        pending_.reset();
      } else if (last_) {
        snapshot = last_;  // the retry: a failed pause, an unanswered query, a VM started meanwhile
        noticed = parts_.clock.Now();
      }
    }
    if (!snapshot && current && parts_.clock.Now() - started >= options_.startup_grace) {
      snapshot = current();  // nothing from the engine yet: judge what it says now (disconnected: fence)
      noticed = parts_.clock.Now();
    }
    if (!snapshot) continue;
    MutexLock records(records_mu_);
    if (Status done = Evaluate(*snapshot, noticed); !done.ok()) log_("self-fence: " + done.ToString());
  }
}

PartitionView SelfFence::PartitionOf(const cluster::MembershipSnapshot& snapshot) const {
  PartitionView partition;
  partition.quorate = snapshot.connected && snapshot.quorate;
  partition.members.insert(options_.hosts.this_host);
  auto add = [&](const std::string& node) {
    for (const auto& host : options_.hosts.hosts) {
      if (host.name == node || (!host.address.empty() && host.address == node)) {
        partition.members.insert(host.name);
        return;
      }
    }
  };
  if (snapshot.connected) {
    // Corosync's members count too: a host whose shadowd is down but whose Corosync is here is in this partition,
    // and so it is not in the quorate one (partitions are disjoint).
    for (const auto& node : snapshot.members) add(node);
    for (const auto& node : snapshot.corosync_members) add(node);
  }
  return partition;
}

Status SelfFence::Evaluate(const cluster::MembershipSnapshot& snapshot, MonoTime noticed) {
  PartitionView partition = PartitionOf(snapshot);
  if (!partition.quorate) return Fence(partition, noticed);
  if (Status checked = CheckStoppedVmsAfterStart(partition); !checked.ok()) {
    log_("self-fence: checking the VMs found stopped: " + checked.ToString());
  }
  return Reconcile();
}

StatusOr<std::vector<SelfFence::Local>> SelfFence::VmsHere() {
  VS_ASSIGN_OR_RETURN(std::vector<store::Entry> entries,
                      parts_.store.Scan(store::TablePrefix(store::Table::kVm)));
  std::vector<Local> here;
  for (const store::Entry& entry : entries) {
    virtshadow::v1::VmRecord record;
    if (!record.ParseFromString(entry.value)) {
      log_("self-fence: skipping " + entry.key + ": it does not parse");
      continue;
    }
    if (record.primary_host() != options_.hosts.this_host || record.shadows_size() == 0) continue;
    RunningVm vm{.uuid = record.vm_uuid(), .name = record.vm_name(), .shadow_hosts = {}};
    for (const auto& shadow : record.shadows()) vm.shadow_hosts.push_back(shadow.host());
    auto state = parts_.local.GetDomainState(record.vm_name());
    if (!state.ok()) continue;  // not defined here (any more): nothing runs
    here.push_back({std::move(vm), *state});
  }
  return here;
}

void SelfFence::Act(FenceRecord& record) {
  const Status done = record.action() == FenceRecord::FENCE_ACTION_DESTROY
                          ? parts_.local.DestroyDomain(record.vm_name())
                          : parts_.local.SuspendDomain(record.vm_name());
  record.set_acted(done.ok());
  if (!done.ok()) record.set_last_error(done.ToString());
}

Status SelfFence::ResumeIfPaused(const std::string& vm_name) {
  auto state = parts_.local.GetDomainState(vm_name);
  if (!state.ok()) {
    // Undefined meanwhile (by an operator): nothing to resume.
    return state.status().code() == Code::kNotFound ? Status::Ok() : state.status();
  }
  if (*state != virt::DomainState::kPaused) return Status::Ok();  // destroyed, or resumed by an operator
  return parts_.local.ResumeDomain(vm_name);
}

Status SelfFence::Fence(const PartitionView& partition, MonoTime noticed) {
  VS_ASSIGN_OR_RETURN(std::vector<Local> here, VmsHere());
  std::vector<RunningVm> running;
  for (const Local& local : here) {
    if (local.state == virt::DomainState::kRunning || local.state == virt::DomainState::kBlocked) {
      running.push_back(local.vm);
    }
  }
  const std::vector<RunningVm> to_fence = VmsToFence(partition, running);
  if (to_fence.empty()) return Status::Ok();

  const int64_t now_ms = ToUnixMillis(parts_.clock.WallNow());
  std::vector<std::string> members(partition.members.begin(), partition.members.end());
  std::vector<FenceRecord> records;
  for (const RunningVm& vm : to_fence) {
    VS_ASSIGN_OR_RETURN(std::optional<FenceRecord> existing, parts_.records.Get(vm.uuid));
    FenceRecord record = existing.value_or(FenceRecord());
    VS_ASSIGN_OR_RETURN(FenceTransition next, NextFenceState(record.state(), FenceEvent::kFence));
    const bool new_fence = record.state() != FenceRecord::FENCE_STATE_FENCED &&
                           record.state() != FenceRecord::FENCE_STATE_PROMOTED_ELSEWHERE;
    std::vector<std::string> outside;
    for (const auto& host : vm.shadow_hosts) {
      if (!partition.members.count(host)) outside.push_back(host);
    }
    record.set_vm_uuid(vm.uuid);
    record.set_vm_name(vm.name);
    if (new_fence) {
      record.set_fenced_unix_ms(now_ms);
      record.set_action(options_.action);
      record.clear_shadow_hosts();
      for (const auto& host : outside) record.add_shadow_hosts(host);
      record.set_why("host " + options_.hosts.this_host + " lost quorum (its partition: " + Join(members) +
                     ") while the VM's shadow host " + Join(outside) + " is outside it and may promote it");
      record.clear_promoted_unix_ms();
      record.clear_promoted_host();
      record.clear_released_unix_ms();
      record.clear_last_error();
    } else {
      record.set_detail("found running while " + std::string(FenceStateName(record.state())) +
                        ": fenced again");
    }
    record.set_state(next.to);
    record.set_acted(false);
    record.set_updated_unix_ms(now_ms);
    record.set_version(record.version() + 1);
    records.push_back(std::move(record));
  }
  // The records first, synced, so that a shadowd killed in the middle of the pauses finds them (and the hook
  // refuses a start of these VMs from now on).
  VS_RETURN_IF_ERROR(parts_.records.Put(records).Annotate("writing the fence records"));
  std::vector<std::string> done;
  std::vector<std::string> failed;
  for (FenceRecord& record : records) {
    Act(record);
    const Duration latency = parts_.clock.Now() - noticed;
    if (record.acted()) {
      record.set_fence_latency_ms(ToMillis(latency));
      done.push_back(record.vm_name() + " (" + std::to_string(ToMillis(latency)) + " ms)");
    } else {
      failed.push_back(record.vm_name() + ": " + record.last_error());
    }
  }
  const Duration total = parts_.clock.Now() - noticed;
  if (!done.empty()) {
    log_("self-fence: " + ActionName(options_.action) + " " + Join(done) + "; the last " +
         std::to_string(ToMillis(total)) + " ms after the quorum loss was noticed (bound " +
         std::to_string(ToMillis(options_.timing.fence_action)) + " ms" +
         (total > options_.timing.fence_action ? ": EXCEEDED" : "") + ")");
  }
  if (!failed.empty()) log_("self-fence: could not fence " + Join(failed) + "; retried");
  return parts_.records.Put(records).Annotate("recording the fence actions");
}

Status SelfFence::Transition(FenceRecord& record, FenceEvent event, const std::string& detail) {
  VS_ASSIGN_OR_RETURN(FenceTransition next, NextFenceState(record.state(), event));
  const int64_t now_ms = ToUnixMillis(parts_.clock.WallNow());
  record.set_state(next.to);
  record.set_detail(detail);
  record.set_updated_unix_ms(now_ms);
  record.set_version(record.version() + 1);
  if (next.to == FenceRecord::FENCE_STATE_RELEASED) record.set_released_unix_ms(now_ms);
  VS_RETURN_IF_ERROR(parts_.records.Put({record}).Annotate("writing the fence record of " + record.vm_name()));
  switch (next.command) {
    case FenceCommand::kNone: return Status::Ok();
    case FenceCommand::kAct:
      Act(record);
      return parts_.records.Put({record});
    case FenceCommand::kResume: {
      if (Status resumed = ResumeIfPaused(record.vm_name()); !resumed.ok()) {
        record.set_last_error(resumed.ToString());
        return parts_.records.Put({record});  // stays RELEASING: resumed again at the next retry
      }
      log_("self-fence: released " + record.vm_name() + " (" + detail + ")" +
           (record.action() == FenceRecord::FENCE_ACTION_PAUSE ? ", resumed" : ""));
      return Transition(record, FenceEvent::kResumed, detail);
    }
  }
  return Status::Ok();
}

Status SelfFence::CheckStoppedVmsAfterStart(const PartitionView& partition) {
  if (stopped_vms_checked_) return Status::Ok();
  // From libvirt, not from the protection records: the controller may already be releasing the record of a VM
  // it found stopped (its grace period runs from the start too).
  VS_ASSIGN_OR_RETURN(std::vector<std::string> names, parts_.local.ListDomainNames());
  std::vector<std::string> peers;
  for (const auto& host : options_.hosts.hosts) {
    if (host.name != options_.hosts.this_host) peers.push_back(host.name);
  }
  bool all_answered = true;
  for (const std::string& name : names) {
    StatusOr<virt::DomainState> state = parts_.local.GetDomainState(name);
    if (!state.ok() || (*state != virt::DomainState::kShutoff && *state != virt::DomainState::kCrashed)) continue;
    StatusOr<std::string> xml = parts_.local.GetDomainXml(name);
    if (!xml.ok()) continue;  // undefined meanwhile
    StatusOr<policy::DomainFacts> facts = policy::ParseDomain(*xml);
    // Only tagged VMs are ever promoted (shadows carry their VM's policy in their link, not as an element).
    if (!facts.ok() || facts->policy_elements.empty()) continue;
    VS_ASSIGN_OR_RETURN(std::optional<FenceRecord> existing, parts_.records.Get(facts->uuid));
    if (existing && existing->state() != FenceRecord::FENCE_STATE_RELEASED) continue;  // a record decides already
    virtshadow::v1::PromotionQueryRequest request;
    request.set_vm_uuid(facts->uuid);
    request.set_asking_host(options_.hosts.this_host);
    std::optional<std::pair<std::string, virtshadow::v1::PromotionQueryReply>> promoted;
    for (const std::string& host : peers) {
      if (!partition.members.count(host)) {
        // Not in this partition: it cannot answer, and waiting for its connection would hold up a fence.
        all_answered = false;
        continue;
      }
      auto reply = parts_.peer.QueryPromotion(host, request);
      if (!reply.ok()) {
        all_answered = false;
      } else if (reply->answer() == virtshadow::v1::PromotionQueryReply::PROMOTED) {
        promoted = {host, *reply};
        break;
      }
    }
    if (!promoted) continue;
    FenceRecord record = existing.value_or(FenceRecord());
    record.set_vm_uuid(facts->uuid);
    record.set_vm_name(name);
    record.set_fenced_unix_ms(ToUnixMillis(parts_.clock.WallNow()));
    record.set_action(options_.action);
    record.set_acted(true);  // it does not run: nothing to pause or destroy
    record.clear_shadow_hosts();
    record.add_shadow_hosts(promoted->first);
    record.set_why("found stopped when shadowd started on " + options_.hosts.this_host +
                   " (the host crashed or was powered off) while " + promoted->first + " had promoted it");
    record.set_promoted_host(promoted->first);
    record.set_promoted_unix_ms(promoted->second.decided_unix_ms());
    record.clear_released_unix_ms();
    record.clear_stale_discarded_unix_ms();
    record.clear_last_error();
    const std::string detail = "promoted on " + promoted->first + " at unix ms " +
                               std::to_string(promoted->second.decided_unix_ms()) +
                               "; this stopped copy stays defined and may not start";
    log_("self-fence: " + name + " " + detail);
    VS_RETURN_IF_ERROR(Transition(record, FenceEvent::kFoundPromoted, detail));
  }
  stopped_vms_checked_ = all_answered;
  return Status::Ok();
}

Status SelfFence::Reconcile() {
  VS_ASSIGN_OR_RETURN(std::vector<FenceRecord> records, parts_.records.List());
  Status first_error;
  for (FenceRecord& record : records) {
    Status done;
    if (record.state() == FenceRecord::FENCE_STATE_RELEASING) {
      done = Transition(record, FenceEvent::kNotPromoted, record.detail());
    } else if (record.state() == FenceRecord::FENCE_STATE_FENCED) {
      std::optional<std::pair<std::string, virtshadow::v1::PromotionQueryReply>> promoted;
      std::vector<std::string> unanswered;
      virtshadow::v1::PromotionQueryRequest request;
      request.set_vm_uuid(record.vm_uuid());
      request.set_asking_host(options_.hosts.this_host);
      for (const auto& host : record.shadow_hosts()) {
        auto reply = parts_.peer.QueryPromotion(host, request);
        if (!reply.ok()) {
          unanswered.push_back(host + " (" + reply.status().ToString() + ")");
        } else if (reply->answer() == virtshadow::v1::PromotionQueryReply::PROMOTED) {
          promoted = {host, *reply};
          break;
        } else if (reply->answer() != virtshadow::v1::PromotionQueryReply::NOT_PROMOTED) {
          unanswered.push_back(host + " (no answer in its reply)");
        }
      }
      if (promoted) {
        record.set_promoted_host(promoted->first);
        record.set_promoted_unix_ms(promoted->second.decided_unix_ms());
        const std::string detail = "promoted on " + promoted->first + " at unix ms " +
                                   std::to_string(promoted->second.decided_unix_ms()) +
                                   (promoted->second.detail().empty() ? "" : ": " + promoted->second.detail()) +
                                   "; this copy stays fenced and defined";
        log_("self-fence: " + record.vm_name() + " was " + detail);
        done = Transition(record, FenceEvent::kPromoted, detail);
      } else if (!unanswered.empty()) {
        const std::string detail = "stays fenced: its shadow host could not be asked: " + Join(unanswered) +
                                   "; asked again every " +
                                   std::to_string(ToMillis(options_.retry_interval)) + " ms";
        if (record.detail() != detail) {  // one write and one log line per new reason, not per retry
          log_("self-fence: " + record.vm_name() + " " + detail);
          done = Transition(record, FenceEvent::kUnreachable, detail);
        }
      } else {
        done = Transition(record, FenceEvent::kNotPromoted,
                          "not promoted on " + Join(std::vector<std::string>(record.shadow_hosts().begin(), record.shadow_hosts().end())));
      }
    } else if (record.state() == FenceRecord::FENCE_STATE_PROMOTED_ELSEWHERE && !record.acted()) {
      Act(record);  // it must not run here; the state stays
      done = parts_.records.Put({record});
    }
    if (!done.ok() && first_error.ok()) first_error = done;
  }
  return first_error;
}

StatusOr<virtshadow::v1::DiscardStaleCopyReply> SelfFence::DiscardStaleCopy(
    const virtshadow::v1::DiscardStaleCopyRequest& request) {
  if (request.vm_uuid().empty() || request.asking_host().empty()) {
    return InvalidArgument("DiscardStaleCopy needs the VM's uuid and the asking host");
  }
  const std::string& asking = request.asking_host();
  MutexLock records(records_mu_);
  VS_ASSIGN_OR_RETURN(std::optional<FenceRecord> found, parts_.records.Get(request.vm_uuid()));
  if (!found) {
    return FailedPrecondition(options_.hosts.this_host + " has no fence record of VM " + request.vm_uuid() +
                              ": it keeps no stale copy of it, so there is nothing to discard for " + asking);
  }
  FenceRecord record = std::move(*found);
  virtshadow::v1::DiscardStaleCopyReply reply;
  if (record.state() == FenceRecord::FENCE_STATE_RELEASED && record.stale_discarded_unix_ms() != 0 &&
      record.promoted_host() == asking) {
    reply.set_detail("the stale copy of " + record.vm_name() + " on " + options_.hosts.this_host +
                     " was discarded already (unix ms " + std::to_string(record.stale_discarded_unix_ms()) + ")");
    return reply;
  }
  if (record.state() != FenceRecord::FENCE_STATE_PROMOTED_ELSEWHERE) {
    return FailedPrecondition("the fence record of " + record.vm_name() + " on " + options_.hosts.this_host +
                              " is '" + std::string(FenceStateName(record.state())) +
                              "', not 'promoted elsewhere': this copy is not known to be stale, it is not discarded");
  }
  if (record.promoted_host() != asking) {
    return FailedPrecondition(record.vm_name() + " was promoted on " + record.promoted_host() + ", not on " + asking +
                              ": only the host that runs the promoted VM may have this copy discarded");
  }
  // The stale copy by its name, checked by its UUID: a domain of that name that is another VM is not touched.
  const std::string& name = record.vm_name();
  StatusOr<virt::DomainState> state = parts_.local.GetDomainState(name);
  if (!state.ok() && state.status().code() != Code::kNotFound) return state.status();
  if (state.ok()) {
    VS_ASSIGN_OR_RETURN(std::string xml, parts_.local.GetDomainXml(name));
    VS_ASSIGN_OR_RETURN(policy::DomainFacts facts, policy::ParseDomain(xml));
    if (facts.uuid != record.vm_uuid()) {
      return FailedPrecondition("domain " + name + " on " + options_.hosts.this_host + " has UUID " + facts.uuid +
                                ", not the fenced VM's " + record.vm_uuid() + "; not touching it");
    }
    for (const policy::DiskFacts& disk : facts.disks) {
      if (!disk.source_path.empty()) reply.add_kept_images(disk.source_path);
    }
    if (*state != virt::DomainState::kShutoff) {
      VS_RETURN_IF_ERROR(parts_.local.DestroyDomain(name).Annotate("destroying the stale copy of " + name));
    }
    // Undefining keeps the disk images (libvirt never deletes them with a definition).
    VS_RETURN_IF_ERROR(parts_.local.UndefineDomain(name).Annotate("undefining the stale copy of " + name));
  }
  record.set_stale_discarded_unix_ms(ToUnixMillis(parts_.clock.WallNow()));
  std::string images;
  for (const auto& image : reply.kept_images()) images += (images.empty() ? "" : ", ") + image;
  const std::string detail = "stale copy discarded for a failback from " + asking + ": " +
                             (state.ok() ? std::string(*state != virt::DomainState::kShutoff ? "destroyed and " : "") +
                                               "undefined, its images kept (" + images + ")"
                                         : "it was undefined already");
  VS_RETURN_IF_ERROR(Transition(record, FenceEvent::kStaleDiscarded, detail));
  log_("self-fence: " + name + ": " + detail);
  reply.set_detail(name + " on " + options_.hosts.this_host + ": " + detail);
  return reply;
}

}  // namespace vs::failover
