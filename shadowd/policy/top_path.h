// The switchover's disk naming, shared by everything that meets a disk in the middle of a switchover: the
// snapshot puts each disk onto "<image>.vs-top-<tag>" (the same path on both hosts) until the target flattens
// it back into <image>. Replication, the shadow's definition and the switchover itself all mean the image
// beneath a top when they see one.
//
// Why a tag per switchover: with one fixed name, a switchover whose flatten had not finished left the VM
// running on "<image>.vs-top", and the next switchover of that VM snapshotted onto that very path, over
// the live layer (the chain became top -> top -> image and acknowledged writes were lost). A tag (the
// switchover's request time in ms) makes each switchover's tops new files; "<image>.vs-top" without a tag
// is still recognised, for VMs left on one by an older build.
//
// Pure functions; header-only.
#pragma once

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

namespace vs::policy {

inline constexpr std::string_view kTopSuffix = ".vs-top";

// "<base>.vs-top-<tag>"; `tag` is letters and digits (see IsValidTopTag).
inline std::string TopPathOf(const std::string& base_path, const std::string& tag) {
  return base_path + std::string(kTopSuffix) + "-" + tag;
}

inline bool IsValidTopTag(std::string_view tag) {
  return !tag.empty() && tag.size() <= 32 &&
         std::all_of(tag.begin(), tag.end(), [](unsigned char c) { return std::isalnum(c) != 0; });
}

// Where the ".vs-top" of a top path starts, or npos when `path` is no top.
inline size_t TopSuffixStart(std::string_view path) {
  const size_t at = path.rfind(kTopSuffix);
  if (at == std::string_view::npos || at == 0 || path[at - 1] == '/') return std::string_view::npos;
  const std::string_view rest = path.substr(at + kTopSuffix.size());
  if (rest.empty()) return at;  // an older build's untagged top
  if (rest.front() == '-' && IsValidTopTag(rest.substr(1))) return at;
  return std::string_view::npos;
}

inline bool IsTopPath(const std::string& path) { return TopSuffixStart(path) != std::string_view::npos; }

// The image a disk stands for: `source_path` itself, or the image beneath while it is on a switchover top.
inline std::string BasePathOf(const std::string& source_path) {
  const size_t at = TopSuffixStart(source_path);
  return at == std::string_view::npos ? source_path : source_path.substr(0, at);
}

}  // namespace vs::policy
