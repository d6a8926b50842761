// BlockDevice over libnbd, against the real qemu-nbd: private servers (OpenImage) and a server started
// by the test on a unix socket (ConnectExport).
#include "shadowd/nbd/nbd_device.h"

#include <signal.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/subprocess.h"
#include "shadowd/nbd/qemu_img.h"
#include "tests/unit/common/temp_dir.h"
#include "tests/unit/nbd/test_images.h"

namespace vs::nbd {
namespace {

using ::testing::HasSubstr;
using replication::BlockDevice;
using replication::kNbdStateDirty;
using replication::kNbdStateZero;
using replication::MappedExtent;
using namespace vs::nbd::testing;

constexpr Duration kToolTimeout = std::chrono::seconds(20);

// Not a multiple of 64 KiB (a qcow2 cluster), nor of 4 MiB (a read/write piece).
constexpr uint64_t kImageSize = 9 * kMiB + 3 * 512;

class OpenImageTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override { ASSERT_TRUE(qemu_img_.Create(path_, format_, kImageSize).ok()); }

  std::unique_ptr<BlockDevice> Open(OpenMode mode) {
    auto device = OpenImage(path_, format_, mode);
    EXPECT_TRUE(device.ok()) << device.status().ToString();
    return device.ok() ? std::move(device).value() : nullptr;
  }

  std::vector<MappedExtent> MapAllocation(BlockDevice& device) {
    auto map = device.Map(kBaseAllocation);
    EXPECT_TRUE(map.ok()) << map.status().ToString();
    if (!map.ok()) return {};
    ExpectWellFormedMap(*map, device.size());
    return *map;
  }

