#include "shadowd/switchover/switchover_coordinator.h"

#include <algorithm>

#include "shadowd/controller/canonical_policy.h"
#include "shadowd/lifecycle/lifecycle.h"
#include "shadowd/policy/domain_xml.h"

namespace vs::switchover {

namespace v1 = virtshadow::v1;

namespace {

constexpr double kMiB = 1024.0 * 1024.0;

std::string Seconds(Duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count() / 1000.0).substr(0, 6) + " s";
}

}  // namespace

SwitchoverCoordinator::SwitchoverCoordinator(std::string this_host, Settings settings, Parts parts,
                                             std::function<void(const std::string&)> log,
                                             std::function<void(const notice::Notice&)> on_drained,
                                             Duration completion_retry_every)
    : this_host_(std::move(this_host)), settings_(settings), parts_(parts), log_(std::move(log)),
      on_drained_(std::move(on_drained)), completion_retry_every_(completion_retry_every), bandwidth_(*BandwidthEstimator::Create(settings.bandwidth_mibs * kMiB, 0.5)) {}

SwitchoverCoordinator::~SwitchoverCoordinator() { Stop(); }

void SwitchoverCoordinator::Start() {
  // First of all jobs, also before notices that arrived before Start: unfinished switchovers resume before
  // any new one begins.
  auto resume = [this] {
    auto resumed = parts_.runner.ResumeAll();
    if (!resumed.ok()) return log_("resuming switchovers: " + resumed.status().ToString());
    for (const auto& record : *resumed) {
      if (record.phase() == v1::SWITCHOVER_PHASE_DONE) Observe(record);
    }
    if (auto drain = parts_.drain.Current(); drain && IsPreemption(*drain)) {
      notice::Notice notice;
      // The notice's own source: on_drained approves an Azure event by it, and the records' reason names it.
      notice.source = notice::SourceFromName(drain->source()).value_or(notice::Notice::Source::kDrain);
      notice.deadline = FromUnixMillis(drain->deadline_unix_ms());
      notice.id = drain->notice_id();
      notice.detail = "resumed after a restart: " + drain->detail();
      auto reply = DrainNow(notice);
      if (!reply.ok()) log_("resuming the drain: " + reply.status().ToString());
    }
  };
  {
    MutexLock lock(mutex_);
    jobs_.push_front(std::move(resume));
  }
  thread_ = std::thread([this] { Run(); });
}

