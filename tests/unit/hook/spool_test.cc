// The hook-event spool: order, durability rules visible on disk, damaged and foreign files, bounds.
#include "shadowd/spool/spool.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <thread>
#include <vector>

#include "tests/unit/common/scoped_umask.h"
#include "tests/unit/hook/test_support.h"

namespace vs::spool {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using vs::hook::testing::TempDir;
using virtshadow::v1::HookEvent;

HookEvent Event(std::string operation, std::int64_t wall_ms, std::string name = "web-1") {
  HookEvent event;
  event.set_domain_name(std::move(name));
  event.set_domain_uuid("8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d");
  event.set_operation(std::move(operation));
  event.set_sub_operation("begin");
  event.set_extra("-");
  event.set_domain_xml("<domain><name>web-1</name></domain>");
  event.set_hook_wall_time_unix_ms(wall_ms);
  return event;
}

std::vector<std::uint64_t> Sequences(const SpoolListing& listing) {
  std::vector<std::uint64_t> sequences;
  for (const SpoolEntry& entry : listing.entries) sequences.push_back(entry.sequence);
  return sequences;
}

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  ASSERT_TRUE(out.good()) << path;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

class SpoolTest : public ::testing::Test {
 protected:
  SpoolEntry MustAppend(Spool& spool, const HookEvent& event) {
    StatusOr<SpoolEntry> entry = spool.Append(event);
    EXPECT_TRUE(entry.ok()) << entry.status().ToString();
    return entry.ok() ? *entry : SpoolEntry{};
  }
  SpoolListing MustList(Spool& spool) {
    StatusOr<SpoolListing> listing = spool.List();
    EXPECT_TRUE(listing.ok()) << listing.status().ToString();
    return listing.ok() ? *listing : SpoolListing{};
  }

  TempDir dir_;
  FakeClock clock_;
  std::string spool_dir_ = dir_.Sub("spool");
  Spool spool_{spool_dir_, clock_};
};

TEST_F(SpoolTest, ListGivesAppendOrderEvenWhenWallTimesGoBackwards) {
  // The wall clock may step back (NTP); replay order must still be the order the hooks ran in.
  MustAppend(spool_, Event("prepare", 5000));
  MustAppend(spool_, Event("start", 4000));
  MustAppend(spool_, Event("started", 9000));
  SpoolListing listing = MustList(spool_);
  EXPECT_THAT(Sequences(listing), ElementsAre(1, 2, 3));
  std::vector<std::string> operations;
  for (const SpoolEntry& entry : listing.entries) {
    StatusOr<HookEvent> event = spool_.Read(entry);
    ASSERT_TRUE(event.ok()) << event.status().ToString();
    operations.push_back(event->operation());
  }
  EXPECT_THAT(operations, ElementsAre("prepare", "start", "started"));
  EXPECT_THAT(listing.skipped, IsEmpty());
}

TEST_F(SpoolTest, FileNamesCarrySequenceWallTimeAndSize) {
  SpoolEntry entry = MustAppend(spool_, Event("prepare", 1'700'000'000'123));
  const std::uint64_t size = std::filesystem::file_size(spool_dir_ + "/" + entry.file_name);
  EXPECT_EQ(entry.file_name, "00000000000000000001-1700000000123-" + std::to_string(size) + ".event");
  EXPECT_EQ(entry.sequence, 1u);
  EXPECT_EQ(entry.wall_time_unix_ms, 1'700'000'000'123);
  EXPECT_EQ(entry.bytes, size);
  EXPECT_THAT(MustList(spool_).entries, ElementsAre(entry));
}

TEST_F(SpoolTest, ReadGivesBackTheEventWithItsSequence) {
  HookEvent original = Event("migrate", 42);
  SpoolEntry first = MustAppend(spool_, Event("prepare", 41));
  SpoolEntry second = MustAppend(spool_, original);
  StatusOr<HookEvent> read = spool_.Read(second);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  original.set_spool_sequence(2);
  EXPECT_EQ(read->SerializeAsString(), original.SerializeAsString());
  EXPECT_EQ(spool_.Read(first)->spool_sequence(), 1u);
}

TEST_F(SpoolTest, SequencesNeverRestartAfterTheSpoolIsDrained) {
  for (int i = 0; i < 3; ++i) MustAppend(spool_, Event("start", i));
  for (const SpoolEntry& entry : MustList(spool_).entries) ASSERT_TRUE(spool_.Remove(entry).ok());
  EXPECT_THAT(MustList(spool_).entries, IsEmpty());
  EXPECT_EQ(MustAppend(spool_, Event("stopped", 9)).sequence, 4u);
}

TEST_F(SpoolTest, LostOrDamagedCounterFallsBackToTheHighestSequenceOnDisk) {
  MustAppend(spool_, Event("prepare", 1));
  MustAppend(spool_, Event("start", 2));
  std::filesystem::remove(spool_dir_ + "/.sequence");
  EXPECT_EQ(MustAppend(spool_, Event("started", 3)).sequence, 3u);
  WriteFile(spool_dir_ + "/.sequence", "garbage\n");
  EXPECT_EQ(MustAppend(spool_, Event("stopped", 4)).sequence, 4u);
  EXPECT_EQ(ReadFile(spool_dir_ + "/.sequence"), "4\n");
}

TEST_F(SpoolTest, ConcurrentWritersGetDistinctConsecutiveSequences) {
  // Each thread has its own Spool and so its own lock file description, as separate hook
  // processes do. Real time here: the lock wait must be real for writers to really wait.
  std::unique_ptr<Clock> real_clock = NewRealClock();
  constexpr int kWriters = 4;
  constexpr int kEventsEach = 25;
  std::vector<std::thread> writers;
  std::atomic<int> failures{0};
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      Spool spool(spool_dir_, *real_clock, SpoolLimits{.lock_wait = std::chrono::seconds(10)});
      for (int i = 0; i < kEventsEach; ++i) {
        if (!spool.Append(Event("start", i, "vm" + std::to_string(w))).ok()) ++failures;
      }
    });
  }
  for (std::thread& writer : writers) writer.join();
  EXPECT_EQ(failures.load(), 0);
  SpoolListing listing = MustList(spool_);
  std::vector<std::uint64_t> expected(kWriters * kEventsEach);
  std::iota(expected.begin(), expected.end(), 1);
  EXPECT_EQ(Sequences(listing), expected);
  // Per writer, its own events keep their order.
  std::map<std::string, std::int64_t> last_index_per_vm;
  for (const SpoolEntry& entry : listing.entries) {
    StatusOr<HookEvent> event = spool_.Read(entry);
    ASSERT_TRUE(event.ok()) << event.status().ToString();
    auto [it, inserted] = last_index_per_vm.try_emplace(event->domain_name(), -1);
    EXPECT_LT(it->second, event->hook_wall_time_unix_ms()) << event->domain_name();
    it->second = event->hook_wall_time_unix_ms();
  }
}

