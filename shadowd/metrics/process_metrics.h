// The standard process metrics of a Prometheus client (prometheus-cpp has none), read from /proc:
//   process_cpu_seconds_total      user and system CPU time of the process (all threads), counter
//   process_resident_memory_bytes  resident set size
//   process_open_fds               open file descriptors
//   process_start_time_seconds     Unix time the process started (boot time + its start in clock ticks)
//
// `proc` is where procfs is mounted (tests pass a directory laid out like it): <proc>/self/stat,
// <proc>/self/statm, <proc>/self/fd/ and <proc>/stat (btime) are read at every call.
// Failure modes: a file that is missing or reads unlike procfs returns Unavailable/DataLoss naming it.
// Thread-safety: reads files only; any thread.
#pragma once

#include <filesystem>
#include <vector>

#include "common/status.h"
#include "shadowd/metrics/prometheus_text.h"

namespace vs::metrics {

StatusOr<std::vector<MetricFamily>> ProcessMetrics(const std::filesystem::path& proc = "/proc");

}  // namespace vs::metrics
