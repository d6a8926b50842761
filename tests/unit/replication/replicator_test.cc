// Replicator end to end: a primary (fake libvirt backup API, its own store) replicating to a shadow
// host (a real ReplicaKeeper over in-memory images) through an in-process peer link. After every round
// that succeeds the replica must equal the frozen source of that round, byte for byte.
#include "shadowd/replication/replicator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <thread>

#include "shadowd/replication/block_map.h"
#include "shadowd/replication/replica_keeper.h"
#include "shadowd/store/memory_store.h"
#include "tests/unit/replication/fakes.h"

namespace vs::replication {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::DataInBlocks;
using testing::FakeBackupHypervisor;
using testing::FakeReplicaStorage;
using testing::InProcessPeer;
using testing::IoCounts;
using testing::Pattern;
using virtshadow::v1::AppliedRound;
using virtshadow::v1::ReplicaRecord;
using virtshadow::v1::ReplicationRecord;

constexpr uint64_t B = kBlockSize;
constexpr uint64_t kSize = 8 * B + 4096;  // nine blocks, the last one short
constexpr char kUuid[] = "6695eb01-f6a4-8304-79aa-97f2502e193f";
constexpr char kVda[] = "/var/lib/libvirt/images/vm1-vda.qcow2";
constexpr char kVdb[] = "/var/lib/libvirt/images/vm1-vdb.img";
constexpr uint16_t kExportPort = 10811;  // a runner's port other than the first: the round must use the one given

class ReplicatorTest : public ::testing::Test {
 protected:
  ReplicatorTest() {
    libvirt_.AddDomain("vm1", kUuid);
    libvirt_.AddDisk("vm1", "vda", kVda, "qcow2", kSize)->bytes = DataInBlocks(kSize, {0, 3, 8});
    RestartShadow();
  }

  // shadowd on the shadow host (re)starts: a new keeper on the same store and images.
  void RestartShadow() {
    keeper_ = std::make_unique<ReplicaKeeper>(
        shadow_store_, shadow_storage_, [](const std::string&, const std::vector<std::string>&) { return Status::Ok(); },
        clock_);
    Status recovered = keeper_->Recover();
    ASSERT_TRUE(recovered.ok()) << recovered.ToString();
    peer_.keeper = keeper_.get();
  }

  ReplicationTarget Target(const std::string& vm = "vm1") const {
    return {vm == "vm1" ? kUuid : "uuid-of-" + vm, vm, "h2"};
  }

  // One round a second after the previous one (checkpoint names carry the time in ms).
  StatusOr<AppliedRound> Round(Replicator* replicator = nullptr) {
    clock_.Advance(std::chrono::seconds(1));
    return (replicator ? *replicator : replicator_).RunRound(Target(), kExportPort);
  }

  AppliedRound GoodRound() {
    auto round = Round();
    EXPECT_TRUE(round.ok()) << round.status().ToString();
    ExpectReplicaIsFrozenSource("vda", kVda);
    EXPECT_FALSE(libvirt_.domains.at("vm1").job.has_value()) << "the backup job was left running";
    return round.ok() ? *round : AppliedRound();
  }

  void ExpectReplicaIsFrozenSource(const std::string& target, const std::string& path) {
    const auto frozen = libvirt_.LastFrozen("vm1", target);
    ASSERT_FALSE(frozen.empty());
    EXPECT_TRUE(shadow_storage_.Contents(path) == frozen) << target << ": the replica differs from its source";
  }

  void GuestWrite(const std::string& target, uint64_t block, uint8_t seed) {
    libvirt_.GuestWrite("vm1", target, block * B, Pattern(std::min(B, kSize - block * B), seed));
  }

  std::vector<std::string> Checkpoints() { return *libvirt_.ListCheckpoints("vm1"); }
  // The checkpoint a round started now creates.
  std::string CheckpointNow() const { return "vs-" + std::to_string(ToUnixMillis(clock_.WallNow())); }
  // A fault hook (of the peer, the storage or libvirt) failing `method` with `status`, passing the rest.
  static auto FailOn(std::string_view method, Status status) {
    return [method, status](std::string_view called, const auto&...) { return called == method ? status : Status::Ok(); };
  }
  // A round that must fail, under whatever faults the test set, with `code` and a message containing `message`;
  // clears every fault hook afterwards.
  void FailedRound(Code code, const std::string& message) {
    auto round = Round();
    peer_.fault = nullptr;
    primary_storage_.fault = nullptr;
    libvirt_.fault = nullptr;
    ASSERT_FALSE(round.ok()) << "the round was expected to fail";
    EXPECT_EQ(round.status().code(), code) << round.status().ToString();
    EXPECT_THAT(round.status().message(), HasSubstr(message));
  }
  // A guest write to vda's `block`, then a round that must go on incrementally from `base`, sending
  // `bytes_sent` (that block and whatever earlier failed rounds left unsent).
  AppliedRound IncrementalRoundFrom(const std::string& base, uint64_t block, uint8_t seed, uint64_t bytes_sent) {
    GuestWrite("vda", block, seed);
    const AppliedRound next = GoodRound();
    EXPECT_EQ(next.mode(), virtshadow::v1::ROUND_MODE_INCREMENTAL);
    EXPECT_EQ(libvirt_.backups.back().incremental_from, base);
    EXPECT_EQ(next.bytes_sent(), bytes_sent);
    return next;
  }
  // The backup job a call started was ended, once: by the call's own end (EndBackup called exactly once since
  // `ends_before`), never left running nor ended again.
  void ExpectJobEndedOnce(int ends_before) {
    EXPECT_FALSE(libvirt_.domains.at("vm1").job.has_value()) << "the backup job was left running";
    EXPECT_EQ(libvirt_.end_backup_calls, ends_before + 1);
  }
  ReplicationRecord PrimaryRecord() { return *replicator_.Record(kUuid); }

  bool ShadowHasOverlays() const {
    for (const auto& [path, image] : shadow_storage_.images) {
      if (path.ends_with(kOverlaySuffix)) return true;
    }
    return false;
  }

