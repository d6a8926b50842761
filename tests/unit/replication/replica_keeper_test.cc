// ReplicaKeeper: the shadow host's half of a round, driven directly with the requests a primary sends,
// over in-memory storage and exports; crashes are modelled by throwing the keeper away mid-round and
// starting a new one on the same store and images, and (ReplicaKeeperCutTest) by cutting a round
// after each of its effects in turn, as the controller's crash tests do.
#include "shadowd/replication/replica_keeper.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "shadowd/replication/block_map.h"
#include "shadowd/store/memory_store.h"
#include "tests/unit/replication/fakes.h"

namespace vs::replication {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::BudgetStore;
using testing::CrashBudget;
using testing::DataInBlocks;
using testing::FakeReplicaStorage;
using testing::IoCounts;
using testing::MemoryBlockDevice;
using testing::MemoryImage;
using testing::SimulatedCrash;
using virtshadow::v1::ApplyRoundReply;
using virtshadow::v1::ApplyRoundRequest;
using virtshadow::v1::DiskRound;
using virtshadow::v1::FinishRoundRequest;
using virtshadow::v1::GetReplicaRequest;
using virtshadow::v1::ReplicaRecord;
using virtshadow::v1::RoundMode;

constexpr uint64_t B = kBlockSize;
constexpr uint64_t kSize = 8 * B + 4096;  // nine blocks, the last one short
constexpr char kUuid[] = "6695eb01-f6a4-8304-79aa-97f2502e193f";
constexpr char kVda[] = "/var/lib/libvirt/images/vm1-vda.qcow2";
constexpr char kVdb[] = "/var/lib/libvirt/images/vm1-vdb.qcow2";

std::string UriOf(const std::string& target) { return "nbd://10.0.0.1:10809/" + target; }
std::string PathOf(const std::string& target) { return target == "vda" ? kVda : kVdb; }

class ReplicaKeeperTest : public ::testing::Test {
 protected:
  // What the primary's backup job exports right now, by target.
  struct SourceDisk {
    std::vector<std::byte> bytes;
    std::optional<std::set<uint64_t>> dirty;
  };

  ReplicaKeeperTest() { keeper_ = NewKeeper(); }

  std::unique_ptr<ReplicaKeeper> NewKeeper() { return NewKeeper(store_); }
  std::unique_ptr<ReplicaKeeper> NewKeeper(store::Store& through) {
    return std::make_unique<ReplicaKeeper>(
        through, storage_,
        [this](const std::string& uuid, const std::vector<std::string>& paths) {
          checked_.push_back(uuid + ":" + (paths.empty() ? "" : paths.front()));
          return shadow_check_;
        },
        clock_);
  }

  // kill -9 of shadowd and its restart: the keeper object goes, a new one recovers from the store.
  void Restart() {
    keeper_ = NewKeeper();
    Status recovered = keeper_->Recover();
    ASSERT_TRUE(recovered.ok()) << recovered.ToString();
  }

  StatusOr<std::unique_ptr<BlockDevice>> Export(const std::string& uri, const std::vector<std::string>& contexts,
                                                IoCounts& counts) {
    for (auto& [target, disk] : sources_) {
      if (UriOf(target) != uri) continue;
      auto image = std::make_shared<MemoryImage>();
      image->format = "qcow2";
      image->bytes = disk.bytes;
      MemoryBlockDevice::Options options;
      options.name = uri;
      options.writable = false;
      options.counts = &counts;
      for (const std::string& context : contexts) {
        if (context == kAllocationContext) options.meta_contexts.push_back(context);
        if (context == std::string(kDirtyContextPrefix) + target && disk.dirty) {
          options.meta_contexts.push_back(context);
          options.dirty[context] = *disk.dirty;
        }
      }
      return std::unique_ptr<BlockDevice>(std::make_unique<MemoryBlockDevice>(image, std::move(options)));
    }
    return Unavailable("nothing exported at " + uri);
  }

  static DiskRound Disk(const std::string& target, RoundMode mode, uint64_t size = kSize) {
    DiskRound disk;
    disk.set_target(target);
    disk.set_replica_path(PathOf(target));
    disk.set_format("qcow2");
    disk.set_virtual_size(size);
    disk.set_source_uri(UriOf(target));
    disk.set_mode(mode);
    if (mode == virtshadow::v1::ROUND_MODE_INCREMENTAL) disk.set_dirty_context(std::string(kDirtyContextPrefix) + target);
    return disk;
  }

  static ApplyRoundRequest Round(const std::string& checkpoint, const std::string& base,
                                 const std::vector<DiskRound>& disks) {
    ApplyRoundRequest request;
    request.set_vm_uuid(kUuid);
    request.set_primary_host("h1");
    request.set_base_checkpoint(base);
    request.set_block_digest(virtshadow::v1::BLOCK_DIGEST_XXH3_64);
    request.mutable_round()->set_checkpoint(checkpoint);
    request.mutable_round()->set_taken_unix_ms(1'800'000'000'000);
    for (const DiskRound& disk : disks) *request.add_disks() = disk;
    return request;
  }

  static FinishRoundRequest Finish(const std::string& checkpoint, bool commit) {
    FinishRoundRequest request;
    request.set_vm_uuid(kUuid);
    request.set_checkpoint(checkpoint);
    request.set_commit(commit);
    request.mutable_round()->set_checkpoint(checkpoint);
    request.mutable_round()->set_bytes_sent(4242);
    return request;
  }

  // ApplyRound + FinishRound(commit), both expected to succeed.
  ApplyRoundReply Commit(const ApplyRoundRequest& request) {
    auto reply = keeper_->ApplyRound(request);
    EXPECT_TRUE(reply.ok()) << reply.status().ToString();
    if (!reply.ok()) return {};
    Status finished = keeper_->FinishRound(Finish(request.round().checkpoint(), true));
    EXPECT_TRUE(finished.ok()) << finished.ToString();
    return *reply;
  }

  ReplicaRecord StoredRecord() {
    auto stored = store::GetProto<ReplicaRecord>(store_, ReplicaRecordKey(kUuid));
    EXPECT_TRUE(stored.ok() && stored->has_value());
    return stored.ok() && stored->has_value() ? **stored : ReplicaRecord();
  }

  bool StoredRecordExists() {
    auto stored = store::GetProto<ReplicaRecord>(store_, ReplicaRecordKey(kUuid));
    return stored.ok() && stored->has_value();
  }

  std::vector<std::string> Overlays() const {
    std::vector<std::string> overlays;
    for (const auto& [path, image] : storage_.images) {
      if (path.ends_with(kOverlaySuffix)) overlays.push_back(path);
    }
    return overlays;
  }

  // A seeded replica of vda at "vs-1" equal to `bytes`.
  void SeedVda(const std::vector<std::byte>& bytes) {
    sources_["vda"] = {bytes, std::nullopt};
    Commit(Round("vs-1", "", {Disk("vda", virtshadow::v1::ROUND_MODE_FULL)}));
    ASSERT_TRUE(storage_.Contents(kVda) == bytes);
  }

