// QemuImg against the real qemu-img, and ParseImageInfo against hostile `info` output.
#include "shadowd/nbd/qemu_img.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "shadowd/nbd/nbd_device.h"
#include "tests/unit/common/temp_dir.h"
#include "tests/unit/nbd/test_images.h"

namespace vs::nbd {
namespace {

using ::testing::HasSubstr;
using namespace vs::nbd::testing;

constexpr Duration kToolTimeout = std::chrono::seconds(20);

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class QemuImgTest : public ::testing::Test {
 protected:
  ImageFacts InfoOf(const std::string& path) {
    auto facts = qemu_img_.Info(path);
    EXPECT_TRUE(facts.ok()) << facts.status().ToString();
    if (!facts.ok()) return ImageFacts{};
    // What the file system allocates varies from one to the next; ParseImageInfo's test checks the field.
    ImageFacts comparable = *facts;
    comparable.allocated_bytes = 0;
    return comparable;
  }

  test_support::TempDir dir_;
  std::unique_ptr<Clock> clock_ = NewRealClock();
  QemuImg qemu_img_{*clock_, kToolTimeout};
};

TEST_F(QemuImgTest, CreateThenInfo) {
  ASSERT_TRUE(qemu_img_.Create(dir_.Sub("a.raw"), "raw", 3 * kMiB).ok());
  ASSERT_TRUE(qemu_img_.Create(dir_.Sub("b.qcow2"), "qcow2", 5 * kMiB + 512).ok());
  EXPECT_EQ(InfoOf(dir_.Sub("a.raw")), (ImageFacts{.format = "raw", .virtual_size = 3 * kMiB}));
  EXPECT_EQ(InfoOf(dir_.Sub("b.qcow2")), (ImageFacts{.format = "qcow2", .virtual_size = 5 * kMiB + 512}));
}

TEST_F(QemuImgTest, CreateNeverOverwrites) {
  const std::string path = dir_.Sub("precious.raw");
  std::ofstream(path) << "guest data";
  Status created = qemu_img_.Create(path, "raw", 1 * kMiB);
  EXPECT_EQ(created.code(), Code::kAlreadyExists);
  EXPECT_THAT(created.message(), HasSubstr(path));
  EXPECT_EQ(Slurp(path), "guest data");
}

TEST_F(QemuImgTest, AFailedCreateLeavesNoFileAndQuotesQemuImg) {
  const std::string path = dir_.Sub("x.img");
  Status created = qemu_img_.Create(path, "nosuchformat", 1 * kMiB);
  EXPECT_EQ(created.code(), Code::kInternal);
  EXPECT_THAT(created.message(), HasSubstr(path));
  EXPECT_THAT(created.message(), HasSubstr("nosuchformat"));  // from qemu-img's own complaint
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST_F(QemuImgTest, ATimedOutCreateLeavesNoFile) {
  FakeClock frozen;
  QemuImg no_time(frozen, Duration::zero());
  const std::string path = dir_.Sub("late.raw");
  Status created = no_time.Create(path, "raw", 1 * kMiB);
  EXPECT_EQ(created.code(), Code::kDeadlineExceeded);
  EXPECT_THAT(created.message(), HasSubstr(path));
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST_F(QemuImgTest, BadArgumentsAreRefusedBeforeRunningAnything) {
  Status relative = qemu_img_.Create("disk.raw", "raw", kMiB);
  EXPECT_EQ(relative.code(), Code::kInvalidArgument);
  EXPECT_THAT(relative.message(), HasSubstr("'disk.raw'"));
  EXPECT_EQ(qemu_img_.Create(dir_.Sub("a"), "", kMiB).code(), Code::kInvalidArgument);
  EXPECT_EQ(qemu_img_.Create(dir_.Sub("a"), "raw", 0).code(), Code::kInvalidArgument);
  EXPECT_EQ(qemu_img_.CreateOverlay(dir_.Sub("o"), "json:{}", "raw").code(), Code::kInvalidArgument);
  EXPECT_EQ(qemu_img_.CreateOverlay(dir_.Sub("o"), dir_.Sub("a"), "Raw").code(), Code::kInvalidArgument);
  EXPECT_EQ(qemu_img_.Info("-U").status().code(), Code::kInvalidArgument);
  EXPECT_FALSE(std::filesystem::exists(dir_.Sub("a")));
  EXPECT_FALSE(std::filesystem::exists(dir_.Sub("o")));
}

TEST_F(QemuImgTest, MissingImagesAreNotFoundNamingThePath) {
  const std::string missing = dir_.Sub("missing.qcow2");
  auto info = qemu_img_.Info(missing);
  EXPECT_EQ(info.status().code(), Code::kNotFound);
  EXPECT_THAT(info.status().message(), HasSubstr(missing));
  EXPECT_EQ(qemu_img_.Commit(missing).code(), Code::kNotFound);
  EXPECT_EQ(qemu_img_.Resize(missing, "qcow2", kMiB).code(), Code::kNotFound);
  Status overlay = qemu_img_.CreateOverlay(dir_.Sub("top.qcow2"), missing, "qcow2");
  EXPECT_EQ(overlay.code(), Code::kNotFound);
  EXPECT_THAT(overlay.message(), HasSubstr("backing file " + missing));
  EXPECT_FALSE(std::filesystem::exists(dir_.Sub("top.qcow2")));
}

TEST_F(QemuImgTest, OverlayDataReachesTheBaseOnCommitAndTheOverlayStays) {
  const std::string base = dir_.Sub("base.raw");
  const std::string overlay = dir_.Sub("overlay.qcow2");
  const auto old_data = Pattern(2 * kMiB, 1);
  const auto new_data = Pattern(64 * kKiB, 2);
  ASSERT_TRUE(qemu_img_.Create(base, "raw", 2 * kMiB).ok());
  {
    auto device = OpenImage(base, "raw", OpenMode::kWritable);
    ASSERT_TRUE(device.ok()) << device.status().ToString();
    ASSERT_TRUE((*device)->Write(0, old_data).ok());
    ASSERT_TRUE((*device)->Flush().ok());
  }
  ASSERT_TRUE(qemu_img_.CreateOverlay(overlay, base, "raw").ok());
  EXPECT_EQ(InfoOf(overlay), (ImageFacts{.format = "qcow2", .virtual_size = 2 * kMiB, .backing_file = base}));
  EXPECT_EQ(qemu_img_.CreateOverlay(overlay, base, "raw").code(), Code::kAlreadyExists);
  {
    auto device = OpenImage(overlay, "qcow2", OpenMode::kWritable);
    ASSERT_TRUE(device.ok()) << device.status().ToString();
    ASSERT_TRUE((*device)->Write(1 * kMiB, new_data).ok());
    ASSERT_TRUE((*device)->Flush().ok());
  }
  {  // not yet in the base
    auto device = OpenImage(base, "raw", OpenMode::kReadOnly);
    ASSERT_TRUE(device.ok()) << device.status().ToString();
    EXPECT_EQ(ReadAll(**device, 0, 2 * kMiB), old_data);
  }

  ASSERT_TRUE(qemu_img_.Commit(overlay).ok());

  auto expected = old_data;
  std::copy(new_data.begin(), new_data.end(), expected.begin() + 1 * kMiB);
  auto device = OpenImage(base, "raw", OpenMode::kReadOnly);
  ASSERT_TRUE(device.ok()) << device.status().ToString();
  EXPECT_EQ(ReadAll(**device, 0, 2 * kMiB), expected);
  EXPECT_EQ(InfoOf(overlay).backing_file, base);
}

TEST_F(QemuImgTest, CommitOfAnImageWithoutBackingFailsNamingIt) {
  const std::string lone = dir_.Sub("lone.qcow2");
  ASSERT_TRUE(qemu_img_.Create(lone, "qcow2", kMiB).ok());
  Status committed = qemu_img_.Commit(lone);
  EXPECT_EQ(committed.code(), Code::kInternal);
  EXPECT_THAT(committed.message(), HasSubstr(lone));
}

TEST_F(QemuImgTest, ResizeGrowsAndShrinks) {
  const std::string raw = dir_.Sub("r.raw");
  const std::string qcow2 = dir_.Sub("q.qcow2");
  ASSERT_TRUE(qemu_img_.Create(raw, "raw", 4 * kMiB).ok());
  ASSERT_TRUE(qemu_img_.Create(qcow2, "qcow2", 4 * kMiB).ok());
  ASSERT_TRUE(qemu_img_.Resize(raw, "raw", 6 * kMiB + 512).ok());
  EXPECT_EQ(InfoOf(raw).virtual_size, 6 * kMiB + 512);
  ASSERT_TRUE(qemu_img_.Resize(raw, "raw", 2 * kMiB).ok());
  EXPECT_EQ(InfoOf(raw).virtual_size, 2 * kMiB);
  ASSERT_TRUE(qemu_img_.Resize(qcow2, "qcow2", 8 * kMiB).ok());
  EXPECT_EQ(InfoOf(qcow2).virtual_size, 8 * kMiB);
  ASSERT_TRUE(qemu_img_.Resize(qcow2, "qcow2", 1 * kMiB).ok());
  EXPECT_EQ(InfoOf(qcow2).virtual_size, 1 * kMiB);
}

TEST_F(QemuImgTest, ResizeWithTheWrongFormatIsRefusedAndTouchesNothing) {
  const std::string qcow2 = dir_.Sub("q.qcow2");
  ASSERT_TRUE(qemu_img_.Create(qcow2, "qcow2", 4 * kMiB).ok());
  const auto bytes_before = std::filesystem::file_size(qcow2);
  Status resized = qemu_img_.Resize(qcow2, "raw", 1 * kMiB);
  EXPECT_EQ(resized.code(), Code::kFailedPrecondition);
  EXPECT_THAT(resized.message(), HasSubstr(qcow2));
  EXPECT_THAT(resized.message(), HasSubstr("is qcow2, not raw"));
  EXPECT_EQ(std::filesystem::file_size(qcow2), bytes_before);
  EXPECT_EQ(InfoOf(qcow2).virtual_size, 4 * kMiB);
}

TEST_F(QemuImgTest, RemoveBitmapRemovesOnlyThatBitmap) {
  const std::string path = dir_.Sub("replica.qcow2");
  ASSERT_TRUE(qemu_img_.Create(path, "qcow2", 4 * kMiB).ok());
  for (const char* name : {"vs-1", "vs-2"}) {
    ASSERT_EQ(std::system(("qemu-img bitmap --add -f qcow2 " + path + " " + name).c_str()), 0);
  }
  ASSERT_THAT(InfoOf(path).bitmaps, ::testing::UnorderedElementsAre("vs-1", "vs-2"));
  ASSERT_TRUE(qemu_img_.RemoveBitmap(path, "vs-1").ok());
  EXPECT_THAT(InfoOf(path).bitmaps, ::testing::ElementsAre("vs-2"));
  // A bitmap the image does not have is qemu-img's error, naming the image.
  Status missing = qemu_img_.RemoveBitmap(path, "vs-1");
  EXPECT_FALSE(missing.ok());
  EXPECT_THAT(missing.message(), HasSubstr(path));
}

TEST_F(QemuImgTest, RemoveBitmapRefusesNamesThatCouldBeOptions) {
  const std::string path = dir_.Sub("replica.qcow2");
  ASSERT_TRUE(qemu_img_.Create(path, "qcow2", 1 * kMiB).ok());
  EXPECT_EQ(qemu_img_.RemoveBitmap(path, "").code(), Code::kInvalidArgument);
  EXPECT_EQ(qemu_img_.RemoveBitmap(path, "--help").code(), Code::kInvalidArgument);
  EXPECT_EQ(qemu_img_.RemoveBitmap(dir_.Sub("none.qcow2"), "vs-1").code(), Code::kNotFound);
}

TEST(ParseImageInfo, ReadsTheFieldsAndPrefersTheResolvedBackingName) {
  auto facts = ParseImageInfo(R"({"virtual-size": 10737418240, "format": "qcow2", "backing-filename": "base.raw",
                                  "full-backing-filename": "/images/base.raw", "cluster-size": 65536,
                                  "actual-size": 200704})",
                              "/images/top.qcow2");
  ASSERT_TRUE(facts.ok()) << facts.status().ToString();
  EXPECT_EQ(*facts, (ImageFacts{.format = "qcow2", .virtual_size = 10737418240, .backing_file = "/images/base.raw",
                                .allocated_bytes = 200704}));
  auto unresolved = ParseImageInfo(R"({"virtual-size": 1, "format": "qcow2", "backing-filename": "nbd:x:1"})", "/t");
  ASSERT_TRUE(unresolved.ok()) << unresolved.status().ToString();
  EXPECT_EQ(unresolved->backing_file, "nbd:x:1");
}

TEST(ParseImageInfo, ListsTheBitmapsOfAQcow2Image) {
  auto facts = ParseImageInfo(R"({"virtual-size": 1, "format": "qcow2", "format-specific": {"type": "qcow2",
                                  "data": {"compat": "1.1", "bitmaps": [{"flags": ["auto"], "name": "vs-1",
                                  "granularity": 65536}, {"flags": ["in-use"], "name": "vs-2", "granularity": 65536}]}}})",
                              "/images/a.qcow2");
  ASSERT_TRUE(facts.ok()) << facts.status().ToString();
  EXPECT_EQ(facts->bitmaps, (std::vector<std::string>{"vs-1", "vs-2"}));
  auto none = ParseImageInfo(R"({"virtual-size": 1, "format": "qcow2", "format-specific": {"type": "qcow2",
                                 "data": {"compat": "1.1"}}})", "/images/b.qcow2");
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_TRUE(none->bitmaps.empty());
  auto nameless = ParseImageInfo(R"({"virtual-size": 1, "format": "qcow2", "format-specific": {"type": "qcow2",
                                     "data": {"bitmaps": [{"flags": []}]}}})", "/images/c.qcow2");
  EXPECT_EQ(nameless.status().code(), Code::kInternal);
  EXPECT_THAT(nameless.status().message(), HasSubstr("/images/c.qcow2"));
}

TEST(ParseImageInfo, RejectsMalformedOutputNamingTheImage) {
  const char* const bad_outputs[] = {
      "",
      "qemu-img: warning: something\n{}",
      "[1, 2]",
      R"({"virtual-size": 1})",
      R"({"virtual-size": 1, "format": ""})",
      R"({"virtual-size": 1, "format": 7})",
      R"({"format": "raw"})",
      R"({"format": "raw", "virtual-size": -1})",
      R"({"format": "raw", "virtual-size": 1.5})",
      R"({"format": "raw", "virtual-size": "1"})",
      R"({"format": "raw", "virtual-size": 1, "backing-filename": ["x"]})",
      R"({"format": "raw", "virtual-size": 1, "full-backing-filename": null})",
      R"({"format": "raw", "virtual-size": 1)",
  };
  for (const char* output : bad_outputs) {
    auto facts = ParseImageInfo(output, "/images/odd.img");
    EXPECT_EQ(facts.status().code(), Code::kInternal) << output;
    EXPECT_THAT(facts.status().message(), HasSubstr("/images/odd.img")) << output;
  }
}

}  // namespace
}  // namespace vs::nbd
