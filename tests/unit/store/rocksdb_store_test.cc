// What only the RocksDB store has: a lock against a second shadowd, real files, and survival of
// kill -9. The child processes below are forked before this process opens the database it
// tests, and they leave with _exit so that nothing of gtest runs twice.
#include "shadowd/store/rocksdb_store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "common/private_paths.h"
#include "tests/unit/common/scoped_umask.h"
#include "tests/unit/store/store_test_util.h"

namespace vs::store {
namespace {

// Kills and reaps a child this test forked if the test ends before it did.
class ChildGuard {
 public:
  explicit ChildGuard(pid_t pid) : pid_(pid) {}
  ~ChildGuard() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      Reap();
    }
  }
  ChildGuard(const ChildGuard&) = delete;
  ChildGuard& operator=(const ChildGuard&) = delete;
  void Kill() { kill(pid_, SIGKILL); }
  // waitpid's status word; the guard is done afterwards.
  int Reap() {
    int wstatus = 0;
    while (waitpid(pid_, &wstatus, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    return wstatus;
  }

 private:
  pid_t pid_;
};

bool WriteAll(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// False at end of file (the writer died) or on error.
bool ReadAll(int fd, void* data, size_t size) {
  char* p = static_cast<char*>(data);
  while (size > 0) {
    ssize_t n = read(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

TEST(RocksDbStoreTest, SecondOpenInTheSameProcessIsRefusedWithALockMessage) {
  TempDir dir;
  StatusOr<std::unique_ptr<Store>> first = OpenRocksDbStore(dir.path());
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  StatusOr<std::unique_ptr<Store>> second = OpenRocksDbStore(dir.path());
  ASSERT_EQ(second.status().code(), Code::kFailedPrecondition) << second.status().ToString();
  EXPECT_TRUE(second.status().message().starts_with(
      "store " + dir.path() + " is in use by another process (LOCK held); is shadowd already running?"))
      << second.status().message();
}

TEST(RocksDbStoreTest, StoreHeldByAnotherProcessIsRefusedUntilThatProcessExits) {
  TempDir dir;
  int ready[2], release[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(release), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {  // the "other shadowd": open, report, hold until the parent closes `release`
    close(ready[0]);
    close(release[1]);
    StatusOr<std::unique_ptr<Store>> held = OpenRocksDbStore(dir.path());
    const char opened = held.ok() ? 'y' : 'n';
    if (!WriteAll(ready[1], &opened, 1)) _exit(2);
    char ignored;
    (void)!read(release[0], &ignored, 1);  // returns at EOF
    _exit(0);  // the kernel releases the LOCK file's lock with the process, as after kill -9
  }
  ChildGuard child(pid);
  close(ready[1]);
  close(release[0]);
  char opened = 0;
  ASSERT_TRUE(ReadAll(ready[0], &opened, 1));
  ASSERT_EQ(opened, 'y') << "the child could not open the store";

  StatusOr<std::unique_ptr<Store>> refused = OpenRocksDbStore(dir.path());
  EXPECT_EQ(refused.status().code(), Code::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("store " + dir.path() +
                                            " is in use by another process (LOCK held); is shadowd already running?"),
            std::string::npos)
      << refused.status().message();

  close(release[1]);
  const int wstatus = child.Reap();
  close(ready[0]);
  ASSERT_TRUE(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);
  StatusOr<std::unique_ptr<Store>> reopened = OpenRocksDbStore(dir.path());
  EXPECT_TRUE(reopened.ok()) << reopened.status().ToString();
}

// What shadowd does (main's umask, Daemon::Build's directory): no file of the store, the info logs and the WAL
// included, is readable by the group or others.
TEST(RocksDbStoreTest, UnderShadowdsUmaskEveryFileIsOwnerOnly) {
  TempDir dir;
  const std::string path = dir.Sub("store");
  test_support::ScopedUmask shadowds(kPrivateUmask);
  ASSERT_TRUE(EnsurePrivateDirectory(path).ok());
  for (int open = 0; open < 2; ++open) {  // the reopen flushes the first WAL into a table file and rotates LOG
    StatusOr<std::unique_ptr<Store>> store = OpenRocksDbStore(path);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    WriteBatch batch;
    batch.Put("vm/" + std::to_string(open), std::string(4096, 'x'));
    ASSERT_TRUE((*store)->Write(batch).ok());
  }
  int files = 0, tables = 0;
  auto check = [&](const std::filesystem::path& file) {
    struct stat st {};
    ASSERT_EQ(::lstat(file.c_str(), &st), 0) << file;
    EXPECT_EQ(st.st_mode & 077, 0u) << file << " has mode " << std::oct << (st.st_mode & 07777);
    ++files;
    tables += file.extension() == ".sst";
  };
  check(path);
  for (const auto& file : std::filesystem::recursive_directory_iterator(path)) check(file.path());
  EXPECT_GE(tables, 1) << "no table file was written: the test would not see their mode";
  EXPECT_GE(files, 8);  // the directory, CURRENT, IDENTITY, LOCK, LOG, MANIFEST, OPTIONS, a WAL, a table
}

TEST(RocksDbStoreTest, UnusablePathsAreRefusedNamingThePath) {
  TempDir dir;
  EXPECT_EQ(OpenRocksDbStore("").status().code(), Code::kInvalidArgument);

  const std::string file = dir.Sub("a-file");
  std::ofstream(file) << "not a directory";
  StatusOr<std::unique_ptr<Store>> under_file = OpenRocksDbStore(file + "/db");
  EXPECT_EQ(under_file.status().code(), Code::kInternal) << under_file.status().ToString();
  EXPECT_NE(under_file.status().message().find(file + "/db"), std::string::npos) << under_file.status().message();
}

TEST(RocksDbStoreTest, ACorruptManifestIsDataLossNamingThePath) {
  // Damage below the envelope (RocksDB's own files) must surface as an error, never a crash.
  TempDir dir;
  {
    StatusOr<std::unique_ptr<Store>> store = OpenRocksDbStore(dir.path());
    ASSERT_TRUE(store.ok());
  }
  std::string current;
  std::getline(std::ifstream(dir.Sub("CURRENT")), current);
  ASSERT_FALSE(current.empty());
  std::ofstream(dir.Sub(current), std::ios::trunc) << "garbage instead of a manifest";
  StatusOr<std::unique_ptr<Store>> damaged = OpenRocksDbStore(dir.path());
  EXPECT_EQ(damaged.status().code(), Code::kDataLoss) << damaged.status().ToString();
  EXPECT_NE(damaged.status().message().find(dir.path()), std::string::npos) << damaged.status().message();
}

// ---- kill -9 ----

const std::string kCrashKeyA = Key(Table::kVm, "crash-a");
const std::string kCrashKeyB = Key(Table::kVm, "crash-b");

// Payloads carry a counter plus filler, so batches span WAL blocks now and then.
std::string CrashPayload(uint64_t counter) { return std::to_string(counter) + "|" + std::string(700, 'f'); }

StatusOr<uint64_t> CounterOf(const std::string& payload) {
  uint64_t counter = 0;
  auto [ptr, ec] = std::from_chars(payload.data(), payload.data() + payload.size(), counter);
  if (ec != std::errc() || ptr == payload.data() + payload.size() || *ptr != '|' || payload != CrashPayload(counter)) {
    return DataLoss("payload '" + payload.substr(0, 30) + "...' is not a crash-test payload");
  }
  return counter;
}

// Child body: continue the counter from the store, write {A=n, B=n} batches forever and send
// each n down `ack_fd` once Write returned OK. Never returns.
[[noreturn]] void RunCrashWriter(const std::string& path, int ack_fd) {
  StatusOr<std::unique_ptr<Store>> store = OpenRocksDbStore(path);
  if (!store.ok()) _exit(10);
  StatusOr<std::optional<std::string>> last = (*store)->Get(kCrashKeyA);
  if (!last.ok()) _exit(11);
  uint64_t counter = 0;
  if (last->has_value()) {
    StatusOr<uint64_t> parsed = CounterOf(**last);
    if (!parsed.ok()) _exit(12);
    counter = *parsed;
  }
  for (;;) {
    ++counter;
    WriteBatch batch;
    batch.Put(kCrashKeyA, CrashPayload(counter));
    batch.Put(kCrashKeyB, CrashPayload(counter));
    if (!(*store)->Write(batch).ok()) _exit(13);
    if (!WriteAll(ack_fd, &counter, sizeof(counter))) _exit(14);
  }
}

TEST(RocksDbStoreCrashTest, KillNineLeavesEveryBatchWholeOrAbsentAndKeepsAcknowledgedOnes) {
  TempDir dir;
  const uint64_t seed = std::random_device()();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  uint64_t last_acknowledged = 0;
  for (int round = 1; round <= 4; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    int acks[2];
    ASSERT_EQ(pipe(acks), 0);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(acks[0]);
      RunCrashWriter(dir.path(), acks[1]);
    }
    ChildGuard child(pid);
    close(acks[1]);

    // Let the writer acknowledge a random number of batches, then kill it at a random moment,
    // which is almost always in the middle of a write.
    const int acks_before_kill = std::uniform_int_distribution<int>(1, 60)(rng);
    uint64_t acked = 0;
    for (int i = 0; i < acks_before_kill && ReadAll(acks[0], &acked, sizeof(acked)); ++i) last_acknowledged = acked;
    usleep(std::uniform_int_distribution<useconds_t>(0, 3000)(rng));
    child.Kill();
    const int wstatus = child.Reap();
    while (ReadAll(acks[0], &acked, sizeof(acked))) last_acknowledged = acked;  // sent before it died
    close(acks[0]);
    ASSERT_TRUE(WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL)
        << "the writer stopped by itself with exit code " << (WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1);
    ASSERT_GT(last_acknowledged, 0u);

    StatusOr<std::unique_ptr<Store>> store = OpenRocksDbStore(dir.path());
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    StatusOr<std::optional<std::string>> a = (*store)->Get(kCrashKeyA);
    StatusOr<std::optional<std::string>> b = (*store)->Get(kCrashKeyB);
    ASSERT_TRUE(a.ok() && a->has_value()) << Describe(a);
    ASSERT_TRUE(b.ok() && b->has_value()) << Describe(b);
    StatusOr<uint64_t> counter_a = CounterOf(**a);
    StatusOr<uint64_t> counter_b = CounterOf(**b);
    ASSERT_TRUE(counter_a.ok() && counter_b.ok());
    EXPECT_EQ(*counter_a, *counter_b) << "a batch was applied in part";
    // Every acknowledged batch is present; at most the one in flight when killed is extra.
    EXPECT_GE(*counter_a, last_acknowledged);
    EXPECT_LE(*counter_a, last_acknowledged + 1);
  }
}

}  // namespace
}  // namespace vs::store
