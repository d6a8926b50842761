#include "shadowd/failover/fence_marker.h"

#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/private_paths.h"
#include "shadowd/failover/fence_machine.h"

namespace vs::failover {
namespace {

using virtshadow::v1::FenceRecord;

// "2026-12-05 10:40:00 UTC": libvirt shows the hook's message to whoever started the VM.
std::string UnixMsText(int64_t ms) {
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[32];
  const std::size_t length = std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &utc);
  return std::string(text, length);
}

// A libvirt UUID: hex digits and dashes only, so that it names a file inside `dir` and nothing else.
bool IsUuid(const std::string& uuid) {
  if (uuid.empty() || uuid.size() > 64) return false;
  for (char c : uuid) {
    if (!std::isxdigit(static_cast<unsigned char>(c)) && c != '-') return false;
  }
  return true;
}

}  // namespace

std::string FenceRefusal(const std::string& vm_name, const FenceRecord& fence) {
  std::string reason = "virt-shadow: VM " + vm_name + " is fenced on this host since " +
                       UnixMsText(fence.fenced_unix_ms()) + " (" + fence.why() + ")";
  if (fence.state() == FenceRecord::FENCE_STATE_PROMOTED_ELSEWHERE) {
    reason += "; it was promoted on " + fence.promoted_host() + " at " + UnixMsText(fence.promoted_unix_ms()) +
              ", so this copy is stale and must not run here";
  } else {
    reason += "; it stays fenced until its shadow host " + (fence.shadow_hosts_size() ? fence.shadow_hosts(0) : "") +
              " confirms it did not promote it" + (fence.detail().empty() ? "" : " (" + fence.detail() + ")");
  }
  return reason + "; see virt-shadow status " + vm_name;
}

Status WriteFenceMarkers(const std::string& dir, const std::vector<FenceRecord>& records) {
  namespace fs = std::filesystem;
  Status first;
  auto fail = [&](const std::string& what, const std::error_code& ec) {
    if (first.ok()) first = Internal(what + ": " + ec.message());
  };
  // 0700 like the rest of shadowd's state: the hook reading the markers runs as root.
  if (Status made = EnsurePrivateDirectory(dir); !made.ok()) first = made.Annotate("the fence marker directory");
  std::error_code ec;
  for (const FenceRecord& record : records) {
    if (!IsUuid(record.vm_uuid())) continue;
    const fs::path path = fs::path(dir) / record.vm_uuid();
    if (!BlocksStart(record.state())) {
      fs::remove(path, ec);
      if (ec) fail("removing the fence marker " + path.string(), ec);
      continue;
    }
    const fs::path temporary = path.string() + ".new";
    {
      std::ofstream out(temporary, std::ios::trunc);
      out << FenceRefusal(record.vm_name(), record) << "\n";
      out.flush();
      if (!out) {
        fail("writing the fence marker " + temporary.string(), std::make_error_code(std::errc::io_error));
        continue;
      }
    }
    fs::rename(temporary, path, ec);
    if (ec) fail("renaming the fence marker " + path.string(), ec);
  }
  return first;
}

std::optional<std::string> ReadFenceMarker(const std::string& dir, const std::string& vm_uuid) {
  if (!IsUuid(vm_uuid)) return std::nullopt;
  std::ifstream in(std::filesystem::path(dir) / vm_uuid);
  if (!in) return std::nullopt;
  std::string line;
  std::getline(in, line);
  if (line.empty()) return std::nullopt;
  return line;
}

}  // namespace vs::failover
