// block_map: the block arithmetic of a round, against hand-made NBD maps and in-memory devices.
#include "shadowd/replication/block_map.h"

#include <gmock/gmock.h>
#include <cctype>
#include <gtest/gtest.h>

#include "tests/unit/replication/fakes.h"

namespace vs::replication {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::AllocationExtents;
using testing::DataInBlocks;
using testing::MemoryBlockDevice;
using testing::MemoryImage;
using testing::Pattern;

constexpr uint64_t B = kBlockSize;
constexpr uint32_t kZeroHole = kNbdStateZero | kNbdStateHole;

std::shared_ptr<MemoryImage> Image(std::vector<std::byte> bytes) {
  auto image = std::make_shared<MemoryImage>();
  image->format = "raw";
  image->bytes = std::move(bytes);
  return image;
}

MemoryBlockDevice Device(std::shared_ptr<MemoryImage> image, bool writable = true) {
  MemoryBlockDevice::Options options;
  options.meta_contexts = {std::string(kAllocationContext)};
  options.writable = writable;
  return MemoryBlockDevice(std::move(image), std::move(options));
}

constexpr BlockDigestKind kKind = kPreferredBlockDigest;

uint64_t DigestOf(const std::vector<std::byte>& bytes, uint64_t offset, uint64_t length) {
  return BlockDigest(kKind, std::span<const std::byte>(bytes).subspan(offset, length));
}

TEST(BlockMapTest, BlockCountRoundsUpToAFinalShortBlock) {
  EXPECT_EQ(BlockCount(0), 0u);
  EXPECT_EQ(BlockCount(1), 1u);
  EXPECT_EQ(BlockCount(B), 1u);
  EXPECT_EQ(BlockCount(B + 1), 2u);
  EXPECT_EQ(BlockCount(10 * B - 1), 10u);
  // Rounding up by adding B - 1 first would wrap to 0 blocks here.
  EXPECT_EQ(BlockCount(UINT64_MAX), uint64_t{1} << 48);
}

// A device that only claims a size: any read is a failure of the test.
class HugeDevice final : public BlockDevice {
 public:
  explicit HugeDevice(uint64_t size) : size_(size) {}
  uint64_t size() const override { return size_; }
  StatusOr<std::vector<MappedExtent>> Map(std::string_view) override { return Internal("not mapped"); }
  Status Read(uint64_t, std::span<std::byte>) override { return Internal("read"); }
  Status Write(uint64_t, std::span<const std::byte>) override { return Internal("written"); }
  Status Zero(uint64_t, uint64_t) override { return Internal("zeroed"); }
  Status Flush() override { return Internal("flushed"); }

