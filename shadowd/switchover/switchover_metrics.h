// What shadowd's Prometheus endpoint shows about switchovers and the drain of this host.
//
// SwitchoverTally (counted by the runner as each switchover ends, since this shadowd started; Prometheus
// handles the reset at a restart):
//   virt_shadow_switchovers_total{outcome}          ended switchovers by outcome: done, failed, guest_failed
//   virt_shadow_switchover_downtime_seconds         summary (_sum, _count) of the VMs' downtime, libvirt's
//                                                   figure, over the switchovers that moved the VM (done,
//                                                   guest_failed) and whose figures are known
//   virt_shadow_switchover_duration_seconds         summary of request-to-end durations of ended switchovers
//   virt_shadow_switchover_source_needed_seconds    summary of request-to-migration-end times (after which the
//                                                   source host may vanish) of ended switchovers that migrated
// SwitchoverMetrics (from the records in the store, the last switchover of each VM):
//   virt_shadow_switchovers_in_progress                             records not yet ended
//   virt_shadow_switchover_last_downtime_seconds{vm,uuid,target_host}  as the summary, for the VM's last one
//   virt_shadow_switchover_last_duration_seconds{vm,uuid,target_host}  as the summary, for the VM's last one
//   virt_shadow_switchover_last_source_needed_seconds{vm,uuid,target_host}  as the summary, for the VM's last one
// DrainMetrics:
//   virt_shadow_drain_in_progress                   1 while this host is draining (a notice or `drain`)
//   virt_shadow_drain_vms_left                      while draining, the protected VMs still running here
//   virt_shadow_drain_deadline_timestamp_seconds    while draining with a deadline: the Unix time it ends
//
// Thread-safety: SwitchoverTally may be used from any thread (one mutex); the functions are pure.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/thread_annotations.h"
#include "proto/switchover.pb.h"
#include "shadowd/metrics/prometheus_text.h"

namespace vs::switchover {

class SwitchoverTally {
 public:
  // `finished` is a record in a terminal phase (DONE, FAILED, GUEST_FAILED); others are ignored.
  void Count(const virtshadow::v1::SwitchoverRecord& finished);
  std::vector<metrics::MetricFamily> Families() const;

 private:
  struct Observed {
    uint64_t count = 0;
    double sum_seconds = 0;
  };
  mutable Mutex mutex_;
  std::map<std::string, uint64_t> ended_ VS_GUARDED_BY(mutex_);  // by outcome
  Observed downtime_ VS_GUARDED_BY(mutex_);
  Observed duration_ VS_GUARDED_BY(mutex_);
  Observed source_needed_ VS_GUARDED_BY(mutex_);
};

std::vector<metrics::MetricFamily> SwitchoverMetrics(const std::vector<virtshadow::v1::SwitchoverRecord>& records);

// `vms_left`: the protected VMs running on this host (the ones a drain moves); counted only while draining.
std::vector<metrics::MetricFamily> DrainMetrics(const std::optional<virtshadow::v1::DrainRecord>& drain,
                                                size_t vms_left);

}  // namespace vs::switchover