  FakeClock clock_;
  FakeBackupHypervisor libvirt_;  // the primary's libvirtd
  store::MemoryStore primary_store_;
  store::MemoryStore shadow_store_;
  FakeReplicaStorage::ExportResolver exports_ = [this](const std::string& uri, const std::vector<std::string>& contexts,
                                                       IoCounts& counts) {
    return libvirt_.ConnectExport(uri, contexts, counts);
  };
  FakeReplicaStorage primary_storage_{exports_};
  FakeReplicaStorage shadow_storage_{exports_};
  std::unique_ptr<ReplicaKeeper> keeper_;
  InProcessPeer peer_{"h2"};
  Replicator replicator_{libvirt_, peer_, primary_storage_, primary_store_, clock_,
                         ReplicatorOptions{"h1", "10.0.0.1"}};
};

TEST_F(ReplicatorTest, FirstRoundIsFullAndSendsNoZeroBlocks) {
  clock_.Advance(std::chrono::seconds(1));
  const std::string expected_checkpoint = "vs-" + std::to_string(ToUnixMillis(clock_.WallNow()));
  auto round = replicator_.RunRound(Target(), kExportPort);
  ASSERT_TRUE(round.ok()) << round.status().ToString();
  ExpectReplicaIsFrozenSource("vda", kVda);

  EXPECT_EQ(round->mode(), virtshadow::v1::ROUND_MODE_FULL);
  EXPECT_EQ(round->checkpoint(), expected_checkpoint);
  EXPECT_EQ(round->taken_unix_ms(), ToUnixMillis(clock_.WallNow()));
  EXPECT_EQ(round->bytes_sent(), 2 * B + 4096);  // blocks 0, 3 and the short block 8
  EXPECT_EQ(round->bytes_zeroed(), 6 * B);
  EXPECT_EQ(round->changed_bytes(), kSize);
  EXPECT_NE(round->digest(), 0u);
  EXPECT_THAT(Checkpoints(), ElementsAre(expected_checkpoint));

  ASSERT_EQ(libvirt_.backups.size(), 1u);
  const virt::PullBackupRequest& backup = libvirt_.backups[0];
  EXPECT_EQ(backup.domain, "vm1");
  EXPECT_EQ(backup.incremental_from, "");
  EXPECT_EQ(backup.new_checkpoint, expected_checkpoint);
  EXPECT_EQ(backup.listen_address, "10.0.0.1");
  EXPECT_EQ(backup.port, kExportPort);
  ASSERT_EQ(backup.disks.size(), 1u);
  EXPECT_EQ(backup.disks[0].target, "vda");
  EXPECT_EQ(backup.disks[0].source_path, kVda);
  EXPECT_TRUE(backup.disks[0].join_checkpoint);
  EXPECT_FALSE(backup.disks[0].incremental);
  EXPECT_FALSE(libvirt_.domains.at("vm1").job.has_value());

  const ReplicationRecord record = PrimaryRecord();
  EXPECT_EQ(record.vm_name(), "vm1");
  EXPECT_EQ(record.shadow_host(), "h2");
  EXPECT_EQ(record.rounds_applied(), 1u);
  EXPECT_EQ(record.rounds_failed(), 0u);
  EXPECT_EQ(record.applied().checkpoint(), expected_checkpoint);
  EXPECT_EQ(record.applied().digest(), round->digest());

  auto held = keeper_->List();
  ASSERT_TRUE(held.ok());
  ASSERT_EQ(held->size(), 1u);
  EXPECT_EQ((*held)[0].applied().checkpoint(), expected_checkpoint);
  EXPECT_EQ((*held)[0].applied().bytes_sent(), 2 * B + 4096);
  EXPECT_EQ((*held)[0].primary_host(), "h1");
}

TEST_F(ReplicatorTest, LaterRoundsAreIncrementalAndSendOnlyDirtyBlocks) {
  const AppliedRound first = GoodRound();
  GuestWrite("vda", 2, 10);
  GuestWrite("vda", 5, 11);
  libvirt_.GuestWrite("vm1", "vda", 3 * B, std::vector<std::byte>(B));  // the guest zeroed block 3

  const uint64_t exported_before = shadow_storage_.export_io.bytes_read;
  const AppliedRound second = GoodRound();
  EXPECT_EQ(second.mode(), virtshadow::v1::ROUND_MODE_INCREMENTAL);
  EXPECT_EQ(second.bytes_sent(), 2 * B);
  EXPECT_EQ(shadow_storage_.export_io.bytes_read - exported_before, 2 * B);
  EXPECT_EQ(second.bytes_zeroed(), B);
  EXPECT_EQ(second.changed_bytes(), 3 * B);
  EXPECT_EQ(libvirt_.backups.back().incremental_from, first.checkpoint());
  EXPECT_TRUE(libvirt_.backups.back().disks[0].incremental);
  EXPECT_THAT(Checkpoints(), ElementsAre(second.checkpoint()));

  const AppliedRound quiet = GoodRound();  // nothing written: nothing crosses
  EXPECT_EQ(quiet.mode(), virtshadow::v1::ROUND_MODE_INCREMENTAL);
  EXPECT_EQ(quiet.bytes_sent(), 0u);
  EXPECT_EQ(quiet.changed_bytes(), 0u);
  EXPECT_EQ(libvirt_.backups.back().incremental_from, second.checkpoint());
  EXPECT_THAT(Checkpoints(), ElementsAre(quiet.checkpoint()));
  EXPECT_EQ(PrimaryRecord().rounds_applied(), 3u);
  EXPECT_EQ(PrimaryRecord().bytes_sent_total(), first.bytes_sent() + second.bytes_sent());
}

// A Nova instance's checkpoints are known to libvirt only while a backup job starts: Nova undefines a stopped
// instance without libvirt's checkpoint-metadata flag (hard reboot, delete), which libvirt refuses while there is one.
TEST_F(ReplicatorTest, ANovaInstancesCheckpointsAreHiddenBetweenRoundsAndItsRoundsStayIncremental) {
  libvirt_.domains.at("vm1").metadata_xml =
      "<nova:instance xmlns:nova='http://openstack.org/xmlns/libvirt/nova/1.1'><nova:name>vm1</nova:name>"
      "</nova:instance>";
  const AppliedRound first = GoodRound();
  EXPECT_THAT(Checkpoints(), IsEmpty()) << "hidden once the job started";
  GuestWrite("vda", 2, 10);
  const AppliedRound second = IncrementalRoundFrom(first.checkpoint(), 2, 10, B);
  EXPECT_THAT(Checkpoints(), IsEmpty());
  EXPECT_THAT(libvirt_.discarded_bitmaps, ElementsAre("vm1 vda " + first.checkpoint()))
      << "the base's bitmap goes after the round, by name";
  ASSERT_EQ(libvirt_.domains.at("vm1").checkpoints.size(), 1u);
  EXPECT_EQ(libvirt_.domains.at("vm1").checkpoints[0].name, second.checkpoint());
  EXPECT_TRUE(libvirt_.domains.at("vm1").checkpoints[0].hidden);
}

TEST_F(ReplicatorTest, TheRecordKeepsTheMostRecentRoundsOldestFirst) {
  std::vector<std::string> checkpoints;
  for (int i = 0; i < kRecentRounds + 2; ++i) checkpoints.push_back(GoodRound().checkpoint());
  auto failed_round = [this] {
    peer_.fault = [](std::string_view, bool) { return Unavailable("down"); };
    auto round = Round();
    peer_.fault = nullptr;
    return round.ok();
  };
  EXPECT_FALSE(failed_round());  // failures are not rounds
  const ReplicationRecord record = PrimaryRecord();
  ASSERT_EQ(record.recent_rounds_size(), kRecentRounds);
  EXPECT_EQ(record.recent_rounds(0).checkpoint(), checkpoints[2]);
  EXPECT_EQ(record.recent_rounds(kRecentRounds - 1).checkpoint(), checkpoints.back());
  EXPECT_EQ(record.recent_rounds(kRecentRounds - 1).digest(), record.applied().digest());
  EXPECT_EQ(record.recent_rounds(0).mode(), virtshadow::v1::ROUND_MODE_INCREMENTAL);
}

TEST_F(ReplicatorTest, OnlyOurOwnCheckpointsAreDeleted) {
  GoodRound();
  libvirt_.AddForeignCheckpoint("vm1", "nightly-backup");
  GuestWrite("vda", 1, 3);
  const AppliedRound second = GoodRound();
  EXPECT_EQ(second.mode(), virtshadow::v1::ROUND_MODE_INCREMENTAL);
  EXPECT_EQ(second.bytes_sent(), B);
  EXPECT_THAT(Checkpoints(), ElementsAre("nightly-backup", second.checkpoint()));
  GuestWrite("vda", 6, 4);
  const AppliedRound third = GoodRound();
  EXPECT_EQ(third.bytes_sent(), B);
  EXPECT_THAT(Checkpoints(), ElementsAre("nightly-backup", third.checkpoint()));
}

TEST_F(ReplicatorTest, ABrokenBitmapIsResyncedInTheSameCall) {
  GoodRound();
  GuestWrite("vda", 1, 20);
  GuestWrite("vda", 6, 21);
  libvirt_.KillQemu("vm1");
  GuestWrite("vda", 7, 22);  // after the restart: not in any bitmap at all

  const uint64_t exported_before = shadow_storage_.export_io.bytes_read;
  const AppliedRound resync = GoodRound();
  EXPECT_EQ(resync.mode(), virtshadow::v1::ROUND_MODE_RESYNC);
  EXPECT_EQ(resync.bytes_sent(), 3 * B);  // the differing blocks only
  EXPECT_EQ(shadow_storage_.export_io.bytes_read - exported_before, 3 * B);
  EXPECT_EQ(libvirt_.backups.back().incremental_from, "");
  EXPECT_THAT(Checkpoints(), ElementsAre(resync.checkpoint()));
  const ReplicationRecord record = PrimaryRecord();
  EXPECT_FALSE(record.resync_needed());
  EXPECT_EQ(record.rounds_failed(), 0u);
  EXPECT_EQ(record.rounds_applied(), 2u);

  GuestWrite("vda", 4, 23);  // the new chain works
  const AppliedRound next = GoodRound();
  EXPECT_EQ(next.mode(), virtshadow::v1::ROUND_MODE_INCREMENTAL);
  EXPECT_EQ(next.bytes_sent(), B);
  EXPECT_EQ(libvirt_.backups.back().incremental_from, resync.checkpoint());
}

TEST_F(ReplicatorTest, ALostCheckpointIsResynced) {
  const AppliedRound first = GoodRound();
  ASSERT_TRUE(libvirt_.DeleteCheckpoint("vm1", first.checkpoint()).ok());  // someone deleted our chain
  GuestWrite("vda", 2, 30);
  const AppliedRound resync = GoodRound();
  EXPECT_EQ(resync.mode(), virtshadow::v1::ROUND_MODE_RESYNC);
  EXPECT_EQ(resync.bytes_sent(), B);
  EXPECT_THAT(Checkpoints(), ElementsAre(resync.checkpoint()));
}

TEST_F(ReplicatorTest, ADeletedReplicaIsSeededAgain) {
  GoodRound();
  GuestWrite("vda", 2, 40);
  ASSERT_TRUE(shadow_storage_.Remove(kVda).ok());
  const AppliedRound full = GoodRound();
  EXPECT_EQ(full.mode(), virtshadow::v1::ROUND_MODE_FULL);
  EXPECT_EQ(full.bytes_sent(), 3 * B + 4096);  // blocks 0, 2, 3 and the short block 8
  EXPECT_THAT(Checkpoints(), ElementsAre(full.checkpoint()));
}

TEST_F(ReplicatorTest, AGrownDiskGrowsItsReplica) {
  GoodRound();
  libvirt_.GuestWrite("vm1", "vda", kSize + B, Pattern(B, 7));  // now 10 blocks and 4096 bytes
  const AppliedRound grown = GoodRound();
  EXPECT_EQ(grown.mode(), virtshadow::v1::ROUND_MODE_INCREMENTAL);
  EXPECT_EQ(grown.bytes_sent(), B + 4096);  // blocks 9 and 10; the rest of the new space reads as zeros
  auto replica = shadow_storage_.Inspect(kVda);
  ASSERT_TRUE(replica.ok() && replica->has_value());
  EXPECT_EQ((*replica)->virtual_size, 10 * B + 4096);
}

TEST_F(ReplicatorTest, ADigestMismatchDiscardsTheRoundAndCountsTheFailure) {
  GoodRound();
  const auto replica_before = shadow_storage_.Contents(kVda);
  GuestWrite("vda", 2, 50);
  // Every write into the round's overlay arrives with one bit flipped.
  shadow_storage_.on_write = [](const std::string& path, uint64_t, std::vector<std::byte>& data) {
    if (path.ends_with(kOverlaySuffix)) data[data.size() / 2] ^= std::byte{1};
  };
  auto round = Round();
  ASSERT_FALSE(round.ok());
  EXPECT_EQ(round.status().code(), Code::kDataLoss);
  EXPECT_THAT(round.status().message(), HasSubstr("digests differ from the source's"));
  EXPECT_THAT(round.status().message(), HasSubstr("vda"));
  EXPECT_TRUE(shadow_storage_.Contents(kVda) == replica_before);
  EXPECT_FALSE(ShadowHasOverlays());
  EXPECT_FALSE(libvirt_.domains.at("vm1").job.has_value());
  auto held = keeper_->List();
  ASSERT_TRUE(held.ok() && held->size() == 1u);
  EXPECT_EQ((*held)[0].phase(), ReplicaRecord::PHASE_IDLE);

  const ReplicationRecord record = PrimaryRecord();
  EXPECT_EQ(record.rounds_failed(), 1u);
  EXPECT_EQ(record.consecutive_failures(), 1u);
  EXPECT_EQ(record.rounds_applied(), 1u);
  EXPECT_THAT(record.last_error(), HasSubstr("digests differ"));
  EXPECT_EQ(record.last_failure_unix_ms(), ToUnixMillis(clock_.WallNow()));

  shadow_storage_.on_write = nullptr;
  GoodRound();
  EXPECT_EQ(PrimaryRecord().consecutive_failures(), 0u);
}

// A one-off corruption on the wire is a failed round like any other: reported and counted, not
// hidden by the retry that exists for broken bitmaps.
TEST_F(ReplicatorTest, AOneOffDigestMismatchIsReportedNotRetriedAway) {
  GoodRound();
  GuestWrite("vda", 2, 51);
  bool corrupted = false;
  shadow_storage_.on_write = [&corrupted](const std::string& path, uint64_t, std::vector<std::byte>& data) {
    if (path.ends_with(kOverlaySuffix) && !corrupted) {
      data[0] ^= std::byte{1};
      corrupted = true;
    }
  };
  auto round = Round();
  ASSERT_TRUE(corrupted);
  EXPECT_FALSE(round.ok()) << "the corrupted round was retried as " << (round.ok() ? round->mode() : 0);
  EXPECT_EQ(PrimaryRecord().rounds_failed(), 1u);
}

TEST_F(ReplicatorTest, ARawDiskIsResyncedEveryRound) {
  libvirt_.AddDisk("vm1", "vdb", kVdb, "raw", 4 * B)->bytes = DataInBlocks(4 * B, {1, 2});
  const AppliedRound first = GoodRound();
  ExpectReplicaIsFrozenSource("vdb", kVdb);
  EXPECT_EQ(first.mode(), virtshadow::v1::ROUND_MODE_FULL);
  EXPECT_EQ(first.bytes_sent(), 2 * B + 4096 + 2 * B);
  ASSERT_EQ(libvirt_.backups.back().disks.size(), 2u);
  EXPECT_TRUE(libvirt_.backups.back().disks[0].join_checkpoint);
  EXPECT_FALSE(libvirt_.backups.back().disks[1].join_checkpoint);  // raw images keep no bitmaps
  ASSERT_TRUE(shadow_storage_.Inspect(kVdb).ok());
  EXPECT_EQ((*shadow_storage_.Inspect(kVdb))->format, "raw");

  for (uint8_t round = 0; round < 2; ++round) {
    GuestWrite("vda", 4, 60 + round);
    libvirt_.GuestWrite("vm1", "vdb", 3 * B + 17, Pattern(10, 70 + round));
    const AppliedRound next = GoodRound();
    ExpectReplicaIsFrozenSource("vdb", kVdb);
    EXPECT_EQ(next.mode(), virtshadow::v1::ROUND_MODE_RESYNC);
    EXPECT_EQ(next.bytes_sent(), 2 * B);  // vda's dirty block, vdb's differing block
    const virt::PullBackupRequest& backup = libvirt_.backups.back();
    EXPECT_FALSE(backup.incremental_from.empty());
    EXPECT_TRUE(backup.disks[0].incremental);
    EXPECT_FALSE(backup.disks[1].incremental);
    EXPECT_THAT(Checkpoints(), ElementsAre(next.checkpoint()));
  }
}

TEST_F(ReplicatorTest, ARawOnlyVmReplicatesWithoutCheckpoints) {
  libvirt_.AddDomain("vm2", "uuid-of-vm2");
  libvirt_.AddDisk("vm2", "vda", "/images/vm2.img", "raw", 3 * B)->bytes = DataInBlocks(3 * B, {1});
  const ReplicationTarget target = Target("vm2");
  clock_.Advance(std::chrono::seconds(1));
  auto first = replicator_.RunRound(target, kExportPort);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->checkpoint(), "");
  libvirt_.GuestWrite("vm2", "vda", 2 * B, Pattern(B, 1));
  clock_.Advance(std::chrono::seconds(1));
  auto second = replicator_.RunRound(target, kExportPort);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(second->mode(), virtshadow::v1::ROUND_MODE_RESYNC);
  EXPECT_EQ(second->bytes_sent(), B);
  EXPECT_TRUE(shadow_storage_.Contents("/images/vm2.img") == libvirt_.LastFrozen("vm2", "vda"));
  EXPECT_THAT(*libvirt_.ListCheckpoints("vm2"), IsEmpty());
}

