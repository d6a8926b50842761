// Clang's thread-safety analysis (-Wthread-safety) for shadowd's locks: a Mutex and a scoped MutexLock that carry
// the capability attributes libstdc++'s std::mutex lacks, and the macros that say which mutex guards a member
// and which functions need it held. Under GCC the macros expand to nothing; the clang build
// (scripts/thread_safety_build.sh, run by CI) turns every unguarded access into an error.
//
// A condition variable waits on the Mutex itself (std::condition_variable_any), in a loop written in the
// function that holds the lock: a predicate lambda is a function of its own, which the analysis cannot see
// holds the lock.
#pragma once

#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define VS_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define VS_THREAD_ANNOTATION(x)
#endif

#define VS_CAPABILITY(x) VS_THREAD_ANNOTATION(capability(x))
#define VS_SCOPED_CAPABILITY VS_THREAD_ANNOTATION(scoped_lockable)
#define VS_GUARDED_BY(x) VS_THREAD_ANNOTATION(guarded_by(x))
#define VS_PT_GUARDED_BY(x) VS_THREAD_ANNOTATION(pt_guarded_by(x))
#define VS_REQUIRES(...) VS_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define VS_EXCLUDES(...) VS_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define VS_ACQUIRE(...) VS_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define VS_RELEASE(...) VS_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define VS_NO_THREAD_SAFETY_ANALYSIS VS_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace vs {

class VS_CAPABILITY("mutex") Mutex {
 public:
  void lock() VS_ACQUIRE() { mutex_.lock(); }
  void unlock() VS_RELEASE() { mutex_.unlock(); }

 private:
  std::mutex mutex_;
};

class VS_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mutex) VS_ACQUIRE(mutex) : mutex_(mutex) { mutex_.lock(); }
  ~MutexLock() VS_RELEASE() { mutex_.unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex& mutex_;
};

// Waits on a Mutex the caller holds.
using CondVar = std::condition_variable_any;

}  // namespace vs
