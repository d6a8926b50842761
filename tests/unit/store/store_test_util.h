// Helpers shared by the store tests. Test-only.
#pragma once

#include <optional>
#include <string>

#include "common/status.h"
#include "tests/unit/common/temp_dir.h"

namespace vs::store {

// "<absent>", the payload, or the error: one string that an EXPECT_EQ can show in full.
inline std::string Describe(const StatusOr<std::optional<std::string>>& got) {
  if (!got.ok()) return got.status().ToString();
  return got->has_value() ? **got : "<absent>";
}

using vs::test_support::TempDir;

}  // namespace vs::store