  store::MemoryStore store_;
  FakeClock clock_;
  std::map<std::string, SourceDisk> sources_;
  FakeReplicaStorage storage_{[this](const std::string& uri, const std::vector<std::string>& contexts,
                                     IoCounts& counts) { return Export(uri, contexts, counts); }};
  Status shadow_check_;
  std::vector<std::string> checked_;
  std::unique_ptr<ReplicaKeeper> keeper_;
};

TEST_F(ReplicaKeeperTest, FullRoundSeedsTheReplicaOnlyAtCommit) {
  const auto source = DataInBlocks(kSize, {0, 1, 5, 8});
  sources_["vda"] = {source, std::nullopt};
  auto reply = keeper_->ApplyRound(Round("vs-1", "", {Disk("vda", virtshadow::v1::ROUND_MODE_FULL)}));
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  ASSERT_EQ(reply->disks_size(), 1);
  const auto& disk = reply->disks(0);
  EXPECT_EQ(disk.target(), "vda");
  EXPECT_EQ(disk.bytes_sent(), 3 * B + 4096);  // zero blocks are zero writes: no data crosses
  EXPECT_EQ(storage_.export_io.bytes_read, 3 * B + 4096);
  ASSERT_EQ(disk.ops_size(), 5);
  EXPECT_EQ(disk.ops(1).offset(), 2 * B);
  EXPECT_EQ(disk.ops(1).length(), 3 * B);
  EXPECT_TRUE(disk.ops(1).zero());
  EXPECT_EQ(disk.ops(4).offset(), 8 * B);
  EXPECT_EQ(disk.ops(4).length(), 4096u);
  ASSERT_EQ(disk.digests_size(), 9);
  for (uint64_t b = 0; b < 9; ++b) {
    const uint64_t length = std::min(B, kSize - b * B);
    EXPECT_EQ(disk.digests(b), BlockDigest(BlockDigestKind::kXxh3, std::span<const std::byte>(source).subspan(b * B, length))) << b;
  }
  // Copied, not committed: the replica exists but still reads as it was created (zeros).
  EXPECT_TRUE(storage_.Contents(kVda) == std::vector<std::byte>(kSize));
  EXPECT_THAT(Overlays(), ElementsAre(std::string(kVda) + ".vs-round"));
  EXPECT_EQ(StoredRecord().phase(), ReplicaRecord::PHASE_COPIED);
  EXPECT_EQ(StoredRecord().primary_host(), "h1");

  clock_.Advance(std::chrono::seconds(3));
  Status finished = keeper_->FinishRound(Finish("vs-1", true));
  ASSERT_TRUE(finished.ok()) << finished.ToString();
  EXPECT_TRUE(storage_.Contents(kVda) == source);
  EXPECT_TRUE(Overlays().empty());
  const ReplicaRecord record = StoredRecord();
  EXPECT_EQ(record.phase(), ReplicaRecord::PHASE_IDLE);
  EXPECT_EQ(record.applied().checkpoint(), "vs-1");
  EXPECT_EQ(record.applied().bytes_sent(), 4242u);  // the figures the primary sent with the commit
  EXPECT_EQ(record.applied().applied_unix_ms(), ToUnixMillis(clock_.WallNow()));
  EXPECT_FALSE(record.has_pending());
}

TEST_F(ReplicaKeeperTest, IncrementalRoundCopiesOnlyTheDirtyBlocks) {
  const auto seed = DataInBlocks(kSize, {0, 1, 5, 8});
  SeedVda(seed);

  auto source = seed;
  const auto block1 = DataInBlocks(kSize, {1}, 100);
  std::copy_n(block1.begin() + B, B, source.begin() + B);                // rewritten
  std::fill_n(source.begin() + 5 * B, B, std::byte{0});                   // discarded by the guest
  const auto block3 = DataInBlocks(kSize, {3}, 50);
  std::copy_n(block3.begin() + 3 * B, B, source.begin() + 3 * B);         // newly written
  auto unmarked = source;
  unmarked[7 * B] = std::byte{0x7f};  // not in the bitmap: an incremental round must not look at it
  sources_["vda"] = {unmarked, std::set<uint64_t>{1, 3, 5}};

  const uint64_t read_before = storage_.export_io.bytes_read;
  const ApplyRoundReply reply =
      Commit(Round("vs-2", "vs-1", {Disk("vda", virtshadow::v1::ROUND_MODE_INCREMENTAL)}));
  ASSERT_EQ(reply.disks_size(), 1);
  EXPECT_EQ(reply.disks(0).bytes_sent(), 2 * B);
  EXPECT_EQ(storage_.export_io.bytes_read - read_before, 2 * B);
  ASSERT_EQ(reply.disks(0).ops_size(), 3);
  EXPECT_FALSE(reply.disks(0).ops(0).zero());
  EXPECT_FALSE(reply.disks(0).ops(1).zero());
  EXPECT_TRUE(reply.disks(0).ops(2).zero());
  EXPECT_EQ(reply.disks(0).digests_size(), 3);
  EXPECT_TRUE(storage_.Contents(kVda) == source);
  EXPECT_EQ(StoredRecord().applied().checkpoint(), "vs-2");
}

// During an upgrade a primary of an earlier version leaves block_digest unset and compares SHA-1 prefixes.
TEST_F(ReplicaKeeperTest, ARoundFromAnEarlierPrimaryIsAnsweredInSha1Digests) {
  const auto source = DataInBlocks(kSize, {0, 8});
  sources_["vda"] = {source, std::nullopt};
  ApplyRoundRequest request = Round("vs-1", "", {Disk("vda", virtshadow::v1::ROUND_MODE_FULL)});
  request.clear_block_digest();
  auto reply = keeper_->ApplyRound(request);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  const auto& disk = reply->disks(0);
  EXPECT_EQ(disk.block_digest(), virtshadow::v1::BLOCK_DIGEST_SHA1_64);
  ASSERT_EQ(disk.digests_size(), 9);
  EXPECT_EQ(disk.digests(0), BlockDigest(BlockDigestKind::kSha1Prefix, std::span<const std::byte>(source).first(B)));
  EXPECT_EQ(disk.digests(1), ZeroBlockDigest(BlockDigestKind::kSha1Prefix, B));
}

TEST_F(ReplicaKeeperTest, ARoundInAnUnknownDigestKindIsRefusedBeforeAnythingIsTouched) {
  sources_["vda"] = {DataInBlocks(kSize, {0}), std::nullopt};
  ApplyRoundRequest request = Round("vs-1", "", {Disk("vda", virtshadow::v1::ROUND_MODE_FULL)});
  request.set_block_digest(static_cast<virtshadow::v1::BlockDigest>(9));
  auto reply = keeper_->ApplyRound(request);
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(reply.status().message(), HasSubstr("block digest kind 9"));
  EXPECT_FALSE(storage_.images.contains(kVda));
  EXPECT_TRUE(Overlays().empty());
}

TEST_F(ReplicaKeeperTest, ResyncCopiesOnlyBlocksWhoseDigestsDiffer) {
  const auto seed = DataInBlocks(kSize, {0, 1, 2, 3});
  SeedVda(seed);
  auto source = seed;
  source[2 * B + 10] = std::byte{0};
  source[6 * B] = std::byte{1};
  std::fill_n(source.begin(), B, std::byte{0});
  sources_["vda"] = {source, std::nullopt};

  DiskRound disk = Disk("vda", virtshadow::v1::ROUND_MODE_RESYNC);
  for (uint64_t b = 0; b < BlockCount(kSize); ++b) {
    disk.add_source_digests(BlockDigest(BlockDigestKind::kXxh3, std::span<const std::byte>(source).subspan(b * B, std::min(B, kSize - b * B))));
  }
  const uint64_t read_before = storage_.export_io.bytes_read;
  const ApplyRoundReply reply = Commit(Round("vs-2", "", {disk}));
  ASSERT_EQ(reply.disks_size(), 1);
  EXPECT_EQ(reply.disks(0).bytes_sent(), 2 * B);  // blocks 2 and 6; block 0 became zero: a zero write
  EXPECT_EQ(storage_.export_io.bytes_read - read_before, 2 * B);
  EXPECT_EQ(reply.disks(0).digests_size(), 3);
  EXPECT_TRUE(storage_.Contents(kVda) == source);
}

TEST_F(ReplicaKeeperTest, IncrementalRoundOnAnotherBaseIsRefused) {
  SeedVda(DataInBlocks(kSize, {0}));
  sources_["vda"] = {DataInBlocks(kSize, {0, 1}), std::set<uint64_t>{1}};
  auto reply = keeper_->ApplyRound(Round("vs-3", "vs-2", {Disk("vda", virtshadow::v1::ROUND_MODE_INCREMENTAL)}));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Code::kFailedPrecondition);
  EXPECT_THAT(reply.status().message(), HasSubstr("at checkpoint 'vs-1'"));
  EXPECT_THAT(reply.status().message(), HasSubstr("based on 'vs-2'"));
  EXPECT_THAT(reply.status().message(), HasSubstr("resync"));
  EXPECT_TRUE(Overlays().empty());
  EXPECT_TRUE(storage_.Contents(kVda) == DataInBlocks(kSize, {0}));
  EXPECT_EQ(StoredRecord().phase(), ReplicaRecord::PHASE_IDLE);
  EXPECT_EQ(StoredRecord().applied().checkpoint(), "vs-1");
}

TEST_F(ReplicaKeeperTest, AMissingReplicaNeedsAFullRound) {
  sources_["vda"] = {DataInBlocks(kSize, {2}), std::set<uint64_t>{2}};
  for (RoundMode mode : {virtshadow::v1::ROUND_MODE_INCREMENTAL, virtshadow::v1::ROUND_MODE_RESYNC}) {
    DiskRound disk = Disk("vda", mode);
    for (uint64_t b = 0; b < BlockCount(kSize); ++b) disk.add_source_digests(0);
    auto reply = keeper_->ApplyRound(Round("vs-1", "", {disk}));
    ASSERT_FALSE(reply.ok()) << mode;
    EXPECT_EQ(reply.status().code(), Code::kFailedPrecondition);
    EXPECT_THAT(reply.status().message(), HasSubstr(std::string(kVda) + " is missing: it needs a full round"));
  }
  EXPECT_TRUE(storage_.images.empty());
  auto records = keeper_->List();
  ASSERT_TRUE(records.ok());
  EXPECT_TRUE(records->empty());

  Commit(Round("vs-1", "", {Disk("vda", virtshadow::v1::ROUND_MODE_FULL)}));
  EXPECT_TRUE(storage_.Contents(kVda) == DataInBlocks(kSize, {2}));
}