TEST_F(SpoolTest, TempFilesAreNeverListedButReported) {
  MustAppend(spool_, Event("prepare", 1));
  WriteFile(spool_dir_ + "/.tmp-2", "half an event");
  SpoolListing listing = MustList(spool_);
  EXPECT_THAT(Sequences(listing), ElementsAre(1));
  ASSERT_THAT(listing.skipped, SizeIs(1));
  EXPECT_THAT(listing.skipped[0], HasSubstr(".tmp-2: temporary file"));
}

TEST_F(SpoolTest, NextAppendRemovesTempFilesLeftByACrashedWriter) {
  MustAppend(spool_, Event("prepare", 1));
  WriteFile(spool_dir_ + "/.tmp-2", "half an event");
  EXPECT_EQ(MustAppend(spool_, Event("start", 2)).sequence, 2u);
  EXPECT_FALSE(std::filesystem::exists(spool_dir_ + "/.tmp-2"));
  EXPECT_THAT(MustList(spool_).skipped, IsEmpty());
}

TEST_F(SpoolTest, ForeignNamesAreReportedNotListed) {
  MustAppend(spool_, Event("prepare", 1));
  const std::vector<std::string> foreign = {
      "notes.txt",
      "00000000000000000000-1-1.event",        // sequence 0 is never handed out
      "1-2-3.event",                           // sequence not 20 digits
      "00000000000000000007-abc-1.event",      // wall time not a number
      "00000000000000000007-1-.event",         // no size
      "00000000000000000007-1.event",          // no size field at all
      "00000000000000000007-1-1.event.bak",    // wrong suffix
      "00000000000000000007_1_1.event",        // wrong separators
      "00000000000000000007-1-99999999999999999999999.event",  // size overflows
  };
  for (const std::string& name : foreign) WriteFile(spool_dir_ + "/" + name, "x");
  SpoolListing listing = MustList(spool_);
  EXPECT_THAT(Sequences(listing), ElementsAre(1));
  EXPECT_THAT(listing.skipped, SizeIs(foreign.size()));
  for (const std::string& line : listing.skipped) EXPECT_THAT(line, HasSubstr("not a spool event file"));
}