  test_support::TempDir dir_;
  std::unique_ptr<Clock> clock_ = NewRealClock();
  QemuImg qemu_img_{*clock_, kToolTimeout};
  const std::string format_ = GetParam();
  const std::string path_ = dir_.Sub("disk." + format_);
};

INSTANTIATE_TEST_SUITE_P(Formats, OpenImageTest, ::testing::Values("raw", "qcow2"));

TEST_P(OpenImageTest, WriteReadZeroFlushRoundTripAndTheMapFollows) {
  auto device = Open(OpenMode::kWritable);
  ASSERT_NE(device, nullptr);
  ASSERT_EQ(device->size(), kImageSize);
  // (qemu-img writes the first block of a new raw file, so that block reads as zeros but is data.)
  for (const MappedExtent& extent : MapAllocation(*device)) {
    if (extent.offset >= 64 * kKiB) {
      EXPECT_TRUE(extent.flags & kNbdStateZero) << extent.offset;
    }
  }

  const auto data = Pattern(2 * kMiB, 7);
  ASSERT_TRUE(device->Write(1 * kMiB, data).ok());
  const auto tail = Pattern(1000, 9);  // the last bytes of an image whose end is not cluster-aligned
  ASSERT_TRUE(device->Write(kImageSize - tail.size(), tail).ok());
  ASSERT_TRUE(device->Zero(1 * kMiB + 512 * kKiB, 256 * kKiB).ok());
  ASSERT_TRUE(device->Flush().ok());

  auto expected = data;
  std::fill(expected.begin() + 512 * kKiB, expected.begin() + 768 * kKiB, std::byte{0});
  EXPECT_EQ(ReadAll(*device, 1 * kMiB, 2 * kMiB), expected);
  EXPECT_EQ(ReadAll(*device, kImageSize - tail.size(), tail.size()), tail);
  EXPECT_TRUE(AllZero(ReadAll(*device, 0, 1 * kMiB)));

  const auto map = MapAllocation(*device);
  EXPECT_TRUE(FlagsAt(map, 512 * kKiB) & kNbdStateZero);                 // never written
  EXPECT_TRUE(FlagsAt(map, 5 * kMiB) & kNbdStateZero);                   // never written
  EXPECT_FALSE(FlagsAt(map, 1 * kMiB) & kNbdStateZero);                  // written
  EXPECT_FALSE(FlagsAt(map, 1 * kMiB + 400 * kKiB) & kNbdStateZero);     // written
  EXPECT_TRUE(FlagsAt(map, 1 * kMiB + 512 * kKiB) & kNbdStateZero);      // zeroed
  EXPECT_TRUE(FlagsAt(map, 1 * kMiB + 700 * kKiB) & kNbdStateZero);      // zeroed
  EXPECT_FALSE(FlagsAt(map, 1 * kMiB + 800 * kKiB) & kNbdStateZero);     // written
  EXPECT_FALSE(FlagsAt(map, kImageSize - 1) & kNbdStateZero);            // the unaligned tail
  device.reset();

  // What was flushed is in the file: a fresh server sees it.
  auto reopened = Open(OpenMode::kReadOnly);
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(ReadAll(*reopened, 1 * kMiB, 2 * kMiB), expected);
  EXPECT_EQ(ReadAll(*reopened, kImageSize - tail.size(), tail.size()), tail);
  reopened.reset();
  EXPECT_EQ(waitpid(-1, nullptr, WNOHANG), -1) << "a qemu-nbd was left unreaped";
}

TEST_P(OpenImageTest, RequestsLargerThanAPieceAreSplitAndReassembledInOrder) {
  auto device = Open(OpenMode::kWritable);
  ASSERT_NE(device, nullptr);
  const auto whole = Pattern(kImageSize, 3);
  ASSERT_TRUE(device->Write(0, whole).ok());
  EXPECT_EQ(ReadAll(*device, 0, kImageSize), whole);
  // Unaligned, across both 4 MiB boundaries.
  const uint64_t offset = 3 * kMiB + 123;
  const uint64_t length = 5 * kMiB + 7;
  EXPECT_EQ(ReadAll(*device, offset, length),
            std::vector<std::byte>(whole.begin() + offset, whole.begin() + offset + length));
  // A large zero as well.
  ASSERT_TRUE(device->Zero(512, 6 * kMiB).ok());
  EXPECT_TRUE(AllZero(ReadAll(*device, 512, 6 * kMiB)));
  EXPECT_EQ(ReadAll(*device, 0, 512), std::vector<std::byte>(whole.begin(), whole.begin() + 512));
}

// More pieces than requests in flight (kMaxInFlight is 16), unaligned, out of offset order and one larger than a
// 4 MiB piece: every range lands where it belongs and comes back in the order asked.
TEST_P(OpenImageTest, RangesAreWrittenAndReadWithManyInFlightEachInItsPlace) {
  auto device = Open(OpenMode::kWritable);
  ASSERT_NE(device, nullptr);
  std::vector<replication::ByteRange> ranges;
  for (uint64_t i = 0; i < 40; ++i) ranges.push_back({kImageSize - (i + 1) * 100'000 - i, 4096 + i * 7});
  ranges.push_back({0, 4 * kMiB + 9});
  uint64_t total = 0;
  for (const auto& range : ranges) total += range.length;
  const auto data = Pattern(total, 5);
  ASSERT_TRUE(device->WriteRanges(ranges, data).ok());

  std::vector<std::byte> back(total);
  Status read = device->ReadRanges(ranges, back);
  ASSERT_TRUE(read.ok()) << read.ToString();
  EXPECT_EQ(back, data);
  uint64_t at = 0;  // and each range through a plain Read
  for (const auto& range : ranges) {
    EXPECT_EQ(ReadAll(*device, range.offset, range.length),
              std::vector<std::byte>(data.begin() + at, data.begin() + at + range.length)) << range.offset;
    at += range.length;
  }
}

TEST_P(OpenImageTest, RangesOutsideTheDeviceOrNotMatchingTheBufferAreRefusedBeforeAnyIo) {
  auto device = Open(OpenMode::kWritable);
  ASSERT_NE(device, nullptr);
  std::vector<std::byte> buffer(8192);
  const std::vector<replication::ByteRange> outside = {{0, 4096}, {kImageSize - 10, 4096}};
  Status read = device->ReadRanges(outside, buffer);
  EXPECT_EQ(read.code(), Code::kInvalidArgument);
  EXPECT_THAT(read.message(), HasSubstr("offset " + std::to_string(kImageSize - 10)));
  const std::vector<replication::ByteRange> short_buffer = {{0, 4096}, {8192, 8192}};
  Status write = device->WriteRanges(short_buffer, Pattern(8192, 1));
  EXPECT_EQ(write.code(), Code::kInvalidArgument);
  EXPECT_THAT(write.message(), HasSubstr("12288 bytes, the buffer has 8192"));
  EXPECT_TRUE(AllZero(ReadAll(*device, 0, 4096)));  // nothing of the refused write was written
  auto read_only = OpenImage(path_, format_, OpenMode::kReadOnlyShared);
  ASSERT_TRUE(read_only.ok()) << read_only.status().ToString();
  const std::vector<replication::ByteRange> first_block = {{0, 4096}};
  EXPECT_EQ((*read_only)->WriteRanges(first_block, Pattern(4096, 1)).code(), Code::kFailedPrecondition);
}

TEST_P(OpenImageTest, RequestsOutsideTheDeviceAreRefusedNamingTheOffset) {
  auto device = Open(OpenMode::kWritable);
  ASSERT_NE(device, nullptr);
  std::vector<std::byte> buffer(20);
  Status read = device->Read(kImageSize - 10, buffer);
  EXPECT_EQ(read.code(), Code::kInvalidArgument);
  EXPECT_THAT(read.message(), HasSubstr("offset " + std::to_string(kImageSize - 10)));
  EXPECT_THAT(read.message(), HasSubstr(path_));
  EXPECT_EQ(device->Write(kImageSize + 1, std::span(buffer).first(0)).code(), Code::kInvalidArgument);
  EXPECT_EQ(device->Zero(UINT64_MAX, 2).code(), Code::kInvalidArgument);
  EXPECT_TRUE(device->Read(kImageSize, std::span(buffer).first(0)).ok());
}

TEST_P(OpenImageTest, ReadOnlyRefusesWritesAndZeroes) {
  auto device = Open(OpenMode::kReadOnly);
  ASSERT_NE(device, nullptr);
  const auto data = Pattern(4096, 1);
  Status write = device->Write(0, data);
  EXPECT_EQ(write.code(), Code::kFailedPrecondition);
  EXPECT_THAT(write.message(), HasSubstr("read-only"));
  EXPECT_EQ(device->Zero(0, 4096).code(), Code::kFailedPrecondition);
  EXPECT_TRUE(device->Flush().ok());
  EXPECT_TRUE(AllZero(ReadAll(*device, 0, 4096)));
}

TEST_P(OpenImageTest, SharedReadOnlyReadsAnImageThatAnotherServerHasOpenForWriting) {
  auto writer = Open(OpenMode::kWritable);
  ASSERT_NE(writer, nullptr);
  const auto data = Pattern(64 * kKiB, 5);
  ASSERT_TRUE(writer->Write(128 * kKiB, data).ok());
  ASSERT_TRUE(writer->Flush().ok());

  // qcow2 keeps metadata, so its writer locks others out; a raw export shares writes, so no lock there.
  if (format_ == "qcow2") {
    auto locked_out = OpenImage(path_, format_, OpenMode::kReadOnly);
    EXPECT_EQ(locked_out.status().code(), Code::kFailedPrecondition);
    EXPECT_THAT(locked_out.status().message(), HasSubstr(path_));
  }

  auto shared = Open(OpenMode::kReadOnlyShared);
  ASSERT_NE(shared, nullptr);
  EXPECT_EQ(ReadAll(*shared, 128 * kKiB, data.size()), data);
  EXPECT_EQ(shared->Write(0, data).code(), Code::kFailedPrecondition);
}

TEST_P(OpenImageTest, MapOfAContextThatWasNotRequestedIsRefused) {
  auto device = Open(OpenMode::kReadOnly);
  ASSERT_NE(device, nullptr);
  auto map = device->Map("qemu:dirty-bitmap:b0");
  EXPECT_EQ(map.status().code(), Code::kFailedPrecondition);
  EXPECT_THAT(map.status().message(), HasSubstr("qemu:dirty-bitmap:b0"));
}

TEST(OpenImage, MapsLargeImagesChunkByChunkAndMergesAcrossChunks) {
  test_support::TempDir dir;
  auto clock = NewRealClock();
  const std::string path = dir.Sub("big.qcow2");
  constexpr uint64_t kGiB = 1024 * kMiB;
  constexpr uint64_t kCluster = 64 * kKiB;
  constexpr uint64_t kSize = 3 * kGiB + 512;  // three block-status requests, the last one short
  ASSERT_TRUE(QemuImg(*clock, kToolTimeout).Create(path, "qcow2", kSize).ok());
  auto device = OpenImage(path, "qcow2", OpenMode::kWritable);
  ASSERT_TRUE(device.ok()) << device.status().ToString();
  // Data in the clusters on both sides of the first request's end (whole clusters: the zeros of a
  // partly written one would show as a zero extent within it).
  ASSERT_TRUE((*device)->Write(kGiB - kCluster, Pattern(2 * kCluster, 4)).ok());
  auto map = (*device)->Map(kBaseAllocation);
  ASSERT_TRUE(map.ok()) << map.status().ToString();
  const uint32_t kUnallocated = replication::kNbdStateHole | kNbdStateZero;
  EXPECT_THAT(*map, ::testing::ElementsAre(MappedExtent{0, kGiB - kCluster, kUnallocated},
                                           MappedExtent{kGiB - kCluster, 2 * kCluster, 0},
                                           MappedExtent{kGiB + kCluster, kSize - kGiB - kCluster, kUnallocated}));
}

TEST(OpenImage, RefusesMissingFilesRelativePathsAndHostileFormats) {
  test_support::TempDir dir;
  auto missing = OpenImage(dir.Sub("absent.qcow2"), "qcow2", OpenMode::kReadOnly);
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr(dir.Sub("absent.qcow2")));

  auto relative = OpenImage("disk.qcow2", "qcow2", OpenMode::kReadOnly);
  EXPECT_EQ(relative.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(relative.status().message(), HasSubstr("'disk.qcow2'"));
  auto protocol = OpenImage("nbd:localhost:10809", "raw", OpenMode::kReadOnly);
  EXPECT_EQ(protocol.status().code(), Code::kInvalidArgument);

  std::ofstream(dir.Sub("disk.raw")) << "x";
  auto injected = OpenImage(dir.Sub("disk.raw"), "raw,file.driver=nbd", OpenMode::kReadOnlyShared);
  EXPECT_EQ(injected.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(injected.status().message(), HasSubstr("'raw,file.driver=nbd'"));
}

TEST(OpenImage, AWrongFormatIsAFailedPreconditionNamingTheImage) {
  test_support::TempDir dir;
  auto clock = NewRealClock();
  const std::string path = dir.Sub("disk,with,commas.raw");
  ASSERT_TRUE(QemuImg(*clock, kToolTimeout).Create(path, "raw", 1 * kMiB).ok());
  auto as_qcow2 = OpenImage(path, "qcow2", OpenMode::kReadOnly);
  EXPECT_EQ(as_qcow2.status().code(), Code::kFailedPrecondition);
  EXPECT_THAT(as_qcow2.status().message(), HasSubstr(path));
  // The same name, escaped inside qemu's option syntax, opens fine as what it is.
  auto shared = OpenImage(path, "raw", OpenMode::kReadOnlyShared);
  ASSERT_TRUE(shared.ok()) << shared.status().ToString();
  EXPECT_EQ((*shared)->size(), 1 * kMiB);
}

// Starts `qemu-nbd --fork --persistent` with `arguments` (it returns once it accepts connections); its pid, 0 with a
// test failure when it did not start.
pid_t StartQemuNbd(const std::vector<std::string>& arguments, const std::string& pid_file, Clock& clock) {
  std::vector<std::string> argv = {"qemu-nbd", "--fork", "--persistent", "--pid-file=" + pid_file};
  argv.insert(argv.end(), arguments.begin(), arguments.end());
  const Status started = RunChecked(argv, kToolTimeout, clock);
  EXPECT_TRUE(started.ok()) << started.ToString();
  pid_t pid = 0;
  if (started.ok()) std::ifstream(pid_file) >> pid;
  return pid;
}

// A qemu-nbd the test starts itself, serving a qcow2 image with a persistent dirty bitmap "b0" as
// export "vda" on a unix socket, like libvirt's backup export; stopped when the test ends.
class ConnectExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(qemu_img_.Create(image_, "qcow2", kSize).ok());
    ASSERT_TRUE(RunChecked({"qemu-img", "bitmap", "--add", image_, "b0"}, kToolTimeout, *clock_).ok());
    server_pid_ = StartQemuNbd({"--socket=" + socket_, "--export-name=vda", "--format=qcow2", "--bitmap=b0", image_},
                               pid_file_, *clock_);
    ASSERT_GT(server_pid_, 0);
  }
  void TearDown() override {
    // SIGKILL: on SIGTERM qemu-nbd waits for its clients to go, and one was once left running for good.
    if (server_pid_ > 0) kill(server_pid_, SIGKILL);
  }

  static constexpr uint64_t kSize = 4 * kMiB;
  test_support::TempDir dir_;
  std::unique_ptr<Clock> clock_ = NewRealClock();
  QemuImg qemu_img_{*clock_, kToolTimeout};
  const std::string image_ = dir_.Sub("export.qcow2");
  const std::string socket_ = dir_.Sub("nbd.sock");
  const std::string pid_file_ = dir_.Sub("qemu-nbd.pid");
  const std::string uri_ = "nbd+unix:///vda?socket=" + socket_;
  pid_t server_pid_ = 0;
};

TEST_F(ConnectExportTest, MapsTheDirtyBitmapAndAllocationSeparately) {
  auto device = ConnectExport(uri_, {"base:allocation", "qemu:dirty-bitmap:b0"}, std::nullopt);
  ASSERT_TRUE(device.ok()) << device.status().ToString();
  ASSERT_EQ((*device)->size(), kSize);

  auto clean = (*device)->Map("qemu:dirty-bitmap:b0");
  ASSERT_TRUE(clean.ok()) << clean.status().ToString();
  EXPECT_THAT(*clean, ::testing::ElementsAre(MappedExtent{0, kSize, 0}));

  const auto data = Pattern(64 * kKiB, 2);
  ASSERT_TRUE((*device)->Write(1 * kMiB, data).ok());
  auto dirty = (*device)->Map("qemu:dirty-bitmap:b0");
  ASSERT_TRUE(dirty.ok()) << dirty.status().ToString();
  EXPECT_THAT(*dirty, ::testing::ElementsAre(MappedExtent{0, 1 * kMiB, 0},
                                             MappedExtent{1 * kMiB, 64 * kKiB, kNbdStateDirty},
                                             MappedExtent{1 * kMiB + 64 * kKiB, 3 * kMiB - 64 * kKiB, 0}));
  auto allocation = (*device)->Map("base:allocation");
  ASSERT_TRUE(allocation.ok()) << allocation.status().ToString();
  ExpectWellFormedMap(*allocation, kSize);
  EXPECT_FALSE(FlagsAt(*allocation, 1 * kMiB) & kNbdStateZero);
  EXPECT_TRUE(FlagsAt(*allocation, 2 * kMiB) & kNbdStateZero);
  EXPECT_EQ(ReadAll(**device, 1 * kMiB, data.size()), data);
}

TEST_F(ConnectExportTest, AMissingMetaContextIsAFailedPreconditionNamingIt) {
  auto device = ConnectExport(uri_, {"base:allocation", "qemu:dirty-bitmap:nope"}, std::nullopt);
  EXPECT_EQ(device.status().code(), Code::kFailedPrecondition);
  EXPECT_THAT(device.status().message(), HasSubstr("'qemu:dirty-bitmap:nope'"));
  EXPECT_THAT(device.status().message(), HasSubstr(uri_));
}

TEST_F(ConnectExportTest, ABrokenConnectionIsUnavailable) {
  auto device = ConnectExport(uri_, {"base:allocation"}, std::nullopt);
  ASSERT_TRUE(device.ok()) << device.status().ToString();
  ASSERT_EQ(kill(server_pid_, SIGKILL), 0);
  server_pid_ = 0;
  std::vector<std::byte> buffer(4096);
  Status read = (*device)->Read(8192, buffer);
  EXPECT_EQ(read.code(), Code::kUnavailable) << read.ToString();
  EXPECT_THAT(read.message(), HasSubstr("offset 8192"));
  EXPECT_THAT(read.message(), HasSubstr(uri_));
}

TEST_F(ConnectExportTest, ABrokenConnectionWithRangesInFlightIsUnavailable) {
  auto device = ConnectExport(uri_, {"base:allocation"}, std::nullopt);
  ASSERT_TRUE(device.ok()) << device.status().ToString();
  ASSERT_EQ(kill(server_pid_, SIGKILL), 0);
  server_pid_ = 0;
  std::vector<replication::ByteRange> ranges;
  for (uint64_t i = 0; i < 20; ++i) ranges.push_back({i * 65536, 4096});
  std::vector<std::byte> buffer(20 * 4096);
  Status read = (*device)->ReadRanges(ranges, buffer);
  EXPECT_EQ(read.code(), Code::kUnavailable) << read.ToString();
  EXPECT_THAT(read.message(), HasSubstr(uri_));
}

TEST(ConnectExport, NoServerIsUnavailableAndAMalformedUriIsInvalid) {
  test_support::TempDir dir;
  const std::string uri = "nbd+unix:///vda?socket=" + dir.Sub("nobody.sock");
  auto absent = ConnectExport(uri, {"base:allocation"}, std::nullopt);
  EXPECT_EQ(absent.status().code(), Code::kUnavailable);
  EXPECT_THAT(absent.status().message(), HasSubstr(uri));

  auto malformed = ConnectExport("http://10.77.0.11/vda", {}, std::nullopt);
  EXPECT_EQ(malformed.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(malformed.status().message(), HasSubstr("http://10.77.0.11/vda"));

  EXPECT_EQ(ConnectExport(uri, {""}, std::nullopt).status().code(), Code::kInvalidArgument);
}

// A server that accepts the connection but never speaks (a host that died after the kernel queued the connection,
// a hung qemu): the connect gives up after its timeout instead of holding the caller for as long as TCP would.
TEST(ConnectExport, AServerThatNeverAnswersIsUnavailableAfterTheConnectTimeout) {
  test_support::TempDir dir;
  const std::string path = dir.Sub("silent.sock");
  const int listener = ::socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof address.sun_path, "%s", path.c_str());
  ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  ASSERT_EQ(::listen(listener, 4), 0);  // never accepted: the handshake gets no greeting
  const auto start = std::chrono::steady_clock::now();
  auto silent = ConnectExport("nbd+unix:///vda?socket=" + path, {"base:allocation"}, std::nullopt);
  const auto took = std::chrono::steady_clock::now() - start;
  ::close(listener);
  EXPECT_EQ(silent.status().code(), Code::kUnavailable);
  EXPECT_THAT(silent.status().message(), HasSubstr("no answer within 5 s"));
  EXPECT_GE(took, std::chrono::milliseconds(4900));
  EXPECT_LT(took, std::chrono::seconds(10));
}

// ---- TLS: a qemu-nbd that requires TLS and a client certificate, as libvirt's backup export with
// <server tls='yes'> and qemu.conf's backup_tls_x509_verify does, over a throwaway PKI made by scripts/pki.sh:
// the cluster's CA with hosts h1 (the server) and h2 (a reader), and another CA with a certificate naming h2.

// A port free a moment ago on 127.0.0.1.
int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
                     ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  ::close(fd);
  return bound ? ntohs(address.sin_port) : 0;
}

class TlsExportTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_ = new test_support::TempDir();
    // QEMU's keys go to the user running the test: the PKI is this test's, not libvirt's.
    auto run = [](const std::string& command) {
      const std::string line = "VS_QEMU_USER=$(id -un) " + std::string(VS_PKI_SH) + " " + command + " >/dev/null";
      ASSERT_EQ(std::system(line.c_str()), 0) << line;
    };
    run("ca " + pki_->Sub("ca"));
    run("ca " + pki_->Sub("other-ca"));
    for (const char* root : {"h1", "h2", "other"}) std::filesystem::create_directories(pki_->Sub(root));
    run("host " + pki_->Sub("ca") + " " + pki_->Sub("h1") + " h1 127.0.0.1");
    run("host " + pki_->Sub("ca") + " " + pki_->Sub("h2") + " h2 127.0.0.1");
    run("host " + pki_->Sub("other-ca") + " " + pki_->Sub("other") + " h2 127.0.0.1");
  }
  static void TearDownTestSuite() { delete pki_; }
  static std::string QemuDir(const std::string& root) { return pki_->Sub(root) + "/etc/pki/qemu"; }

  void SetUp() override {
    ASSERT_TRUE(qemu_img_.Create(image_, "qcow2", kSize).ok());
    port_ = FreePort();
    ASSERT_GT(port_, 0);
    server_pid_ = StartQemuNbd(
        {"--bind=127.0.0.1", "--port=" + std::to_string(port_), "--export-name=vda", "--format=qcow2",
         "--object=tls-creds-x509,id=tls0,endpoint=server,verify-peer=on,dir=" + QemuDir("h1"), "--tls-creds=tls0",
         image_},
        pid_file_, *clock_);
    ASSERT_GT(server_pid_, 0);
  }
  void TearDown() override {
    // SIGKILL: on SIGTERM qemu-nbd waits for its clients to go, and one was once left running for good.
    if (server_pid_ > 0) kill(server_pid_, SIGKILL);
  }
  std::string Uri(const std::string& scheme) const {
    return scheme + "://127.0.0.1:" + std::to_string(port_) + "/vda";
  }

  static constexpr uint64_t kSize = 1 * kMiB;
  static test_support::TempDir* pki_;
  test_support::TempDir dir_;
  std::unique_ptr<Clock> clock_ = NewRealClock();
  QemuImg qemu_img_{*clock_, kToolTimeout};
  const std::string image_ = dir_.Sub("export.qcow2");
  const std::string pid_file_ = dir_.Sub("qemu-nbd.pid");
  int port_ = 0;
  pid_t server_pid_ = 0;
};
test_support::TempDir* TlsExportTest::pki_ = nullptr;

