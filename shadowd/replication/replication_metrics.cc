#include "shadowd/replication/replication_metrics.h"

#include <algorithm>

namespace vs::replication {

using metrics::MetricFamily;

std::vector<MetricFamily> ReplicationMetrics(const std::vector<virtshadow::v1::ReplicationRecord>& replicated,
                                             const std::vector<virtshadow::v1::ReplicaRecord>& held, WallTime now) {
  const double now_s = ToUnixMillis(now) / 1000.0;
  auto gauge = [](const char* name, const char* help) {
    return MetricFamily{name, help, MetricFamily::Type::kGauge, {}};
  };
  auto counter = [](const char* name, const char* help) {
    return MetricFamily{name, help, MetricFamily::Type::kCounter, {}};
  };
  MetricFamily lag = gauge("virt_shadow_replication_lag_seconds",
                           "Age of the last point in time applied to the VM's replica (its RPO right now).");
  MetricFamily bytes = gauge("virt_shadow_replication_last_round_bytes",
                             "Bytes read from the source export by the VM's last applied round.");
  MetricFamily changed = gauge("virt_shadow_replication_last_round_changed_bytes",
                               "Bytes of blocks the last applied round brought up to date (copied or zeroed).");
  MetricFamily duration = gauge("virt_shadow_replication_last_round_duration_seconds",
                                "Wall time of the VM's last applied round, freeze to commit.");
  MetricFamily rounds = counter("virt_shadow_replication_rounds_total", "Rounds applied to the VM's replica.");
  MetricFamily sent = counter("virt_shadow_replication_sent_bytes_total",
                              "Bytes read from the source exports by every applied round of the VM.");
  MetricFamily failures = counter("virt_shadow_replication_round_failures_total", "Rounds of the VM that failed.");
  MetricFamily failing = gauge("virt_shadow_replication_consecutive_failures",
                               "Rounds failed since the last applied one.");
  for (const auto& record : replicated) {
    const std::vector<std::pair<std::string, std::string>> labels = {
        {"vm", record.vm_name()}, {"uuid", record.vm_uuid()}, {"shadow_host", record.shadow_host()}};
    const auto& applied = record.applied();
    if (applied.taken_unix_ms() > 0) {
      lag.samples.push_back({labels, now_s - applied.taken_unix_ms() / 1000.0});
      bytes.samples.push_back({labels, static_cast<double>(applied.bytes_sent())});
      changed.samples.push_back({labels, static_cast<double>(applied.changed_bytes())});
      duration.samples.push_back({labels, applied.duration_ms() / 1000.0});
    }
    rounds.samples.push_back({labels, static_cast<double>(record.rounds_applied())});
    sent.samples.push_back({labels, static_cast<double>(record.bytes_sent_total())});
    failures.samples.push_back({labels, static_cast<double>(record.rounds_failed())});
    failing.samples.push_back({labels, static_cast<double>(record.consecutive_failures())});
  }
  MetricFamily replica_age = gauge("virt_shadow_replica_age_seconds",
                                   "Age of the point in time of a replica held on this host.");
  for (const auto& record : held) {
    if (record.applied().taken_unix_ms() == 0) continue;
    replica_age.samples.push_back({{{"uuid", record.vm_uuid()}, {"primary_host", record.primary_host()}},
                                   now_s - record.applied().taken_unix_ms() / 1000.0});
  }
  return {lag, bytes, changed, duration, rounds, sent, failures, failing, replica_age};
}

std::vector<MetricFamily> QueueMetrics(const std::vector<RoundQueue::Entry>& queue,
                                       const std::vector<ReplicationSchedule>& targets, int runners) {
  MetricFamily runner_count{"virt_shadow_replication_runners",
                            "Replication rounds this host runs at once at most ([shadowd] round_concurrency).",
                            MetricFamily::Type::kGauge, {{{}, static_cast<double>(runners)}}};
  double running = 0, waiting = 0;
  MetricFamily overdue{"virt_shadow_replication_round_waiting_seconds",
                       "How long the VM's due round has waited for a free runner (0: none waits).",
                       MetricFamily::Type::kGauge, {}};
  for (const RoundQueue::Entry& entry : queue) {
    running += entry.running ? 1 : 0;
    waiting += entry.position > 0 ? 1 : 0;
    auto target = std::find_if(targets.begin(), targets.end(),
                               [&](const ReplicationSchedule& s) { return s.target.vm_uuid == entry.vm_uuid; });
    if (target == targets.end()) continue;
    const double waited = entry.position > 0 ? -std::chrono::duration<double>(entry.due_in).count() : 0.0;
    overdue.samples.push_back({{{"vm", target->target.vm_name}, {"uuid", entry.vm_uuid}}, waited});
  }
  MetricFamily running_rounds{"virt_shadow_replication_rounds_running", "Replication rounds running now.",
                              MetricFamily::Type::kGauge, {{{}, running}}};
  MetricFamily waiting_rounds{"virt_shadow_replication_rounds_waiting",
                              "Replication rounds due and waiting for a free runner.", MetricFamily::Type::kGauge,
                              {{{}, waiting}}};
  return {runner_count, running_rounds, waiting_rounds, overdue};
}

metrics::MetricFamily GuestFailedMetric(const std::vector<virtshadow::v1::GuestFailedRecord>& failed) {
  MetricFamily family{"virt_shadow_switchover_guest_failed",
                      "1 for a VM whose guest made no progress after it arrived here by a switchover.",
                      MetricFamily::Type::kGauge, {}};
  for (const auto& record : failed) {
    family.samples.push_back(
        {{{"vm", record.vm_name()}, {"uuid", record.vm_uuid()}, {"origin_host", record.origin_host()}}, 1.0});
  }
  return family;
}

}  // namespace vs::replication