TEST_F(SpoolTest, TruncatedFileReadsAsDataLossAndOthersStayReadable) {
  SpoolEntry damaged = MustAppend(spool_, Event("prepare", 1));
  SpoolEntry intact = MustAppend(spool_, Event("start", 2));
  const std::string path = spool_dir_ + "/" + damaged.file_name;
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
  StatusOr<HookEvent> read = spool_.Read(damaged);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), Code::kDataLoss);
  EXPECT_THAT(read.status().message(), HasSubstr(damaged.file_name));
  EXPECT_THAT(read.status().message(), HasSubstr("truncated"));
  EXPECT_TRUE(spool_.Read(intact).ok());
  EXPECT_THAT(Sequences(MustList(spool_)), ElementsAre(1, 2));  // listing is by name; Read judges content
}

TEST_F(SpoolTest, FlippedByteReadsAsDataLoss) {
  SpoolEntry entry = MustAppend(spool_, Event("prepare", 1));
  const std::string path = spool_dir_ + "/" + entry.file_name;
  std::string contents = ReadFile(path);
  contents[contents.size() - 3] ^= 0x20;
  WriteFile(path, contents);
  StatusOr<HookEvent> read = spool_.Read(entry);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), Code::kDataLoss);
  EXPECT_THAT(read.status().message(), HasSubstr("checksum"));
}

TEST_F(SpoolTest, GarbageUnderAnEventNameReadsAsDataLoss) {
  const std::string garbage = "not an envelope at all";
  const std::string name = "00000000000000000005-1700000000000-" + std::to_string(garbage.size()) + ".event";
  std::filesystem::create_directories(spool_dir_);
  WriteFile(spool_dir_ + "/" + name, garbage);
  SpoolListing listing = MustList(spool_);
  ASSERT_THAT(Sequences(listing), ElementsAre(5));
  StatusOr<HookEvent> read = spool_.Read(listing.entries[0]);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), Code::kDataLoss);
}

TEST_F(SpoolTest, FileCopiedUnderAnotherSequenceReadsAsDataLoss) {
  SpoolEntry entry = MustAppend(spool_, Event("prepare", 1));
  const std::string copy = "00000000000000000009-0000000000001-" + std::to_string(entry.bytes) + ".event";
  std::filesystem::copy_file(spool_dir_ + "/" + entry.file_name, spool_dir_ + "/" + copy);
  SpoolListing listing = MustList(spool_);
  ASSERT_THAT(Sequences(listing), ElementsAre(1, 9));
  StatusOr<HookEvent> read = spool_.Read(listing.entries[1]);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), Code::kDataLoss);
  EXPECT_THAT(read.status().message(), HasSubstr("holds sequence 1 but is named for sequence 9"));
}

TEST_F(SpoolTest, FullByCountRefusesUntilShadowdRemovesAnEvent) {
  Spool spool(spool_dir_, clock_, SpoolLimits{.max_events = 3});
  for (int i = 0; i < 3; ++i) MustAppend(spool, Event("start", i));
  StatusOr<SpoolEntry> refused = spool.Append(Event("start", 3));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kResourceExhausted);
  EXPECT_THAT(refused.status().message(), HasSubstr("is full: 3 events"));
  EXPECT_THAT(refused.status().message(), HasSubstr("start shadowd"));
  EXPECT_THAT(MustList(spool).entries, SizeIs(3));  // nothing half-written
  ASSERT_TRUE(spool.Remove(MustList(spool).entries[0]).ok());
  EXPECT_EQ(MustAppend(spool, Event("start", 4)).sequence, 4u);
}

TEST_F(SpoolTest, FullByBytesRefuses) {
  SpoolEntry first = MustAppend(spool_, Event("start", 1));
  const std::uint64_t one_event = std::filesystem::file_size(spool_dir_ + "/" + first.file_name);
  Spool spool(spool_dir_, clock_, SpoolLimits{.max_bytes = 2 * one_event + one_event / 2});
  MustAppend(spool, Event("start", 2));
  StatusOr<SpoolEntry> refused = spool.Append(Event("start", 3));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kResourceExhausted);
  EXPECT_THAT(refused.status().message(), HasSubstr(std::to_string(2 * one_event) + " bytes"));
}

