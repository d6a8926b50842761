#include "shadowd/switchover/switchover_metrics.h"

#include "shadowd/switchover/switchover_machine.h"

namespace vs::switchover {
namespace {

namespace v1 = virtshadow::v1;
using metrics::MetricFamily;
using metrics::Sample;

// The outcome label of a terminal phase; empty for the others.
std::string OutcomeOf(v1::SwitchoverPhase phase) {
  switch (phase) {
    case v1::SWITCHOVER_PHASE_DONE: return "done";
    case v1::SWITCHOVER_PHASE_FAILED: return "failed";
    case v1::SWITCHOVER_PHASE_GUEST_FAILED: return "guest_failed";
    default: return "";
  }
}

// The downtime of a switchover that moved the VM, when libvirt's figure is known (0: lost in a restart).
std::optional<double> DowntimeSeconds(const v1::SwitchoverRecord& record) {
  const bool moved =
      record.phase() == v1::SWITCHOVER_PHASE_DONE || record.phase() == v1::SWITCHOVER_PHASE_GUEST_FAILED;
  if (!moved || record.downtime_ms() == 0) return std::nullopt;
  return record.downtime_ms() / 1000.0;
}

// From the request to the moment the source host was no longer needed (the migration ended), once it has.
std::optional<double> SourceNeededSeconds(const v1::SwitchoverRecord& record) {
  if (record.requested_unix_ms() <= 0 || record.source_free_unix_ms() < record.requested_unix_ms()) return std::nullopt;
  return (record.source_free_unix_ms() - record.requested_unix_ms()) / 1000.0;
}

std::optional<double> DurationSeconds(const v1::SwitchoverRecord& record) {
  if (record.requested_unix_ms() <= 0 || record.finished_unix_ms() < record.requested_unix_ms()) return std::nullopt;
  return (record.finished_unix_ms() - record.requested_unix_ms()) / 1000.0;
}

MetricFamily Gauge(const char* name, const char* help) { return {name, help, MetricFamily::Type::kGauge, {}}; }

}  // namespace

void SwitchoverTally::Count(const v1::SwitchoverRecord& finished) {
  const std::string outcome = OutcomeOf(finished.phase());
  if (outcome.empty()) return;
  MutexLock lock(mutex_);
  ++ended_[outcome];
  if (auto downtime = DowntimeSeconds(finished)) {
    ++downtime_.count;
    downtime_.sum_seconds += *downtime;
  }
  if (auto duration = DurationSeconds(finished)) {
    ++duration_.count;
    duration_.sum_seconds += *duration;
  }
  if (auto needed = SourceNeededSeconds(finished)) {
    ++source_needed_.count;
    source_needed_.sum_seconds += *needed;
  }
}

std::vector<MetricFamily> SwitchoverTally::Families() const {
  MutexLock lock(mutex_);
  MetricFamily ended{"virt_shadow_switchovers_total", "Switchovers of this host's VMs that ended, by outcome.",
                     MetricFamily::Type::kCounter, {}};
  // Every outcome from the start, so that rate() and increase() see the first one.
  for (const char* outcome : {"done", "failed", "guest_failed"}) {
    auto it = ended_.find(outcome);
    ended.samples.push_back({{{"outcome", outcome}}, it == ended_.end() ? 0.0 : static_cast<double>(it->second)});
  }
  auto summary = [](const char* name, const char* help, const Observed& observed) {
    return MetricFamily{name, help, MetricFamily::Type::kSummary,
                        {Sample{.value = observed.sum_seconds, .count = observed.count}}};
  };
  return {ended,
          summary("virt_shadow_switchover_downtime_seconds",
                  "Downtime of the VMs that switchovers moved (libvirt's figure), when known.", downtime_),
          summary("virt_shadow_switchover_duration_seconds",
                  "Time from the request (notice or command) to the end of ended switchovers.", duration_),
          summary("virt_shadow_switchover_source_needed_seconds",
                  "Time from the request to the end of the migration, after which the source host may vanish, of "
                  "ended switchovers that migrated.",
                  source_needed_)};
}

std::vector<MetricFamily> SwitchoverMetrics(const std::vector<v1::SwitchoverRecord>& records) {
  MetricFamily in_progress = Gauge("virt_shadow_switchovers_in_progress", "Switchovers of this host's VMs not ended.");
  MetricFamily downtime = Gauge("virt_shadow_switchover_last_downtime_seconds",
                                "Downtime of the VM in its last switchover that moved it, when known.");
  MetricFamily duration = Gauge("virt_shadow_switchover_last_duration_seconds",
                                "Time from the request to the end of the VM's last switchover.");
  MetricFamily source_needed = Gauge("virt_shadow_switchover_last_source_needed_seconds",
                                     "Time from the request to the end of the migration (the source host no longer "
                                     "needed) in the VM's last switchover that migrated.");
  double running = 0;
  for (const v1::SwitchoverRecord& record : records) {
    if (!IsTerminal(record.phase())) {
      ++running;
      continue;
    }
    const std::vector<std::pair<std::string, std::string>> labels = {
        {"vm", record.vm_name()}, {"uuid", record.vm_uuid()}, {"target_host", record.target_host()}};
    if (auto seconds = DowntimeSeconds(record)) downtime.samples.push_back({labels, *seconds});
    if (auto seconds = DurationSeconds(record)) duration.samples.push_back({labels, *seconds});
    if (auto seconds = SourceNeededSeconds(record)) source_needed.samples.push_back({labels, *seconds});
  }
  in_progress.samples.push_back({{}, running});
  return {in_progress, downtime, duration, source_needed};
}

std::vector<MetricFamily> DrainMetrics(const std::optional<v1::DrainRecord>& drain, size_t vms_left) {
  MetricFamily draining = Gauge("virt_shadow_drain_in_progress",
                                "1 while this host is draining (under a notice or `virt-shadow drain`).");
  draining.samples.push_back({{}, drain ? 1.0 : 0.0});
  MetricFamily left = Gauge("virt_shadow_drain_vms_left",
                            "While this host is draining: its protected VMs still running here; else 0.");
  left.samples.push_back({{}, drain ? static_cast<double>(vms_left) : 0.0});
  MetricFamily deadline = Gauge("virt_shadow_drain_deadline_timestamp_seconds",
                                "While this host is draining with a deadline: the Unix time the deadline falls.");
  if (drain && drain->deadline_unix_ms() > 0) deadline.samples.push_back({{}, drain->deadline_unix_ms() / 1000.0});
  return {draining, left, deadline};
}

}  // namespace vs::switchover