TEST_F(ReplicaKeeperTest, ReplicaGrowsWithItsSource) {
  SeedVda(DataInBlocks(kSize, {0, 8}));
  const uint64_t grown = kSize + 3 * B;
  auto source = DataInBlocks(grown, {0});
  std::copy_n(DataInBlocks(kSize, {8}).begin() + 8 * B, 4096, source.begin() + 8 * B);
  source[grown - 1] = std::byte{0x55};
  sources_["vda"] = {source, std::set<uint64_t>{11}};
  Commit(Round("vs-2", "vs-1", {Disk("vda", virtshadow::v1::ROUND_MODE_INCREMENTAL, grown)}));
  auto state = storage_.Inspect(kVda);
  ASSERT_TRUE(state.ok() && state->has_value());
  EXPECT_EQ((*state)->virtual_size, grown);
  EXPECT_EQ((*state)->format, "qcow2");
  EXPECT_TRUE(storage_.Contents(kVda) == source);
}

TEST_F(ReplicaKeeperTest, AnExportOfAnotherSizeThanAnnouncedIsRefusedAndCleanedUp) {
  SeedVda(DataInBlocks(kSize, {0}));
  sources_["vda"] = {DataInBlocks(kSize + B, {0}), std::set<uint64_t>{}};
  auto reply = keeper_->ApplyRound(Round("vs-2", "vs-1", {Disk("vda", virtshadow::v1::ROUND_MODE_INCREMENTAL)}));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Code::kFailedPrecondition);
  EXPECT_THAT(reply.status().message(), HasSubstr(UriOf("vda") + " has " + std::to_string(kSize + B) + " bytes"));
  EXPECT_TRUE(Overlays().empty());
  EXPECT_EQ(StoredRecord().phase(), ReplicaRecord::PHASE_IDLE);
  EXPECT_EQ(StoredRecord().applied().checkpoint(), "vs-1");
}

TEST_F(ReplicaKeeperTest, MalformedRoundsAreRefused) {
  auto no_disks = keeper_->ApplyRound(Round("vs-1", "", {}));
  ASSERT_FALSE(no_disks.ok());
  EXPECT_EQ(no_disks.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(no_disks.status().message(), HasSubstr("round vs-1 names no disk"));

  SeedVda(DataInBlocks(kSize, {0}));
  auto unknown = keeper_->ApplyRound(Round("vs-2", "", {Disk("vda", virtshadow::v1::ROUND_MODE_UNSPECIFIED)}));
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(), HasSubstr("disk vda: round mode 0"));
  EXPECT_TRUE(Overlays().empty());
  EXPECT_EQ(StoredRecord().phase(), ReplicaRecord::PHASE_IDLE);
}

TEST_F(ReplicaKeeperTest, ShadowCheckRefusalWritesNothing) {
  shadow_check_ = FailedPrecondition("shadow of vm1 is running on h2: its images are in use");
  sources_["vda"] = {DataInBlocks(kSize, {0}), std::nullopt};
  auto reply = keeper_->ApplyRound(Round("vs-1", "", {Disk("vda", virtshadow::v1::ROUND_MODE_FULL)}));
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.status().code(), Code::kFailedPrecondition);
  EXPECT_EQ(reply.status().message(), "shadow of vm1 is running on h2: its images are in use");
  EXPECT_THAT(checked_, ElementsAre(std::string(kUuid) + ":" + kVda));
  EXPECT_TRUE(storage_.images.empty());
  auto keys = store_.ScanKeys("");
  ASSERT_TRUE(keys.ok());
  EXPECT_TRUE(keys->empty());

  virtshadow::v1::ReplicaDigestsRequest digests;
  digests.set_vm_uuid(kUuid);
  digests.set_replica_path(kVda);
  digests.set_format("qcow2");
  auto digest_reply = keeper_->ReplicaDigests(digests);
  ASSERT_FALSE(digest_reply.ok());
  EXPECT_EQ(digest_reply.status().code(), Code::kFailedPrecondition);
}

TEST_F(ReplicaKeeperTest, FinishWithoutCommitDiscardsTheRound) {
  const auto seed = DataInBlocks(kSize, {0, 1});
  SeedVda(seed);
  sources_["vda"] = {DataInBlocks(kSize, {0, 1, 2}, 9), std::set<uint64_t>{0, 1, 2}};
  auto reply = keeper_->ApplyRound(Round("vs-2", "vs-1", {Disk("vda", virtshadow::v1::ROUND_MODE_INCREMENTAL)}));
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  Status discarded = keeper_->FinishRound(Finish("vs-2", false));
  ASSERT_TRUE(discarded.ok()) << discarded.ToString();
  EXPECT_TRUE(storage_.Contents(kVda) == seed);
  EXPECT_TRUE(Overlays().empty());
  EXPECT_TRUE(storage_.commits.size() == 1u);  // the seed's only
  EXPECT_EQ(StoredRecord().phase(), ReplicaRecord::PHASE_IDLE);
  EXPECT_EQ(StoredRecord().applied().checkpoint(), "vs-1");

  Status late = keeper_->FinishRound(Finish("vs-2", true));
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.code(), Code::kFailedPrecondition);
  EXPECT_THAT(late.message(), HasSubstr("no copied round 'vs-2'"));
  EXPECT_TRUE(storage_.Contents(kVda) == seed);
}

TEST_F(ReplicaKeeperTest, FinishForAnotherCheckpointIsRefusedAndKeepsThePendingRound) {
  SeedVda(DataInBlocks(kSize, {0}));
  sources_["vda"] = {DataInBlocks(kSize, {0, 1}), std::set<uint64_t>{1}};
  ASSERT_TRUE(keeper_->ApplyRound(Round("vs-2", "vs-1", {Disk("vda", virtshadow::v1::ROUND_MODE_INCREMENTAL)})).ok());
  Status wrong = keeper_->FinishRound(Finish("vs-9", true));
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.code(), Code::kFailedPrecondition);
  EXPECT_EQ(StoredRecord().phase(), ReplicaRecord::PHASE_COPIED);
  Status right = keeper_->FinishRound(Finish("vs-2", true));
  ASSERT_TRUE(right.ok()) << right.ToString();
  EXPECT_TRUE(storage_.Contents(kVda) == DataInBlocks(kSize, {0, 1}));
}

TEST_F(ReplicaKeeperTest, CrashAfterCopyingDiscardsTheOverlaysAtRecover) {
  const auto seed = DataInBlocks(kSize, {0, 1});
  SeedVda(seed);
  sources_["vda"] = {DataInBlocks(kSize, {0, 1, 2}, 9), std::set<uint64_t>{0, 1, 2}};
  ASSERT_TRUE(keeper_->ApplyRound(Round("vs-2", "vs-1", {Disk("vda", virtshadow::v1::ROUND_MODE_INCREMENTAL)})).ok());
  EXPECT_EQ(StoredRecord().phase(), ReplicaRecord::PHASE_COPIED);

  Restart();
  EXPECT_TRUE(Overlays().empty());
  EXPECT_TRUE(storage_.Contents(kVda) == seed);
  EXPECT_EQ(StoredRecord().phase(), ReplicaRecord::PHASE_IDLE);
  EXPECT_EQ(StoredRecord().applied().checkpoint(), "vs-1");
  Status late = keeper_->FinishRound(Finish("vs-2", true));
  EXPECT_EQ(late.code(), Code::kFailedPrecondition);
}

TEST_F(ReplicaKeeperTest, CrashWhileCopyingDiscardsTheOverlaysAtRecover) {
  const auto seed = DataInBlocks(kSize, {0, 1});
  SeedVda(seed);
  sources_["vda"] = {DataInBlocks(kSize, {0, 1, 2, 3}, 9), std::set<uint64_t>{0, 2}};
  storage_.on_write = [](const std::string& path, uint64_t offset, std::vector<std::byte>&) {
    if (path.ends_with(kOverlaySuffix) && offset == 2 * B) throw SimulatedCrash{};
  };
  EXPECT_THROW((void)keeper_->ApplyRound(Round("vs-2", "vs-1", {Disk("vda", virtshadow::v1::ROUND_MODE_INCREMENTAL)})),
               SimulatedCrash);
  storage_.on_write = nullptr;
  EXPECT_EQ(StoredRecord().phase(), ReplicaRecord::PHASE_COPYING);
  EXPECT_FALSE(Overlays().empty());

  Restart();
  EXPECT_TRUE(Overlays().empty());
  EXPECT_TRUE(storage_.Contents(kVda) == seed);
  EXPECT_EQ(StoredRecord().phase(), ReplicaRecord::PHASE_IDLE);
  // The next round starts cleanly from the replica's checkpoint.
  Commit(Round("vs-3", "vs-1", {Disk("vda", virtshadow::v1::ROUND_MODE_INCREMENTAL)}));
  auto expected = seed;
  const auto now = DataInBlocks(kSize, {0, 1, 2, 3}, 9);
  std::copy_n(now.begin(), B, expected.begin());
  std::copy_n(now.begin() + 2 * B, B, expected.begin() + 2 * B);
  EXPECT_TRUE(storage_.Contents(kVda) == expected);
}

