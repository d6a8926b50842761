// DrainState: whether this host is under a notice (a preemption, an early warning or an operator's
// drain), persisted in the store (table "host", key "drain") so that a restarted shadowd still knows.
// While draining, the host takes no new shadows (peers see it through the HostState peer call and
// treat it as down for placement) and shadowd moves its protected VMs away.
//
// Ownership: borrows the store. Thread-safety: all methods may be called from any thread (one mutex).
// Failure modes: store errors are returned; Load() at start-up reports a damaged record as DataLoss.
#pragma once

#include <optional>

#include "common/status.h"
#include "common/thread_annotations.h"
#include "proto/switchover.pb.h"
#include "shadowd/store/store.h"

namespace vs::switchover {

// Whether the recorded notice is a preemption (not an early warning).
bool IsPreemption(const virtshadow::v1::DrainRecord& record);

class DrainState {
 public:
  explicit DrainState(store::Store& store) : store_(store) {}

  Status Load();
  std::optional<virtshadow::v1::DrainRecord> Current() const;
  // Records a notice. A later notice replaces an earlier one only when its deadline is sooner or it is a
  // preemption replacing an early warning; returns whether it did.
  StatusOr<bool> Enter(const virtshadow::v1::DrainRecord& record);
  // The host is back (`virt-shadow undrain`). Returns whether it was draining.
  StatusOr<bool> Clear();

 private:
  store::Store& store_;
  mutable Mutex mutex_;
  std::optional<virtshadow::v1::DrainRecord> current_ VS_GUARDED_BY(mutex_);
};

}  // namespace vs::switchover
