#include "common/private_paths.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace vs {
namespace {

constexpr mode_t kPrivateDirectoryMode = 0700;
constexpr mode_t kPrivateSocketMode = 0600;

Status ErrnoStatus(const std::string& what, const std::string& path, int err) {
  std::string message = what + " '" + path + "': " + std::strerror(err) + " (errno " + std::to_string(err) + ")";
  if (err == ENOSPC || err == EDQUOT) return ResourceExhausted(std::move(message));
  return Internal(std::move(message));
}

std::string OctalMode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

Status CheckOwner(const std::string& what, const std::string& path, const struct stat& st) {
  const uid_t me = ::geteuid();
  if (st.st_uid == me) return Status::Ok();
  return FailedPrecondition(what + " '" + path + "' is owned by uid " + std::to_string(st.st_uid) +
                            ", not by uid " + std::to_string(me) +
                            " that this process runs as: its owner could widen it or plant files in it, so it is "
                            "not made private but refused; make it ours (chown " + std::to_string(me) + " '" + path +
                            "') or remove it, then start again");
}

// mkdir with `mode`, creating missing parents first; EEXIST is success.
Status MakeDirectory(const std::string& path, mode_t mode) {
  if (::mkdir(path.c_str(), mode) == 0 || errno == EEXIST) return Status::Ok();
  if (errno != ENOENT) return ErrnoStatus("cannot create directory", path, errno);
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  std::filesystem::create_directories(parent, ec);
  if (ec) return ErrnoStatus("cannot create the parent of directory", path, ec.value());
  if (::mkdir(path.c_str(), mode) == 0 || errno == EEXIST) return Status::Ok();
  return ErrnoStatus("cannot create directory", path, errno);
}

// A socket path may be set to one in a directory others use (/run/shadowd.sock): tightening /run would break
// them. An existing directory wider than 0700 is therefore only taken as the socket's own (and tightened) when it
// holds nothing but the socket (one left by a killed shadowd).
Status RefuseSharedDirectory(const std::string& directory, const std::filesystem::path& socket_path) {
  struct stat st {};
  if (::stat(directory.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || (st.st_mode & 07777) == kPrivateDirectoryMode) {
    return Status::Ok();  // missing (created 0700), already private, or not a directory (EnsurePrivateDirectory says)
  }
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(directory, ec)) {
    const std::string name = entry.path().filename().string();
    if (name == socket_path.filename()) continue;
    return FailedPrecondition("directory '" + directory + "' of socket '" + socket_path.string() + "' has mode " +
                              OctalMode(st.st_mode) + " and holds other files ('" + name +
                              "'), so it is not made private: put the socket in a directory of its own (the "
                              "default is /run/virt-shadow/shadowd.sock), or chmod 0700 '" + directory + "'");
  }
  if (ec) return ErrnoStatus("cannot list directory", directory, ec.value());
  return Status::Ok();
}

}  // namespace

Status EnsurePrivateDirectory(const std::string& path) {
  VS_RETURN_IF_ERROR(MakeDirectory(path, kPrivateDirectoryMode));
  // The checks and the chmod go through one descriptor, so that they concern the same directory even if the
  // path is renamed in between.
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOTDIR) {
      return FailedPrecondition("'" + path + "' is not a directory; remove it or choose another path");
    }
    return ErrnoStatus("cannot open directory", path, errno);
  }
  struct stat st {};
  Status status = ::fstat(fd, &st) == 0 ? CheckOwner("directory", path, st)
                                         : ErrnoStatus("cannot stat directory", path, errno);
  if (status.ok() && (st.st_mode & 07777) != kPrivateDirectoryMode &&
      ::fchmod(fd, kPrivateDirectoryMode) != 0) {
    status = ErrnoStatus("cannot make directory private (mode " + OctalMode(kPrivateDirectoryMode) + ", was " +
                             OctalMode(st.st_mode) + ")",
                         path, errno);
  }
  ::close(fd);
  return status;
}

Status CreatePrivateSocket(const std::string& socket_path, const std::function<Status()>& create) {
  const std::filesystem::path path(socket_path);
  const std::string directory = path.has_parent_path() ? path.parent_path().string() : ".";
  VS_RETURN_IF_ERROR(RefuseSharedDirectory(directory, path));
  VS_RETURN_IF_ERROR(EnsurePrivateDirectory(directory).Annotate("the directory of socket '" + socket_path + "'"));
  VS_RETURN_IF_ERROR(create());
  if (::chmod(socket_path.c_str(), kPrivateSocketMode) != 0) {
    return ErrnoStatus("cannot set mode " + OctalMode(kPrivateSocketMode) + " on socket", socket_path, errno);
  }
  struct stat st {};
  if (::lstat(socket_path.c_str(), &st) != 0) return ErrnoStatus("cannot stat socket", socket_path, errno);
  if (!S_ISSOCK(st.st_mode)) {
    return FailedPrecondition("'" + socket_path +
                              "' is not a socket after it was created (something else replaced it?); remove it "
                              "and start again");
  }
  VS_RETURN_IF_ERROR(CheckOwner("socket", socket_path, st));
  if ((st.st_mode & 07777) != kPrivateSocketMode) {
    return FailedPrecondition("socket '" + socket_path + "' has mode " + OctalMode(st.st_mode) + " after chmod " +
                              OctalMode(kPrivateSocketMode) +
                              " (a file system that ignores modes?); put it on a local file system such as /run");
  }
  return Status::Ok();
}

}  // namespace vs