 private:
  uint64_t size_;
};

// A 2 PiB export (what a peer may claim) used to make ZeroBlocks allocate 2^35 counters and throw bad_alloc,
// which ended shadowd. Above kMaxVirtualSize nothing per block is allocated: the call is refused.
TEST(BlockMapTest, DevicesAboveTheCapAreRefusedBeforeAnyPerBlockAllocation) {
  const uint64_t two_pib = uint64_t{2} << 50;
  for (uint64_t size : {two_pib, kMaxVirtualSize + 1}) {
    const std::vector<MappedExtent> map = {{0, size, kZeroHole}};
    auto zero = ZeroBlocks(map, size);
    EXPECT_EQ(zero.status().code(), Code::kInvalidArgument) << size;
    EXPECT_THAT(zero.status().message(), HasSubstr("above the 2 TiB that replication handles"));
    EXPECT_EQ(BlocksWithFlag(map, size, kNbdStateDirty).status().code(), Code::kInvalidArgument) << size;
    HugeDevice device(size);
    EXPECT_EQ(DigestAllBlocks(device, kKind, {}).status().code(), Code::kInvalidArgument) << size;
  }
  EXPECT_TRUE(CheckDeviceSize(kMaxVirtualSize).ok());
  EXPECT_EQ(kMaxVirtualSize, uint64_t{2} << 40);
}

TEST(BlockMapTest, BlocksWithFlagMarksEveryBlockAnUnalignedExtentTouches) {
  const uint64_t size = 4 * B + 100;  // five blocks, the last one 100 bytes
  const std::vector<MappedExtent> map = {
      {0, 100, 0},
      {100, 1, kNbdStateDirty},               // one byte inside block 0
      {101, 2 * B - 1 - 101, 0},
      {2 * B - 1, 2, kNbdStateDirty},         // last byte of block 1 and first of block 2
      {2 * B + 1, 2 * B - 1 + 50, 0},
      {4 * B + 50, 50, kNbdStateDirty},       // the tail of the short last block
  };
  auto blocks = BlocksWithFlag(map, size, kNbdStateDirty);
  ASSERT_TRUE(blocks.ok()) << blocks.status().ToString();
  EXPECT_THAT(*blocks, ElementsAre(true, true, true, false, true));
}

TEST(BlockMapTest, BlocksWithFlagTestsTheRequestedBitOnly) {
  const uint64_t size = 2 * B;
  const std::vector<MappedExtent> map = {{0, B, kNbdStateZero}, {B, B, kNbdStateHole}};
  auto hole = BlocksWithFlag(map, size, kNbdStateHole);
  ASSERT_TRUE(hole.ok());
  EXPECT_THAT(*hole, ElementsAre(false, true));
  auto zero = BlocksWithFlag(map, size, kNbdStateZero);
  ASSERT_TRUE(zero.ok());
  EXPECT_THAT(*zero, ElementsAre(true, false));
}

TEST(BlockMapTest, AMapReachingPastTheEndIsClampedToTheDevice) {
  auto blocks = BlocksWithFlag({{0, B, 0}, {B, 10 * B, kNbdStateDirty}}, 2 * B + 7, kNbdStateDirty);
  ASSERT_TRUE(blocks.ok()) << blocks.status().ToString();
  EXPECT_THAT(*blocks, ElementsAre(false, true, true));
}

TEST(BlockMapTest, EmptyDeviceHasNoBlocks) {
  auto blocks = BlocksWithFlag({}, 0, kNbdStateDirty);
  ASSERT_TRUE(blocks.ok());
  EXPECT_TRUE(blocks->empty());
}

struct MalformedMap {
  const char* name;
  std::vector<MappedExtent> map;
  const char* message;
};

class BlockMapMalformedTest : public ::testing::TestWithParam<MalformedMap> {};

TEST_P(BlockMapMalformedTest, IsRefusedNamingTheOffset) {
  const uint64_t size = 3 * B;
  for (bool zero_query : {false, true}) {
    auto blocks = zero_query ? ZeroBlocks(GetParam().map, size) : BlocksWithFlag(GetParam().map, size, kNbdStateDirty);
    ASSERT_FALSE(blocks.ok()) << GetParam().name;
    EXPECT_EQ(blocks.status().code(), Code::kInvalidArgument);
    EXPECT_THAT(blocks.status().message(), HasSubstr(GetParam().message));
  }
}

INSTANTIATE_TEST_SUITE_P(
    BlockMap, BlockMapMalformedTest,
    ::testing::Values(
        MalformedMap{"gap", {{0, B, 0}, {B + 10, 2 * B - 10, 0}}, "not contiguous at offset 65536"},
        MalformedMap{"overlap", {{0, B, 0}, {B - 1, 2 * B + 1, 0}}, "not contiguous at offset 65536"},
        MalformedMap{"not from zero", {{512, 3 * B - 512, 0}}, "not contiguous at offset 0"},
        MalformedMap{"zero length", {{0, B, 0}, {B, 0, 0}, {B, 2 * B, 0}}, "of length 0"},
        MalformedMap{"short", {{0, B, 0}, {B, B, kZeroHole}}, "ends at offset 131072 of a 196608-byte device"},
        MalformedMap{"empty", {}, "ends at offset 0"},
        // offset + length wraps to 0: the extent's last block would have been (0 - 1) / B, far outside the vector.
        MalformedMap{"wraps past 2^64",
                     {{0, B, 0}, {B, UINT64_MAX - B + 1, kNbdStateDirty | kNbdStateZero}},
                     "extent at offset 65536 of length 18446744073709486080 ends past 2^64"},
        MalformedMap{"wraps into the device", {{0, B, 0}, {B, UINT64_MAX, 0}}, "ends past 2^64"}),
    [](const auto& info) {
      std::string name = info.param.name;
      for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
      return name;
    });

TEST(BlockMapTest, ZeroBlocksNeedsEveryByteOfTheBlockInZeroExtents) {
  const uint64_t size = 3 * B + 10;  // the last block is 10 bytes
  const std::vector<MappedExtent> map = {
      {0, B / 2, kZeroHole},
      {B / 2, B / 2, kNbdStateZero},           // block 0: two zero extents, together the whole block
      {B, B - 1, kZeroHole},
      {2 * B - 1, 1, 0},                       // block 1: all zero but its last byte
      {2 * B, B, kNbdStateHole},               // block 2: a hole that does not read as zeros
      {3 * B, 10, kZeroHole},                  // block 3: short, all zero
  };
  auto zero = ZeroBlocks(map, size);
  ASSERT_TRUE(zero.ok()) << zero.status().ToString();
  EXPECT_THAT(*zero, ElementsAre(true, false, false, true));
}

TEST(BlockMapTest, ZeroBlocksAgreesWithTheBytesBehindAByteExactMap) {
  const uint64_t size = 6 * B + 300;
  std::vector<std::byte> bytes = DataInBlocks(size, {1, 4});
  bytes[3 * B + 12345] = std::byte{9};  // a single byte makes block 3 non-zero
  bytes[6 * B + 299] = std::byte{1};    // and the very last byte the short block
  auto zero = ZeroBlocks(AllocationExtents(bytes), size);
  ASSERT_TRUE(zero.ok()) << zero.status().ToString();
  EXPECT_THAT(*zero, ElementsAre(true, false, true, false, false, true, false));
}

TEST(BlockMapTest, PlanOpsMergesRunsOfTheSameActionAndOmitsUnchangedBlocks) {
  const uint64_t size = 7 * B + 1000;  // eight blocks, the last 1000 bytes
  const std::vector<bool> changed = {true, true, false, true, true, true, false, true};
  const std::vector<bool> zero = {false, false, true, true, true, false, false, false};
  EXPECT_THAT(PlanOps(changed, zero, size),
              ElementsAre(BlockOp{0, 2 * B, BlockAction::kCopy}, BlockOp{3 * B, 2 * B, BlockAction::kZero},
                          BlockOp{5 * B, B, BlockAction::kCopy}, BlockOp{7 * B, 1000, BlockAction::kCopy}));
}

TEST(BlockMapTest, PlanOpsWithoutZeroInformationCopiesEverythingChanged) {
  const std::vector<bool> changed = {true, true, true};
  EXPECT_THAT(PlanOps(changed, {}, 3 * B), ElementsAre(BlockOp{0, 3 * B, BlockAction::kCopy}));
  EXPECT_TRUE(PlanOps({false, false}, {true, true}, 2 * B).empty());
}

TEST(BlockMapTest, TotalsSplitCopiedAndZeroedBytes) {
  const OpTotals totals = Totals({{0, 2 * B, BlockAction::kCopy}, {2 * B, B, BlockAction::kZero},
                                  {4 * B, 10, BlockAction::kCopy}, {5 * B, B, BlockAction::kSkip}});
  EXPECT_EQ(totals.copy_bytes, 2 * B + 10);
  EXPECT_EQ(totals.zero_bytes, B);
}

TEST(BlockMapTest, BlockDigestKindsAreTheFirstEightBytesOfSha1AndXxh3) {
  // SHA-1("") = da39a3ee5e6b4b0d3255bfef95601890afd80709; XXH3-64("") = 2d06800538d394c2 (xxHash's own vector):
  // hosts of different versions must agree bit for bit.
  EXPECT_EQ(BlockDigest(BlockDigestKind::kSha1Prefix, {}), 0xda39a3ee5e6b4b0dULL);
  EXPECT_EQ(BlockDigest(BlockDigestKind::kXxh3, {}), 0x2d06800538d394c2ULL);
  EXPECT_EQ(BlockDigest(BlockDigestKind::kXxh3, std::as_bytes(std::span("abc", 3))), 0x78af5f94892f3950ULL);
  for (BlockDigestKind kind : {BlockDigestKind::kSha1Prefix, BlockDigestKind::kXxh3}) {
    const std::vector<std::byte> zeros(B);
    EXPECT_EQ(ZeroBlockDigest(kind, B), BlockDigest(kind, zeros));
    EXPECT_NE(ZeroBlockDigest(kind, B), ZeroBlockDigest(kind, B - 1));
    std::vector<std::byte> one = zeros;
    one[B - 1] = std::byte{1};
    EXPECT_NE(BlockDigest(kind, one), BlockDigest(kind, zeros));
  }
}

TEST(BlockMapTest, ABlockDigestKindFromTheWireIsKnownOrRefusedByName) {
  EXPECT_EQ(*BlockDigestKindOf(0), BlockDigestKind::kSha1Prefix);  // unset: a host of an earlier version
  EXPECT_EQ(*BlockDigestKindOf(1), BlockDigestKind::kXxh3);
  auto unknown = BlockDigestKindOf(7);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(), HasSubstr("block digest kind 7"));
}