TEST_F(ReplicaKeeperTest, CrashWhileCommittingIsRolledForwardAtRecover) {
  sources_["vda"] = {DataInBlocks(kSize, {0}), std::nullopt};
  sources_["vdb"] = {DataInBlocks(kSize, {1}), std::nullopt};
  Commit(Round("vs-1", "", {Disk("vda", virtshadow::v1::ROUND_MODE_FULL), Disk("vdb", virtshadow::v1::ROUND_MODE_FULL)}));

  const auto vda = DataInBlocks(kSize, {0, 4}, 7);
  const auto vdb = DataInBlocks(kSize, {1, 5}, 7);
  sources_["vda"] = {vda, std::set<uint64_t>{0, 4}};
  sources_["vdb"] = {vdb, std::set<uint64_t>{1, 5}};
  ASSERT_TRUE(keeper_->ApplyRound(Round("vs-2", "vs-1", {Disk("vda", virtshadow::v1::ROUND_MODE_INCREMENTAL),
                                                          Disk("vdb", virtshadow::v1::ROUND_MODE_INCREMENTAL)}))
                  .ok());
  // Killed between the two commits: vda's replica has the new round, vdb's does not.
  storage_.fault = [](std::string_view op, const std::string& path) -> Status {
    if (op == "Commit" && path == std::string(kVdb) + std::string(kOverlaySuffix)) throw SimulatedCrash{};
    return Status::Ok();
  };
  EXPECT_THROW((void)keeper_->FinishRound(Finish("vs-2", true)), SimulatedCrash);
  storage_.fault = nullptr;
  EXPECT_EQ(StoredRecord().phase(), ReplicaRecord::PHASE_COMMITTING);
  EXPECT_TRUE(storage_.Contents(kVda) == vda);
  EXPECT_TRUE(storage_.Contents(kVdb) == DataInBlocks(kSize, {1}));

  Restart();
  EXPECT_TRUE(storage_.Contents(kVda) == vda);
  EXPECT_TRUE(storage_.Contents(kVdb) == vdb);
  EXPECT_TRUE(Overlays().empty());
  const ReplicaRecord record = StoredRecord();
  EXPECT_EQ(record.phase(), ReplicaRecord::PHASE_IDLE);
  EXPECT_EQ(record.applied().checkpoint(), "vs-2");
  EXPECT_EQ(record.applied().bytes_sent(), 4242u);
}

// Killed after both commits, between removing the two overlays: the replicas already hold the new
// round, and no later call may trip over the overlay that is gone (it used to: every Recover,
// GetReplica and round of this VM failed with NOT_FOUND from then on).
TEST_F(ReplicaKeeperTest, KilledWhileRemovingTheOverlaysOfACommittedRoundLeavesNoStuckReplica) {
  sources_["vda"] = {DataInBlocks(kSize, {0}), std::nullopt};
  sources_["vdb"] = {DataInBlocks(kSize, {1}), std::nullopt};
  Commit(Round("vs-1", "", {Disk("vda", virtshadow::v1::ROUND_MODE_FULL), Disk("vdb", virtshadow::v1::ROUND_MODE_FULL)}));
  const auto vda = DataInBlocks(kSize, {0, 4}, 7);
  const auto vdb = DataInBlocks(kSize, {1, 5}, 7);
  sources_["vda"] = {vda, std::set<uint64_t>{0, 4}};
  sources_["vdb"] = {vdb, std::set<uint64_t>{1, 5}};
  const auto round2 = Round("vs-2", "vs-1", {Disk("vda", virtshadow::v1::ROUND_MODE_INCREMENTAL),
                                             Disk("vdb", virtshadow::v1::ROUND_MODE_INCREMENTAL)});
  ASSERT_TRUE(keeper_->ApplyRound(round2).ok());
  storage_.fault = [](std::string_view op, const std::string& path) -> Status {
    if (op == "Remove" && path == std::string(kVdb) + std::string(kOverlaySuffix)) throw SimulatedCrash{};
    return Status::Ok();
  };
  EXPECT_THROW((void)keeper_->FinishRound(Finish("vs-2", true)), SimulatedCrash);
  storage_.fault = nullptr;
  ASSERT_EQ(storage_.commits.size(), 4u);  // vs-1's two and vs-2's two: the kill came after the commit
  EXPECT_FALSE(storage_.Has(std::string(kVda) + std::string(kOverlaySuffix)));

  keeper_ = NewKeeper();
  Status recovered = keeper_->Recover();
  ASSERT_TRUE(recovered.ok()) << recovered.ToString();
  GetReplicaRequest request;
  request.set_vm_uuid(kUuid);
  auto replica = keeper_->GetReplica(request);
  ASSERT_TRUE(replica.ok()) << replica.status().ToString();
  EXPECT_EQ(replica->record().phase(), ReplicaRecord::PHASE_IDLE);
  EXPECT_EQ(replica->record().applied().checkpoint(), "vs-2");
  EXPECT_EQ(replica->missing_replicas_size(), 0);
  EXPECT_TRUE(storage_.Contents(kVda) == vda);
  EXPECT_TRUE(storage_.Contents(kVdb) == vdb);
  EXPECT_TRUE(Overlays().empty());

  const auto vda3 = DataInBlocks(kSize, {0, 2, 4}, 11);
  sources_["vda"] = {vda3, std::set<uint64_t>{0, 2, 4}};
  sources_["vdb"] = {vdb, std::set<uint64_t>{}};
  Commit(Round("vs-3", "vs-2", {Disk("vda", virtshadow::v1::ROUND_MODE_INCREMENTAL),
                                Disk("vdb", virtshadow::v1::ROUND_MODE_INCREMENTAL)}));
  EXPECT_TRUE(storage_.Contents(kVda) == vda3);
  EXPECT_EQ(StoredRecord().applied().checkpoint(), "vs-3");
}

// What older versions left after that kill: a PHASE_COMMITTING record naming overlays that were
// committed and then removed. The commit happened, so every call rolls the round forward.
TEST_F(ReplicaKeeperTest, ACommittingRoundWhoseOverlaysAreGoneCountsAsCommitted) {
  sources_["vda"] = {DataInBlocks(kSize, {0}), std::nullopt};
  sources_["vdb"] = {DataInBlocks(kSize, {1}), std::nullopt};
  Commit(Round("vs-1", "", {Disk("vda", virtshadow::v1::ROUND_MODE_FULL), Disk("vdb", virtshadow::v1::ROUND_MODE_FULL)}));
  const auto vda = DataInBlocks(kSize, {0, 4}, 7);
  const auto vdb = DataInBlocks(kSize, {1, 5}, 7);
  sources_["vda"] = {vda, std::set<uint64_t>{0, 4}};
  sources_["vdb"] = {vdb, std::set<uint64_t>{1, 5}};
  ASSERT_TRUE(keeper_->ApplyRound(Round("vs-2", "vs-1", {Disk("vda", virtshadow::v1::ROUND_MODE_INCREMENTAL),
                                                          Disk("vdb", virtshadow::v1::ROUND_MODE_INCREMENTAL)}))
                  .ok());
  ReplicaRecord stuck = StoredRecord();
  stuck.set_phase(ReplicaRecord::PHASE_COMMITTING);
  *stuck.mutable_pending() = Finish("vs-2", true).round();
  store::WriteBatch batch;
  batch.PutProto(ReplicaRecordKey(kUuid), stuck);
  ASSERT_TRUE(store_.Write(batch).ok());
  const std::string vda_overlay = std::string(kVda) + std::string(kOverlaySuffix);
  const std::string vdb_overlay = std::string(kVdb) + std::string(kOverlaySuffix);
  ASSERT_TRUE(storage_.Commit(vda_overlay).ok());
  ASSERT_TRUE(storage_.Commit(vdb_overlay).ok());
  ASSERT_TRUE(storage_.Remove(vda_overlay).ok());
  const size_t commits_before = storage_.commits.size();

  const Status settled = keeper_->Settle(kUuid);  // the primary's next call (the switchover's check, here)
  ASSERT_TRUE(settled.ok()) << settled.ToString();
  GetReplicaRequest request;
  request.set_vm_uuid(kUuid);
  auto replica = keeper_->GetReplica(request);
  ASSERT_TRUE(replica.ok()) << replica.status().ToString();
  EXPECT_EQ(replica->record().phase(), ReplicaRecord::PHASE_IDLE);
  EXPECT_EQ(replica->record().applied().checkpoint(), "vs-2");
  EXPECT_EQ(replica->record().applied().bytes_sent(), 4242u);
  EXPECT_EQ(StoredRecord().applied().checkpoint(), "vs-2");
  EXPECT_EQ(StoredRecord().phase(), ReplicaRecord::PHASE_IDLE);
  // Only the overlay still there was committed (again: the same bytes).
  EXPECT_THAT(std::vector<std::string>(storage_.commits.begin() + static_cast<std::ptrdiff_t>(commits_before),
                                       storage_.commits.end()),
              ElementsAre(vdb_overlay));
  EXPECT_TRUE(storage_.Contents(kVda) == vda);
  EXPECT_TRUE(storage_.Contents(kVdb) == vdb);
  EXPECT_TRUE(Overlays().empty());
}

