// Runs the real-image reader against images made with qemu-img (and served by qemu-nbd),
// both installed on lab hosts and on the build machine.
#include "images/oracle/nbd_block_reader.h"

#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <vector>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "images/oracle/oracle.h"
#include "tests/unit/oracle/test_image.h"

namespace vs::oracle {
namespace {

using ::testing::HasSubstr;
using testing::kBootA;
using testing::RunLog;
using testing::TestImage;

constexpr std::uint64_t kSlots = 32;  // a 2 MiB disk

class OracleNbdReader : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (std::filesystem::temp_directory_path() / "vs-oracle-test-XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    image_.WriteRange(1, 2, kBootA);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  std::string WriteRaw(const std::string& name) const {
    std::ofstream(Path(name), std::ios::binary) << image_.bytes();
    return Path(name);
  }

  // The image converted to qcow2; the name has a comma, which QEMU options must escape.
  std::string WriteQcow2() const {
    const std::string raw = WriteRaw("disk.raw");
    const std::string qcow2 = Path("disk,1.qcow2");
    EXPECT_EQ(Run("qemu-img convert -f raw -O qcow2 '" + raw + "' '" + qcow2 + "'"), 0);
    return qcow2;
  }

  static int Run(const std::string& command) { return std::system(command.c_str()); }

  // Opens and analyses; expects the two records written in SetUp.
  void ExpectRecordsReadBack(const std::string& disk, ImageFormat format) const {
    StatusOr<std::unique_ptr<BlockReader>> reader = OpenDisk(disk, format);
    ASSERT_TRUE(reader.ok()) << reader.status().ToString();
    EXPECT_EQ((*reader)->Size(), kSlots * kSlotBytes);
    StatusOr<Report> report = Analyse(**reader, RunLog(kBootA, 0, 1, 2), {});
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_TRUE(report->ok()) << FormatReportText(*report);
    EXPECT_EQ(report->valid_records, 2u);
    EXPECT_EQ(report->newest_seq_on_disk, 2u);
    ASSERT_TRUE(report->header.has_value());
    EXPECT_EQ(report->header->last, 2u);
  }

  std::filesystem::path dir_;
  TestImage image_{kSlots};
};

TEST_F(OracleNbdReader, ReadsQcow2WithDetectedFormat) { ExpectRecordsReadBack(WriteQcow2(), ImageFormat::kAuto); }

TEST_F(OracleNbdReader, ReadsQcow2WithExplicitFormat) { ExpectRecordsReadBack(WriteQcow2(), ImageFormat::kQcow2); }

TEST_F(OracleNbdReader, ReadsRawImage) {
  ExpectRecordsReadBack(WriteRaw("disk.raw"), ImageFormat::kAuto);
  ExpectRecordsReadBack(WriteRaw("disk.raw"), ImageFormat::kRaw);
}

// A running domain's disk is write-locked by QEMU; qemu-io holds the same lock here.
TEST_F(OracleNbdReader, ReadsImageWhileAnotherProcessHoldsItsWriteLock) {
  const std::string qcow2 = WriteQcow2();
  const std::string holder_log = Path("qemu-io.log");
  // Closing its stdin (pclose, also on an early ASSERT return) makes qemu-io quit.
  const std::unique_ptr<FILE, int (*)(FILE*)> holder_stdin(
      popen(("exec qemu-io -f qcow2 '" + qcow2 + "' >'" + holder_log + "' 2>&1").c_str(), "w"), &pclose);
  ASSERT_NE(holder_stdin, nullptr);
  FILE* holder = holder_stdin.get();
  // Its answer to a read proves the image is open (and locked). Probing the lock with
  // qemu-img instead would race with qemu-io taking it.
  fputs("read 0 512\n", holder);
  fflush(holder);
  std::string output;
  for (int attempt = 0; attempt < 100 && output.find("read 512/512 bytes") == std::string::npos; ++attempt) {
    usleep(50'000);
    std::ifstream log(holder_log);
    output.assign(std::istreambuf_iterator<char>(log), std::istreambuf_iterator<char>());
  }
  ASSERT_THAT(output, HasSubstr("read 512/512 bytes")) << "qemu-io did not open the image";
  EXPECT_NE(Run("qemu-img info '" + qcow2 + "' >/dev/null 2>&1"), 0) << "the image is not locked: the test proves nothing";
  ExpectRecordsReadBack(qcow2, ImageFormat::kAuto);
}

TEST_F(OracleNbdReader, ReadsNbdUnixUri) {
  const std::string qcow2 = WriteQcow2();
  const std::string socket = Path("nbd.sock");
  // A child of this test (not --fork, whose daemon would be reparented), killed and reaped below.
  std::vector<std::string> args = {"qemu-nbd", "--persistent", "--read-only", "-f", "qcow2", "-k", socket, qcow2};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t server = 0;
  ASSERT_EQ(posix_spawnp(&server, "qemu-nbd", nullptr, nullptr, argv.data(), environ), 0);
  for (int attempt = 0; attempt < 100 && !std::filesystem::exists(socket); ++attempt) usleep(50'000);
  ExpectRecordsReadBack("nbd+unix:///?socket=" + socket, ImageFormat::kAuto);
  kill(server, SIGTERM);
  int status = 0;
  waitpid(server, &status, 0);
}

TEST_F(OracleNbdReader, MissingFileIsNotFound) {
  StatusOr<std::unique_ptr<BlockReader>> reader = OpenDisk(Path("absent.qcow2"), ImageFormat::kAuto);
  EXPECT_EQ(reader.status().code(), Code::kNotFound);
  EXPECT_THAT(reader.status().message(), HasSubstr("absent.qcow2"));
}

TEST_F(OracleNbdReader, WrongFormatFailsToOpen) {
  StatusOr<std::unique_ptr<BlockReader>> reader = OpenDisk(WriteRaw("disk.raw"), ImageFormat::kQcow2);
  EXPECT_EQ(reader.status().code(), Code::kUnavailable);
  EXPECT_THAT(reader.status().message(), HasSubstr("driver=qcow2"));
}

TEST_F(OracleNbdReader, UnreachableNbdServerIsUnavailable) {
  StatusOr<std::unique_ptr<BlockReader>> reader =
      OpenDisk("nbd+unix:///?socket=" + Path("nobody.sock"), ImageFormat::kAuto);
  EXPECT_EQ(reader.status().code(), Code::kUnavailable);
  EXPECT_THAT(reader.status().message(), HasSubstr("cannot connect to NBD export"));
}

TEST(OracleImageFormat, ParsesKnownNamesOnly) {
  EXPECT_EQ(ParseImageFormat("raw").value(), ImageFormat::kRaw);
  EXPECT_EQ(ParseImageFormat("qcow2").value(), ImageFormat::kQcow2);
  EXPECT_THAT(ParseImageFormat("vmdk").status().message(), HasSubstr("unknown image format 'vmdk'"));
}

TEST(OracleImageFormat, Qcow2OverNbdUriIsRejected) {
  StatusOr<std::unique_ptr<BlockReader>> reader = OpenDisk("nbd://localhost/export", ImageFormat::kQcow2);
  EXPECT_EQ(reader.status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace vs::oracle