TEST(BlockMapTest, DigestAllBlocksCoversEveryBlockIncludingTheShortLastOne) {
  const uint64_t size = 3 * B + 77;
  const auto bytes = Pattern(size, 3);
  auto device = Device(Image(bytes));
  auto digests = DigestAllBlocks(device, kKind, {});
  ASSERT_TRUE(digests.ok()) << digests.status().ToString();
  EXPECT_THAT(*digests, ElementsAre(DigestOf(bytes, 0, B), DigestOf(bytes, B, B), DigestOf(bytes, 2 * B, B),
                                    DigestOf(bytes, 3 * B, 77)));
  EXPECT_EQ(device.counts().bytes_read, size);
}

TEST(BlockMapTest, DigestsOfZeroBlocksComeFromTheMapNotFromReads) {
  const uint64_t size = 2 * B + 5;
  auto device = Device(Image(Pattern(size, 1)));  // the map says zero, the bytes are not: the map wins
  auto digests = DigestAllBlocks(device, kKind, {true, true, true});
  ASSERT_TRUE(digests.ok()) << digests.status().ToString();
  EXPECT_THAT(*digests, ElementsAre(ZeroBlockDigest(kKind, B), ZeroBlockDigest(kKind, B), ZeroBlockDigest(kKind, 5)));
  EXPECT_EQ(device.counts().reads, 0u);
}

