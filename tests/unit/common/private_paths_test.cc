#include "common/private_paths.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "tests/unit/common/scoped_umask.h"
#include "tests/unit/common/temp_dir.h"

namespace vs {
namespace {

using ::testing::HasSubstr;
using test_support::ScopedUmask;
using test_support::TempDir;

constexpr uid_t kNobody = 65534;

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return 0;
  return st.st_mode & 07777;
}

// Binds a unix socket at `path` (left open: the caller's socket lives as long as the descriptor).
Status BindSocket(const std::string& path, int& fd) {
  fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Internal(std::string("socket: ") + std::strerror(errno));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    return Internal("bind " + path + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

class SocketFd {
 public:
  ~SocketFd() {
    if (fd >= 0) ::close(fd);
  }
  int fd = -1;
};

TEST(EnsurePrivateDirectoryTest, CreatesTheDirectoryAndItsParentsOwnerOnly) {
  TempDir temp;
  ScopedUmask wide(0);
  const std::string path = temp.Sub("var/lib/virt-shadow/store");
  ASSERT_TRUE(EnsurePrivateDirectory(path).ok());
  EXPECT_EQ(ModeOf(path), 0700);
  ASSERT_TRUE(EnsurePrivateDirectory(path).ok()) << "a second call finds it as it should be";
  EXPECT_EQ(ModeOf(path), 0700);
}

TEST(EnsurePrivateDirectoryTest, TightensAWiderDirectoryOfOurs) {
  TempDir temp;
  const std::string path = temp.Sub("spool");
  ASSERT_EQ(::mkdir(path.c_str(), 0755), 0);
  ASSERT_EQ(::chmod(path.c_str(), 02777), 0);
  ASSERT_TRUE(EnsurePrivateDirectory(path).ok());
  EXPECT_EQ(ModeOf(path), 0700);
}

TEST(EnsurePrivateDirectoryTest, FollowsASymlinkAndChecksWhereItLeads) {
  TempDir temp;
  const std::string target = temp.Sub("elsewhere");
  ASSERT_EQ(::mkdir(target.c_str(), 0755), 0);
  ASSERT_EQ(::symlink(target.c_str(), temp.Sub("store").c_str()), 0);
  ASSERT_TRUE(EnsurePrivateDirectory(temp.Sub("store")).ok());
  EXPECT_EQ(ModeOf(target), 0700);
}

TEST(EnsurePrivateDirectoryTest, RefusesAnotherUsersDirectoryAndLeavesIt) {
  TempDir temp;
  // As root a directory given to nobody; otherwise "/", which is root's.
  std::string path = "/";
  if (::geteuid() == 0) {
    path = temp.Sub("foreign");
    ASSERT_EQ(::mkdir(path.c_str(), 0755), 0);
    ASSERT_EQ(::chown(path.c_str(), kNobody, kNobody), 0) << std::strerror(errno);
  }
  const mode_t before = ModeOf(path);
  const Status status = EnsurePrivateDirectory(path);
  EXPECT_EQ(status.code(), Code::kFailedPrecondition) << status.ToString();
  EXPECT_THAT(status.message(), HasSubstr("'" + path + "' is owned by uid "));
  EXPECT_THAT(status.message(), HasSubstr("chown " + std::to_string(::geteuid()) + " '" + path + "'"));
  EXPECT_EQ(ModeOf(path), before);
}

TEST(EnsurePrivateDirectoryTest, RefusesAFile) {
  TempDir temp;
  const std::string path = temp.Sub("file");
  ::close(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  const Status status = EnsurePrivateDirectory(path);
  EXPECT_EQ(status.code(), Code::kFailedPrecondition) << status.ToString();
  EXPECT_THAT(status.message(), HasSubstr("'" + path + "' is not a directory"));
}

TEST(CreatePrivateSocketTest, TheDirectoryIsPrivateBeforeTheSocketExistsAndTheSocketEnds0600) {
  TempDir temp;
  ScopedUmask wide(0);  // the socket is born 0777
  const std::string directory = temp.Sub("run/virt-shadow");
  ASSERT_EQ(::mkdir(temp.Sub("run").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(directory.c_str(), 0755), 0);
  const std::string path = directory + "/shadowd.sock";
  SocketFd socket;
  mode_t directory_mode_at_bind = 0;
  const Status status = CreatePrivateSocket(path, [&] {
    directory_mode_at_bind = ModeOf(directory);
    return BindSocket(path, socket.fd);
  });
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(directory_mode_at_bind, 0700);
  EXPECT_EQ(ModeOf(directory), 0700);
  EXPECT_EQ(ModeOf(path), 0600);
}

TEST(CreatePrivateSocketTest, AWideDirectoryHoldingOtherFilesIsSharedAndRefusedNotTightened) {
  TempDir temp;
  const std::string directory = temp.Sub("run");  // as if the socket were set to /run/shadowd.sock
  ASSERT_EQ(::mkdir(directory.c_str(), 0755), 0);
  ::close(::open((directory + "/utmp").c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  bool created = false;
  const Status status = CreatePrivateSocket(directory + "/shadowd.sock", [&] {
    created = true;
    return Status::Ok();
  });
  EXPECT_EQ(status.code(), Code::kFailedPrecondition) << status.ToString();
  EXPECT_THAT(status.message(), HasSubstr("directory '" + directory + "' of socket '" + directory +
                                          "/shadowd.sock' has mode 0755 and holds other files ('utmp')"));
  EXPECT_FALSE(created);
  EXPECT_EQ(ModeOf(directory), 0755);
}

TEST(CreatePrivateSocketTest, AWideDirectoryHoldingOnlyAStaleSocketIsTightened) {
  TempDir temp;
  const std::string directory = temp.Sub("virt-shadow");
  ASSERT_EQ(::mkdir(directory.c_str(), 0755), 0);
  const std::string path = directory + "/shadowd.sock";
  {
    SocketFd stale;  // a killed shadowd's
    ASSERT_TRUE(BindSocket(path, stale.fd).ok());
  }
  SocketFd socket;
  const Status status = CreatePrivateSocket(path, [&] {
    ::unlink(path.c_str());
    return BindSocket(path, socket.fd);
  });
  ASSERT_TRUE(status.ok()) << status.ToString();
  EXPECT_EQ(ModeOf(directory), 0700);
}

TEST(CreatePrivateSocketTest, ReturnsTheCreatorsFailure) {
  TempDir temp;
  const Status status = CreatePrivateSocket(temp.Sub("s.sock"), [] { return Unavailable("cannot listen"); });
  EXPECT_EQ(status.code(), Code::kUnavailable);
  EXPECT_EQ(status.message(), "cannot listen");
}

TEST(CreatePrivateSocketTest, SomethingOtherThanASocketIsAnError) {
  TempDir temp;
  const std::string path = temp.Sub("s.sock");
  const Status status = CreatePrivateSocket(path, [&] {
    ::close(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    return Status::Ok();
  });
  EXPECT_EQ(status.code(), Code::kFailedPrecondition) << status.ToString();
  EXPECT_THAT(status.message(), HasSubstr("'" + path + "' is not a socket"));
}

TEST(CreatePrivateSocketTest, ASocketOfAnotherUserIsAnError) {
  if (::geteuid() != 0) GTEST_SKIP() << "only root can give a socket to another user";
  TempDir temp;
  const std::string path = temp.Sub("s.sock");
  SocketFd socket;
  const Status status = CreatePrivateSocket(path, [&]() -> Status {
    VS_RETURN_IF_ERROR(BindSocket(path, socket.fd));
    if (::lchown(path.c_str(), kNobody, kNobody) != 0) return Internal(std::strerror(errno));
    return Status::Ok();
  });
  EXPECT_EQ(status.code(), Code::kFailedPrecondition) << status.ToString();
  EXPECT_THAT(status.message(), HasSubstr("socket '" + path + "' is owned by uid 65534"));
}

TEST(CreatePrivateSocketTest, RefusesADirectoryOfAnotherUserBeforeCreating) {
  if (::geteuid() != 0) GTEST_SKIP() << "only root can give a directory to another user";
  TempDir temp;
  const std::string directory = temp.Sub("run");
  ASSERT_EQ(::mkdir(directory.c_str(), 0755), 0);
  ASSERT_EQ(::chown(directory.c_str(), kNobody, kNobody), 0);
  bool created = false;
  const Status status = CreatePrivateSocket(directory + "/s.sock", [&] {
    created = true;
    return Status::Ok();
  });
  EXPECT_EQ(status.code(), Code::kFailedPrecondition) << status.ToString();
  EXPECT_THAT(status.message(), HasSubstr("the directory of socket '" + directory + "/s.sock'"));
  EXPECT_FALSE(created);
}

}  // namespace
}  // namespace vs