TEST_F(ReplicatorTest, VerifyComparesBlocksAndNamesTheCorruptRange) {
  auto before = replicator_.Verify(Target(), kExportPort);
  ASSERT_FALSE(before.ok());
  EXPECT_EQ(before.status().code(), Code::kFailedPrecondition);
  EXPECT_THAT(before.status().message(), HasSubstr("no applied round"));

  const AppliedRound round = GoodRound();
  auto clean = replicator_.Verify(Target(), kExportPort);
  ASSERT_TRUE(clean.ok()) << clean.status().ToString();
  EXPECT_TRUE(clean->ok());
  EXPECT_EQ(clean->checkpoint, round.checkpoint());
  ASSERT_EQ(clean->disks.size(), 1u);
  EXPECT_EQ(clean->disks[0].target, "vda");
  EXPECT_EQ(clean->disks[0].replica_path, kVda);
  EXPECT_EQ(clean->disks[0].blocks_compared, 9u);
  EXPECT_EQ(clean->disks[0].blocks_mismatched, 0u);
  EXPECT_EQ(clean->disks[0].mismatches, "");

  GuestWrite("vda", 2, 80);
  GuestWrite("vda", 3, 81);
  shadow_storage_.images.at(kVda)->bytes[5 * B + 100] ^= std::byte{0x40};  // rot in the replica
  auto report = replicator_.Verify(Target(), kExportPort);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_FALSE(report->ok());
  ASSERT_EQ(report->disks.size(), 1u);
  EXPECT_EQ(report->disks[0].blocks_changed_since, 2u);
  EXPECT_EQ(report->disks[0].blocks_compared, 7u);
  EXPECT_EQ(report->disks[0].blocks_mismatched, 1u);
  EXPECT_EQ(report->disks[0].mismatches, std::to_string(5 * B) + "+" + std::to_string(B));

  // Verify reads without touching the chain or leaving a job behind.
  EXPECT_THAT(Checkpoints(), ElementsAre(round.checkpoint()));
  EXPECT_EQ(libvirt_.backups.back().new_checkpoint, "");
  EXPECT_EQ(libvirt_.backups.back().incremental_from, round.checkpoint());
  EXPECT_FALSE(libvirt_.domains.at("vm1").job.has_value());
}