TEST_F(ReplicaKeeperTest, AFailedCommitIsFinishedByTheNextCall) {
  SeedVda(DataInBlocks(kSize, {0}));
  const auto source = DataInBlocks(kSize, {0, 3}, 2);
  sources_["vda"] = {source, std::set<uint64_t>{0, 3}};
  ASSERT_TRUE(keeper_->ApplyRound(Round("vs-2", "vs-1", {Disk("vda", virtshadow::v1::ROUND_MODE_INCREMENTAL)})).ok());
  int failures = 1;
  storage_.fault = [&failures](std::string_view op, const std::string&) {
    return op == "Commit" && failures-- > 0 ? Unavailable("qemu-img commit: I/O error") : Status::Ok();
  };
  Status finished = keeper_->FinishRound(Finish("vs-2", true));
  ASSERT_FALSE(finished.ok());
  EXPECT_THAT(finished.message(), HasSubstr("I/O error"));
  EXPECT_EQ(StoredRecord().phase(), ReplicaRecord::PHASE_COMMITTING);

  // Reading the replica reports the commit as begun and finishes nothing.
  GetReplicaRequest request;
  request.set_vm_uuid(kUuid);
  auto replica = keeper_->GetReplica(request);
  ASSERT_TRUE(replica.ok()) << replica.status().ToString();
  EXPECT_EQ(replica->record().phase(), ReplicaRecord::PHASE_COMMITTING);
  EXPECT_EQ(replica->record().pending().checkpoint(), "vs-2");
  EXPECT_EQ(StoredRecord().phase(), ReplicaRecord::PHASE_COMMITTING);
  EXPECT_FALSE(Overlays().empty());

  // The primary's next round builds on the pending round (Replicator::MakePlan): its ApplyRound finishes the
  // commit first and then finds the replica at vs-2.
  sources_["vda"] = {source, std::set<uint64_t>{}};
  Commit(Round("vs-3", "vs-2", {Disk("vda", virtshadow::v1::ROUND_MODE_INCREMENTAL)}));
  EXPECT_EQ(StoredRecord().applied().checkpoint(), "vs-3");
  EXPECT_TRUE(storage_.Contents(kVda) == source);
  EXPECT_TRUE(Overlays().empty());
}

TEST_F(ReplicaKeeperTest, GetReplicaAnswersUnknownAndListsMissingReplicas) {
  GetReplicaRequest request;
  request.set_vm_uuid(kUuid);
  auto unknown = keeper_->GetReplica(request);
  ASSERT_TRUE(unknown.ok()) << unknown.status().ToString();
  EXPECT_FALSE(unknown->known());
  EXPECT_EQ(unknown->missing_replicas_size(), 0);

  sources_["vda"] = {DataInBlocks(kSize, {0}), std::nullopt};
  sources_["vdb"] = {DataInBlocks(kSize, {1}), std::nullopt};
  Commit(Round("vs-1", "", {Disk("vda", virtshadow::v1::ROUND_MODE_FULL), Disk("vdb", virtshadow::v1::ROUND_MODE_FULL)}));
  ASSERT_TRUE(storage_.Remove(kVdb).ok());

  auto known = keeper_->GetReplica(request);
  ASSERT_TRUE(known.ok()) << known.status().ToString();
  EXPECT_TRUE(known->known());
  EXPECT_THAT(known->missing_replicas(), ElementsAre(kVdb));
  EXPECT_EQ(known->record().applied().checkpoint(), "vs-1");
  ASSERT_EQ(known->record().disks_size(), 2);
  EXPECT_EQ(known->record().primary_host(), "h1");

  auto records = keeper_->List();
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 1u);
  EXPECT_EQ((*records)[0].vm_uuid(), kUuid);
}

// A reader (anyone who can reach the peer port) cannot discard the round the primary copied and is verifying:
// GetReplica reports it and the primary's FinishRound still commits it.
TEST_F(ReplicaKeeperTest, GetReplicaLeavesACopiedRoundToItsPrimary) {
  SeedVda(DataInBlocks(kSize, {0}));
  sources_["vda"] = {DataInBlocks(kSize, {0, 1}), std::set<uint64_t>{1}};
  ASSERT_TRUE(keeper_->ApplyRound(Round("vs-2", "vs-1", {Disk("vda", virtshadow::v1::ROUND_MODE_INCREMENTAL)})).ok());
  GetReplicaRequest request;
  request.set_vm_uuid(kUuid);
  auto replica = keeper_->GetReplica(request);
  ASSERT_TRUE(replica.ok());
  EXPECT_EQ(replica->record().phase(), ReplicaRecord::PHASE_COPIED);
  EXPECT_EQ(replica->record().applied().checkpoint(), "vs-1");
  EXPECT_EQ(Overlays().size(), 1u);

  const Status finished = keeper_->FinishRound(Finish("vs-2", true));
  ASSERT_TRUE(finished.ok()) << finished.ToString();
  EXPECT_EQ(StoredRecord().applied().checkpoint(), "vs-2");
  EXPECT_TRUE(storage_.Contents(kVda) == DataInBlocks(kSize, {0, 1}));
}

// The primary acting (its switchover's check) discards a round it left copied.
TEST_F(ReplicaKeeperTest, SettleDiscardsARoundLeftCopied) {
  SeedVda(DataInBlocks(kSize, {0}));
  sources_["vda"] = {DataInBlocks(kSize, {0, 1}), std::set<uint64_t>{1}};
  ASSERT_TRUE(keeper_->ApplyRound(Round("vs-2", "vs-1", {Disk("vda", virtshadow::v1::ROUND_MODE_INCREMENTAL)})).ok());
  ASSERT_TRUE(keeper_->Settle(kUuid).ok());
  EXPECT_EQ(StoredRecord().phase(), ReplicaRecord::PHASE_IDLE);
  EXPECT_EQ(StoredRecord().applied().checkpoint(), "vs-1");
  EXPECT_TRUE(Overlays().empty());
  EXPECT_TRUE(storage_.Contents(kVda) == DataInBlocks(kSize, {0}));
  EXPECT_TRUE(keeper_->Settle("0b5d6c1e-6f0a-4c43-9a39-5f2f1c3d2a10").ok()) << "no record: nothing to settle";
}

// GetReplica runs `qemu-img info` (as root) on requested paths of a VM without a record: only on paths a shadow of
// the VM here owns, never on anything a caller names.
TEST_F(ReplicaKeeperTest, GetReplicaInspectsNoRequestedPathTheShadowDoesNotOwn) {
  std::vector<std::string> inspected;
  storage_.fault = [&inspected](std::string_view op, const std::string& path) {
    if (op == "Inspect") inspected.push_back(path);
    return Status::Ok();
  };
  shadow_check_ = FailedPrecondition("/run/fifo is not a disk of shadow vm1-shadow");
  GetReplicaRequest request;
  request.set_vm_uuid(kUuid);
  request.add_replica_paths("/run/fifo");
  auto refused = keeper_->GetReplica(request);
  EXPECT_EQ(refused.status().code(), Code::kFailedPrecondition) << refused.status().ToString();
  EXPECT_THAT(inspected, ::testing::IsEmpty());
  EXPECT_THAT(checked_, ElementsAre(std::string(kUuid) + ":/run/fifo"));

  shadow_check_ = Status::Ok();
  request.set_replica_paths(0, kVda);
  auto answered = keeper_->GetReplica(request);
  ASSERT_TRUE(answered.ok()) << answered.status().ToString();
  EXPECT_THAT(inspected, ElementsAre(kVda));
}

TEST_F(ReplicaKeeperTest, AReplicaIsNeverShrunk) {
  SeedVda(DataInBlocks(kSize, {0}));
  sources_["vda"] = {DataInBlocks(kSize - B, {0}), std::nullopt};
  auto shrunk = keeper_->ApplyRound(Round("vs-2", "", {Disk("vda", virtshadow::v1::ROUND_MODE_FULL, kSize - B)}));
  EXPECT_EQ(shrunk.status().code(), Code::kFailedPrecondition) << shrunk.status().ToString();
  EXPECT_THAT(shrunk.status().message(), HasSubstr("never shrunk"));
  EXPECT_EQ(storage_.images.at(kVda)->bytes.size(), kSize);
  EXPECT_TRUE(storage_.Contents(kVda) == DataInBlocks(kSize, {0}));
  EXPECT_EQ(StoredRecord().applied().checkpoint(), "vs-1");
}

