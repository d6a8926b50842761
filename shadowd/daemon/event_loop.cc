#include "shadowd/daemon/event_loop.h"

namespace vs::daemon {

void EventLoop::Post(std::function<void()> work) {
  {
    MutexLock lock(mu_);
    queue_.push_back(std::move(work));
  }
  cv_.notify_one();
}

void EventLoop::Run(Duration tick, const std::function<void()>& on_tick) {
  while (true) {
    std::deque<std::function<void()>> batch;
    {
      MutexLock lock(mu_);
      // The tick bounds how late timers fire; it is a real-time wait because the loop blocks on real events.
      const auto until = std::chrono::steady_clock::now() + tick;
      while (!stop_ && queue_.empty()) {
        if (cv_.wait_until(mu_, until) == std::cv_status::timeout) break;
      }
      if (stop_) return;
      batch.swap(queue_);
    }
    for (auto& work : batch) work();
    on_tick();
  }
}

void EventLoop::Stop() {
  {
    MutexLock lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
}

}  // namespace vs::daemon