TEST_F(ReplicatorTest, AVmWithoutFileDisksIsRefused) {
  libvirt_.AddDomain("vm3", "uuid-of-vm3").extra_devices_xml =
      "<disk type='network' device='disk'><driver name='qemu' type='raw'/>"
      "<source protocol='rbd' name='pool/vm3'/><target dev='vda' bus='virtio'/></disk>";
  auto round = replicator_.RunRound(Target("vm3"), kExportPort);
  ASSERT_FALSE(round.ok());
  EXPECT_EQ(round.status().code(), Code::kFailedPrecondition);
  EXPECT_THAT(round.status().message(), HasSubstr("vm3 has no file-backed disk to replicate"));
  EXPECT_THAT(peer_.calls, IsEmpty());
  EXPECT_TRUE(libvirt_.backups.empty());
  auto record = replicator_.Record("uuid-of-vm3");
  ASSERT_TRUE(record.ok());
  EXPECT_EQ(record->rounds_failed(), 1u);
}

TEST_F(ReplicatorTest, AnUnsupportedImageFormatIsRefusedNamingTheDisk) {
  libvirt_.AddDomain("vm4", "uuid-of-vm4");
  libvirt_.AddDisk("vm4", "vdc", "/images/vm4.vmdk", "vmdk", B);
  auto round = replicator_.RunRound(Target("vm4"), kExportPort);
  ASSERT_FALSE(round.ok());
  EXPECT_EQ(round.status().code(), Code::kFailedPrecondition);
  EXPECT_THAT(round.status().message(), HasSubstr("disk vdc of vm4 is vmdk"));
}

