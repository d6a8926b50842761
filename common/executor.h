// Executor: a thread (or queue) that runs work handed to it from other threads. shadowd's event loop is the one
// that matters (the protection controller lives on it); the rooms that must reach the controller from their own
// threads take an Executor, so that they depend on this interface instead of on the daemon, and unit tests run
// the work inline.
//
// Thread-safety: Post from any thread. Call must not be used on the executor's own thread (it would wait for
// itself). Failure modes: work posted after the executor stopped is dropped; Call then never returns, so the
// composition root stops every caller of Call before the executor (docs/threading.md, stopping).
#pragma once

#include <functional>
#include <future>

namespace vs {

class Executor {
 public:
  virtual ~Executor() = default;

  // Queues `work`; returns at once.
  virtual void Post(std::function<void()> work) = 0;

  // Runs `work` on the executor and returns its result to the calling thread.
  template <typename F>
  auto Call(F work) -> decltype(work()) {
    using R = decltype(work());
    std::promise<R> promise;
    auto future = promise.get_future();
    Post([&] { promise.set_value(work()); });
    return future.get();
  }
};

// Runs the work at once on the calling thread: for unit tests of components that take an Executor.
class InlineExecutor final : public Executor {
 public:
  void Post(std::function<void()> work) override { work(); }
};

}  // namespace vs
