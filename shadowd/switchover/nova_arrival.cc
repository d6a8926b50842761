#include "shadowd/switchover/nova_arrival.h"

#include <filesystem>
#include <system_error>

namespace vs::switchover {

namespace fs = std::filesystem;

namespace {

Status Failed(const std::string& what, const std::error_code& ec) { return Internal(what + ": " + ec.message()); }

bool Exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

}  // namespace

std::string StashedPathOf(const std::string& instance_dir) {
  std::string dir = instance_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir + ".vs-arriving";
}

StatusOr<std::string> InstanceDirOf(const std::vector<std::string>& disk_paths) {
  if (disk_paths.empty()) return InvalidArgument("the VM has no file-backed disk: no Nova instance directory");
  const std::string dir = fs::path(disk_paths.front()).parent_path().string();
  for (const std::string& path : disk_paths) {
    if (fs::path(path).parent_path().string() != dir) {
      return InvalidArgument("disk " + path + " is not in the instance directory " + dir +
                             " with the other disks: Nova keeps every local disk of an instance there");
    }
  }
  return dir;
}

Status StashInstanceDir(const std::string& instance_dir) {
  const std::string stash = StashedPathOf(instance_dir);
  const bool dir = Exists(instance_dir);
  const bool stashed = Exists(stash);
  if (!dir && stashed) return Status::Ok();
  if (dir && stashed) {
    return FailedPrecondition("both " + instance_dir + " and " + stash +
                              " exist: an earlier arrival was not finished; restore the stash first");
  }
  if (!dir) return FailedPrecondition("instance directory " + instance_dir + " does not exist");
  std::error_code ec;
  fs::rename(instance_dir, stash, ec);
  if (ec) return Failed("renaming " + instance_dir + " to " + stash, ec);
  return Status::Ok();
}

Status MoveStashInto(const std::string& instance_dir) {
  const std::string stash = StashedPathOf(instance_dir);
  if (!Exists(stash)) return Status::Ok();
  if (!Exists(instance_dir)) {
    return FailedPrecondition("Nova has not made the instance directory " + instance_dir +
                              " on this host: the shadow's files stay in " + stash);
  }
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(stash, ec)) {
    const fs::path to = fs::path(instance_dir) / entry.path().filename();
    std::error_code moved;
    fs::rename(entry.path(), to, moved);  // replaces a file of the same name: rename(2) is atomic
    if (moved) return Failed("moving " + entry.path().string() + " to " + to.string(), moved);
  }
  if (ec) return Failed("listing " + stash, ec);
  fs::remove(stash, ec);
  if (ec) return Failed("removing the emptied " + stash, ec);
  return Status::Ok();
}

Status RestoreStash(const std::string& instance_dir) {
  const std::string stash = StashedPathOf(instance_dir);
  if (!Exists(stash)) return Status::Ok();
  if (Exists(instance_dir)) return MoveStashInto(instance_dir);
  std::error_code ec;
  fs::rename(stash, instance_dir, ec);
  if (ec) return Failed("renaming " + stash + " back to " + instance_dir, ec);
  return Status::Ok();
}

std::optional<std::string> StashOfDisks(const policy::DomainFacts& facts) {
  for (const policy::DiskFacts& disk : facts.disks) {
    if (disk.source_kind != policy::DiskFacts::SourceKind::kFile || disk.source_path.empty()) continue;
    const std::string stash = StashedPathOf(fs::path(disk.source_path).parent_path().string());
    if (Exists(stash)) return stash;
  }
  return std::nullopt;
}

Status DiscardStash(const std::string& instance_dir) {
  const std::string stash = StashedPathOf(instance_dir);
  std::error_code ec;
  fs::remove_all(stash, ec);
  if (ec) return Failed("removing " + stash, ec);
  return Status::Ok();
}

}  // namespace vs::switchover