// Each step's time is recorded where it was spent (the clock moves only inside the calls of that step), and the
// duration is their sum: status and the benchmarks read where a round's time goes from this.
TEST_F(ReplicatorTest, ARoundRecordsWhereItsTimeWent) {
  GoodRound();
  GuestWrite("vda", 1, 90);
  peer_.fault = [this](std::string_view method, bool after) -> Status {
    if (after) return Status::Ok();
    if (method == "GetReplica") clock_.Advance(std::chrono::milliseconds(30));
    if (method == "ApplyRound") clock_.Advance(std::chrono::milliseconds(700));
    if (method == "FinishRound") clock_.Advance(std::chrono::milliseconds(300));
    return Status::Ok();
  };
  libvirt_.fault = [this](std::string_view method, const std::string&) -> Status {
    if (method == "BeginPullBackup") clock_.Advance(std::chrono::milliseconds(200));
    if (method == "EndBackup") clock_.Advance(std::chrono::milliseconds(50));
    return Status::Ok();
  };
  primary_storage_.fault = [this](std::string_view op, const std::string&) -> Status {
    if (op == "ConnectExport") clock_.Advance(std::chrono::milliseconds(40));
    return Status::Ok();
  };
  auto round = Round();
  peer_.fault = nullptr;
  libvirt_.fault = nullptr;
  primary_storage_.fault = nullptr;
  ASSERT_TRUE(round.ok()) << round.status().ToString();
  const auto& steps = round->steps();
  EXPECT_EQ(steps.plan_ms(), 30u);
  EXPECT_EQ(steps.freeze_ms(), 200u);
  EXPECT_EQ(steps.connect_ms(), 40u);  // one connection for the disk, for the whole round
  EXPECT_EQ(steps.copy_ms(), 700u);
  EXPECT_EQ(steps.verify_ms(), 0u);
  EXPECT_EQ(steps.commit_ms(), 300u);
  EXPECT_EQ(steps.end_ms(), 50u);
  EXPECT_EQ(round->duration_ms(), 1320u);
  EXPECT_EQ(PrimaryRecord().applied().steps().copy_ms(), 700u);
  EXPECT_EQ(PrimaryRecord().applied().duration_ms(), 1320u);
}

// The export is a frozen view, so this host reads the blocks it expects while the shadow host copies them, and not
// again after the answer: the verify no longer adds a second read to the round.
TEST_F(ReplicatorTest, ThisHostReadsTheRoundsBlocksWhileTheShadowHostCopiesThemAndOnlyOnce) {
  GoodRound();
  GuestWrite("vda", 2, 77);
  const uint64_t before = primary_storage_.export_io.bytes_read;
  bool read_during_copy = false;
  peer_.fault = [&](std::string_view method, bool after) -> Status {
    if (method != "ApplyRound" || !after) return Status::Ok();
    // The shadow host has copied; its answer has not reached this host yet.
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (primary_storage_.export_io.bytes_read - before < B && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    read_during_copy = primary_storage_.export_io.bytes_read - before == B;
    return Status::Ok();
  };
  auto round = Round();
  peer_.fault = nullptr;
  ASSERT_TRUE(round.ok()) << round.status().ToString();
  EXPECT_EQ(round->bytes_sent(), B);
  EXPECT_TRUE(read_during_copy) << "this host read nothing while the shadow host copied";
  EXPECT_EQ(primary_storage_.export_io.bytes_read - before, B) << "the block was read again after the answer";
}

// A shadow host that copied fewer blocks than the dirty bitmap calls for, and reported only those (with their
// correct digests), must not get its round committed: the replica would lack the block it left out.
TEST_F(ReplicatorTest, AnAnswerThatLeavesOutADirtyBlockIsDiscarded) {
  GoodRound();
  const auto replica_before = shadow_storage_.Contents(kVda);
  GuestWrite("vda", 2, 77);
  GuestWrite("vda", 5, 78);
  peer_.edit_apply_reply = [](virtshadow::v1::ApplyRoundReply& reply) {
    auto* disk = reply.mutable_disks(0);
    ASSERT_EQ(disk->ops_size(), 2);
    disk->mutable_ops()->DeleteSubrange(1, 1);  // only block 2 reported
    disk->mutable_digests()->Truncate(1);
  };
  auto round = Round();
  peer_.edit_apply_reply = nullptr;
  ASSERT_FALSE(round.ok());
  EXPECT_EQ(round.status().code(), Code::kDataLoss);
  EXPECT_THAT(round.status().message(), HasSubstr("the export's maps call for 131072 bytes of blocks"));
  EXPECT_TRUE(shadow_storage_.Contents(kVda) == replica_before);
  EXPECT_FALSE(ShadowHasOverlays());
}

TEST_F(ReplicatorTest, AShadowdCrashAfterCopyingIsRecoveredByTheNextRound) {
  const AppliedRound first = GoodRound();
  const auto replica_before = shadow_storage_.Contents(kVda);
  GuestWrite("vda", 1, 90);
  peer_.fault = [this](std::string_view method, bool after) -> Status {
    if (method != "ApplyRound" || !after) return Status::Ok();
    RestartShadow();  // killed right after it copied: the reply never left
    return Unavailable("connection reset by peer");
  };
  auto failed = Round();
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), Code::kUnavailable);
  EXPECT_TRUE(shadow_storage_.Contents(kVda) == replica_before);
  EXPECT_FALSE(ShadowHasOverlays());
  EXPECT_FALSE(libvirt_.domains.at("vm1").job.has_value());
  peer_.fault = nullptr;

  // Both writes since the replica's checkpoint cross.
  const AppliedRound next = IncrementalRoundFrom(first.checkpoint(), 6, 91, 2 * B);
  EXPECT_THAT(Checkpoints(), ElementsAre(next.checkpoint()));
}

