// The switchover's disk naming, shared by everything that meets a disk in the middle of a switchover: the
// snapshot puts each disk onto "<image>.vs-top" (the same path on both hosts) until the target flattens it
// back into <image>. Replication, the shadow's definition and the switchover itself all mean the image
// beneath a top when they see one. Pure functions; header-only.
#pragma once

#include <string>
#include <string_view>

namespace vs::switchover {

inline constexpr std::string_view kTopSuffix = ".vs-top";

inline std::string TopPathOf(const std::string& base_path) { return base_path + std::string(kTopSuffix); }

inline bool IsTopPath(const std::string& path) {
  return path.size() > kTopSuffix.size() && path.ends_with(kTopSuffix);
}

// The image a disk stands for: `source_path` itself, or the image beneath while it is on a switchover top.
inline std::string BasePathOf(const std::string& source_path) {
  return IsTopPath(source_path) ? source_path.substr(0, source_path.size() - kTopSuffix.size()) : source_path;
}

}  // namespace vs::switchover
