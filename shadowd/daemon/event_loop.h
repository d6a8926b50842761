// EventLoop: the one thread on which shadowd's controller runs (the Executor the other rooms are given). Every
// other thread (gRPC handlers, libvirt's event-loop thread, the switchover thread, the signal thread) hands work
// over with Post() or Call(); only closures run on the loop touch the controller, so the controller needs no
// locks (see controller.h's execution model).
//
// Ownership: owns its queue; the closures own what they capture.
// Thread-safety: Post, Call and Stop from any thread; Run on exactly one thread. Call must not be used from the
// loop thread itself (it would wait for itself).
#pragma once

#include <deque>
#include <functional>

#include "common/clock.h"
#include "common/executor.h"
#include "common/thread_annotations.h"

namespace vs::daemon {

class EventLoop final : public Executor {
 public:
  void Post(std::function<void()> work) override;

  // Runs queued work until Stop(); calls `on_tick` at least every `tick` (and after each batch of work).
  void Run(Duration tick, const std::function<void()>& on_tick);
  void Stop();

 private:
  Mutex mu_;
  CondVar cv_;
  std::deque<std::function<void()>> queue_ VS_GUARDED_BY(mu_);
  bool stop_ VS_GUARDED_BY(mu_) = false;
};

}  // namespace vs::daemon