TEST_F(ReplicatorTest, ALostCommitReplyIsPickedUpFromTheReplica) {
  GoodRound();
  GuestWrite("vda", 1, 92);
  peer_.fault = [](std::string_view method, bool after) {
    return method == "FinishRound" && after ? Unavailable("deadline exceeded") : Status::Ok();
  };
  auto failed = Round();
  ASSERT_FALSE(failed.ok());
  peer_.fault = nullptr;
  const std::string committed = (*keeper_->List())[0].applied().checkpoint();
  EXPECT_NE(committed, PrimaryRecord().applied().checkpoint());
  // The failed round's job ended but its checkpoint stays: the replica is at it.
  EXPECT_FALSE(libvirt_.domains.at("vm1").job.has_value());
  EXPECT_THAT(Checkpoints(), Contains(committed));
  IncrementalRoundFrom(committed, 6, 93, B);
}

// A commit that failed on the shadow host is finished by the next round's ApplyRound (GetReplica reports it as
// begun and settles nothing): the next round builds on that round instead of resyncing.
TEST_F(ReplicatorTest, AFailedCommitIsFinishedByTheNextRoundWhichBuildsOnIt) {
  GoodRound();
  GuestWrite("vda", 1, 96);
  int failures = 1;
  shadow_storage_.fault = [&failures](std::string_view op, const std::string&) {
    return op == "Commit" && failures-- > 0 ? Unavailable("qemu-img commit: I/O error") : Status::Ok();
  };
  ASSERT_FALSE(Round().ok());
  const virtshadow::v1::ReplicaRecord stuck = (*keeper_->List())[0];
  ASSERT_EQ(stuck.phase(), virtshadow::v1::ReplicaRecord::PHASE_COMMITTING);
  IncrementalRoundFrom(stuck.pending().checkpoint(), 6, 97, B);
  EXPECT_EQ((*keeper_->List())[0].phase(), virtshadow::v1::ReplicaRecord::PHASE_IDLE);
}

// A replica re-created by a round that then failed is blank, yet the next round must not treat it as
// the replica of the old checkpoint.
TEST_F(ReplicatorTest, AReplicaRecreatedByAFailedRoundIsNotUpdatedIncrementally) {
  GoodRound();
  GuestWrite("vda", 2, 94);
  ASSERT_TRUE(shadow_storage_.Remove(kVda).ok());
  peer_.fault = [](std::string_view method, bool after) {
    return method == "FinishRound" && !after ? Unavailable("connection refused") : Status::Ok();
  };
  ASSERT_FALSE(Round().ok());
  peer_.fault = nullptr;
  GoodRound();  // fails: the replica holds only the blocks dirtied since the first round
}

// Where a round's backup job ends. Every path that started one ends it exactly once; a failed round keeps the
// checkpoint its backup created (the shadow host may have committed to it) until the next applied round
// deletes every older one.
TEST_F(ReplicatorTest, AFailureBeforeTheCopyEndsTheJobAndTheNextRoundDropsItsCheckpoint) {
  const AppliedRound first = GoodRound();
  GuestWrite("vda", 2, 94);
  const int ends_before = libvirt_.end_backup_calls;
  primary_storage_.fault = FailOn("ConnectExport", Unavailable("no route to 10.0.0.1"));
  FailedRound(Code::kUnavailable, "round of vm1 to h2: no route to 10.0.0.1");
  EXPECT_EQ(peer_.calls.back(), "GetReplica");  // nothing reached the shadow host's copy
  ExpectJobEndedOnce(ends_before);
  EXPECT_THAT(Checkpoints(), ElementsAre(first.checkpoint(), CheckpointNow()));
  EXPECT_EQ(PrimaryRecord().applied().checkpoint(), first.checkpoint());
  EXPECT_EQ(PrimaryRecord().rounds_failed(), 1u);

  const AppliedRound next = IncrementalRoundFrom(first.checkpoint(), 2, 95, B);
  EXPECT_THAT(Checkpoints(), ElementsAre(next.checkpoint()));
}

TEST_F(ReplicatorTest, AFailureOnTheShadowHostEndsTheJob) {
  const AppliedRound first = GoodRound();
  const auto replica_before = shadow_storage_.Contents(kVda);
  GuestWrite("vda", 2, 96);
  const int ends_before = libvirt_.end_backup_calls;
  peer_.fault = FailOn("ApplyRound", Unavailable("connection refused"));
  FailedRound(Code::kUnavailable, "round of vm1 to h2: connection refused");
  ExpectJobEndedOnce(ends_before);
  EXPECT_THAT(Checkpoints(), ElementsAre(first.checkpoint(), CheckpointNow()));
  EXPECT_TRUE(shadow_storage_.Contents(kVda) == replica_before);
}

// The shadow host's block ranges are checked before anything is read by them, without an offset + length that can
// wrap: 2^64 - B + 2B is B, which used to pass as "inside the disk".
TEST_F(ReplicatorTest, AShadowHostsRangeThatWrapsPast2To64IsRefused) {
  GoodRound();
  for (uint64_t length : {2 * B, kSize + B}) {
    GuestWrite("vda", 2, 97);
    peer_.edit_apply_reply = [length](virtshadow::v1::ApplyRoundReply& reply) {
      for (auto& disk : *reply.mutable_disks()) {
        disk.clear_ops();
        auto* op = disk.add_ops();
        op->set_offset(UINT64_MAX - B + 1);
        op->set_length(length);
      }
    };
    FailedRound(Code::kDataLoss, "malformed block range 18446744073709486080+" + std::to_string(length));
    peer_.edit_apply_reply = nullptr;
  }
}