TEST(BlockMapTest, DigestAllBlocksDoesNotReadZeroRegions) {
  const uint64_t size = 12 * 1024 * 1024;  // 192 blocks, data in the first only
  const auto bytes = DataInBlocks(size, {0});
  auto device = Device(Image(bytes));
  auto zero = ZeroBlocks(AllocationExtents(bytes), size);
  ASSERT_TRUE(zero.ok());
  auto digests = DigestAllBlocks(device, kKind, *zero);
  ASSERT_TRUE(digests.ok()) << digests.status().ToString();
  ASSERT_EQ(digests->size(), BlockCount(size));
  EXPECT_EQ((*digests)[0], DigestOf(bytes, 0, B));
  EXPECT_EQ((*digests)[191], ZeroBlockDigest(kKind, B));
  EXPECT_GT(device.counts().bytes_read, 0u);
  EXPECT_LT(device.counts().bytes_read, size / 2);
}

TEST(BlockMapTest, DigestOpsFollowsTheOpsInOrderCopyAndZeroAlike) {
  const uint64_t size = 6 * B + 10;
  const auto bytes = DataInBlocks(size, {1, 2, 5, 6});
  auto device = Device(Image(bytes));
  auto zero = ZeroBlocks(AllocationExtents(bytes), size);
  ASSERT_TRUE(zero.ok());
  const std::vector<BlockOp> ops = {{B, 2 * B, BlockAction::kCopy}, {3 * B, B, BlockAction::kZero},
                                    {5 * B, B + 10, BlockAction::kCopy}};
  auto with_map = DigestOps(device, kKind, ops, *zero);
  auto reading_all = DigestOps(device, kKind, ops, {});
  ASSERT_TRUE(with_map.ok()) << with_map.status().ToString();
  ASSERT_TRUE(reading_all.ok()) << reading_all.status().ToString();
  EXPECT_THAT(*with_map, ElementsAre(DigestOf(bytes, B, B), DigestOf(bytes, 2 * B, B), ZeroBlockDigest(kKind, B),
                                     DigestOf(bytes, 5 * B, B), DigestOf(bytes, 6 * B, 10)));
  EXPECT_EQ(*with_map, *reading_all);
}