TEST_F(TlsExportTest, AReaderWithTheClustersCertificateReadsTheExport) {
  auto device = ConnectExport(Uri("nbds"), {"base:allocation"}, ExportTls{QemuDir("h2")});
  ASSERT_TRUE(device.ok()) << device.status().ToString();
  EXPECT_EQ((*device)->size(), kSize);
  std::vector<std::byte> buffer(4096);
  EXPECT_TRUE((*device)->Read(0, buffer).ok());
}

TEST_F(TlsExportTest, APlaintextReaderIsRefused) {
  auto device = ConnectExport(Uri("nbd"), {"base:allocation"}, std::nullopt);
  EXPECT_EQ(device.status().code(), Code::kUnavailable) << device.status().ToString();
}

TEST_F(TlsExportTest, AReaderWithAnotherCasCertificateIsRefused) {
  auto device = ConnectExport(Uri("nbds"), {"base:allocation"}, ExportTls{QemuDir("other")});
  EXPECT_EQ(device.status().code(), Code::kUnavailable) << device.status().ToString();
  // The same certificate with the cluster's CA, so that the reader trusts the server: the refusal is the server's.
  const std::string trusting = dir_.Sub("trusting");
  std::filesystem::create_directories(trusting);
  std::filesystem::copy_file(QemuDir("h2") + "/ca-cert.pem", trusting + "/ca-cert.pem");
  for (const char* file : {"client-cert.pem", "client-key.pem"}) {
    std::filesystem::copy_file(QemuDir("other") + "/" + file, trusting + "/" + file);
  }
  auto refused = ConnectExport(Uri("nbds"), {"base:allocation"}, ExportTls{trusting});
  EXPECT_EQ(refused.status().code(), Code::kUnavailable) << refused.status().ToString();
}

TEST_F(TlsExportTest, AReaderWithoutAClientCertificateIsRefused) {
  const std::string ca_only = dir_.Sub("ca-only");
  std::filesystem::create_directories(ca_only);
  std::filesystem::copy_file(QemuDir("h2") + "/ca-cert.pem", ca_only + "/ca-cert.pem");
  auto device = ConnectExport(Uri("nbds"), {"base:allocation"}, ExportTls{ca_only});
  EXPECT_FALSE(device.ok());
}

TEST_F(TlsExportTest, AUriOfTheOtherKindThanAskedForIsInvalid) {
  // With TLS asked for, a plaintext URI must not turn it off; without, a TLS URI has no certificate to use.
  auto plaintext = ConnectExport(Uri("nbd"), {"base:allocation"}, ExportTls{QemuDir("h2")});
  EXPECT_EQ(plaintext.status().code(), Code::kInvalidArgument) << plaintext.status().ToString();
  auto tls = ConnectExport(Uri("nbds"), {"base:allocation"}, std::nullopt);
  EXPECT_EQ(tls.status().code(), Code::kInvalidArgument) << tls.status().ToString();
}

}  // namespace
}  // namespace vs::nbd