// Ending the job is part of the round: when libvirt refuses, the round failed (though the shadow host
// committed), the job is not ended a second time, and the next round ends it as a stale job of ours.
TEST_F(ReplicatorTest, AJobThatWouldNotEndFailsTheRoundAndTheNextRoundEndsIt) {
  GoodRound();
  GuestWrite("vda", 4, 97);
  const int ends_before = libvirt_.end_backup_calls;
  libvirt_.fault = FailOn("EndBackup", Internal("virDomainAbortJob failed"));
  FailedRound(Code::kInternal, "ending the backup of vm1: virDomainAbortJob failed");
  EXPECT_EQ(libvirt_.end_backup_calls, ends_before + 1);
  EXPECT_TRUE(libvirt_.domains.at("vm1").job.has_value());
  const std::string committed = (*keeper_->List())[0].applied().checkpoint();
  EXPECT_EQ(committed, CheckpointNow());
  EXPECT_EQ(PrimaryRecord().rounds_failed(), 1u);
  IncrementalRoundFrom(committed, 6, 98, B);  // ends the stale job of ours first
}

TEST_F(ReplicatorTest, AFailedRoundReportsItsOwnErrorNotTheJobsEnd) {
  GoodRound();
  GuestWrite("vda", 4, 99);
  const int ends_before = libvirt_.end_backup_calls;
  peer_.fault = FailOn("ApplyRound", Unavailable("connection refused"));
  libvirt_.fault = FailOn("EndBackup", Internal("virDomainAbortJob failed"));
  FailedRound(Code::kUnavailable, "round of vm1 to h2: connection refused");  // not the job's end
  EXPECT_EQ(libvirt_.end_backup_calls, ends_before + 1);
}

// A backup libvirt would not start leaves nothing to end, and only a refused base checkpoint means a new chain.
TEST_F(ReplicatorTest, ABackupThatDidNotStartEndsNothingAndIsNotRetriedAsAResync) {
  const AppliedRound first = GoodRound();
  const size_t backups_before = libvirt_.backups.size();
  const int ends_before = libvirt_.end_backup_calls;
  libvirt_.fault = FailOn("BeginPullBackup", Unavailable("libvirtd is restarting"));
  FailedRound(Code::kUnavailable, "libvirtd is restarting");
  EXPECT_EQ(libvirt_.backups.size(), backups_before);
  EXPECT_EQ(libvirt_.end_backup_calls, ends_before);
  EXPECT_THAT(Checkpoints(), ElementsAre(first.checkpoint()));
  EXPECT_FALSE(PrimaryRecord().resync_needed());
  IncrementalRoundFrom(first.checkpoint(), 7, 102, B);
}

TEST_F(ReplicatorTest, AFinalRoundCopiesFromTheReplicasCheckpointWithoutANewOne) {
  const AppliedRound first = GoodRound();
  GuestWrite("vda", 5, 100);
  const int ends_before = libvirt_.end_backup_calls;
  clock_.Advance(std::chrono::seconds(1));
  auto last = replicator_.RunFinalRound(Target(), kExportPort);
  ASSERT_TRUE(last.ok()) << last.status().ToString();
  ExpectReplicaIsFrozenSource("vda", kVda);
  EXPECT_EQ(last->mode(), virtshadow::v1::ROUND_MODE_INCREMENTAL);
  EXPECT_EQ(last->checkpoint(), first.checkpoint());
  EXPECT_EQ(last->bytes_sent(), B);
  const virt::PullBackupRequest& backup = libvirt_.backups.back();
  EXPECT_EQ(backup.new_checkpoint, "");
  EXPECT_EQ(backup.incremental_from, first.checkpoint());
  EXPECT_FALSE(backup.disks[0].join_checkpoint);
  ExpectJobEndedOnce(ends_before);
  EXPECT_THAT(Checkpoints(), ElementsAre(first.checkpoint()));
  EXPECT_EQ(PrimaryRecord().rounds_applied(), 2u);
  EXPECT_EQ(PrimaryRecord().applied().checkpoint(), first.checkpoint());
}

TEST_F(ReplicatorTest, AFailedFinalRoundEndsItsJobAndIsCounted) {
  const AppliedRound first = GoodRound();
  GuestWrite("vda", 5, 101);
  const int ends_before = libvirt_.end_backup_calls;
  peer_.fault = FailOn("ApplyRound", Unavailable("connection refused"));
  auto failed = replicator_.RunFinalRound(Target(), kExportPort);
  peer_.fault = nullptr;
  ASSERT_FALSE(failed.ok());
  EXPECT_THAT(failed.status().message(), HasSubstr("final round"));
  EXPECT_THAT(failed.status().message(), HasSubstr("round of vm1 to h2: connection refused"));
  ExpectJobEndedOnce(ends_before);
  EXPECT_THAT(Checkpoints(), ElementsAre(first.checkpoint()));
  EXPECT_EQ(PrimaryRecord().rounds_failed(), 1u);
}

TEST_F(ReplicatorTest, AFinalRoundCannotSeedAReplica) {
  auto refused = replicator_.RunFinalRound(Target(), kExportPort);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("cannot seed it"));
  EXPECT_TRUE(libvirt_.backups.empty());
  EXPECT_EQ(libvirt_.end_backup_calls, 0);
}

TEST_F(ReplicatorTest, AVerifyThatFailsMidwayEndsItsJob) {
  const AppliedRound round = GoodRound();
  const int ends_before = libvirt_.end_backup_calls;
  peer_.fault = FailOn("ReplicaDigests", Unavailable("h2 went away"));
  auto report = replicator_.Verify(Target(), kExportPort);
  peer_.fault = nullptr;
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), Code::kUnavailable);
  ExpectJobEndedOnce(ends_before);
  EXPECT_THAT(Checkpoints(), ElementsAre(round.checkpoint()));
}

TEST_F(ReplicatorTest, AVerifyWhoseJobWouldNotEndFails) {
  GoodRound();
  libvirt_.fault = FailOn("EndBackup", Internal("virDomainAbortJob failed"));
  auto report = replicator_.Verify(Target(), kExportPort);
  libvirt_.fault = nullptr;
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), Code::kInternal);
  auto again = replicator_.Verify(Target(), kExportPort);  // ends the stale job first
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_TRUE(again->ok());
}