TEST(BlockMapTest, DigestOpsOutsideTheDeviceIsAnError) {
  auto device = Device(Image(Pattern(2 * B, 1)));
  auto digests = DigestOps(device, kKind, {{2 * B, B, BlockAction::kCopy}}, {});
  ASSERT_FALSE(digests.ok());
  EXPECT_EQ(digests.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(digests.status().message(), HasSubstr("offset 131072"));
}

TEST(BlockMapTest, DifferingBlocksComparesPerBlockAndRefusesDifferentLengths) {
  auto differ = DifferingBlocks({1, 2, 3, 4}, {1, 9, 3, 8});
  ASSERT_TRUE(differ.ok());
  EXPECT_THAT(*differ, ElementsAre(false, true, false, true));
  auto mismatch = DifferingBlocks({1, 2, 3}, {1, 2});
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(mismatch.status().message(), HasSubstr("3 and 2 blocks"));
}

TEST(BlockMapTest, ApplyOpsCopiesZeroesLeavesTheRestAndFlushes) {
  const uint64_t size = 6 * B + 123;
  const auto source_bytes = Pattern(size, 1);
  const auto target_bytes = Pattern(size, 2);
  auto source = Device(Image(source_bytes), /*writable=*/false);
  auto target_image = Image(target_bytes);
  auto target = Device(target_image);
  const std::vector<BlockOp> ops = {{0, B, BlockAction::kCopy},
                                    {2 * B, 2 * B, BlockAction::kZero},
                                    {4 * B, B, BlockAction::kSkip},
                                    {6 * B, 123, BlockAction::kCopy}};
  auto sent = ApplyOps(source, target, ops);
  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  EXPECT_EQ(*sent, B + 123);
  EXPECT_EQ(source.counts().bytes_read, B + 123);
  EXPECT_EQ(target.counts().bytes_zeroed, 2 * B);
  EXPECT_EQ(target.counts().flushes, 1u);

  std::vector<std::byte> expected = target_bytes;
  std::copy_n(source_bytes.begin(), B, expected.begin());
  std::fill_n(expected.begin() + 2 * B, 2 * B, std::byte{0});
  std::copy_n(source_bytes.begin() + 6 * B, 123, expected.begin() + 6 * B);
  EXPECT_TRUE(target_image->bytes == expected);
}

TEST(BlockMapTest, ApplyOpsSplitsLargeRunsWithoutLosingBytes) {
  const uint64_t size = 80 * B + 1;  // 5 MiB and a byte: more than one I/O chunk
  const auto source_bytes = Pattern(size, 5);
  auto source = Device(Image(source_bytes), false);
  auto target_image = Image(std::vector<std::byte>(size));
  auto target = Device(target_image);
  auto sent = ApplyOps(source, target, {{0, size, BlockAction::kCopy}});
  ASSERT_TRUE(sent.ok()) << sent.status().ToString();
  EXPECT_EQ(*sent, size);
  EXPECT_GT(source.counts().reads, 1u);
  EXPECT_TRUE(target_image->bytes == source_bytes);
}

TEST(BlockMapTest, ApplyOpsStopsAtTheFirstFailureWithoutFlushing) {
  auto source = Device(Image(Pattern(2 * B, 1)), false);
  auto read_only = Device(Image(std::vector<std::byte>(2 * B)), /*writable=*/false);
  auto sent = ApplyOps(source, read_only, {{0, 2 * B, BlockAction::kCopy}});
  ASSERT_FALSE(sent.ok());
  EXPECT_THAT(sent.status().message(), HasSubstr("read-only"));
  EXPECT_EQ(read_only.counts().flushes, 0u);
}

TEST(BlockMapTest, DescribeBlocksCoalescesRangesAndEndsAtTheDevice) {
  const uint64_t size = 5 * B + 10;
  EXPECT_EQ(DescribeBlocks({true, true, false, true, false, true}, size), "0+131072, 196608+65536, 327680+10");
  EXPECT_EQ(DescribeBlocks({false, false}, 2 * B), "");
}

TEST(BlockMapTest, DescribeBlocksStopsAtTheLimitAndCountsTheRest) {
  const std::vector<bool> blocks = {true, false, true, false, true, false, true, true};
  EXPECT_EQ(DescribeBlocks(blocks, 8 * B, 2), "0+65536, 131072+65536 and 2 more");
  EXPECT_EQ(DescribeBlocks(blocks, 8 * B, 4), "0+65536, 131072+65536, 262144+65536, 393216+131072");
}

}  // namespace
}  // namespace vs::replication