// A 2 PiB export used to make the keeper allocate 2^35 block counters (bad_alloc, shadowd gone). Now the round is
// refused before anything is created or connected.
TEST_F(ReplicaKeeperTest, DisksAboveTheSizeCapAreRefusedBeforeAnythingIsTouched) {
  std::vector<std::string> operations;
  storage_.fault = [&operations](std::string_view op, const std::string& path) {
    operations.push_back(std::string(op) + " " + path);
    return Status::Ok();
  };
  for (const ApplyRoundRequest& round :
       {Round("vs-1", "", {Disk("vda", virtshadow::v1::ROUND_MODE_FULL, uint64_t{2} << 50)}),
        Round("vs-1", "", {Disk("vda", virtshadow::v1::ROUND_MODE_FULL, kMaxVirtualSize),
                           Disk("vdb", virtshadow::v1::ROUND_MODE_FULL, kMaxVirtualSize)})}) {
    auto refused = keeper_->ApplyRound(round);
    EXPECT_EQ(refused.status().code(), Code::kInvalidArgument) << refused.status().ToString();
    EXPECT_THAT(refused.status().message(), HasSubstr("above the 2 TiB"));
  }
  EXPECT_THAT(operations, ::testing::IsEmpty());
  EXPECT_FALSE(StoredRecordExists());
}

// Every UUID a caller names used to leave a mutex behind for good; an entry now lives only while a call uses it.
TEST_F(ReplicaKeeperTest, PerVmMutexesLiveOnlyWhileACallUsesThem) {
  for (int i = 0; i < 100; ++i) {
    GetReplicaRequest request;
    request.set_vm_uuid("00000000-0000-0000-0000-" + std::to_string(100000000000 + i));
    ASSERT_TRUE(keeper_->GetReplica(request).ok());
  }
  EXPECT_EQ(keeper_->LockEntries(), 0u);

  size_t during_round = 0;
  storage_.fault = [&](std::string_view op, const std::string&) {
    if (op == "ConnectExport") during_round = keeper_->LockEntries();
    return Status::Ok();
  };
  sources_["vda"] = {DataInBlocks(kSize, {0}), std::nullopt};
  Commit(Round("vs-1", "", {Disk("vda", virtshadow::v1::ROUND_MODE_FULL)}));
  EXPECT_EQ(during_round, 1u);
  EXPECT_EQ(keeper_->LockEntries(), 0u);
}

TEST_F(ReplicaKeeperTest, ReplicaDigestsAreTheReplicasBlockDigests) {
  const auto seed = DataInBlocks(kSize, {0, 8});
  SeedVda(seed);
  virtshadow::v1::ReplicaDigestsRequest request;
  request.set_vm_uuid(kUuid);
  request.set_replica_path(kVda);
  request.set_format("qcow2");
  request.set_block_digest(virtshadow::v1::BLOCK_DIGEST_XXH3_64);
  auto reply = keeper_->ReplicaDigests(request);
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->block_digest(), virtshadow::v1::BLOCK_DIGEST_XXH3_64);
  EXPECT_EQ(reply->size(), kSize);
  ASSERT_EQ(reply->digests_size(), 9);
  EXPECT_EQ(reply->digests(0), BlockDigest(BlockDigestKind::kXxh3, std::span<const std::byte>(seed).first(B)));
  EXPECT_EQ(reply->digests(1), ZeroBlockDigest(BlockDigestKind::kXxh3, B));
  EXPECT_EQ(reply->digests(8), BlockDigest(BlockDigestKind::kXxh3, std::span<const std::byte>(seed).subspan(8 * B)));
}

// A replica that a FULL round re-created but never committed must not pass for the replica of the
// previous checkpoint: otherwise the primary plans an INCREMENTAL round onto a blank image.
TEST_F(ReplicaKeeperTest, AReplicaRecreatedByAnUncommittedRoundIsNotAtTheOldCheckpoint) {
  SeedVda(DataInBlocks(kSize, {0, 1, 2}));
  ASSERT_TRUE(storage_.Remove(kVda).ok());  // the replica file was lost on the shadow host
  ASSERT_TRUE(keeper_->ApplyRound(Round("vs-2", "", {Disk("vda", virtshadow::v1::ROUND_MODE_FULL)})).ok());
  Restart();  // or FinishRound(commit=false), or a failed copy: the round is discarded

  GetReplicaRequest request;
  request.set_vm_uuid(kUuid);
  auto replica = keeper_->GetReplica(request);
  ASSERT_TRUE(replica.ok());
  const bool still_missing = replica->missing_replicas_size() == 1;
  const bool chain_dropped = replica->record().applied().checkpoint() != "vs-1";
  EXPECT_TRUE(still_missing || chain_dropped)
      << "the replica reads as zeros but the record says it is at vs-1";
}

}  // namespace
}  // namespace vs::replication

namespace vs::replication {
namespace {

TEST_F(ReplicaKeeperTest, SettleForPromotionDiscardsACopiedRoundAndRefusesLaterRounds) {
  const auto seed = DataInBlocks(kSize, {0, 1});
  SeedVda(seed);
  sources_["vda"] = {DataInBlocks(kSize, {0, 1, 2}, 9), std::set<uint64_t>{2}};
  ASSERT_TRUE(keeper_->ApplyRound(Round("vs-2", "vs-1", {Disk("vda", virtshadow::v1::ROUND_MODE_INCREMENTAL)})).ok());

  auto settled = keeper_->SettleForPromotion(kUuid);
  ASSERT_TRUE(settled.ok()) << settled.status().ToString();
  EXPECT_EQ(settled->applied().checkpoint(), "vs-1");
  EXPECT_EQ(settled->applied().bytes_sent(), 4242u) << "the committed round's figures, as the primary sent them";
  EXPECT_TRUE(settled->promoted());
  EXPECT_TRUE(Overlays().empty());
  EXPECT_TRUE(storage_.Contents(kVda) == seed);
  EXPECT_TRUE(StoredRecord().promoted());

  // The primary's verdict on the discarded round, and any later round, are refused.
  EXPECT_EQ(keeper_->FinishRound(Finish("vs-2", true)).code(), Code::kFailedPrecondition);
  auto later = keeper_->ApplyRound(Round("vs-3", "vs-1", {Disk("vda", virtshadow::v1::ROUND_MODE_INCREMENTAL)}));
  EXPECT_EQ(later.status().code(), Code::kFailedPrecondition);
  EXPECT_THAT(later.status().message(), HasSubstr("promoted"));
  EXPECT_TRUE(storage_.Contents(kVda) == seed);

  // Again after a restart (a promotion resumed): the same answer, nothing changes.
  Restart();
  auto again = keeper_->SettleForPromotion(kUuid);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->applied().checkpoint(), "vs-1");
}

TEST_F(ReplicaKeeperTest, SettleForPromotionRollsACommittingRoundForward) {
  SeedVda(DataInBlocks(kSize, {0}));
  const auto next = DataInBlocks(kSize, {0, 3}, 5);
  sources_["vda"] = {next, std::set<uint64_t>{0, 3}};
  ASSERT_TRUE(keeper_->ApplyRound(Round("vs-2", "vs-1", {Disk("vda", virtshadow::v1::ROUND_MODE_INCREMENTAL)})).ok());
  storage_.fault = [](std::string_view op, const std::string&) -> Status {
    if (op == "Commit") throw SimulatedCrash{};
    return Status::Ok();
  };
  EXPECT_THROW((void)keeper_->FinishRound(Finish("vs-2", true)), SimulatedCrash);
  storage_.fault = nullptr;
  ASSERT_EQ(StoredRecord().phase(), ReplicaRecord::PHASE_COMMITTING);

  keeper_ = NewKeeper();  // killed; the promotion runs before anything else settled the record
  auto settled = keeper_->SettleForPromotion(kUuid);
  ASSERT_TRUE(settled.ok()) << settled.status().ToString();
  EXPECT_EQ(settled->applied().checkpoint(), "vs-2");
  EXPECT_TRUE(storage_.Contents(kVda) == next);
  EXPECT_TRUE(Overlays().empty());
}

TEST_F(ReplicaKeeperTest, SettleForPromotionNeedsAnAppliedRound) {
  EXPECT_EQ(keeper_->SettleForPromotion(kUuid).status().code(), Code::kNotFound);
  sources_["vda"] = {DataInBlocks(kSize, {0}), std::nullopt};
  ASSERT_TRUE(keeper_->ApplyRound(Round("vs-1", "", {Disk("vda", virtshadow::v1::ROUND_MODE_FULL)})).ok());
  EXPECT_EQ(keeper_->SettleForPromotion(kUuid).status().code(), Code::kFailedPrecondition);
  EXPECT_FALSE(StoredRecord().promoted());
}

TEST_F(ReplicaKeeperTest, RecordsOfReleasedShadowsAreForgottenOthersKept) {
  SeedVda(DataInBlocks(kSize, {0}));
  ASSERT_TRUE(StoredRecordExists());
  bool vm_runs_on_replicas = false;
  std::vector<std::string> asked;
  auto in_use = [&](const std::vector<std::string>& paths) -> StatusOr<bool> {
    asked = paths;
    return vm_runs_on_replicas;
  };
  // The shadow is still defined (the check passes): kept.
  auto kept = keeper_->ForgetReleased(in_use);
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  EXPECT_EQ(*kept, 0);
  EXPECT_TRUE(StoredRecordExists());
  // A check that fails for another reason (the shadow runs) is no proof of a release: kept.
  shadow_check_ = FailedPrecondition("shadow of vm1 is running");
  ASSERT_TRUE(keeper_->ForgetReleased(in_use).ok());
  EXPECT_TRUE(StoredRecordExists());
  // The shadow's definition went (undefined by hand) but its replica is still here and nobody's: it is the VM's
  // last consistent copy, which a fallback migration needs: kept.
  shadow_check_ = NotFound("no shadow of VM vm1 is defined on h2");
  ASSERT_TRUE(keeper_->ForgetReleased(in_use).ok());
  EXPECT_TRUE(StoredRecordExists());
  EXPECT_EQ(asked, std::vector<std::string>{kVda});
  // The VM itself was switched over onto it: forgotten.
  vm_runs_on_replicas = true;
  auto switched = keeper_->ForgetReleased(in_use);
  ASSERT_TRUE(switched.ok()) << switched.status().ToString();
  EXPECT_EQ(*switched, 1);
  EXPECT_FALSE(StoredRecordExists());
}

// A release by the primary deletes the replicas before the shadow's definition: then the record goes too.
TEST_F(ReplicaKeeperTest, RecordsOfReleasedReplicasAreForgotten) {
  SeedVda(DataInBlocks(kSize, {0}));
  shadow_check_ = NotFound("no shadow of VM vm1 is defined on h2");
  ASSERT_TRUE(storage_.Remove(kVda).ok());
  auto forgotten = keeper_->ForgetReleased([](const std::vector<std::string>&) -> StatusOr<bool> { return false; });
  ASSERT_TRUE(forgotten.ok()) << forgotten.status().ToString();
  EXPECT_EQ(*forgotten, 1);
  EXPECT_FALSE(StoredRecordExists());
}

}  // namespace
}  // namespace vs::replication

