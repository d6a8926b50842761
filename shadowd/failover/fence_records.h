// FenceRecords: the self-fence records of this host's VMs in the store (table "failover", key "fence:VM_UUID",
// proto FenceRecord). Written only by SelfFence (self_fence.h), on its thread; read by the hook's verdict and
// `virt-shadow status`/`hosts` on gRPC's threads and by the metrics: one point read per hook event, so the hook
// stays fast.
//
// With a marker directory, Put also keeps the fence markers (fence_marker.h) in line with the records it wrote,
// after the store batch: a marker that cannot be written is reported to `on_marker_error` and does not fail Put
// (the store is the authority; the markers only serve the hook while shadowd is down).
//
// Ownership: borrows the store (it must outlive this). Thread-safety: every method from any thread (the store
// is thread-safe; this object holds no state). Failure modes: the store's errors; DataLoss naming the key for a
// record that does not parse.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "proto/failover.pb.h"
#include "shadowd/metrics/prometheus_text.h"
#include "shadowd/store/store.h"

namespace vs::failover {

class FenceRecords {
 public:
  explicit FenceRecords(store::Store& store, std::string marker_dir = "",
                        std::function<void(const Status&)> on_marker_error = nullptr)
      : store_(store), marker_dir_(std::move(marker_dir)), on_marker_error_(std::move(on_marker_error)) {}

  static std::string KeyOf(const std::string& vm_uuid);

  StatusOr<std::optional<virtshadow::v1::FenceRecord>> Get(const std::string& vm_uuid) const;
  // Every record, in key order.
  StatusOr<std::vector<virtshadow::v1::FenceRecord>> List() const;
  // Writes `records` in one batch (all or none).
  Status Put(const std::vector<virtshadow::v1::FenceRecord>& records);

 private:
  store::Store& store_;
  const std::string marker_dir_;  // empty: no markers
  const std::function<void(const Status&)> on_marker_error_;
};

// The records that keep a VM from starting here (fence_machine.h's BlocksStart).
std::vector<virtshadow::v1::FenceRecord> Blocking(const std::vector<virtshadow::v1::FenceRecord>& records);

// What the metrics endpoint shows of them:
//   virt_shadow_fenced_vms                     how many of this host's VMs are fenced and not released
//   virt_shadow_vm_fenced{vm,uuid,state}       1 per such VM; state "fenced", "releasing", "promoted elsewhere"
std::vector<metrics::MetricFamily> FenceMetrics(const std::vector<virtshadow::v1::FenceRecord>& records);

}  // namespace vs::failover
