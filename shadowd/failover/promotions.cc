#include "shadowd/failover/promotions.h"

#include <algorithm>
#include <utility>

#include "shadowd/controller/shadow_domain_xml.h"
#include "shadowd/policy/domain_xml.h"
#include "shadowd/store/keys.h"

namespace vs::failover {

namespace v1 = virtshadow::v1;
using v1::PromotionRecord;

std::string PromotionRecordKey(const std::string& vm_uuid) {
  return store::Key(store::Table::kFailover, "promotion:" + vm_uuid);
}
std::string PromotionVetoKey(const std::string& vm_uuid) {
  return store::Key(store::Table::kFailover, "veto:" + vm_uuid);
}

namespace {

std::string Seconds(int64_t ms) {
  return std::to_string(ms / 1000) + "." + std::to_string((ms % 1000) / 100) + " s";
}

// kUnavailable, kDeadlineExceeded, kAborted and kInternal may pass (libvirtd restarting, a busy domain, a store
// hiccup); the rest is a refusal that repeating will not change.
bool MayPass(const Status& status) {
  switch (status.code()) {
    case Code::kUnavailable:
    case Code::kDeadlineExceeded:
    case Code::kAborted:
    case Code::kInternal:
    case Code::kDataLoss:
      return true;
    default:
      return false;
  }
}

const cluster::HostHeartbeatView* FindHost(const cluster::MembershipView& view, const std::string& host) {
  for (const auto& h : view.hosts) {
    if (h.host == host) return &h;
  }
  return nullptr;
}

}  // namespace

Promotions::Promotions(store::Store& store, Clock& clock, PromotionHost& host, PromotionSettings settings,
                       Logger::Line log)
    : store_(store), clock_(clock), host_(host), settings_(std::move(settings)), log_(std::move(log)),
      arrivals_(store, clock) {}

std::optional<MonoTime> Promotions::MonoOf(WallTime wall) const {
  const WallTime wall_now = clock_.WallNow();
  const MonoTime now = clock_.Now();
  if (wall >= wall_now) return now;
  return now - std::chrono::duration_cast<Duration>(wall_now - wall);
}

StatusOr<std::optional<PromotionRecord>> Promotions::Get(const std::string& vm_uuid) const {
  return store::GetProto<PromotionRecord>(store_, PromotionRecordKey(vm_uuid));
}

StatusOr<std::vector<PromotionRecord>> Promotions::List() const {
  return store::ScanProtos<PromotionRecord>(store_, PromotionRecordKey(""));
}

Status Promotions::Save(PromotionRecord& record) {
  record.set_version(record.version() + 1);
  store::WriteBatch batch;
  batch.PutProto(PromotionRecordKey(record.vm_uuid()), record);
  return store_.Write(batch);
}

std::map<std::string, std::pair<std::string, std::string>> Promotions::AwaitingPromotion() const {
  MutexLock lock(awaiting_mu_);
  std::map<std::string, std::pair<std::string, std::string>> names;
  for (const auto& [vm_uuid, awaiting] : awaiting_) {
    names.emplace(vm_uuid, std::make_pair(awaiting.shadow.primary_name, awaiting.shadow.primary_host));
  }
  return names;
}

StatusOr<bool> Promotions::FenceAtPrimary(const std::string& vm_uuid, const std::function<StatusOr<bool>()>& destroy) {
  MutexLock lock(decide_mu_);
  std::optional<Awaiting> awaiting;
  {
    MutexLock inner(awaiting_mu_);
    if (auto found = awaiting_.find(vm_uuid); found != awaiting_.end()) awaiting = found->second;
  }
  if (!awaiting) return false;
  VS_ASSIGN_OR_RETURN(std::optional<PromotionRecord> existing, Get(vm_uuid));
  if (existing) return false;  // decided meanwhile (an operator's promote)
  // A veto is cleared only by a Tick that saw the primary leave after it, before it put the VM here: one found now
  // came since. The primary is back and resumes its copy.
  VS_ASSIGN_OR_RETURN(std::optional<v1::PromotionVeto> veto,
                      store::GetProto<v1::PromotionVeto>(store_, PromotionVetoKey(vm_uuid)));
  if (veto) return false;
  VS_ASSIGN_OR_RETURN(bool stopped, destroy());
  if (!stopped) return false;
  const PrimaryHostState state{.host = awaiting->shadow.primary_host, .member = false, .vm_confirmed_stopped = true};
  const PromotionVerdict verdict = MayPromote(true, state, clock_.Now(), settings_.timing);
  VS_RETURN_IF_ERROR(
      Decide(awaiting->shadow, &awaiting->primary, awaiting->failure_detection, verdict.why, false).status());
  MutexLock inner(awaiting_mu_);
  awaiting_.erase(vm_uuid);
  return true;
}

StatusOr<PromotionRecord> Promotions::Decide(const controller::PeerShadow& shadow,
                                             const cluster::HostHeartbeatView* primary,
                                             Duration failure_detection, const std::string& reason, bool forced) {
  PromotionRecord record;
  record.set_vm_uuid(shadow.primary_uuid);
  record.set_vm_name(shadow.primary_name);
  record.set_primary_host(shadow.primary_host);
  record.set_shadow_name(shadow.shadow_name);
  record.set_phase(v1::PROMOTION_PHASE_DECIDED);
  record.set_reason(reason);
  record.set_operator_forced(forced);
  record.set_decided_unix_ms(ToUnixMillis(clock_.WallNow()));
  record.set_failure_detection_ms(ToMillis(failure_detection));
  if (primary != nullptr && primary->last_seen) {
    record.set_primary_last_seen_unix_ms(ToUnixMillis(*primary->last_seen));
  }
  if (primary != nullptr && primary->state == cluster::HostMembership::kAbsent && primary->since) {
    record.set_primary_absent_since_unix_ms(ToUnixMillis(*primary->since));
  }
  VS_RETURN_IF_ERROR(Save(record));
  log_("promoting " + record.vm_name() + " (" + record.vm_uuid() + ") from its shadow " + record.shadow_name() +
       ", its host " + record.primary_host() + " being gone: " + reason);
  return record;
}

Status Promotions::DecideAll(const cluster::MembershipView& view, const std::vector<controller::PeerShadow>& shadows) {
  std::map<std::string, Awaiting> awaiting;
  Status first;
  for (const controller::PeerShadow& shadow : shadows) {
    if (shadow.primary_host == settings_.this_host || shadow.primary_uuid.empty()) continue;
    const cluster::HostHeartbeatView* primary = FindHost(view, shadow.primary_host);
    if (primary == nullptr) continue;  // not a configured host: nothing known of it
    const bool member = primary->state == cluster::HostMembership::kMember;
    MutexLock lock(decide_mu_);
    if (member) told_unfenced_.erase(shadow.primary_uuid);
    StatusOr<std::optional<PromotionRecord>> existing = Get(shadow.primary_uuid);
    if (!existing.ok()) {
      if (first.ok()) first = existing.status();
      continue;
    }
    if (existing->has_value()) continue;  // decided once, whatever became of it
    StatusOr<std::optional<v1::PromotionVeto>> veto =
        store::GetProto<v1::PromotionVeto>(store_, PromotionVetoKey(shadow.primary_uuid));
    if (!veto.ok()) {
      if (first.ok()) first = veto.status();
      continue;
    }
    if (veto->has_value()) {
      // The primary resumed the VM on our word: not while it stays. Only a departure seen after the veto clears
      // it: a view still showing the departure from before (this host's membership lagging behind the host's
      // return) must not.
      const bool left_since = !member && primary->since && ToUnixMillis(*primary->since) > (*veto)->vetoed_unix_ms();
      if (!left_since) continue;
      store::WriteBatch batch;
      batch.Delete(PromotionVetoKey(shadow.primary_uuid));
      if (Status cleared = store_.Write(batch); !cleared.ok()) {
        if (first.ok()) first = cleared;
        continue;
      }
      log_("veto on promoting " + shadow.primary_name + " cleared: " + shadow.primary_host +
           " left the membership again");
    }
    if (member) continue;
    if (primary->corosync_member) {
      // Its shadowd left the process group but its Corosync is still in the partition: the host lives (its
      // shadowd died or restarts) and its VM may well run there, unfenced. docs/failover.md: such a host counts
      // as a member; its VMs are not promoted (an operator who knows better uses `promote --force`).
      continue;
    }
    PrimaryHostState state{.host = shadow.primary_host, .member = false, .shadowd_stopped = primary->shadowd_stopped};
    if (primary->state == cluster::HostMembership::kAbsent && primary->since) state.absent_since = MonoOf(*primary->since);
    const PromotionVerdict verdict = MayPromote(view.quorate, state, clock_.Now(), settings_.timing.WithDetection(view.failure_detection));
    if (!verdict.allowed) {
      awaiting.emplace(shadow.primary_uuid, Awaiting{shadow, *primary, view.failure_detection});
      if (state.shadowd_stopped && told_unfenced_.insert(shadow.primary_uuid).second) {
        log_("not promoting " + shadow.primary_name + " (" + shadow.primary_uuid + "): " + verdict.why);
      }
      continue;
    }
    StatusOr<PromotionRecord> decided = Decide(shadow, primary, view.failure_detection, verdict.why, false);
    if (!decided.ok() && first.ok()) first = decided.status();
  }
  MutexLock lock(awaiting_mu_);
  awaiting_ = std::move(awaiting);
  return first;
}

Status Promotions::Tick(const cluster::MembershipView& view) {
  const bool someone_absent = std::any_of(view.hosts.begin(), view.hosts.end(), [&](const auto& h) {
    return h.host != settings_.this_host && h.state != cluster::HostMembership::kMember;
  });
  Status first;
  if (view.known && view.quorate && someone_absent) {
    StatusOr<std::vector<controller::PeerShadow>> shadows = host_.LocalShadows();
    if (shadows.ok()) {
      first = DecideAll(view, *shadows);
    } else {
      log_("cannot list the shadows defined here (promotions wait): " + shadows.status().ToString());
    }
  } else {
    MutexLock lock(awaiting_mu_);
    awaiting_.clear();
  }
  VS_ASSIGN_OR_RETURN(std::vector<PromotionRecord> records, List());
  for (PromotionRecord& record : records) {
    if (IsTerminal(record.phase())) continue;
    Status ran = Run(std::move(record));
    if (!ran.ok() && first.ok()) first = ran;
  }
  return first;
}

Status Promotions::Run(PromotionRecord record) {
  if (record.phase() == v1::PROMOTION_PHASE_DEFINED) {
    StatusOr<PromotedVmState> state = host_.VmState(record.vm_name());
    if (!state.ok()) {
      const std::string error = "reading the state of " + record.vm_name() + ": " + state.status().ToString();
      if (record.error() == error) return Status::Ok();  // retried every pass, written once
      record.set_error(error);
      return Save(record);
    }
    VS_ASSIGN_OR_RETURN(PromotionPhase resumed, ResumePromotionPhase(record.phase(), *state));
    if (resumed != record.phase()) {
      log_(record.vm_name() + " already runs (started before shadowd restarted): not started again");
      record.set_phase(resumed);
      if (record.started_unix_ms() == 0) record.set_started_unix_ms(ToUnixMillis(clock_.WallNow()));
      VS_RETURN_IF_ERROR(Save(record));
    }
  }
  while (!IsTerminal(record.phase())) {
    const std::string error_before = record.error();
    const PromotionOutcome outcome = Step(record);
    VS_ASSIGN_OR_RETURN(PromotionPhase next, NextPromotionPhase(record.phase(), outcome));
    if (outcome == PromotionOutcome::kRetry) {
      // Stored only when the reason changed: a step failing every tick must not write every tick.
      if (record.error() != error_before) {
        log_("promotion of " + record.vm_name() + " in phase " + PromotionPhaseName(record.phase()) +
             " will be retried: " + record.error());
        return Save(record);
      }
      return Status::Ok();
    }
    if (outcome == PromotionOutcome::kSucceeded) record.clear_error();
    record.set_phase(next);
    if (IsTerminal(next)) record.set_finished_unix_ms(ToUnixMillis(clock_.WallNow()));
    VS_RETURN_IF_ERROR(Save(record));
    log_("promotion of " + record.vm_name() + ": " + PromotionPhaseName(next) +
         (record.error().empty() ? "" : " (" + record.error() + ")"));
  }
  return Status::Ok();
}

PromotionOutcome Promotions::Step(PromotionRecord& record) {
  switch (record.phase()) {
    case v1::PROMOTION_PHASE_DECIDED: return Settle(record);
    case v1::PROMOTION_PHASE_SETTLED: return DefineVm(record);
    case v1::PROMOTION_PHASE_DEFINED: return StartVm(record);
    case v1::PROMOTION_PHASE_STARTED: return Grow(record);
    default: break;
  }
  record.set_error("phase " + PromotionPhaseName(record.phase()) + " has no step");
  return PromotionOutcome::kRetry;
}

PromotionOutcome Promotions::Settle(PromotionRecord& record) {
  auto fail = [&](const std::string& what, const Status& status) {
    record.set_error(what + ": " + status.ToString());
    return MayPass(status) ? PromotionOutcome::kRetry : PromotionOutcome::kRefused;
  };
  // The shadow's definition first: settling closes the replica to rounds, which a shadow that cannot be
  // promoted should not suffer.
  StatusOr<std::string> shadow_xml = host_.DefinitionXml(record.shadow_name());
  if (!shadow_xml.ok()) return fail("reading the shadow's definition " + record.shadow_name(), shadow_xml.status());
  // The VM's policy travels in the shadow's link (shadow_domain_xml.h); without one the VM comes back untagged.
  StatusOr<std::optional<controller::PeerShadow>> link =
      controller::DescribeShadowDomain(settings_.this_host, *shadow_xml);
  if (!link.ok()) return fail("reading the shadow-of link", link.status());
  const std::string policy_xml = *link ? (*link)->primary_policy_xml : "";
  StatusOr<std::string> promoted = controller::PromotedDomainXml(*shadow_xml, record.vm_uuid(), policy_xml);
  if (!promoted.ok()) return fail("turning the shadow into the VM", promoted.status());
  StatusOr<policy::DomainFacts> facts = policy::ParseDomain(*promoted);
  if (!facts.ok()) return fail("reading the promoted definition", facts.status());

  StatusOr<v1::ReplicaRecord> replica = host_.SettleReplica(record.vm_uuid());
  if (!replica.ok()) return fail("settling the replicas", replica.status());

  record.set_promoted_xml(*promoted);
  record.set_started_vcpus(facts->current_vcpus);
  record.set_started_memory_kib(facts->current_memory_kib);
  record.set_full_vcpus(facts->max_vcpus);
  record.set_full_memory_kib(facts->memory_kib);
  record.set_checkpoint(replica->applied().checkpoint());
  record.set_checkpoint_unix_ms(replica->applied().taken_unix_ms());
  // When the host was last heard, an upper estimate: Corosync drops a node only after its token timeout plus
  // consensus without hearing it (failure_detection_ms), so the recorded departure less that, and the last
  // time this host saw it a member, are both no earlier than its last heartbeat; the earlier of the two is taken.
  // In the lab a crash 1.6 s before the last sighting was recorded as a departure 3.5 s after it. Without either
  // (an operator's promote of a host never seen) the decision is the latest it can have been.
  int64_t failed_ms = record.decided_unix_ms();
  if (record.primary_absent_since_unix_ms() != 0) {
    failed_ms = std::min(failed_ms, record.primary_absent_since_unix_ms() - record.failure_detection_ms());
  }
  if (record.primary_last_seen_unix_ms() != 0) failed_ms = std::min(failed_ms, record.primary_last_seen_unix_ms());
  // The bound is the VM's own replication interval (its policy's), else the configured default.
  Duration interval = settings_.replication_interval;
  if (policy::PolicyResult tagged = policy::ParsePolicy(*facts); tagged.policy.ok() && *tagged.policy) {
    interval = (*tagged.policy)->interval;
  }
  const RecoveryPoint point =
      RecoveryPointOf(FromUnixMillis(replica->applied().taken_unix_ms()), FromUnixMillis(failed_ms), interval,
                      std::chrono::milliseconds(replica->applied().duration_ms()));
  record.set_rpo_ms(ToMillis(point.rpo));
  record.set_rpo_bound_ms(ToMillis(point.bound));
  record.set_rpo_within_bound(point.within_bound);
  log_("promotion of " + record.vm_name() + ": replicas at checkpoint " + record.checkpoint() + ", RPO " +
       Seconds(record.rpo_ms()) + " (bound " + Seconds(record.rpo_bound_ms()) + (point.within_bound ? ", within" : ", EXCEEDED") +
       ")");
  return PromotionOutcome::kSucceeded;
}

PromotionOutcome Promotions::DefineVm(PromotionRecord& record) {
  if (Status defined = host_.Define(record.promoted_xml()); !defined.ok()) {
    record.set_error("defining " + record.vm_name() + ": " + defined.ToString());
    // A definition libvirt refuses (e.g. another domain of that name here) will not pass: the shadow stays.
    return MayPass(defined) ? PromotionOutcome::kRetry : PromotionOutcome::kRefused;
  }
  if (Status undefined = host_.Undefine(record.shadow_name()); !undefined.ok()) {
    // The VM is defined; the shadow must go before it starts (both over the same disks). Retried.
    record.set_error("undefining the shadow " + record.shadow_name() + ": " + undefined.ToString());
    return PromotionOutcome::kRetry;
  }
  return PromotionOutcome::kSucceeded;
}

PromotionOutcome Promotions::StartVm(PromotionRecord& record) {
  if (Status started = host_.Start(record.vm_name()); !started.ok()) {
    record.set_error("starting " + record.vm_name() + ": " + started.ToString());
    return PromotionOutcome::kRetry;
  }
  record.set_started_unix_ms(ToUnixMillis(clock_.WallNow()));
  log_(record.vm_name() + " started on this host at " + std::to_string(record.started_vcpus()) + " vCPUs, " +
       std::to_string(record.started_memory_kib() / 1024) + " MiB");
  return PromotionOutcome::kSucceeded;
}

PromotionOutcome Promotions::Grow(PromotionRecord& record) {
  StatusOr<VmSize> live = host_.LiveSize(record.vm_name());
  if (!live.ok()) {
    record.set_error("reading the size of " + record.vm_name() + ": " + live.status().ToString());
    return PromotionOutcome::kRetry;
  }
  StatusOr<VmSize> free = host_.FreeBesides(record.vm_name());
  if (!free.ok()) {
    record.set_error("reading the host's free capacity: " + free.status().ToString());
    return PromotionOutcome::kRetry;
  }
  const GrowthPlan plan =
      PlanGrowth(*live, {.vcpus = record.full_vcpus(), .memory_kib = record.full_memory_kib()}, *free);
  std::string shortfall = plan.shortfall;
  auto add_shortfall = [&](const std::string& sentence) { shortfall += (shortfall.empty() ? "" : "; ") + sentence; };
  uint32_t vcpus = live->vcpus;
  uint64_t memory_kib = live->memory_kib;
  if (plan.target.vcpus > live->vcpus) {
    Status set = host_.SetVcpusLive(record.vm_name(), plan.target.vcpus);
    if (!set.ok() && set.code() == Code::kUnavailable) {
      record.set_error("vCPU hotplug: " + set.ToString());
      return PromotionOutcome::kRetry;
    }
    if (set.ok()) {
      vcpus = plan.target.vcpus;
    } else {
      add_shortfall("vCPU hotplug to " + std::to_string(plan.target.vcpus) + " refused: " + set.message());
    }
  }
  if (plan.target.memory_kib > live->memory_kib) {
    Status set = host_.SetMemoryLive(record.vm_name(), plan.target.memory_kib);
    if (!set.ok() && set.code() == Code::kUnavailable) {
      record.set_error("balloon: " + set.ToString());
      return PromotionOutcome::kRetry;
    }
    if (set.ok()) {
      memory_kib = plan.target.memory_kib;
    } else {
      add_shortfall("balloon to " + std::to_string(plan.target.memory_kib / 1024) + " MiB refused: " + set.message());
    }
  }
  // Where home is, for `failback`: written before DONE, so a kill in between grows (absolute sizes) and writes it
  // again.
  if (Status origin = arrivals_.RecordOrigin(
          record.vm_uuid(), record.vm_name(), record.primary_host(), v1::OriginRecord::ARRIVAL_PROMOTION,
          "promoted here from its shadow after " + record.primary_host() + " failed (" + record.reason() + ")");
      !origin.ok()) {
    record.set_error("recording the VM's origin " + record.primary_host() + ": " + origin.ToString());
    return PromotionOutcome::kRetry;
  }
  record.set_grown_vcpus(vcpus);
  record.set_grown_memory_kib(memory_kib);
  record.set_shortfall(shortfall);
  log_(record.vm_name() + " grown to " + std::to_string(vcpus) + " of " + std::to_string(record.full_vcpus()) +
       " vCPUs, " + std::to_string(memory_kib / 1024) + " of " + std::to_string(record.full_memory_kib() / 1024) +
       " MiB" + (shortfall.empty() ? "" : ": " + shortfall));
  return PromotionOutcome::kSucceeded;
}

StatusOr<v1::PromotionQueryReply> Promotions::QueryPromotion(const v1::PromotionQueryRequest& request) {
  if (request.vm_uuid().empty() || request.asking_host().empty()) {
    return InvalidArgument("QueryPromotion needs the VM's uuid and the asking host");
  }
  MutexLock lock(decide_mu_);
  VS_ASSIGN_OR_RETURN(std::optional<PromotionRecord> record, Get(request.vm_uuid()));
  v1::PromotionQueryReply reply;
  if (record && record->phase() != v1::PROMOTION_PHASE_FAILED) {
    reply.set_answer(v1::PromotionQueryReply::PROMOTED);
    reply.set_decided_unix_ms(record->decided_unix_ms());
    reply.set_detail(record->vm_name() + " was promoted on " + settings_.this_host + " (" + record->reason() +
                     "): the copy on " + request.asking_host() + " is stale");
    return reply;
  }
  v1::PromotionVeto veto;
  veto.set_vm_uuid(request.vm_uuid());
  veto.set_asking_host(request.asking_host());
  veto.set_vetoed_unix_ms(ToUnixMillis(clock_.WallNow()));
  store::WriteBatch batch;
  batch.PutProto(PromotionVetoKey(request.vm_uuid()), veto);
  VS_RETURN_IF_ERROR(store_.Write(batch));
  log_("no promotion of " + request.vm_uuid() + " here; not promoting it while " + request.asking_host() +
       " stays a member (it resumes its copy)");
  reply.set_answer(v1::PromotionQueryReply::NOT_PROMOTED);
  reply.set_detail("not promoted on " + settings_.this_host + "; it will not be while " + request.asking_host() +
                   " stays a member");
  return reply;
}

Status Promotions::EndAfterFailback(const std::string& vm_uuid, const std::string& home) {
  MutexLock lock(decide_mu_);
  VS_ASSIGN_OR_RETURN(std::optional<PromotionRecord> record, Get(vm_uuid));
  if (!record) return Status::Ok();
  if (record->phase() != v1::PROMOTION_PHASE_DONE || record->primary_host() != home) {
    return FailedPrecondition("the promotion of " + record->vm_name() + " here is " +
                              PromotionPhaseName(record->phase()) + " from " + record->primary_host() +
                              ", not a done promotion from " + home + "; it stays");
  }
  store::WriteBatch batch;
  batch.Delete(PromotionRecordKey(vm_uuid));
  VS_RETURN_IF_ERROR(store_.Write(batch));
  log_("promotion of " + record->vm_name() + " ended: it failed back to " + home + " (promoted at unix ms " +
       std::to_string(record->decided_unix_ms()) + ", RPO " + std::to_string(record->rpo_ms()) + " ms)");
  return Status::Ok();
}

StatusOr<PromotionRecord> Promotions::OperatorPromote(const std::string& vm, bool force, const std::string& reason,
                                                      const cluster::MembershipView& view) {
  VS_ASSIGN_OR_RETURN(std::vector<controller::PeerShadow> shadows, host_.LocalShadows());
  const auto it = std::find_if(shadows.begin(), shadows.end(), [&](const controller::PeerShadow& shadow) {
    return shadow.primary_name == vm || shadow.primary_uuid == vm;
  });
  if (it == shadows.end()) return NotFound("no shadow of a VM '" + vm + "' is defined on " + settings_.this_host);
  const cluster::HostHeartbeatView* primary = FindHost(view, it->primary_host);
  const bool in_quorate = view.quorate && primary != nullptr && primary->state == cluster::HostMembership::kMember;
  VS_RETURN_IF_ERROR(CheckOperatorPromote(it->primary_name, it->primary_host, in_quorate, force, reason));
  MutexLock lock(decide_mu_);
  VS_ASSIGN_OR_RETURN(std::optional<PromotionRecord> existing, Get(it->primary_uuid));
  if (existing && existing->phase() != v1::PROMOTION_PHASE_FAILED) {
    return AlreadyExists("a promotion of " + it->primary_name + " was decided already (phase " +
                         PromotionPhaseName(existing->phase()) + ")");
  }
  const std::string why = "operator's promote" + (reason.empty() ? std::string() : ": " + reason);
  return Decide(*it, primary, view.failure_detection, why, force);
}

}  // namespace vs::failover
