// ScopedUmask: sets the process's file-creation mask for one test and restores it when it goes out of scope.
// With a mask of 0 a file that comes out owner-only was made so by the code under test, not by the test runner's
// mask; with vs::kPrivateUmask a test sees what shadowd creates. Not thread-safe (the mask is the process's):
// only for tests that create no files on other threads meanwhile.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

namespace vs::test_support {

class ScopedUmask {
 public:
  explicit ScopedUmask(mode_t mask) : saved_(::umask(mask)) {}
  ~ScopedUmask() { ::umask(saved_); }
  ScopedUmask(const ScopedUmask&) = delete;
  ScopedUmask& operator=(const ScopedUmask&) = delete;

 private:
  mode_t saved_;
};

}  // namespace vs::test_support