namespace vs::replication {
namespace {

// A record that cannot be settled at start-up (damaged, or its commit keeps failing) must not keep
// the others from being settled; Recover reports the bad ones, and only them, after trying all.
TEST_F(ReplicaKeeperTest, RecoverSettlesTheOtherRecordsPastBadOnesAndNamesTheBadOnes) {
  const auto seed = DataInBlocks(kSize, {0});
  SeedVda(seed);
  sources_["vda"] = {DataInBlocks(kSize, {0, 1}), std::set<uint64_t>{1}};
  ASSERT_TRUE(keeper_->ApplyRound(Round("vs-2", "vs-1", {Disk("vda", virtshadow::v1::ROUND_MODE_INCREMENTAL)})).ok());
  ASSERT_EQ(StoredRecord().phase(), ReplicaRecord::PHASE_COPIED);

  // Both sort before kUuid, so a Recover that stops at the first failure never reaches it.
  const std::string damaged = "0000aaaa-0000-0000-0000-000000000001";
  store_.PutRawForTesting(ReplicaRecordKey(damaged), "not an envelope");
  const std::string failing = "0000bbbb-0000-0000-0000-000000000002";
  const std::string vdb_overlay = std::string(kVdb) + std::string(kOverlaySuffix);
  ASSERT_TRUE(storage_.Create(kVdb, "qcow2", kSize).ok());
  ASSERT_TRUE(storage_.CreateOverlay(vdb_overlay, kVdb, "qcow2").ok());
  ReplicaRecord committing;
  committing.set_vm_uuid(failing);
  committing.set_phase(ReplicaRecord::PHASE_COMMITTING);
  committing.mutable_pending()->set_checkpoint("vs-7");
  auto* disk = committing.add_disks();
  disk->set_target("vdb");
  disk->set_replica_path(kVdb);
  disk->set_format("qcow2");
  disk->set_overlay_path(vdb_overlay);
  store::WriteBatch batch;
  batch.PutProto(ReplicaRecordKey(failing), committing);
  ASSERT_TRUE(store_.Write(batch).ok());
  storage_.fault = [&vdb_overlay](std::string_view op, const std::string& path) {
    return op == "Commit" && path == vdb_overlay ? Unavailable("qemu-img commit: I/O error") : Status::Ok();
  };

  keeper_ = NewKeeper();
  Status recovered = keeper_->Recover();
  ASSERT_FALSE(recovered.ok());
  EXPECT_THAT(recovered.message(), HasSubstr("2 of 3 replica records"));
  EXPECT_THAT(recovered.message(), HasSubstr("VM " + damaged + ": "));
  EXPECT_THAT(recovered.message(), HasSubstr("VM " + failing + ": qemu-img commit: I/O error"));
  EXPECT_THAT(recovered.message(), Not(HasSubstr(kUuid)));
  // The good record was settled all the same.
  EXPECT_EQ(StoredRecord().phase(), ReplicaRecord::PHASE_IDLE);
  EXPECT_EQ(StoredRecord().applied().checkpoint(), "vs-1");
  EXPECT_FALSE(storage_.Has(std::string(kVda) + std::string(kOverlaySuffix)));
  EXPECT_TRUE(storage_.Contents(kVda) == seed);
  // The failing one is kept as it was, and settled once the storage works again.
  auto kept = store::GetProto<ReplicaRecord>(store_, ReplicaRecordKey(failing));
  ASSERT_TRUE(kept.ok() && kept->has_value());
  EXPECT_EQ((*kept)->phase(), ReplicaRecord::PHASE_COMMITTING);
  EXPECT_TRUE(storage_.Has(vdb_overlay));
  storage_.fault = nullptr;
  ASSERT_TRUE(keeper_->Settle(failing).ok());
  GetReplicaRequest request;
  request.set_vm_uuid(failing);
  auto replica = keeper_->GetReplica(request);
  ASSERT_TRUE(replica.ok()) << replica.status().ToString();
  EXPECT_EQ(replica->record().applied().checkpoint(), "vs-7");
  EXPECT_FALSE(storage_.Has(vdb_overlay));
}

// ---- Killed after every effect of a round ----
// As the controller's crash tests: the round vs-2 (over two disks at vs-1) is cut after its first
// `cut` effects (file operations and store writes), for every cut; the dead keeper is dropped, the
// store and the files are kept (with a power cut on top: created files whose directory was not synced
// are lost), a new keeper recovers, and the replicas must be wholly at one round that the record
// names, with no overlay left, and take the next round.

constexpr int kApplyEffects = 13;    // see ARoundHasTheExpectedCutPoints
constexpr int kCommitEffects = 20;   // ApplyRound and FinishRound(commit=true)
constexpr int kDiscardEffects = 17;  // ApplyRound and FinishRound(commit=false)

class ReplicaKeeperCrashTest : public ReplicaKeeperTest {
 protected:
  struct Contents {
    std::vector<std::byte> vda;
    std::vector<std::byte> vdb;
  };
  const Contents round1_{DataInBlocks(kSize, {0}), DataInBlocks(kSize, {1})};
  const Contents round2_{DataInBlocks(kSize, {0, 4}, 7), DataInBlocks(kSize, {1, 5}, 7)};
  const Contents round3_{DataInBlocks(kSize, {0, 2, 4}, 11), DataInBlocks(kSize, {1, 3, 5}, 11)};

  // vda and vdb committed at vs-1 (uncut), and vs-2 exported: two changed blocks per disk.
  void SetUpRounds() {
    sources_["vda"] = {round1_.vda, std::nullopt};
    sources_["vdb"] = {round1_.vdb, std::nullopt};
    Commit(Round("vs-1", "",
                 {Disk("vda", virtshadow::v1::ROUND_MODE_FULL), Disk("vdb", virtshadow::v1::ROUND_MODE_FULL)}));
    ASSERT_TRUE(storage_.Contents(kVda) == round1_.vda && storage_.Contents(kVdb) == round1_.vdb);
    sources_["vda"] = {round2_.vda, std::set<uint64_t>{0, 4}};
    sources_["vdb"] = {round2_.vdb, std::set<uint64_t>{1, 5}};
  }

