// WarmUpGate: the postcopy switch of warm-up migrations (record.warm). Each is held until the coordinator
// releases the VM (the notice came) or the deadline draws near; or the warm-up is cancelled (`undrain`: the
// host stays), which aborts its migration before the switch.
//
// Ownership: a value owned by the composition root. Thread-safety: every method from any thread (the
// coordinator releases and cancels; a warm-up's migration polls).
#pragma once

#include <mutex>
#include <set>
#include <string>

#include "common/thread_annotations.h"

namespace vs::switchover {

class WarmUpGate {
 public:
  void Release(const std::string& vm_uuid) {
    MutexLock lock(mutex_);
    released_.insert(vm_uuid);
  }
  bool Released(const std::string& vm_uuid) const {
    MutexLock lock(mutex_);
    return released_.count(vm_uuid) > 0;
  }
  void Cancel(const std::string& vm_uuid) {
    MutexLock lock(mutex_);
    cancelled_.insert(vm_uuid);
  }
  bool Cancelled(const std::string& vm_uuid) const {
    MutexLock lock(mutex_);
    return cancelled_.count(vm_uuid) > 0;
  }
  void Forget(const std::string& vm_uuid) {
    MutexLock lock(mutex_);
    released_.erase(vm_uuid);
    cancelled_.erase(vm_uuid);
  }

 private:
  mutable Mutex mutex_;
  std::set<std::string> released_ VS_GUARDED_BY(mutex_);
  std::set<std::string> cancelled_ VS_GUARDED_BY(mutex_);
};

}  // namespace vs::switchover