void SwitchoverCoordinator::Stop() {
  {
    MutexLock lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  // A held warm-up ends at its deadline guard; shadowd's stop does not wait that long for it to switch.
  for (auto& [uuid, warm] : warm_ups_) {
    parts_.warm_up.Release(uuid);
    if (warm.thread.joinable()) warm.thread.join();
  }
  warm_ups_.clear();
}

void SwitchoverCoordinator::Post(std::function<void()> job) {
  {
    MutexLock lock(mutex_);
    jobs_.push_back(std::move(job));
  }
  wake_.notify_all();
}

void SwitchoverCoordinator::Run() {
  while (true) {
    std::function<void()> job;
    {
      MutexLock lock(mutex_);
      if (!stopping_ && jobs_.empty()) wake_.wait_for(mutex_, completion_retry_every_);
      if (stopping_) {
        jobs_.clear();  // jobs never started: their promises break, which their callers see as an error
        return;
      }
      if (!jobs_.empty()) {
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
    }
    // Idle (or woken without a job): completions whose target could not flatten yet are tried again (not
    // Done until they are).
    if (job) {
      job();
    } else {
      RetryCompletions();
    }
  }
}

LinkFacts SwitchoverCoordinator::Link() const {
  return {.bandwidth_bytes_per_s = bandwidth_.bytes_per_s(),
          .fixed_start_cost = settings_.start_cost,
          .snapshot_cost = settings_.snapshot_cost,
          .safety_margin = settings_.safety_margin};
}

void SwitchoverCoordinator::Observe(const v1::SwitchoverRecord& record) {
  ObserveMove(
      bandwidth_, {.bytes = record.migrated_memory_bytes() + record.migrated_disk_bytes(),
                   .migration = std::chrono::milliseconds(record.migration_ms()),
                   .warm = record.warm()});
}

Duration SwitchoverCoordinator::ColdPrecopy(Duration planned) const {
  // An uncapped precopy held for the plan's slack converges on its own before the hold ends (the plan
  // assumes a dirty rate of zero): the migration then completes in precopy, with a long stop-and-copy
  // pause, and under TCG that is when guests hung (docs/switchover.md). Postcopy at once is the default.
  return settings_.hold_planned_precopy ? planned : Duration::zero();
}

void SwitchoverCoordinator::RetryCompletions() {
  // A warm-up's record, driven by its own thread, is passed by (the runner's claim).
  auto driven = parts_.runner.RetryCompletions();
  if (!driven.ok()) return log_("retrying switchover completions: " + driven.status().ToString());
  for (const auto& record : *driven) {
    log_("switchover of " + record.vm_name() + " to " + record.target_host() + ": completion retried: " +
         PhaseName(record.phase()) + (record.error().empty() ? "" : " (" + record.error() + ")"));
  }
}

StatusOr<std::vector<SwitchoverCoordinator::Candidate>> SwitchoverCoordinator::ProtectedVms(
    std::vector<std::string>* skipped) {
  VS_ASSIGN_OR_RETURN(auto views, parts_.vms.List());
  std::vector<Candidate> candidates;
  for (const auto& view : views) {
    if (!view.running) continue;
    if (view.state != v1::PROTECTION_STATE_PROTECTED || view.shadow_hosts.empty()) {
      skipped->push_back(view.name + ": not protected (" + lifecycle::ToString(view.state) +
                         (view.unprotected_reason.empty() ? "" : ": " + view.unprotected_reason) + ")");
      continue;
    }
    if (auto failed = parts_.arrivals.GuestFailureOf(view.uuid); !failed.ok() || *failed) {
      skipped->push_back(view.name + ": " +
                         (failed.ok() ? "its guest made no progress after its switchover from " +
                                            (*failed)->origin_host() + " (" + (*failed)->seen() +
                                            "); not moved as if healthy: look at the guest, and restart it to clear"
                                      : failed.status().message()));
      continue;
    }
    auto xml = parts_.local.GetDomainXml(view.name);
    if (!xml.ok()) {
      skipped->push_back(view.name + ": " + xml.status().message());
      continue;
    }
    auto facts = policy::ParseDomain(*xml);
    if (!facts.ok()) {
      skipped->push_back(view.name + ": " + facts.status().message());
      continue;
    }
    auto policy = controller::ParseCanonicalPolicy(view.policy);
    candidates.push_back({view, std::move(*facts), policy.ok() ? policy->priority : 0, !policy.ok() || policy->warmup});
  }
  return candidates;
}

StatusOr<v1::SwitchoverRecord> SwitchoverCoordinator::SwitchOne(const Candidate& vm, const std::string& reason,
                                                                  WallTime deadline, Duration precopy) {
  v1::SwitchoverRecord request;
  request.set_vm_uuid(vm.view.uuid);
  request.set_vm_name(vm.view.name);
  request.set_source_host(this_host_);
  request.set_target_host(vm.view.shadow_hosts.front());
  request.set_reason(reason);
  request.set_deadline_unix_ms(ToUnixMillis(deadline));
  request.set_precopy_planned_ms(std::chrono::duration_cast<std::chrono::milliseconds>(precopy).count());
  StatusOr<v1::SwitchoverRecord> ran = parts_.runner.Run(std::move(request));
  // A switchover that did not end with the VM elsewhere leaves it here: its rounds go on.
  if (!ran.ok() || ran->phase() != v1::SWITCHOVER_PHASE_DONE) parts_.rounds.Unhold(vm.view.uuid);
  VS_ASSIGN_OR_RETURN(v1::SwitchoverRecord record, std::move(ran));
  const WallTime running_at = FromUnixMillis(record.running_on_target_unix_ms());
  log_("switchover of " + record.vm_name() + " to " + record.target_host() + ": " +
       PhaseName(record.phase()) +
       (record.phase() == v1::SWITCHOVER_PHASE_DONE
            ? ", running there " + Seconds(running_at - FromUnixMillis(record.requested_unix_ms())) +
                  " after the request, " + Seconds(deadline - running_at) + " before the deadline, downtime " +
                  std::to_string(record.downtime_ms()) + " ms"
            : "") +
       (record.error().empty() ? "" : " (" + record.error() + ")"));
  if (record.phase() == v1::SWITCHOVER_PHASE_DONE) Observe(record);
  return record;
}

std::string SwitchoverCoordinator::ReasonOf(const notice::Notice& notice) {
  return std::string(notice::SourceName(notice.source)) + " " + std::string(notice::KindName(notice.kind)) +
         (notice.id.empty() ? "" : " " + notice.id);
}

Status SwitchoverCoordinator::EnterDrain(const notice::Notice& notice) {
  v1::DrainRecord drain;
  drain.set_source(std::string(notice::SourceName(notice.source)));
  drain.set_kind(std::string(notice::KindName(notice.kind)));
  drain.set_notice_id(notice.id);
  drain.set_detail(notice.detail);
  drain.set_received_unix_ms(ToUnixMillis(parts_.clock.WallNow()));
  drain.set_deadline_unix_ms(ToUnixMillis(notice.deadline));
  return parts_.drain.Enter(drain).status();
}

Status SwitchoverCoordinator::WarmUpNow(const notice::Notice& notice) {
  VS_RETURN_IF_ERROR(EnterDrain(notice));
  std::vector<std::string> skipped;
  VS_ASSIGN_OR_RETURN(std::vector<Candidate> candidates, ProtectedVms(&skipped));
  for (const Candidate& vm : candidates) {
    if (!vm.warmup || warm_ups_.count(vm.view.uuid) > 0) continue;
    v1::SwitchoverRecord request;
    request.set_vm_uuid(vm.view.uuid);
    request.set_vm_name(vm.view.name);
    request.set_source_host(this_host_);
    request.set_target_host(vm.view.shadow_hosts.front());
    request.set_reason(ReasonOf(notice));
    request.set_deadline_unix_ms(ToUnixMillis(notice.deadline));
    request.set_warm(true);
    log_("warm-up of " + vm.view.name + " to " + request.target_host() + ": precopy held at " +
         std::to_string(settings_.warmup_bandwidth_mibs) + " MiB/s until the notice");
    auto promise = std::make_shared<std::promise<StatusOr<v1::SwitchoverRecord>>>();
    WarmUp& warm = warm_ups_[vm.view.uuid];
    warm.vm_name = vm.view.name;
    warm.outcome = promise->get_future();
    warm.thread = std::thread([this, promise, request] { promise->set_value(parts_.runner.Run(request)); });
  }
  for (const std::string& s : skipped) log_("warm-up: skipped " + s);
  return Status::Ok();
}

void SwitchoverCoordinator::FinishWarmUps(v1::DrainReply& reply) {
  for (auto& [uuid, warm] : warm_ups_) parts_.warm_up.Release(uuid);
  for (auto& [uuid, warm] : warm_ups_) {
    StatusOr<v1::SwitchoverRecord> record = warm.outcome.get();
    warm.thread.join();
    // Only its migration forgets the VM at the gate: a warm-up that ended before it must not leave the release
    // behind for the VM's next one.
    parts_.warm_up.Forget(uuid);
    if (!record.ok() || record->phase() != v1::SWITCHOVER_PHASE_DONE) parts_.rounds.Unhold(uuid);
    if (!record.ok()) {
      reply.add_skipped(warm.vm_name + ": warm-up: " + record.status().message());
      continue;
    }
    log_("warm switchover of " + record->vm_name() + " to " + record->target_host() + ": " +
         PhaseName(record->phase()) + (record->error().empty() ? "" : " (" + record->error() + ")"));
    *reply.add_records() = *record;
  }
  warm_ups_.clear();
}

void SwitchoverCoordinator::CompleteArrivalsFrom(const std::string& gone_host) {
  if (!parts_.complete_left_behind) return;
  Post([this, gone_host] {
    StatusOr<int> completed = parts_.complete_left_behind(gone_host);
    if (!completed.ok()) {
      log_("completing the switchovers left behind by " + gone_host + " (tried again at the next refresh): " +
           completed.status().ToString());
    } else if (*completed > 0) {
      log_(std::to_string(*completed) + " switchover(s) left behind by " + gone_host + " completed here");
    }
  });
}

std::future<StatusOr<int>> SwitchoverCoordinator::CancelWarmUps() {
  auto promise = std::make_shared<std::promise<StatusOr<int>>>();
  auto future = promise->get_future();
  Post([this, promise] {
    int cancelled = 0;
    for (auto& [uuid, warm] : warm_ups_) parts_.warm_up.Cancel(uuid);
    for (auto& [uuid, warm] : warm_ups_) {
      StatusOr<v1::SwitchoverRecord> record = warm.outcome.get();
      warm.thread.join();
      // As in FinishWarmUps: the cancel must not outlive a warm-up that ended before its migration.
      parts_.warm_up.Forget(uuid);
      if (!record.ok() || record->phase() != v1::SWITCHOVER_PHASE_DONE) {
        parts_.rounds.Unhold(uuid);
        ++cancelled;
      }
      log_("warm-up of " + warm.vm_name + " cancelled by undrain: " +
           (record.ok() ? PhaseName(record->phase()) + (record->error().empty() ? "" : " (" + record->error() + ")")
                        : record.status().ToString()));
    }
    warm_ups_.clear();
    promise->set_value(cancelled);
  });
  return future;
}

StatusOr<v1::DrainReply> SwitchoverCoordinator::DrainNow(const notice::Notice& notice) {
  VS_RETURN_IF_ERROR(EnterDrain(notice));
  v1::DrainReply reply;
  FinishWarmUps(reply);  // warmed-up VMs only need their postcopy switch: they go first
  std::vector<std::string> skipped;
  VS_ASSIGN_OR_RETURN(std::vector<Candidate> candidates, ProtectedVms(&skipped));
  std::vector<VmToMove> moves;
  for (const Candidate& c : candidates) {
    VS_ASSIGN_OR_RETURN(v1::ReplicationRecord replication, parts_.rounds.RecordOf(c.view.uuid));
    // The disk delta the final round will send: about what the last round found changed.
    moves.push_back({.name = c.view.name, .priority = c.priority, .ram_bytes = std::max<uint64_t>(c.facts.memory_kib, 1) * 1024,
                     .dirty_rate_bytes_per_s = 0, .disk_delta_bytes = replication.applied().changed_bytes()});
  }
  const Duration time_left = notice.deadline - parts_.clock.WallNow();
  VS_ASSIGN_OR_RETURN(SwitchoverPlan plan,
                      PlanSwitchover(moves, Link(), std::max(time_left, Duration::zero())));
  const std::string reason = ReasonOf(notice);
  log_("drain (" + reason + "): " + std::to_string(candidates.size()) + " protected VMs, deadline in " +
       Seconds(time_left) + ", bandwidth estimate " + std::to_string(static_cast<int>(bandwidth_.bytes_per_s() / kMiB)) +
       " MiB/s");
  for (const VmPlan& step : plan.vms) {
    auto vm = std::find_if(candidates.begin(), candidates.end(), [&](const Candidate& c) { return c.view.name == step.name; });
    if (vm == candidates.end()) continue;
    if (step.fallback == Fallback::kSkip) {
      skipped.push_back(step.name + ": cannot make the deadline (" + step.reason +
                        "); its shadow keeps the last consistent replica");
      log_("drain: " + skipped.back());
      continue;
    }
    if (step.fallback == Fallback::kPostcopyImmediately) {
      log_("drain: " + step.name + " misses the safety margin (" + step.reason + "): postcopy at once");
    }
    StatusOr<v1::SwitchoverRecord> record = SwitchOne(*vm, reason, notice.deadline, ColdPrecopy(step.precopy));
    if (!record.ok()) {
      skipped.push_back(step.name + ": " + record.status().message());
      continue;
    }
    *reply.add_records() = *record;
  }
  for (auto& s : skipped) reply.add_skipped(std::move(s));
  if (on_drained_) on_drained_(notice);
  return reply;
}

std::future<StatusOr<v1::DrainReply>> SwitchoverCoordinator::Drain(const notice::Notice& notice) {
  auto promise = std::make_shared<std::promise<StatusOr<v1::DrainReply>>>();
  auto future = promise->get_future();
  Post([this, promise, notice] { promise->set_value(DrainNow(notice)); });
  return future;
}

void SwitchoverCoordinator::OnNotice(const notice::Notice& notice) {
  log_("notice from " + std::string(notice::SourceName(notice.source)) + ": " +
       std::string(notice::KindName(notice.kind)) + ", deadline in " +
       Seconds(notice.deadline - parts_.clock.WallNow()) + (notice.detail.empty() ? "" : " (" + notice.detail + ")"));
  Post([this, notice] {
    if (notice.kind == notice::Notice::Kind::kEarlyWarning) {
      Status warmed = WarmUpNow(notice);
      if (!warmed.ok()) log_("warm-up after the early warning: " + warmed.ToString());
      return;
    }
    auto reply = DrainNow(notice);
    if (!reply.ok()) log_("drain after the notice: " + reply.status().ToString());
  });
}

std::future<StatusOr<v1::SwitchoverRecord>> SwitchoverCoordinator::SwitchoverVm(const std::string& vm,
                                                                                const std::string& to_host,
                                                                                Duration deadline, std::string reason,
                                                                                std::optional<Duration> precopy_hold) {
  auto promise = std::make_shared<std::promise<StatusOr<v1::SwitchoverRecord>>>();
  auto future = promise->get_future();
  Post([this, promise, vm, to_host, deadline, reason, precopy_hold] {
    promise->set_value([&]() -> StatusOr<v1::SwitchoverRecord> {
      std::vector<std::string> skipped;
      VS_ASSIGN_OR_RETURN(std::vector<Candidate> candidates, ProtectedVms(&skipped));
      auto found = std::find_if(candidates.begin(), candidates.end(),
                                [&](const Candidate& c) { return c.view.name == vm || c.view.uuid == vm; });
      if (found == candidates.end()) {
        for (const std::string& s : skipped) {
          if (s.rfind(vm + ":", 0) == 0) return FailedPrecondition("cannot switch over " + s);
        }
        return NotFound("no running, protected VM '" + vm + "' on this host; see virt-shadow list");
      }
      if (!to_host.empty() && to_host != found->view.shadow_hosts.front()) {
        return InvalidArgument("the shadow of " + found->view.name + " is on " + found->view.shadow_hosts.front() +
                               ", not " + to_host + ": a switchover goes to the shadow (omit --to)");
      }
      std::vector<VmToMove> moves = {{.name = found->view.name, .priority = found->priority,
                                                  .ram_bytes = std::max<uint64_t>(found->facts.memory_kib, 1) * 1024}};
      VS_ASSIGN_OR_RETURN(SwitchoverPlan plan, PlanSwitchover(moves, Link(), deadline));
      return SwitchOne(*found, reason, parts_.clock.WallNow() + std::chrono::duration_cast<WallTime::duration>(deadline),
                       precopy_hold.value_or(ColdPrecopy(plan.vms.front().precopy)));
    }());
  });
  return future;
}

std::future<StatusOr<v1::FailbackReply>> SwitchoverCoordinator::Failback(const std::string& vm, Duration timeout) {
  auto promise = std::make_shared<std::promise<StatusOr<v1::FailbackReply>>>();
  auto future = promise->get_future();
  Post([this, promise, vm, timeout] { promise->set_value(FailbackNow(vm, timeout)); });
  return future;
}

StatusOr<v1::FailbackReply> SwitchoverCoordinator::FailbackNow(const std::string& vm, Duration timeout) {
  VS_ASSIGN_OR_RETURN(controller::VmStatusView view, parts_.vms.StatusOf(vm));
  VS_ASSIGN_OR_RETURN(auto origin, parts_.arrivals.OriginOf(view.uuid));
  if (!origin) {
    return FailedPrecondition(view.name + " did not arrive on " + this_host_ +
                              " by a switchover or a promotion: there is no origin to fail back to");
  }
  const bool promoted = origin->arrived_by() == v1::OriginRecord::ARRIVAL_PROMOTION;
  const std::string& home = origin->origin_host();
  VS_ASSIGN_OR_RETURN(v1::HostStateReply state, parts_.peer.HostState(home));
  if (state.draining()) {
    return FailedPrecondition(home + " is still draining (" + state.drain_reason() +
                              "); once it is back, run `virt-shadow undrain` there, then fail back");
  }
  const MonoTime give_up = parts_.clock.Now() + timeout;
  // 0. A promoted VM's home still defines its stale copy, fenced (PROMOTED_ELSEWHERE): no shadow is placed on a
  // host that defines the VM, and its hook refuses the switchover's incoming migration. It goes first; repeated
  // after a failure or a restart, the call is answered from the released record.
  if (promoted) {
    v1::DiscardStaleCopyRequest discard;
    discard.set_vm_uuid(view.uuid);
    discard.set_asking_host(this_host_);
    StatusOr<v1::DiscardStaleCopyReply> discarded = parts_.peer.DiscardStaleCopy(home, discard);
    if (!discarded.ok()) {
      return Status(discarded.status().code(), "failback of " + view.name + ": " + home +
                                                   " did not give up its stale copy: " + discarded.status().message());
    }
    log_("failback of " + view.name + ": " + discarded->detail());
  }
  // 1. The shadow goes to the origin host (seeded there from the image the VM left behind).
  if (view.shadow_hosts.empty() || view.shadow_hosts.front() != home) {
    VS_RETURN_IF_ERROR(parts_.vms.RequestShadowMove(view.uuid, home));
    log_("failback of " + view.name + ": moving its shadow to " + home);
  }
  // 2. Protected there, with a round applied to that replica.
  while (true) {
    VS_ASSIGN_OR_RETURN(view, parts_.vms.StatusOf(view.uuid));
    if (view.state == v1::PROTECTION_STATE_PROTECTED && !view.shadow_hosts.empty() &&
        view.shadow_hosts.front() == home) {
      auto round = parts_.rounds.RequestRound(view.uuid).get();
      if (round.ok()) {
        VS_ASSIGN_OR_RETURN(v1::ReplicationRecord replication, parts_.rounds.RecordOf(view.uuid));
        if (replication.shadow_host() == home) break;
      }
    }
    if (parts_.clock.Now() >= give_up) {
      return DeadlineExceeded("failback of " + view.name + ": its shadow is not protected and replicated on " + home +
                              " yet (state " + lifecycle::ToString(view.state) + (view.last_error.empty() ? "" : ": " + view.last_error) +
                              "); try again later");
    }
    parts_.clock.SleepFor(std::chrono::milliseconds(500));
  }
  // 3. The same switchover as for a notice.
  std::vector<std::string> skipped;
  VS_ASSIGN_OR_RETURN(std::vector<Candidate> candidates, ProtectedVms(&skipped));
  auto found = std::find_if(candidates.begin(), candidates.end(), [&](const Candidate& c) { return c.view.uuid == view.uuid; });
  if (found == candidates.end()) return FailedPrecondition(view.name + " is no longer protected here");
  VS_ASSIGN_OR_RETURN(v1::SwitchoverRecord record,
                      SwitchOne(*found, "failback", parts_.clock.WallNow() + std::chrono::minutes(5), Duration::zero()));
  if (promoted && record.phase() == v1::SWITCHOVER_PHASE_DONE && parts_.on_promoted_home) {
    // Home again: the promotion here is over. A failure is only logged: the VM moved all the same.
    if (Status ended = parts_.on_promoted_home(view.uuid, home); !ended.ok()) {
      log_("failback of " + view.name + ": ending its promotion record here: " + ended.ToString());
    }
  }
  v1::FailbackReply reply;
  *reply.mutable_record() = record;
  reply.set_origin_host(home);
  return reply;
}

}  // namespace vs::switchover