  // vs-2 through a keeper whose every effect spends budget_: ApplyRound, then FinishRound. Every
  // call must fail once an effect was refused, and succeed otherwise.
  void RunCutRound(bool commit) {
    BudgetStore store(store_, budget_);
    storage_.budget = &budget_;
    std::unique_ptr<ReplicaKeeper> keeper = NewKeeper(store);
    auto applied = keeper->ApplyRound(Round("vs-2", "vs-1", {Disk("vda", virtshadow::v1::ROUND_MODE_INCREMENTAL),
                                                             Disk("vdb", virtshadow::v1::ROUND_MODE_INCREMENTAL)}));
    EXPECT_EQ(applied.ok(), budget_.refused == 0) << applied.status().ToString();
    if (applied.ok()) {
      Status finished = keeper->FinishRound(Finish("vs-2", commit));
      EXPECT_EQ(finished.ok(), budget_.refused == 0) << finished.ToString();
    }
    storage_.budget = nullptr;
  }

  // Runs an uncut round from a fresh start and checks its effects.
  void ExpectCutPoints(bool commit) {
    store::WriteBatch wipe;
    wipe.Delete(ReplicaRecordKey(kUuid));
    ASSERT_TRUE(store_.Write(wipe).ok());
    storage_.images.clear();
    ASSERT_NO_FATAL_FAILURE(SetUpRounds());
    budget_ = CrashBudget();
    RunCutRound(commit);
    EXPECT_EQ(budget_.used, commit ? kCommitEffects : kDiscardEffects);
    EXPECT_EQ(budget_.refused, 0);
    const std::string vda_overlay = std::string(kVda) + std::string(kOverlaySuffix);
    const std::string vdb_overlay = std::string(kVdb) + std::string(kOverlaySuffix);
    const std::string store_write = "StoreWrite " + ReplicaRecordKey(kUuid);
    std::vector<std::string> io;
    std::vector<std::string> others;
    for (const std::string& effect : budget_.effects) {
      const bool data = effect.starts_with("Write ") || effect.starts_with("Zero ") || effect.starts_with("Flush ");
      (data ? io : others).push_back(effect);
    }
    // Two changed blocks, then a flush, per overlay.
    EXPECT_THAT(io, ElementsAre("Write " + vda_overlay, "Write " + vda_overlay, "Flush " + vda_overlay,
                                "Write " + vdb_overlay, "Write " + vdb_overlay, "Flush " + vdb_overlay));
    // The overlays' directory is synced before the round can be committed, and the round's end is
    // stored before any overlay is removed.
    std::vector<std::string> expected = {store_write,  // PHASE_COPYING
                                         "Remove " + vda_overlay,
                                         "CreateOverlay " + vda_overlay,
                                         "Remove " + vdb_overlay,
                                         "CreateOverlay " + vdb_overlay,
                                         "SyncDirectory /var/lib/libvirt/images",
                                         store_write};  // PHASE_COPIED
    if (commit) {
      expected.insert(expected.end(), {store_write,  // PHASE_COMMITTING
                                       "Commit " + vda_overlay, "Commit " + vdb_overlay});
    }
    expected.insert(expected.end(), {store_write,  // PHASE_IDLE, overlays still named
                                     "Remove " + vda_overlay, "Remove " + vdb_overlay,
                                     store_write});  // overlays forgotten
    EXPECT_EQ(others, expected);
    ASSERT_GE(budget_.effects.size(), static_cast<size_t>(kApplyEffects));
    EXPECT_EQ(budget_.effects[kApplyEffects - 1], store_write);  // ApplyRound ends with PHASE_COPIED
    EXPECT_EQ(StoredRecord().applied().checkpoint(), commit ? "vs-2" : "vs-1");
    EXPECT_TRUE(Overlays().empty());
  }

  CrashBudget budget_;
};

// An uncut round, effect by effect.
TEST_F(ReplicaKeeperCrashTest, ARoundHasTheExpectedCutPoints) {
  for (bool commit : {true, false}) {
    SCOPED_TRACE(commit ? "commit" : "discard");
    ExpectCutPoints(commit);
  }
}

class ReplicaKeeperCutTest : public ReplicaKeeperCrashTest,
                             public ::testing::WithParamInterface<std::tuple<bool, bool, int>> {};

TEST_P(ReplicaKeeperCutTest, RecoveryLeavesTheReplicasWhollyAtTheRecordedRound) {
  const auto [commit, power_cut, cut] = GetParam();
  ASSERT_NO_FATAL_FAILURE(SetUpRounds());
  budget_.remaining = cut;
  RunCutRound(commit);
  const bool cut_short = budget_.refused > 0;
  EXPECT_EQ(cut_short, cut < (commit ? kCommitEffects : kDiscardEffects));
  // Some of the states a cut leaves, to show what recovery has to deal with.
  if (commit && cut == kApplyEffects + 1) {  // PHASE_COMMITTING stored, nothing committed yet
    EXPECT_EQ(StoredRecord().phase(), ReplicaRecord::PHASE_COMMITTING);
    EXPECT_TRUE(storage_.Contents(kVda) == round1_.vda);
  }
  if (commit && cut == kApplyEffects + 2) {  // a mix: vda committed, vdb not
    EXPECT_EQ(StoredRecord().phase(), ReplicaRecord::PHASE_COMMITTING);
    EXPECT_TRUE(storage_.Contents(kVda) == round2_.vda);
    EXPECT_TRUE(storage_.Contents(kVdb) == round1_.vdb);
  }
  if (commit && cut == kApplyEffects + 4) {  // the round's end stored, the overlays still there and named
    EXPECT_EQ(StoredRecord().phase(), ReplicaRecord::PHASE_IDLE);
    EXPECT_EQ(StoredRecord().applied().checkpoint(), "vs-2");
    EXPECT_EQ(Overlays().size(), 2u);
    const ReplicaRecord ended = StoredRecord();
    ASSERT_EQ(ended.disks_size(), 2);
    EXPECT_FALSE(ended.disks(0).overlay_path().empty());
    EXPECT_FALSE(ended.disks(1).overlay_path().empty());
  }
  if (power_cut) storage_.LosePower();

  keeper_ = NewKeeper();
  Status recovered = keeper_->Recover();
  ASSERT_TRUE(recovered.ok()) << recovered.ToString();
  const ReplicaRecord record = StoredRecord();
  EXPECT_EQ(record.phase(), ReplicaRecord::PHASE_IDLE);
  EXPECT_FALSE(record.has_pending());
  for (const auto& disk : record.disks()) EXPECT_EQ(disk.overlay_path(), "") << disk.target();
  EXPECT_TRUE(Overlays().empty());
  // Once PHASE_COMMITTING is stored the round is rolled forward; before, it is discarded.
  const std::string expected = commit && cut > kApplyEffects ? "vs-2" : "vs-1";
  EXPECT_EQ(record.applied().checkpoint(), expected);
  const Contents& at = record.applied().checkpoint() == "vs-2" ? round2_ : round1_;
  EXPECT_TRUE(storage_.Contents(kVda) == at.vda) << "vda is not at " << record.applied().checkpoint();
  EXPECT_TRUE(storage_.Contents(kVdb) == at.vdb) << "vdb is not at " << record.applied().checkpoint();

  GetReplicaRequest request;
  request.set_vm_uuid(kUuid);
  auto replica = keeper_->GetReplica(request);
  ASSERT_TRUE(replica.ok()) << replica.status().ToString();
  EXPECT_EQ(replica->missing_replicas_size(), 0);
  EXPECT_EQ(replica->record().applied().checkpoint(), record.applied().checkpoint());

  // The primary's next round builds on what the replica reports; these dirty blocks cover the
  // changes since vs-1 as well as since vs-2.
  sources_["vda"] = {round3_.vda, std::set<uint64_t>{0, 2, 4}};
  sources_["vdb"] = {round3_.vdb, std::set<uint64_t>{1, 3, 5}};
  Commit(Round("vs-3", record.applied().checkpoint(), {Disk("vda", virtshadow::v1::ROUND_MODE_INCREMENTAL),
                                                       Disk("vdb", virtshadow::v1::ROUND_MODE_INCREMENTAL)}));
  EXPECT_EQ(StoredRecord().applied().checkpoint(), "vs-3");
  EXPECT_TRUE(storage_.Contents(kVda) == round3_.vda);
  EXPECT_TRUE(storage_.Contents(kVdb) == round3_.vdb);
  EXPECT_TRUE(Overlays().empty());
}

INSTANTIATE_TEST_SUITE_P(EveryCut, ReplicaKeeperCutTest,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool(),
                                            ::testing::Range(0, kCommitEffects + 1)),
                         [](const ::testing::TestParamInfo<ReplicaKeeperCutTest::ParamType>& info) {
                           return std::string(std::get<0>(info.param) ? "Commit" : "Discard") +
                                  (std::get<1>(info.param) ? "PowerCut" : "Kill") + "After" +
                                  std::to_string(std::get<2>(info.param));
                         });

}  // namespace
}  // namespace vs::replication