TEST_F(SpoolTest, WriterGivesUpWhenTheLockIsHeldLongerThanTheWait) {
  MustAppend(spool_, Event("prepare", 1));  // creates the directory and the lock file
  const int holder = ::open((spool_dir_ + "/.sequence").c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(holder, 0);
  ASSERT_EQ(::flock(holder, LOCK_EX), 0);
  const MonoTime before = clock_.Now();
  StatusOr<SpoolEntry> refused = spool_.Append(Event("start", 2));
  ::close(holder);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kUnavailable);
  EXPECT_THAT(refused.status().message(), HasSubstr("for more than 10 ms"));
  EXPECT_GE(clock_.Now() - before, SpoolLimits{}.lock_wait);
  EXPECT_LE(clock_.Now() - before, SpoolLimits{}.lock_wait + std::chrono::milliseconds(2));
  EXPECT_EQ(MustAppend(spool_, Event("start", 3)).sequence, 2u);  // released: works again
}

TEST_F(SpoolTest, CreatesMissingDirectoriesOwnerOnly) {
  const std::string nested = dir_.Sub("var/lib/virt-shadow/spool");
  Spool spool(nested, clock_);
  MustAppend(spool, Event("prepare", 1));
  struct stat st;
  ASSERT_EQ(::stat(nested.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);  // events hold domain XMLs, which may hold secrets
  for (const auto& file : std::filesystem::directory_iterator(nested)) {
    ASSERT_EQ(::stat(file.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u) << file.path();
  }
}

TEST_F(SpoolTest, FilesAreOwnerOnlyWhateverTheWritersUmask) {
  test_support::ScopedUmask wide(0);  // the hook inherits libvirtd's mask, which is not ours to rely on
  MustAppend(spool_, Event("prepare", 1));
  struct stat st;
  ASSERT_EQ(::stat(spool_dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  int files = 0;
  for (const auto& file : std::filesystem::directory_iterator(spool_dir_)) {
    ASSERT_EQ(::stat(file.path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u) << file.path();
    ++files;
  }
  EXPECT_EQ(files, 2);  // the event and .sequence
}

TEST_F(SpoolTest, AWiderDirectoryIsTightenedByTheNextAppend) {
  ASSERT_EQ(::mkdir(spool_dir_.c_str(), 0755), 0);  // as an older version or an administrator left it
  MustAppend(spool_, Event("prepare", 1));
  struct stat st;
  ASSERT_EQ(::stat(spool_dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
}

TEST_F(SpoolTest, ADirectoryOfAnotherUserIsRefusedNamingIt) {
  if (::geteuid() != 0) GTEST_SKIP() << "only root can give a directory to another user";
  ASSERT_EQ(::mkdir(spool_dir_.c_str(), 0755), 0);
  ASSERT_EQ(::chown(spool_dir_.c_str(), 65534, 65534), 0);
  StatusOr<SpoolEntry> refused = spool_.Append(Event("prepare", 1));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("the spool: directory '" + spool_dir_ + "' is owned by uid 65534"));
}

TEST_F(SpoolTest, TrailingSlashInTheDirectoryIsTheSameSpool) {
  Spool slashed(spool_dir_ + "/", clock_);
  MustAppend(slashed, Event("prepare", 1));
  EXPECT_THAT(Sequences(MustList(spool_)), ElementsAre(1));
}

TEST_F(SpoolTest, DirectoryThatIsAFileIsAnErrorNamingIt) {
  WriteFile(dir_.Sub("not-a-dir"), "x");
  Spool spool(dir_.Sub("not-a-dir"), clock_);
  StatusOr<SpoolEntry> refused = spool.Append(Event("prepare", 1));
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr(dir_.Sub("not-a-dir")));
  EXPECT_FALSE(spool.List().ok());
}

TEST_F(SpoolTest, AbsentDirectoryIsAnEmptySpool) {
  SpoolListing listing = MustList(spool_);
  EXPECT_THAT(listing.entries, IsEmpty());
  EXPECT_THAT(listing.skipped, IsEmpty());
}

TEST_F(SpoolTest, RemoveTwiceIsNotFound) {
  SpoolEntry entry = MustAppend(spool_, Event("prepare", 1));
  ASSERT_TRUE(spool_.Remove(entry).ok());
  EXPECT_EQ(spool_.Remove(entry).code(), Code::kNotFound);
  EXPECT_EQ(spool_.Read(entry).status().code(), Code::kNotFound);
}

TEST_F(SpoolTest, EntriesNotNamedLikeEventsAreRefusedBeforeAnyFileAccess) {
  WriteFile(dir_.Sub("victim"), "keep me");
  MustAppend(spool_, Event("prepare", 1));
  SpoolEntry hostile{"../victim", 1, 1, 7};
  EXPECT_EQ(spool_.Remove(hostile).code(), Code::kInvalidArgument);
  EXPECT_EQ(spool_.Read(hostile).status().code(), Code::kInvalidArgument);
  EXPECT_TRUE(std::filesystem::exists(dir_.Sub("victim")));
}

}  // namespace
}  // namespace vs::spool
