// What shadowd's Prometheus endpoint shows about disk replication: per replicated VM (primary side)
// the lag, the last round's bytes and duration, round and failure counters; per replica held here
// (shadow side) the age of its applied point in time. Pure: built from records, rendered by
// shadowd/metrics. Thread-safety: none needed (values in, values out).
#pragma once

#include <vector>

#include "common/clock.h"
#include "proto/replication.pb.h"
#include "proto/switchover.pb.h"
#include "shadowd/metrics/prometheus_text.h"
#include "shadowd/replication/round_queue.h"

namespace vs::replication {

std::vector<metrics::MetricFamily> ReplicationMetrics(
    const std::vector<virtshadow::v1::ReplicationRecord>& replicated,
    const std::vector<virtshadow::v1::ReplicaRecord>& held, WallTime now);

// The round queue of this host: its runners, the rounds running and the rounds overdue and waiting for a
// runner (host-wide), and per VM how long its due round has waited (0 when none waits).
std::vector<metrics::MetricFamily> QueueMetrics(const std::vector<RoundQueue::Entry>& queue,
                                                const std::vector<ReplicationSchedule>& targets, int runners);

// virt_shadow_switchover_guest_failed{vm,uuid,origin_host} 1 for each VM that arrived here by a switchover
// with a guest that made no progress (kept as it is, never moved again as if healthy); always present, so
// that an alert can be written on it.
metrics::MetricFamily GuestFailedMetric(const std::vector<virtshadow::v1::GuestFailedRecord>& failed);

}  // namespace vs::replication