TEST_F(ReplicatorTest, RecoverEndsOnlyOurOwnStaleBackupJobs) {
  virt::PullBackupRequest stale{"vm1", {{"vda", kVda, true, false}}, "", "", "10.0.0.1", 10809};
  ASSERT_TRUE(libvirt_.BeginPullBackup(stale).ok());
  libvirt_.AddDomain("vm5", "uuid-of-vm5").foreign_job_xml =
      "<domainbackup mode='push'><disks><disk name='vda'/></disks></domainbackup>";
  Status recovered = replicator_.Recover({"vm1", "vm5", "undefined-meanwhile"});
  ASSERT_TRUE(recovered.ok()) << recovered.ToString();
  EXPECT_FALSE(libvirt_.domains.at("vm1").job.has_value());
  EXPECT_TRUE(libvirt_.domains.at("vm5").foreign_job_xml.has_value());
}

// A crash between a round's redefinition of a Nova instance's checkpoint and its hiding leaves libvirt knowing it
// (on disk): the revived host's nova-compute then cannot undefine the instance evacuated from it, and exits.
// Recover hides ours again on Nova instances only; an admin's checkpoint and other domains' stay listed.
TEST_F(ReplicatorTest, RecoverHidesTheCheckpointsACrashLeftKnownOnNovaInstancesOnly) {
  libvirt_.domains.at("vm1").metadata_xml =
      "<nova:instance xmlns:nova='http://openstack.org/xmlns/libvirt/nova/1.1'><nova:name>vm1</nova:name>"
      "</nova:instance>";
  libvirt_.AddForeignCheckpoint("vm1", "vs-1700000000000");  // ours, as the crash left it
  libvirt_.AddForeignCheckpoint("vm1", "nightly-backup");
  libvirt_.AddDomain("vm5", "uuid-of-vm5");
  libvirt_.AddForeignCheckpoint("vm5", "vs-1700000000000");  // not Nova's: libvirt keeps knowing it
  Status recovered = replicator_.Recover({"vm1", "vm5", "undefined-meanwhile"});
  ASSERT_TRUE(recovered.ok()) << recovered.ToString();
  EXPECT_THAT(Checkpoints(), ElementsAre("nightly-backup"));
  EXPECT_THAT(*libvirt_.ListCheckpoints("vm5"), ElementsAre("vs-1700000000000"));
}

TEST_F(ReplicatorTest, AStaleJobOfOursDoesNotBlockARoundButAForeignOneDoes) {
  virt::PullBackupRequest stale{"vm1", {{"vda", kVda, true, false}}, "", "", "10.0.0.1", 10809};
  ASSERT_TRUE(libvirt_.BeginPullBackup(stale).ok());
  GoodRound();

  libvirt_.domains.at("vm1").foreign_job_xml = "<domainbackup mode='push'/>";
  auto blocked = Round();
  ASSERT_FALSE(blocked.ok());
  EXPECT_EQ(blocked.status().code(), Code::kAborted);
  EXPECT_TRUE(libvirt_.domains.at("vm1").foreign_job_xml.has_value());
  EXPECT_EQ(PrimaryRecord().consecutive_failures(), 1u);
}

TEST_F(ReplicatorTest, ForgetDropsTheRecordAndOurCheckpointsOnly) {
  GoodRound();
  libvirt_.AddForeignCheckpoint("vm1", "nightly-backup");
  Status forgotten = replicator_.Forget(kUuid, "vm1");
  ASSERT_TRUE(forgotten.ok()) << forgotten.ToString();
  EXPECT_THAT(Checkpoints(), ElementsAre("nightly-backup"));
  auto records = replicator_.ListRecords();
  ASSERT_TRUE(records.ok());
  EXPECT_THAT(*records, IsEmpty());
  EXPECT_TRUE(replicator_.Forget(kUuid, "undefined-meanwhile").ok());
}

TEST_F(ReplicatorTest, ForgetLeavesAnotherVmOfTheSameNameAlone) {
  GoodRound();
  // vm1 undefined and defined again under its name: a new UUID, in the middle of its own backup.
  libvirt_.domains.at("vm1").uuid = "uuid-of-the-new-vm1";
  virt::PullBackupRequest its_backup{"vm1", {{"vda", kVda, true, false}}, "", "", "10.0.0.1", 10809};
  ASSERT_TRUE(libvirt_.BeginPullBackup(its_backup).ok());
  const int end_backup_calls = libvirt_.end_backup_calls;
  const auto checkpoints_before = Checkpoints();
  ASSERT_FALSE(checkpoints_before.empty());

  Status forgotten = replicator_.Forget(kUuid, "vm1");
  ASSERT_TRUE(forgotten.ok()) << forgotten.ToString();
  EXPECT_TRUE(libvirt_.domains.at("vm1").job.has_value()) << "the new vm1's backup was ended";
  EXPECT_EQ(libvirt_.end_backup_calls, end_backup_calls);
  EXPECT_EQ(Checkpoints(), checkpoints_before);
  auto records = replicator_.ListRecords();
  ASSERT_TRUE(records.ok());
  EXPECT_THAT(*records, IsEmpty());
}

TEST_F(ReplicatorTest, ListRecordsHasOneRecordPerReplicatedVm) {
  GoodRound();
  libvirt_.AddDomain("vm2", "uuid-of-vm2");
  libvirt_.AddDisk("vm2", "vda", "/images/vm2.qcow2", "qcow2", 2 * B);
  ASSERT_TRUE(replicator_.RunRound(Target("vm2"), kExportPort).ok());
  auto records = replicator_.ListRecords();
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ((*records)[0].vm_uuid(), kUuid);
  EXPECT_EQ((*records)[1].vm_uuid(), "uuid-of-vm2");
}

// The export URI must be a valid NBD URI for an IPv6 address too (config.cc accepts IPv6 addresses and
// PeerTarget brackets them).
TEST_F(ReplicatorTest, ExportsOnAnIpv6AddressAreReachable) {
  Replicator ipv6(libvirt_, peer_, primary_storage_, primary_store_, clock_, ReplicatorOptions{"h1", "fd00::1"});
  auto round = Round(&ipv6);
  ASSERT_TRUE(round.ok()) << round.status().ToString();
  EXPECT_EQ(libvirt_.backups.back().listen_address, "fd00::1");
}

}  // namespace
}  // namespace vs::replication
