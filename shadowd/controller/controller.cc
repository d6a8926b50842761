#include "shadowd/controller/controller.h"

#include <algorithm>
#include <set>
#include <utility>

#include "shadowd/controller/canonical_policy.h"
#include "shadowd/controller/shadow_domain_xml.h"
#include "shadowd/lifecycle/lifecycle.h"
#include "shadowd/lifecycle/shadow_identity.h"
#include "shadowd/policy/policy.h"
#include "shadowd/store/keys.h"
#include "shadowd/policy/top_path.h"

namespace vs::controller {
namespace {

namespace v1 = virtshadow::v1;
using lifecycle::Event;

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
// Spelled out: clang before 17 does not deduce an aggregate's template arguments (C++20's CTAD for aggregates).
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

// The libvirt qemu hook's operations (argv[2]) and what each tells the controller. The hook runs on
// the host where the operation happens; for "migrate" that is the destination, which becomes the
// VM's primary host (the source sees stopped/release when the migration ends).
//
//   operation   when libvirt calls it                               controller call
//   ---------   --------------------------------------------------  -------------------------------
//   prepare     before resources are allocated for a start          OnDomainObserved(xml, running)
//   start       after allocation, before QEMU is launched           OnDomainObserved(xml, running)
//   started     after QEMU was launched                             OnDomainObserved(xml, running)
//   migrate     incoming migration, on the destination host          OnDomainObserved(xml, running)
//   restore     starting from a saved state file                    OnDomainObserved(xml, running)
//   reconnect   libvirtd restarted and reconnects to a running VM   OnDomainObserved(xml, running)
//   attach      libvirtd attached to an externally started QEMU     OnDomainObserved(xml, running)
//   stopped     QEMU has stopped                                    OnDomainStopped(uuid)
//   release     resources were released after a stop               OnDomainStopped(uuid)
//
// A start that fails is followed by stopped/release, so observing "running" at prepare is undone.
// Undefining a domain calls no hook: the daemon reports it from libvirt's lifecycle event
// (OnDomainUndefined) or ReconcileLocalDomains.
enum class HookMeaning { kObservedRunning, kStopped };

std::optional<HookMeaning> MeaningOf(std::string_view operation) {
  for (std::string_view running : {"prepare", "start", "started", "migrate", "restore", "reconnect", "attach"}) {
    if (operation == running) return HookMeaning::kObservedRunning;
  }
  if (operation == "stopped" || operation == "release") return HookMeaning::kStopped;
  return std::nullopt;
}

std::string VmKey(const std::string& vm_uuid) { return store::Key(store::Table::kVm, vm_uuid); }

lifecycle::ShadowSize SizeOf(const v1::VmRecord& r) { return {r.shadow_size().vcpus(), r.shadow_size().memory_kib()}; }

bool Assigns(const v1::VmRecord& r, const std::string& host, const std::string& shadow_uuid) {
  return std::any_of(r.shadows().begin(), r.shadows().end(), [&](const v1::ShadowAssignment& a) {
    return a.host() == host && a.domain_uuid() == shadow_uuid;
  });
}

// The one shadow assignment of a record in `state` on `host` with `shadow_uuid`, if that is what it holds.
bool HoldsShadowIn(const v1::VmRecord& r, v1::ProtectionState state, const std::string& host,
                   const std::string& shadow_uuid) {
  return r.state() == state && r.shadows_size() == 1 && r.shadows(0).host() == host &&
         r.shadows(0).domain_uuid() == shadow_uuid;
}

scheduler::ZoneRule ZoneRuleOf(policy::ZonePreference zone) {
  switch (zone) {
    case policy::ZonePreference::kPreferOther: return scheduler::ZoneRule::kPreferOther;
    case policy::ZonePreference::kRequireOther: return scheduler::ZoneRule::kRequireOther;
    case policy::ZonePreference::kAny: return scheduler::ZoneRule::kAny;
  }
  return scheduler::ZoneRule::kPreferOther;
}

std::vector<std::string> FileDiskPaths(const policy::DomainFacts& facts) {
  std::vector<std::string> paths;
  for (const policy::DiskFacts& disk : facts.disks) {
    if (disk.source_kind == policy::DiskFacts::SourceKind::kFile && !disk.source_path.empty()) {
      paths.push_back(policy::BasePathOf(disk.source_path));
    }
  }
  return paths;
}

VmStatusView ViewOf(const v1::VmRecord& r) {
  VmStatusView view;
  view.name = r.vm_name();
  view.uuid = r.vm_uuid();
  view.state = r.state();
  view.running = r.vm_running();
  for (const v1::ShadowAssignment& a : r.shadows()) view.shadow_hosts.push_back(a.host());
  view.pinned_host = r.pinned_host();
  view.shadow_size = SizeOf(r);
  view.policy = r.policy_xml();
  view.last_error = r.last_error();
  view.unprotected_reason = r.unprotected_reason();
  // Placement keeps one shadow per VM for now (see RequestFor); say so rather than let `shadows` look honoured.
  if (auto policy = ParseCanonicalPolicy(r.policy_xml()); policy.ok() && policy->shadows > 1) {
    if (!view.last_error.empty()) view.last_error += "; ";
    view.last_error += "the policy asks for " + std::to_string(policy->shadows) +
                       " shadows; this version of virt-shadow keeps 1 per VM";
  }
  return view;
}

// Keeps the first failure of a sequence of independent steps, so one VM's problem does not stop the
// others but is still returned.
class FirstError {
 public:
  void Note(Status status) {
    if (first_.ok() && !status.ok()) first_ = std::move(status);
  }
  Status Get() const { return first_; }

