#include "shadowd/switchover/switchover_runner.h"

#include <algorithm>
#include <optional>

#include "shadowd/store/keys.h"

namespace vs::switchover {

namespace v1 = virtshadow::v1;

namespace {

std::string RecordKey(const std::string& vm_uuid) { return store::Key(store::Table::kSwitchover, vm_uuid); }

// A step that failed and must be done again (COMPLETING) is retried after 1, 2, 4, ... s (at most 8 s), for
// at most kRetryWindow in a switchover's own Drive; the record then stays where it is and RetryCompletions
// tries it once more at a time later, so that one VM whose target cannot complete yet does not hold up the
// switchovers of the others (or a notice that comes meanwhile).
constexpr Duration kFirstRetryPause = std::chrono::seconds(1);
constexpr Duration kLongestRetryPause = std::chrono::seconds(8);
constexpr Duration kRetryWindow = std::chrono::seconds(60);

void AddError(SwitchoverRecord& record, const std::string& step, const Status& status) {
  std::string text = step + ": " + status.message();
  record.set_error(record.error().empty() ? text : record.error() + "; " + text);
}

}  // namespace

SwitchoverRunner::SwitchoverRunner(store::Store& store, SwitchoverSteps& steps, Clock& clock,
                                   std::function<void(const std::string&)> log, SwitchoverTally* tally)
    : store_(store), steps_(steps), clock_(clock), log_(std::move(log)), tally_(tally) {}

Status SwitchoverRunner::Save(SwitchoverRecord& record) {
  record.set_version(record.version() + 1);
  store::WriteBatch batch;
  batch.PutProto(RecordKey(record.vm_uuid()), record);
  return store_.Write(batch);
}

SwitchoverRunner::Claim::~Claim() {
  MutexLock lock(runner_.mutex_);
  runner_.driving_.erase(vm_uuid_);
}

std::unique_ptr<SwitchoverRunner::Claim> SwitchoverRunner::TryClaim(const std::string& vm_uuid) {
  MutexLock lock(mutex_);
  if (!driving_.insert(vm_uuid).second) return nullptr;
  return std::make_unique<Claim>(*this, vm_uuid);
}

StatusOr<std::optional<SwitchoverRecord>> SwitchoverRunner::Get(const std::string& vm_uuid) const {
  return store::GetProto<SwitchoverRecord>(store_, RecordKey(vm_uuid));
}

StatusOr<std::vector<SwitchoverRecord>> SwitchoverRunner::List() const {
  return store::ScanProtos<SwitchoverRecord>(store_, store::TablePrefix(store::Table::kSwitchover));
}

StatusOr<SwitchoverRecord> SwitchoverRunner::Run(SwitchoverRecord request) {
  if (request.vm_uuid().empty() || request.vm_name().empty() || request.target_host().empty()) {
    return InvalidArgument("a switchover needs the VM's uuid and name and a target host");
  }
  std::unique_ptr<Claim> claim = TryClaim(request.vm_uuid());
  if (!claim) {
    return FailedPrecondition("a switchover of " + request.vm_name() + " is already being driven right now");
  }
  VS_ASSIGN_OR_RETURN(std::optional<SwitchoverRecord> existing, Get(request.vm_uuid()));
  if (existing && !IsTerminal(existing->phase())) {
    return FailedPrecondition("a switchover of " + existing->vm_name() + " to " + existing->target_host() +
                              " is already in progress (phase " + PhaseName(existing->phase()) + ")");
  }
  const uint64_t version = existing ? existing->version() : 0;
  SwitchoverRecord record = std::move(request);
  record.set_version(version);
  record.set_phase(v1::SWITCHOVER_PHASE_CHECKING);
  if (record.requested_unix_ms() == 0) record.set_requested_unix_ms(ToUnixMillis(clock_.WallNow()));
  return Drive(std::move(record), kRetryWindow);
}

StepOutcome SwitchoverRunner::Perform(SwitchoverRecord& record) {
  auto outcome_of = [&](const Status& status, const std::string& step) {
    if (status.ok()) return StepOutcome::kSucceeded;
    AddError(record, step, status);
    return StepOutcome::kFailed;
  };
  switch (record.phase()) {
    case v1::SWITCHOVER_PHASE_CHECKING: {
      StatusOr<CheckFindings> findings = steps_.Check(record);
      if (!findings.ok()) return outcome_of(findings.status(), "health check");
      if (findings->problems.empty()) return StepOutcome::kSucceeded;
      std::string joined;
      for (const std::string& problem : findings->problems) joined += (joined.empty() ? "" : "; ") + problem;
      record.set_check_result(joined);
      if (!findings->fallback_possible) {
        AddError(record, "health check", FailedPrecondition(joined));
        return StepOutcome::kFailed;
      }
      return StepOutcome::kUnhealthy;
    }
    case v1::SWITCHOVER_PHASE_PREPARING: return outcome_of(steps_.Prepare(record), "preparing the target");
    case v1::SWITCHOVER_PHASE_SNAPSHOTTING: return outcome_of(steps_.Snapshot(record), "snapshot");
    case v1::SWITCHOVER_PHASE_FINAL_ROUND: {
      StatusOr<uint64_t> bytes = steps_.FinalRound(record);
      if (bytes.ok()) record.set_final_round_bytes(*bytes);
      return outcome_of(bytes.status(), "final round");
    }
    case v1::SWITCHOVER_PHASE_MIGRATING:
    case v1::SWITCHOVER_PHASE_FALLBACK_MIGRATING: {
      const bool fallback = record.fallback();
      const MonoTime started = clock_.Now();
      StatusOr<MigrationFigures> figures = steps_.Migrate(record, fallback);
      if (figures.ok()) {
        record.set_migration_ms(ToMillis(clock_.Now() - started));
        record.set_migrated_disk_bytes(figures->disk_bytes);
        record.set_migrated_memory_bytes(figures->memory_bytes);
        record.set_downtime_ms(figures->downtime_ms);
        record.set_postcopy_switched(figures->postcopy_switched);
        if (figures->running_on_target) record.set_running_on_target_unix_ms(ToUnixMillis(*figures->running_on_target));
        record.set_source_free_unix_ms(ToUnixMillis(clock_.WallNow()));
        if (!figures->figures_note.empty() && log_) log_("migration of " + record.vm_name() + ": " + figures->figures_note);
      }
      return outcome_of(figures.status(), fallback ? "migration (--copy-storage-all fallback)" : "migration");
    }
    case v1::SWITCHOVER_PHASE_VERIFYING: {
      StatusOr<GuestSeen> guest = steps_.VerifyGuest(record);
      if (!guest.ok()) {
        AddError(record, "checking the guest after the move (not judged)", guest.status());
        return StepOutcome::kSucceeded;
      }
      record.set_guest_check(guest->seen);
      if (!guest->dead) return StepOutcome::kSucceeded;
      AddError(record, "guest check", FailedPrecondition("no progress after the switchover: " + guest->seen));
      return StepOutcome::kFailed;
    }
    case v1::SWITCHOVER_PHASE_COMPLETING: return outcome_of(steps_.Complete(record), "completing");
    case v1::SWITCHOVER_PHASE_ROLLING_BACK: return outcome_of(steps_.RollBack(record), "rolling back");
    default: return StepOutcome::kFailed;
  }
}

StatusOr<SwitchoverRecord> SwitchoverRunner::Drive(SwitchoverRecord record, Duration retry_window) {
  std::optional<MonoTime> retrying_since;
  Duration pause = kFirstRetryPause;
  while (!IsTerminal(record.phase())) {
    // Persisted with the phase, so that a restart during the fallback migration still reports it.
    if (record.phase() == v1::SWITCHOVER_PHASE_FALLBACK_MIGRATING) record.set_fallback(true);
    VS_RETURN_IF_ERROR(Save(record));
    const MonoTime started = clock_.Now();
    const Phase phase = record.phase();
    const StepOutcome outcome = Perform(record);
    VS_ASSIGN_OR_RETURN(Phase next, NextPhase(phase, outcome));
    if (log_) {
      log_("switchover of " + record.vm_name() + " to " + record.target_host() + ": " + PhaseName(phase) + " " +
           (outcome == StepOutcome::kSucceeded ? "done" : outcome == StepOutcome::kUnhealthy ? "found problems" : "failed") +
           " in " + std::to_string(ToMillis(clock_.Now() - started)) +
           " ms -> " + PhaseName(next));
    }
    record.set_phase(next);
    if (next != phase) {
      retrying_since.reset();
      pause = kFirstRetryPause;
      continue;
    }
    if (!retrying_since) retrying_since = started;
    if (clock_.Now() - *retrying_since >= retry_window) {
      VS_RETURN_IF_ERROR(Save(record));  // left in its phase, with the errors seen, for RetryCompletions
      return record;
    }
    clock_.SleepFor(pause);
    pause = std::min(pause * 2, kLongestRetryPause);
  }
  record.set_finished_unix_ms(ToUnixMillis(clock_.WallNow()));
  VS_RETURN_IF_ERROR(Save(record));
  if (tally_) tally_->Count(record);
  return record;
}

StatusOr<std::vector<SwitchoverRecord>> SwitchoverRunner::RetryCompletions() {
  VS_ASSIGN_OR_RETURN(std::vector<SwitchoverRecord> records, List());
  std::vector<SwitchoverRecord> driven;
  for (SwitchoverRecord& record : records) {
    if (record.phase() != v1::SWITCHOVER_PHASE_COMPLETING) continue;
    std::unique_ptr<Claim> claim = TryClaim(record.vm_uuid());
    if (!claim) continue;
    // Read again under the claim: the thread that held it may have moved the record on.
    VS_ASSIGN_OR_RETURN(std::optional<SwitchoverRecord> current, Get(record.vm_uuid()));
    if (!current || current->phase() != v1::SWITCHOVER_PHASE_COMPLETING) continue;
    record = std::move(*current);
    VS_ASSIGN_OR_RETURN(SwitchoverRecord after, Drive(std::move(record), /*retry_window=*/Duration::zero()));
    driven.push_back(std::move(after));
  }
  return driven;
}

bool SwitchoverRunner::RecoverFigures(SwitchoverRecord& record, VmLocation location, Duration wait) {
  StatusOr<std::optional<MigrationFigures>> figures =
      steps_.RecoverMigrationFigures(record, location, std::max(wait, Duration::zero()));
  if (!figures.ok() || !*figures) {
    if (log_) {
      log_("the figures of the migration of " + record.vm_name() + " to " + record.target_host() +
           (figures.ok() ? " are not to be had " + std::string(location == VmLocation::kRunningOnTarget
                                                                   ? "on the target" : "from its end")
                         : " could not be looked for: " + figures.status().ToString()));
    }
    return false;
  }
  record.set_migrated_disk_bytes((*figures)->disk_bytes);
  record.set_migrated_memory_bytes((*figures)->memory_bytes);
  record.set_downtime_ms((*figures)->downtime_ms);
  record.set_postcopy_switched((*figures)->postcopy_switched);
  if (log_) {
    log_("recovered the figures of the migration of " + record.vm_name() + " after a restart " +
         (location == VmLocation::kRunningOnTarget ? "from the target's statistics" : "at the migration's end") +
         ": downtime " + std::to_string((*figures)->downtime_ms) + " ms");
  }
  return true;
}

StatusOr<std::vector<SwitchoverRecord>> SwitchoverRunner::ResumeAll(Duration migration_wait) {
  VS_ASSIGN_OR_RETURN(std::vector<SwitchoverRecord> records, List());
  std::vector<SwitchoverRecord> finished;
  Status first_refusal;
  for (SwitchoverRecord& record : records) {
    if (IsTerminal(record.phase())) continue;
    std::unique_ptr<Claim> claim = TryClaim(record.vm_uuid());
    if (!claim) continue;  // driven by another thread since the start
    // Only a migration can still be running in libvirt: wait for it to end one way or the other.
    const bool migrating = record.phase() == v1::SWITCHOVER_PHASE_MIGRATING ||
                           record.phase() == v1::SWITCHOVER_PHASE_FALLBACK_MIGRATING;
    const MonoTime give_up = clock_.Now() + migration_wait;
    StatusOr<Phase> resumed = record.phase();
    bool figures_recovered = false;
    while (true) {
      StatusOr<VmLocation> location = steps_.Locate(record);
      if (!location.ok()) {
        AddError(record, "locating the VM after a restart", location.status());
        resumed = record.phase() == v1::SWITCHOVER_PHASE_COMPLETING ? v1::SWITCHOVER_PHASE_COMPLETING
                                                                     : v1::SWITCHOVER_PHASE_FAILED;
        break;
      }
      resumed = ResumePhase(record.phase(), *location);
      // The migration's figures went with the process that ran it: while libvirt still migrates they come
      // with the migration's end (this waits for it), afterwards only from what the target kept.
      if (migrating && !figures_recovered &&
          (*location == VmLocation::kMigratingFromHere || *location == VmLocation::kRunningOnTarget)) {
        figures_recovered = RecoverFigures(record, *location, give_up - clock_.Now());
      }
      // When the VM runs there is at least known by now (an upper bound, so that the record keeps saying
      // when the VM moved).
      if (*location == VmLocation::kRunningOnTarget && migrating && record.running_on_target_unix_ms() == 0) {
        record.set_running_on_target_unix_ms(ToUnixMillis(clock_.WallNow()));
      }
      if (*location == VmLocation::kRunningOnTarget && migrating && record.source_free_unix_ms() == 0) {
        record.set_source_free_unix_ms(ToUnixMillis(clock_.WallNow()));
      }
      if (!resumed.ok() || !migrating || *location != VmLocation::kMigratingFromHere) break;
      if (clock_.Now() >= give_up) {
        AddError(record, "resuming", DeadlineExceeded("libvirt still migrates the VM after the wait"));
        resumed = v1::SWITCHOVER_PHASE_FAILED;
        break;
      }
      clock_.SleepFor(std::chrono::seconds(1));
    }
    if (!resumed.ok()) {
      // A record this build cannot resume (damaged, or from a newer build) must not block the others.
      if (log_) log_("not resuming the switchover of " + record.vm_name() + ": " + resumed.status().ToString());
      if (first_refusal.ok()) first_refusal = resumed.status();
      continue;
    }
    if (log_) log_("resuming the switchover of " + record.vm_name() + " in phase " + PhaseName(record.phase()) +
                   " as " + PhaseName(*resumed));
    record.set_phase(*resumed);
    VS_ASSIGN_OR_RETURN(SwitchoverRecord done, Drive(std::move(record), kRetryWindow));
    finished.push_back(std::move(done));
  }
  if (!first_refusal.ok()) return first_refusal;
  return finished;
}

}  // namespace vs::switchover
