// The switchover's tunables, as a value filled from shadowd's configuration ([switchover], daemon/config.h
// documents each key and its range).
#pragma once

#include <chrono>
#include <cstdint>

#include "common/clock.h"

namespace vs::switchover {

struct Settings {
  double bandwidth_mibs = 100;  // MiB/s, > 0: the estimate's seed until a switchover measured one
  double safety_margin = 0.2;   // [0, 1)
  Duration start_cost = std::chrono::milliseconds(1500);
  Duration snapshot_cost = std::chrono::milliseconds(150);
  uint64_t warmup_bandwidth_mibs = 5;  // MiB/s, >= 1
  bool hold_planned_precopy = false;   // precopy_hold = planned
  bool migration_tls = false;          // [tls] migration = mutual: VIR_MIGRATE_TLS
};

}  // namespace vs::switchover