 private:
  Status first_;
};

}  // namespace

ProtectionController::ProtectionController(ControllerOptions options, store::Store& store, PeerOps& peers,
                                           ClusterView& cluster, ImageInfo& images, const Clock& clock)
    : options_(std::move(options)), store_(store), peers_(peers), cluster_(cluster), images_(images), clock_(clock) {}

// ---------------------------------------------------------------------------------------------
// Records, persistence, dispatch.

Status ProtectionController::RequireStarted() const {
  if (started_) return Status::Ok();
  return FailedPrecondition("the protection controller has not recovered its records yet; call Recover() first");
}

void ProtectionController::Report(const std::string& vm_uuid, const std::string& message) const {
  if (options_.report) options_.report(vm_uuid, message);
}

StatusOr<std::optional<v1::VmRecord>> ProtectionController::LoadRecord(const std::string& vm_uuid) const {
  VS_ASSIGN_OR_RETURN(std::optional<v1::VmRecord> record, store::GetProto<v1::VmRecord>(store_, VmKey(vm_uuid)));
  // The single-writer check: nobody but this controller changes its records.
  const auto known = versions_.find(vm_uuid);
  const std::uint64_t expected = known != versions_.end() ? known->second : 0;
  const std::uint64_t stored = record ? record->version() : 0;
  if (stored != expected) {
    return Aborted("VmRecord of VM " + vm_uuid + " is at version " + std::to_string(stored) +
                   " in the store but this controller last wrote or read version " + std::to_string(expected) +
                   ": another process writes this store; run exactly one shadowd per store");
  }
  return record;
}

StatusOr<ProtectionController::LoadedRecords> ProtectionController::LoadAllRecords() const {
  // Key by key (not Scan), so that one damaged value does not hide every other record.
  VS_ASSIGN_OR_RETURN(std::vector<std::string> keys, store_.ScanKeys(store::TablePrefix(store::Table::kVm)));
  LoadedRecords loaded;
  for (const std::string& key : keys) {
    StatusOr<std::optional<v1::VmRecord>> record = store::GetProto<v1::VmRecord>(store_, key);
    if (!record.ok()) {
      loaded.damaged.emplace_back(key, record.status());
    } else if (!*record) {
      continue;  // deleted since the key scan
    } else if (VmKey((*record)->vm_uuid()) != key) {
      loaded.damaged.emplace_back(key, DataLoss("store key " + key + " holds the VmRecord of VM '" +
                                                (*record)->vm_uuid() + "'; delete the entry"));
    } else {
      loaded.records.push_back(std::move(**record));
    }
  }
  return loaded;
}

Status ProtectionController::Persist(const std::string& vm_uuid, const v1::VmRecord& record, bool delete_record) {
  store::WriteBatch batch;
  if (delete_record) {
    batch.Delete(VmKey(vm_uuid));
  } else {
    batch.PutProto(VmKey(vm_uuid), record);
  }
  if (Status written = store_.Write(batch); !written.ok()) {
    // The record stays as it was; re-issue what it asks for once the store may work again.
    timers_[{vm_uuid, TimerKind::kResync}] = clock_.WallNow() + lifecycle::RetryBackoff(1);
    return written.Annotate("persisting the VmRecord of VM " + vm_uuid);
  }
  timers_.erase({vm_uuid, TimerKind::kResync});
  if (delete_record) {
    versions_.erase(vm_uuid);
    if (auto seen = observed_.find(vm_uuid); seen != observed_.end() && seen->second.undefined) observed_.erase(seen);
  } else {
    versions_[vm_uuid] = record.version();
  }
  return Status::Ok();
}

Status ProtectionController::ApplyEvent(const v1::VmRecord& current, const Event& event) {
  const std::string& vm_uuid = current.vm_uuid();
  StatusOr<lifecycle::Transition> transition =
      lifecycle::Apply(current, event, clock_.WallNow(), options_.grace_period);
  if (!transition.ok()) {
    // Stale timers and late results of abandoned actions end up refused: that is their answer.
    if (transition.status().code() == Code::kFailedPrecondition) return Status::Ok();
    Report(vm_uuid, transition.status().ToString());
    return transition.status();
  }
  const bool ends = std::any_of(transition->commands.begin(), transition->commands.end(),
                                [](const lifecycle::Command& c) { return std::holds_alternative<lifecycle::DeleteRecord>(c); });
  VS_RETURN_IF_ERROR(Persist(vm_uuid, transition->record, ends));
  // A record ends quietly in its state machine; the log says when, so that a VM found unprotected can be explained.
  if (ends) Report(vm_uuid, "protection record of '" + current.vm_name() + "' ended (it was " +
                                lifecycle::ToString(current.state()) + ")");
  Dispatch(vm_uuid, std::move(transition->commands));
  return Status::Ok();
}

Status ProtectionController::ApplyEventTo(const std::string& vm_uuid, const Event& event) {
  VS_ASSIGN_OR_RETURN(std::optional<v1::VmRecord> record, LoadRecord(vm_uuid));
  if (!record) return Status::Ok();  // the record ended meanwhile: the event is stale
  return ApplyEvent(*record, event);
}

void ProtectionController::Dispatch(const std::string& vm_uuid, std::vector<lifecycle::Command> commands) {
  for (lifecycle::Command& command : commands) {
    std::visit(Overloaded{
                   [&](lifecycle::ComputePlacement& c) { queue_.push_back({vm_uuid, std::move(c)}); },
                   [&](lifecycle::DefineShadow& c) { queue_.push_back({vm_uuid, std::move(c)}); },
                   [&](lifecycle::ReleaseShadow& c) { queue_.push_back({vm_uuid, std::move(c)}); },
                   [&](lifecycle::StartGraceTimer& c) { timers_[{vm_uuid, TimerKind::kGrace}] = c.deadline; },
                   [&](lifecycle::ScheduleRetry& c) { timers_[{vm_uuid, TimerKind::kRetry}] = c.at; },
                   [&](lifecycle::DeleteRecord&) {},  // written as part of the transition's batch
                   [&](lifecycle::ReportError& c) { Report(vm_uuid, c.message); },
               },
               command);
  }
}

Status ProtectionController::DispatchRecovered(const v1::VmRecord& record) {
  VS_ASSIGN_OR_RETURN(std::vector<lifecycle::Command> commands, lifecycle::Recover(record));
  const bool ends = std::any_of(commands.begin(), commands.end(), [](const lifecycle::Command& c) {
    return std::holds_alternative<lifecycle::DeleteRecord>(c);
  });
  if (ends) return Persist(record.vm_uuid(), record, /*delete_record=*/true);
  Dispatch(record.vm_uuid(), std::move(commands));
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Start-up.

Status ProtectionController::Recover() {
  if (started_) return FailedPrecondition("Recover() was already called; it runs once, at start-up");
  VS_ASSIGN_OR_RETURN(LoadedRecords loaded, LoadAllRecords());
  FirstError first;
  for (const auto& [key, error] : loaded.damaged) {
    Report(key, error.ToString());
    first.Note(error);
  }
  for (const v1::VmRecord& record : loaded.records) versions_[record.vm_uuid()] = record.version();
  for (const v1::VmRecord& record : loaded.records) {
    Status recovered = DispatchRecovered(record);
    if (!recovered.ok()) Report(record.vm_uuid(), recovered.ToString());
    first.Note(recovered);
  }
  started_ = true;
  return first.Get();
}

Status ProtectionController::ReconcileLocalDomains(const std::vector<DomainObservation>& domains) {
  VS_RETURN_IF_ERROR(RequireStarted());
  FirstError first;
  std::set<std::string> present;
  for (const DomainObservation& domain : domains) {
    if (StatusOr<std::string> hint = lifecycle::CanonicalUuid(domain.uuid_hint); hint.ok()) present.insert(*hint);
    if (StatusOr<policy::DomainFacts> facts = policy::ParseDomain(domain.xml); facts.ok()) {
      if (StatusOr<std::string> uuid = lifecycle::CanonicalUuid(facts->uuid); uuid.ok()) present.insert(*uuid);
    }
    first.Note(OnDomainObserved(domain));
  }
  VS_ASSIGN_OR_RETURN(LoadedRecords loaded, LoadAllRecords());
  for (const v1::VmRecord& record : loaded.records) {
    if (present.count(record.vm_uuid()) != 0) continue;
    Report(record.vm_uuid(), "'" + record.vm_name() + "' is not among this host's domains: taken as undefined");
    first.Note(OnDomainUndefined(record.vm_uuid()));
  }
  return first.Get();
}

// ---------------------------------------------------------------------------------------------
// Observations.

ProtectionController::Judgement ProtectionController::Judge(const std::string& vm_uuid,
                                                            const policy::DomainFacts& facts,
                                                            std::string& policy_source) const {
  policy_source.clear();
  policy::PolicyResult result = policy::ParsePolicy(facts);
  if (!result.policy.ok()) return Rejected{result.policy.status().message()};
  std::optional<policy::Policy> found = *result.policy;
  // The domain XML's own element wins: whoever tagged the domain on this host meant it. Only an untagged domain
  // asks the cloud's records (a Nova instance's XML is rewritten by Nova at every hard reboot, resize and move).
  if (!found && options_.external_policy) {
    if (std::optional<ExternalPolicy> external = options_.external_policy(vm_uuid, facts)) {
      policy_source = external->source;
      if (!external->policy.ok()) return Rejected{external->policy.status().message()};
      found = *external->policy;
    }
  }
  if (!found || !found->enabled) return Untagged{};
  for (const policy::DiskFacts& disk : facts.disks) {
    if (disk.source_kind != policy::DiskFacts::SourceKind::kFile || disk.source_path.empty()) {
      return Rejected{"domain '" + facts.name + "' cannot be shadowed: disk '" + disk.target_dev +
                      "' is not backed by a local file; only file-backed disks are replicated "
                      "(remove the tag, or move the disk to a file)"};
    }
  }
  // vCPUs: those the VM runs with; memory: its configured size (<memory>), not the balloon's current
  // value, which moves on its own and would re-size the shadow again and again.
  StatusOr<policy::ShadowSize> size = policy::ResolveShadowSize(*found, facts.current_vcpus, facts.memory_kib);
  if (!size.ok()) return Rejected{size.status().message()};
  return Tagged{policy::RenderPolicy(*found), {size->vcpus, size->memory_kib}};
}

Status ProtectionController::OnDomainObserved(const DomainObservation& observation) {
  VS_RETURN_IF_ERROR(RequireStarted());
  StatusOr<policy::DomainFacts> facts = policy::ParseDomain(observation.xml);
  if (!facts.ok()) return ObserveUnparsable(observation, facts.status());
  StatusOr<std::string> vm_uuid = lifecycle::CanonicalUuid(facts->uuid);
  if (!vm_uuid.ok()) return ObserveUnparsable(observation, vm_uuid.status().Annotate("domain XML <uuid>"));
  return Observe(observation, *vm_uuid, std::move(facts).value());
}

// The XML cannot be read. If the source named the VM and the VM matters (it has a record, or the
// text mentions our namespace), the error is recorded in its record, where status shows it.
Status ProtectionController::ObserveUnparsable(const DomainObservation& observation, const Status& error) {
  const Status annotated = error.Annotate("observed domain XML" +
                                          (observation.uuid_hint.empty() ? "" : " of VM " + observation.uuid_hint));
  StatusOr<std::string> vm_uuid = lifecycle::CanonicalUuid(observation.uuid_hint);
  if (!vm_uuid.ok()) return annotated;
  VS_ASSIGN_OR_RETURN(std::optional<v1::VmRecord> record, LoadRecord(*vm_uuid));
  if (!record && !policy::MayBeTagged(observation.xml)) return annotated;
  const std::string name = !observation.name_hint.empty() ? observation.name_hint : *vm_uuid;
  const v1::VmRecord current =
      record ? *record : lifecycle::NewVmRecord(*vm_uuid, name, options_.this_host, observation.running);
  VS_RETURN_IF_ERROR(ApplyEvent(current, lifecycle::PolicyRejected{"domain XML cannot be read: " + error.message()}));
  return annotated;
}

Status ProtectionController::Observe(const DomainObservation& observation, const std::string& vm_uuid,
                                     policy::DomainFacts facts) {
  if (IsShadowDomain(facts)) return Status::Ok();  // shadows are managed by their primary's shadowd
  if (options_.promoted_elsewhere) {
    if (std::optional<std::string> host = options_.promoted_elsewhere(vm_uuid)) {
      return OnSwitchedOver(vm_uuid, *host, /*promoted=*/true);
    }
  }
  std::string policy_source;
  const Judgement judgement = Judge(vm_uuid, facts, policy_source);
  Observed& seen = observed_[vm_uuid];
  seen.policy_source = std::holds_alternative<Untagged>(judgement) ? "" : policy_source;
  const std::optional<std::string> previous_rejection = seen.rejection;
  seen.xml = observation.xml;
  seen.facts = std::move(facts);
  seen.running = observation.running;
  seen.undefined = false;
  seen.rejection.reset();
  if (const Rejected* rejected = std::get_if<Rejected>(&judgement)) seen.rejection = rejected->error;
  const std::string name = seen.facts.name;

  VS_ASSIGN_OR_RETURN(std::optional<v1::VmRecord> record, LoadRecord(vm_uuid));
  if (record && record->vm_running() != observation.running) {
    const Event run_state = observation.running ? Event(lifecycle::VmStarted{}) : Event(lifecycle::VmStopped{});
    VS_RETURN_IF_ERROR(ApplyEvent(*record, run_state));
    VS_ASSIGN_OR_RETURN(record, LoadRecord(vm_uuid));
  }

  // The tag's event, only when it tells the record something new.
  std::optional<Event> tag_event = std::visit(
      Overloaded{
          [&](const Untagged&) -> std::optional<Event> {
            if (record && (record->tagged() || record->state() == v1::PROTECTION_STATE_POLICY_INVALID)) {
              return lifecycle::PolicyRemoved{};
            }
            return std::nullopt;
          },
          [&](const Tagged& tagged) -> std::optional<Event> {
            // A stopped VM without a record has nothing to hold: no record is made for it.
            const bool news = record ? record->state() == v1::PROTECTION_STATE_POLICY_INVALID || !record->tagged() ||
                                           record->policy_xml() != tagged.policy_xml || SizeOf(*record) != tagged.size
                                     : observation.running;
            if (!news) return std::nullopt;
            return lifecycle::PolicySeen{tagged.policy_xml, tagged.size};
          },
          [&](const Rejected& rejected) -> std::optional<Event> {
            if (record && previous_rejection == rejected.error) return std::nullopt;  // reported already
            return lifecycle::PolicyRejected{rejected.error};
          },
      },
      judgement);
  if (tag_event) {
    const v1::VmRecord current =
        record ? *record : lifecycle::NewVmRecord(vm_uuid, name, options_.this_host, observation.running);
    VS_RETURN_IF_ERROR(ApplyEvent(current, *tag_event));
  }

  if (auto waiting = awaiting_xml_.find(vm_uuid); waiting != awaiting_xml_.end()) {
    queue_.push_back({vm_uuid, std::move(waiting->second)});
    awaiting_xml_.erase(waiting);
  }
  return Status::Ok();
}

Status ProtectionController::OnDomainStopped(std::string_view vm_uuid_text) {
  VS_RETURN_IF_ERROR(RequireStarted());
  StatusOr<std::string> vm_uuid = lifecycle::CanonicalUuid(vm_uuid_text);
  if (!vm_uuid.ok()) return vm_uuid.status().Annotate("stopped domain's uuid");
  if (auto seen = observed_.find(*vm_uuid); seen != observed_.end()) seen->second.running = false;
  VS_ASSIGN_OR_RETURN(std::optional<v1::VmRecord> record, LoadRecord(*vm_uuid));
  if (!record || !record->vm_running()) return Status::Ok();
  return ApplyEvent(*record, lifecycle::VmStopped{});
}

Status ProtectionController::OnDomainUndefined(std::string_view vm_uuid_text) {
  VS_RETURN_IF_ERROR(RequireStarted());
  StatusOr<std::string> vm_uuid = lifecycle::CanonicalUuid(vm_uuid_text);
  if (!vm_uuid.ok()) return vm_uuid.status().Annotate("undefined domain's uuid");
  if (auto seen = observed_.find(*vm_uuid); seen != observed_.end()) {
    seen->second.undefined = true;
    seen->second.running = false;
  }
  awaiting_xml_.erase(*vm_uuid);
  VS_RETURN_IF_ERROR(ApplyEventTo(*vm_uuid, lifecycle::VmUndefined{}));
  VS_ASSIGN_OR_RETURN(std::optional<v1::VmRecord> record, LoadRecord(*vm_uuid));
  if (!record) observed_.erase(*vm_uuid);  // nothing held any more (or never was)
  return Status::Ok();
}

Status ProtectionController::OnMetadataChanged(std::string_view xml) {
  VS_RETURN_IF_ERROR(RequireStarted());
  VS_ASSIGN_OR_RETURN(policy::DomainFacts facts, policy::ParseDomain(xml));
  StatusOr<std::string> vm_uuid = lifecycle::CanonicalUuid(facts.uuid);
  if (!vm_uuid.ok()) return vm_uuid.status().Annotate("domain XML <uuid>");
  bool running = false;
  if (auto seen = observed_.find(*vm_uuid); seen != observed_.end()) {
    running = seen->second.running;
  } else {
    VS_ASSIGN_OR_RETURN(std::optional<v1::VmRecord> record, LoadRecord(*vm_uuid));
    running = record && record->vm_running();
  }
  return Observe({std::string(xml), running, *vm_uuid, facts.name}, *vm_uuid, std::move(facts));
}

Status ProtectionController::OnExternalPolicyChanged(std::string_view vm_uuid_text) {
  VS_RETURN_IF_ERROR(RequireStarted());
  StatusOr<std::string> vm_uuid = lifecycle::CanonicalUuid(vm_uuid_text);
  if (!vm_uuid.ok()) return vm_uuid.status().Annotate("external policy's VM uuid");
  auto seen = observed_.find(*vm_uuid);
  if (seen == observed_.end() || seen->second.undefined) return Status::Ok();
  const Observed& last = seen->second;
  return Observe({last.xml, last.running, *vm_uuid, last.facts.name}, *vm_uuid, last.facts);
}

Status ProtectionController::HandleHookEvent(const v1::HookEvent& event) {
  VS_RETURN_IF_ERROR(RequireStarted());
  const std::optional<HookMeaning> meaning = MeaningOf(event.operation());
  if (!meaning) {
    return InvalidArgument("HookEvent.operation '" + event.operation().substr(0, 64) +
                           "' is not a qemu hook operation (prepare, start, started, stopped, release, migrate, "
                           "restore, reconnect, attach)");
  }
  if (*meaning == HookMeaning::kStopped) {
    if (!event.domain_uuid().empty()) return OnDomainStopped(event.domain_uuid());
    VS_ASSIGN_OR_RETURN(policy::DomainFacts facts, policy::ParseDomain(event.domain_xml()));
    return OnDomainStopped(facts.uuid);
  }
  return OnDomainObserved({event.domain_xml(), /*running=*/true, event.domain_uuid(), event.domain_name()});
}

Status ProtectionController::OnTimer() {
  VS_RETURN_IF_ERROR(RequireStarted());
  const WallTime now = clock_.WallNow();
  std::vector<std::pair<WallTime, TimerKey>> due;
  for (auto it = timers_.begin(); it != timers_.end();) {
    if (it->second <= now) {
      due.emplace_back(it->second, it->first);
      it = timers_.erase(it);
    } else {
      ++it;
    }
  }
  std::sort(due.begin(), due.end());
  FirstError first;
  for (const auto& [deadline, key] : due) {
    const auto& [vm_uuid, kind] = key;
    switch (kind) {
      case TimerKind::kGrace: first.Note(ApplyEventTo(vm_uuid, lifecycle::GraceExpired{})); break;
      case TimerKind::kRetry: first.Note(ApplyEventTo(vm_uuid, lifecycle::RetryTimerFired{})); break;
      case TimerKind::kResync: {
        StatusOr<std::optional<v1::VmRecord>> record = LoadRecord(vm_uuid);
        if (!record.ok()) {
          first.Note(record.status());
        } else if (*record) {
          first.Note(DispatchRecovered(**record));
        }
        break;
      }
    }
  }
  return first.Get();
}

Status ProtectionController::OnSwitchedOver(std::string_view vm_uuid, const std::string& host, bool promoted) {
  VS_RETURN_IF_ERROR(RequireStarted());
  VS_ASSIGN_OR_RETURN(std::string uuid, lifecycle::CanonicalUuid(vm_uuid));
  return ApplyEventTo(uuid, lifecycle::SwitchedOver{.host = host, .promoted = promoted});
}

Status ProtectionController::RequestShadowMove(std::string_view vm, const std::string& host) {
  VS_RETURN_IF_ERROR(RequireStarted());
  VS_ASSIGN_OR_RETURN(v1::VmRecord record, FindRecord(vm));
  VS_ASSIGN_OR_RETURN(std::optional<v1::VmRecord> current, LoadRecord(record.vm_uuid()));
  if (!current) return NotFound("VM '" + std::string(vm) + "' has no protection record here any more");
  if (current->state() != v1::PROTECTION_STATE_PROTECTED && current->state() != v1::PROTECTION_STATE_UNPROTECTED) {
    return FailedPrecondition("VM '" + current->vm_name() + "' is " + lifecycle::ToString(current->state()) +
                              "; its shadow can be moved once it is Protected (or Unprotected); try again shortly");
  }
  StatusOr<lifecycle::Transition> transition =
      lifecycle::Apply(*current, lifecycle::ShadowMoveRequested{host}, clock_.WallNow(), options_.grace_period);
  if (!transition.ok()) return transition.status();
  return ApplyEvent(*current, lifecycle::ShadowMoveRequested{host});
}

Status ProtectionController::OnCapacityChanged() {
  VS_RETURN_IF_ERROR(RequireStarted());
  VS_ASSIGN_OR_RETURN(LoadedRecords loaded, LoadAllRecords());
  FirstError first;
  for (const v1::VmRecord& record : loaded.records) {
    if (record.state() == v1::PROTECTION_STATE_UNPROTECTED) {
      first.Note(ApplyEventTo(record.vm_uuid(), lifecycle::CapacityChanged{}));
    }
  }
  return first.Get();
}

Status ProtectionController::OnHostLeaving(const std::string& host, const std::string& reason) {
  VS_RETURN_IF_ERROR(RequireStarted());
  VS_ASSIGN_OR_RETURN(LoadedRecords loaded, LoadAllRecords());
  FirstError first;
  for (const v1::VmRecord& record : loaded.records) {
    const bool holds_there = record.shadows_size() == 1 && record.shadows(0).host() == host;
    if (holds_there && (record.state() == v1::PROTECTION_STATE_PROTECTED ||
                        record.state() == v1::PROTECTION_STATE_PLACING)) {
      first.Note(ApplyEventTo(record.vm_uuid(), lifecycle::ShadowHostLeaving{host, reason}));
    }
  }
  return first.Get();
}

Status ProtectionController::OnHostLost(const std::string& host, const std::string& detail) {
  VS_RETURN_IF_ERROR(RequireStarted());
  VS_ASSIGN_OR_RETURN(LoadedRecords loaded, LoadAllRecords());
  FirstError first;
  for (const v1::VmRecord& record : loaded.records) {
    if (record.shadows_size() == 1 && record.shadows(0).host() == host) {
      first.Note(ApplyEventTo(record.vm_uuid(), lifecycle::ShadowLost{host, detail}));
    }
  }
  return first.Get();
}

Status ProtectionController::SweepOrphans(const std::vector<PeerShadow>& found) {
  VS_RETURN_IF_ERROR(RequireStarted());
  FirstError first;
  for (const PeerShadow& shadow : found) {
    if (shadow.primary_host != options_.this_host) continue;  // another host's shadowd owns it
    StatusOr<std::string> vm_uuid = lifecycle::CanonicalUuid(shadow.primary_uuid);
    if (!vm_uuid.ok()) {
      first.Note(vm_uuid.status().Annotate("shadow '" + shadow.shadow_name + "' on host '" + shadow.host +
                                           "': primary uuid"));
      continue;
    }
    StatusOr<std::optional<v1::VmRecord>> record = LoadRecord(*vm_uuid);
    if (!record.ok()) {
      first.Note(record.status());
      continue;
    }
    if (*record && Assigns(**record, shadow.host, shadow.shadow_uuid)) continue;
    queue_.push_back({*vm_uuid, ReleaseOrphan{shadow}});
  }
  return first.Get();
}

// ---------------------------------------------------------------------------------------------
// Execution.

StatusOr<bool> ProtectionController::Step() {
  VS_RETURN_IF_ERROR(RequireStarted());
  if (queue_.empty()) return false;
  Pending pending = std::move(queue_.front());
  queue_.pop_front();
  VS_RETURN_IF_ERROR(std::visit([&](const auto& action) { return Perform(pending.vm_uuid, action); }, pending.action));
  return true;
}

Status ProtectionController::RunPending() {
  VS_RETURN_IF_ERROR(RequireStarted());
  FirstError first;
  while (HasPending()) first.Note(Step().status());
  return first.Get();
}

std::optional<WallTime> ProtectionController::NextTimerDeadline() const {
  std::optional<WallTime> next;
  for (const auto& [key, deadline] : timers_) {
    if (!next || deadline < *next) next = deadline;
  }
  return next;
}

StatusOr<scheduler::ShadowRequest> ProtectionController::RequestFor(const v1::VmRecord& record) {
  VS_ASSIGN_OR_RETURN(policy::Policy policy, ParseCanonicalPolicy(record.policy_xml()));
  scheduler::ShadowRequest request;
  request.vm_id = record.vm_uuid();
  request.vm_name = record.vm_name();
  request.primary_host = record.primary_host();
  request.shadow_vcpus = record.shadow_size().vcpus();
  request.shadow_memory_kib = record.shadow_size().memory_kib();
  request.shadow_count = 1;  // the lifecycle keeps one shadow per VM (policy `shadows` > 1 is not acted on yet)
  request.zone_rule = ZoneRuleOf(policy.zone);
  request.max_cost_per_hour = policy.cost_cap_per_hour;
  request.priority = static_cast<int>(policy.priority);
  // Never where the VM itself is still defined: right after a switchover its old host keeps the domain (and
  // the image at the same path) until the migration has ended, and a replica cannot be placed over it.
  VS_ASSIGN_OR_RETURN(std::vector<std::string> defining, cluster_.HostsDefining(record.vm_uuid()));
  for (std::string& host : defining) {
    if (host != record.primary_host()) request.exclude_hosts.push_back(std::move(host));
  }
  return request;
}

StatusOr<std::vector<scheduler::Host>> ProtectionController::HostsWithReservations(const std::string& exclude_vm) {
  VS_ASSIGN_OR_RETURN(std::vector<scheduler::Host> hosts, cluster_.Hosts());
  VS_ASSIGN_OR_RETURN(std::vector<PeerShadow> shadows, cluster_.Shadows());
  VS_ASSIGN_OR_RETURN(LoadedRecords loaded, LoadAllRecords());
  auto reserve = [&hosts](const std::string& host, std::uint32_t vcpus, std::uint64_t memory_kib) {
    for (scheduler::Host& h : hosts) {
      if (h.name != host) continue;
      h.reserved_vcpus += vcpus;
      h.reserved_memory_kib += memory_kib;
    }
  };
  std::set<std::pair<std::string, std::string>> accounted;  // (host, shadow uuid) of our assignments
  for (const v1::VmRecord& record : loaded.records) {
    for (const v1::ShadowAssignment& a : record.shadows()) {
      accounted.emplace(a.host(), a.domain_uuid());
      if (record.vm_uuid() != exclude_vm) reserve(a.host(), record.shadow_size().vcpus(), record.shadow_size().memory_kib());
    }
  }
  for (const PeerShadow& shadow : shadows) {
    if (accounted.count({shadow.host, shadow.shadow_uuid}) == 0) reserve(shadow.host, shadow.size.vcpus, shadow.size.memory_kib);
  }
  return hosts;
}

Status ProtectionController::Perform(const std::string& vm_uuid, const lifecycle::ComputePlacement& command) {
  VS_ASSIGN_OR_RETURN(std::optional<v1::VmRecord> record, LoadRecord(vm_uuid));
  if (!record || record->state() != v1::PROTECTION_STATE_UNPLACED || SizeOf(*record) != command.shadow_size) {
    return Status::Ok();  // overtaken by a later transition
  }
  auto place = [&]() -> StatusOr<scheduler::Placement> {
    VS_ASSIGN_OR_RETURN(scheduler::ShadowRequest request, RequestFor(*record));
    VS_ASSIGN_OR_RETURN(std::vector<scheduler::Host> hosts, HostsWithReservations(vm_uuid));
    if (!record->pinned_host().empty()) {  // a requested move (failback): that host or none
      for (const scheduler::Host& host : hosts) {
        if (host.name != record->pinned_host()) request.exclude_hosts.push_back(host.name);
      }
    }
    return scheduler::Place(hosts, request, options_.placement);
  };
  StatusOr<scheduler::Placement> placement = place();
  Event outcome = lifecycle::PlacementFailed{"placement could not be computed: " + placement.status().ToString()};
  if (placement.ok() && placement->outcome == scheduler::PlacementOutcome::kPlaced && !placement->hosts.empty()) {
    outcome = lifecycle::PlacementChosen{placement->hosts.front(), command.shadow_size};
  } else if (placement.ok()) {
    outcome = lifecycle::PlacementFailed{placement->summary.empty() ? "no host can take the shadow" : placement->summary};
  }
  return ApplyEvent(*record, outcome);
}

Status ProtectionController::Perform(const std::string& vm_uuid, const lifecycle::DefineShadow& command) {
  VS_ASSIGN_OR_RETURN(std::optional<v1::VmRecord> record, LoadRecord(vm_uuid));
  if (!record || !HoldsShadowIn(*record, v1::PROTECTION_STATE_PLACING, command.host, command.shadow_uuid)) {
    return Status::Ok();
  }
  const auto seen = observed_.find(vm_uuid);
  if (seen == observed_.end()) {
    awaiting_xml_.insert_or_assign(vm_uuid, command);  // performed when the VM is observed
    return Status::Ok();
  }
  const Status defined = DefineOn(*record, seen->second, command);
  const Event outcome = defined.ok() ? Event(lifecycle::ShadowDefined{command.host})
                                     : Event(lifecycle::ShadowDefineFailed{command.host, defined});
  return ApplyEvent(*record, outcome);
}

// XML first (pure: a bad domain touches no host), then the replica images, then the definition that
// points to them.
Status ProtectionController::DefineOn(const v1::VmRecord& record, const Observed& observed,
                                      const lifecycle::DefineShadow& command) {
  StatusOr<std::string> xml = ShadowDomainXml(observed.xml, {command.shadow_uuid, command.shadow_name, record.shadows(0).index()},
                                              command.shadow_size,
                                              {record.vm_uuid(), record.vm_name(), options_.this_host, record.policy_xml()});
  if (!xml.ok()) return xml.status().Annotate("building the shadow's domain XML");
  for (const policy::DiskFacts& disk : observed.facts.disks) {
    // Just after a switchover the disk is still on its top: the replica stands for the image beneath.
    const bool on_top = policy::IsTopPath(disk.source_path);
    const std::string path = policy::BasePathOf(disk.source_path);
    StatusOr<std::uint64_t> size = images_.VirtualSize(path);
    if (!size.ok()) return size.status().Annotate("reading the virtual size of " + path);
    const std::string given = on_top ? disk.backing_format : disk.format;
    const std::string format = given.empty() ? "raw" : given;  // libvirt's default
    VS_RETURN_IF_ERROR(peers_.CreateReplicaImage(command.host, path, *size, format)
                           .Annotate("creating replica image " + path));
  }
  return peers_.DefineShadow(command.host, *xml);
}

Status ProtectionController::Perform(const std::string& vm_uuid, const lifecycle::ReleaseShadow& command) {
  VS_ASSIGN_OR_RETURN(std::optional<v1::VmRecord> record, LoadRecord(vm_uuid));
  if (!record || !HoldsShadowIn(*record, v1::PROTECTION_STATE_RELEASING, command.host, command.shadow_uuid)) {
    return Status::Ok();
  }
  std::vector<std::string> known_paths;
  if (auto seen = observed_.find(vm_uuid); seen != observed_.end()) known_paths = FileDiskPaths(seen->second.facts);
  const Status released = ReleaseOn(command.host, command.shadow_uuid, command.shadow_name, std::move(known_paths));
  const Event outcome = released.ok() ? Event(lifecycle::ShadowReleased{command.host})
                                      : Event(lifecycle::ReleaseFailed{command.host, released});
  return ApplyEvent(*record, outcome);
}

Status ProtectionController::Perform(const std::string& vm_uuid, const ReleaseOrphan& command) {
  VS_ASSIGN_OR_RETURN(std::optional<v1::VmRecord> record, LoadRecord(vm_uuid));
  const PeerShadow& shadow = command.shadow;
  if (record && Assigns(*record, shadow.host, shadow.shadow_uuid)) return Status::Ok();  // claimed since the sweep
  Status released = ReleaseOn(shadow.host, shadow.shadow_uuid, shadow.shadow_name, shadow.replica_paths);
  if (!released.ok()) {
    released = released.Annotate("releasing orphan shadow '" + shadow.shadow_name + "' on host '" + shadow.host +
                                 "' (the next sweep tries again)");
    Report(vm_uuid, released.ToString());
  }
  return released;
}

// The replica paths come from the shadow domain itself (it names its images, also after a restart
// when the primary's XML is not known) plus those the caller knows (images created by a define that
// never reached DefineShadow).
Status ProtectionController::ReleaseOn(const std::string& host, const std::string& shadow_uuid,
                                       const std::string& shadow_name, std::vector<std::string> known_paths) {
  VS_ASSIGN_OR_RETURN(std::vector<PeerShadow> listed, peers_.ListShadows(host));
  for (const PeerShadow& shadow : listed) {
    if (shadow.shadow_uuid != shadow_uuid) continue;
    // The same deterministic UUID defined by another host's shadowd: the VM moved there (migration)
    // and its new primary host re-used the target. That shadow is not ours to delete.
    if (shadow.primary_host != options_.this_host) return Status::Ok();
    known_paths.insert(known_paths.end(), shadow.replica_paths.begin(), shadow.replica_paths.end());
  }
  std::sort(known_paths.begin(), known_paths.end());
  known_paths.erase(std::unique(known_paths.begin(), known_paths.end()), known_paths.end());
  return peers_.ReleaseShadow(host, shadow_uuid, shadow_name, known_paths);
}

// ---------------------------------------------------------------------------------------------
// Queries.

StatusOr<v1::VmRecord> ProtectionController::FindRecord(std::string_view vm) const {
  if (StatusOr<std::string> vm_uuid = lifecycle::CanonicalUuid(vm); vm_uuid.ok()) {
    VS_ASSIGN_OR_RETURN(std::optional<v1::VmRecord> record, store::GetProto<v1::VmRecord>(store_, VmKey(*vm_uuid)));
    if (record) return *record;
  }
  VS_ASSIGN_OR_RETURN(LoadedRecords loaded, LoadAllRecords());
  for (v1::VmRecord& record : loaded.records) {
    if (record.vm_name() == vm) return std::move(record);
  }
  return NotFound("no VM named or with UUID '" + std::string(vm.substr(0, 128)) +
                  "' has a protection record on this host: it is untagged, stopped with no shadow held, or runs "
                  "elsewhere");
}

VmStatusView ProtectionController::ViewWithObservation(const v1::VmRecord& record) const {
  VmStatusView view = ViewOf(record);
  auto seen = observed_.find(record.vm_uuid());
  if (seen == observed_.end()) return view;
  view.policy_source = seen->second.policy_source;
  if (const std::optional<policy::NovaInstanceFacts>& nova = seen->second.facts.nova) {
    view.nova = NovaView{.instance_id = record.vm_uuid(),
                         .name = nova->display_name,
                         .project_id = nova->project_uuid,
                         .project_name = nova->project_name,
                         .flavor = nova->flavor_name};
  }
  return view;
}

StatusOr<VmStatusView> ProtectionController::StatusOf(std::string_view vm) const {
  VS_ASSIGN_OR_RETURN(v1::VmRecord record, FindRecord(vm));
  return ViewWithObservation(record);
}

StatusOr<std::vector<VmStatusView>> ProtectionController::List() const {
  VS_ASSIGN_OR_RETURN(LoadedRecords loaded, LoadAllRecords());
  std::vector<VmStatusView> views;
  for (const v1::VmRecord& record : loaded.records) views.push_back(ViewWithObservation(record));
  for (const auto& [key, error] : loaded.damaged) {
    VmStatusView damaged;
    damaged.uuid = key;
    damaged.damaged = true;
    damaged.last_error = error.ToString();
    views.push_back(std::move(damaged));
  }
  return views;
}

StatusOr<scheduler::Explanation> ProtectionController::Explain(std::string_view vm) {
  VS_ASSIGN_OR_RETURN(v1::VmRecord record, FindRecord(vm));
  if (record.policy_xml().empty()) {
    return FailedPrecondition("VM '" + record.vm_name() + "' has no valid policy (state " +
                              lifecycle::ToString(record.state()) + ": " + record.last_error() +
                              "); fix its tag to see where its shadow would go");
  }
  VS_ASSIGN_OR_RETURN(scheduler::ShadowRequest request, RequestFor(record));
  VS_ASSIGN_OR_RETURN(std::vector<scheduler::Host> hosts, HostsWithReservations(record.vm_uuid()));
  return scheduler::Explain(hosts, request, options_.placement);
}

}  // namespace vs::controller
