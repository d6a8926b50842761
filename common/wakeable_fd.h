// Blocking reads that another thread can interrupt: the power-button readers (shadowd/notice/) and the hook
// listener (shadowd/hook_intake/) wait on them.
//
// UniqueFd owns a file descriptor. StopSignal is an eventfd that, once Raise()d, stays readable
// forever; WaitReadable blocks in poll() on a data descriptor and the stop signal together with
// no timeout, so a reader waits without spinning and wakes at once for data or for Stop().
// Ownership: UniqueFd closes its descriptor; StopSignal owns its eventfd.
// Thread-safety: StopSignal::Raise may be called from any thread, any number of times; the rest
// belongs to the thread that reads. Failure modes: Internal naming the syscall and errno (out of
// descriptors, a descriptor closed behind the reader's back).
#pragma once

#include <atomic>
#include <string>
#include <utility>

#include "common/status.h"

namespace vs {

class UniqueFd {
 public:
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();

  int get() const { return fd_; }

 private:
  int fd_;
};

class StopSignal {
 public:
  static StatusOr<StopSignal> Create();
  StopSignal(StopSignal&& other) noexcept : fd_(std::move(other.fd_)), raised_(other.raised_.load()) {}
  void Raise();
  bool raised() const { return raised_.load(); }
  int fd() const { return fd_.get(); }

 private:
  explicit StopSignal(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
  std::atomic<bool> raised_{false};
};

enum class WaitOutcome { kReadable, kStopped };

// Blocks until `fd` is readable (or at its end, or in error: the read tells which) or `stop` is
// raised; a raised stop wins over pending data.
StatusOr<WaitOutcome> WaitReadable(int fd, const StopSignal& stop);

// The description of an errno value (thread-safe, unlike strerror).
std::string ErrnoText(int error_number);

}  // namespace vs
