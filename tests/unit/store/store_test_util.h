// Helpers shared by the store tests. Test-only.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>

#include "common/status.h"

namespace vs::store {

// "<absent>", the payload, or the error: one string that an EXPECT_EQ can show in full.
inline std::string Describe(const StatusOr<std::optional<std::string>>& got) {
  if (!got.ok()) return got.status().ToString();
  return got->has_value() ? **got : "<absent>";
}

// A fresh directory under $TMPDIR (or /tmp) for one test, removed with everything in it when
// the object goes out of scope. Not thread-safe.

class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/vs_store_test.XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) std::abort();  // no directory: no meaningful test
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // A path inside the directory, for a store that does not exist yet.
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace vs::store
