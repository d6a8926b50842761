// Lab tests of dirty-bitmap disk replication: real libvirt pull-mode backups with checkpoints on the primary,
// the shadow host's shadowd copying through NBD over the lab network into overlays, real kill -9s.
//
// The VMs here use interval='1h', so after the first (full) round every round is one the test asks for with
// `virt-shadow sync`: each test knows exactly which round it is looking at.
#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <thread>

#include "tests/lab/lab_env.h"

namespace vs::lab {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr uint64_t kMiB = 1024 * 1024;

class ReplicationTest : public LabTest {
 protected:
  void TearDown() override { RunCommand(LabScript() + " shape off"); }

  // Starts a tagged guest on h1 and waits until its first round (the seed) is applied; returns the index of
  // its shadow host.
  size_t StartReplicated(std::unique_ptr<TestGuest>& guest, TestGuest::Options options) {
    options.metadata = PolicyElement("vcpus='1' interval='1h'");
    auto started = TestGuest::Start(*conns_[0], hosts_[0], {}, options);
    EXPECT_TRUE(started.ok()) << started.status().ToString();
    if (!started.ok()) return 0;
    guest = std::move(*started);
    json status;
    const bool seeded = WaitUntil(
        [&] {
          auto s = CliJson(0, "status " + options.name);
          if (!s.ok()) return false;
          status = *s;
          return status["state"] == "Protected" && status["replication"].is_object() &&
                 status["replication"]["rounds_applied"].get<uint64_t>() >= 1;
        },
        120s);
    EXPECT_TRUE(seeded) << "no applied round for " << options.name << ": " << status.dump();
    if (!seeded) return 0;
    EXPECT_EQ(status["replication"]["last_round"]["mode"], "full") << status.dump();
    const std::string shadow_host = status["shadows"][0]["host"];
    for (size_t i = 0; i < hosts_.size(); ++i) {
      if (hosts_[i].name == shadow_host) return i;
    }
    ADD_FAILURE() << "unknown shadow host " << shadow_host;
    return 0;
  }

  StatusOr<json> Sync(const std::string& name) {
    VS_ASSIGN_OR_RETURN(json reply, CliJson(0, "--timeout 300 sync " + name));
    return reply["round"];
  }

  // The replica must be a gap-free, uncorrupted prefix of the guest's acknowledged records.
  void ExpectConsistentReplica(const TestGuest& guest, size_t shadow) {
    auto report = guest.Check(hosts_[shadow], {.prefix_mode = true});
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_TRUE(report->ok()) << oracle::FormatReportText(*report);
    EXPECT_GT(report->valid_records, 0u) << oracle::FormatReportText(*report);
  }

  std::string ReplicaPath(const TestGuest& guest, size_t shadow) const {
    return HostPath(hosts_[shadow], guest.disk_path());
  }
};

TEST_F(ReplicationTest, EveryRoundLeavesAConsistentPointInTimeReplica) {
  std::unique_ptr<TestGuest> guest;
  const size_t shadow = StartReplicated(guest, {.name = "rp-rounds", .disk_mib = 256, .kernel_args = "vs.rate=20"});
  ASSERT_NE(shadow, 0u);
  ASSERT_TRUE(guest->WaitForAcks(5, 90s).ok());
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    // While the guest writes: the replica is the point in time of the round, a prefix of the records.
    std::this_thread::sleep_for(1500ms);
    auto live = Sync(guest->name());
    ASSERT_TRUE(live.ok()) << live.status().ToString();
    EXPECT_EQ((*live)["mode"], "incremental");
    const uint64_t sent = (*live)["bytes_sent"], changed = (*live)["changed_bytes"];
    // Only dirty 64 KiB blocks cross: the guest wrote ~20 records (one block each) per second.
    EXPECT_GT(sent, 0u);
    EXPECT_LE(sent, changed);
    EXPECT_LT(sent, 16 * kMiB) << "more than the guest can have written in a few seconds";
    ExpectConsistentReplica(*guest, shadow);

    // With the guest paused the source is a static point in time: the round must make the replica identical.
    ASSERT_EQ(Virsh(0, "suspend " + guest->name()).exit_code, 0);
    auto paused = Sync(guest->name());
    ASSERT_TRUE(paused.ok()) << paused.status().ToString();
    CommandResult compare = RunCommand("qemu-img compare -U " + HostPath(hosts_[0], guest->disk_path()) + " " +
                                       ReplicaPath(*guest, shadow));
    EXPECT_EQ(compare.exit_code, 0) << compare.output;
    ExpectConsistentReplica(*guest, shadow);
    ASSERT_EQ(Virsh(0, "resume " + guest->name()).exit_code, 0);
  }

  // verify: digests on both hosts, nothing mismatched; blocks written since the checkpoint are skipped.
  auto verify = CliJson(0, "verify " + guest->name());
  ASSERT_TRUE(verify.ok()) << verify.status().ToString();
  EXPECT_TRUE((*verify)["ok"].get<bool>()) << verify->dump();
  EXPECT_EQ((*verify)["disks"][0]["blocks_mismatched"], 0);
  EXPECT_GT((*verify)["disks"][0]["blocks_compared"].get<uint64_t>(), 4000u);  // 256 MiB = 4096 blocks

  // Housekeeping: only the applied checkpoint is left in libvirt.
  CommandResult checkpoints = Virsh(0, "checkpoint-list --name " + guest->name());
  EXPECT_EQ(std::count(checkpoints.output.begin(), checkpoints.output.end(), '\n'), 1) << checkpoints.output;

  // The metrics endpoint shows the VM's lag.
  CommandResult metrics = RunCommand(LabScript() + " exec h1 /usr/bin/curl -sf http://" + hosts_[0].address +
                                     ":9177/metrics");
  EXPECT_EQ(metrics.exit_code, 0) << metrics.output;
  EXPECT_NE(metrics.output.find("virt_shadow_replication_lag_seconds{vm=\"rp-rounds\""), std::string::npos)
      << metrics.output;

  // A corrupted replica block is found by verify and named by its byte range.
  ASSERT_EQ(Virsh(0, "suspend " + guest->name()).exit_code, 0);
  ASSERT_TRUE(Sync(guest->name()).ok());
  ASSERT_EQ(RunCommand(LabScript() + " shadowd " + hosts_[shadow].name + " stop").exit_code, 0);
  CommandResult corrupt = RunCommand("qemu-io -f qcow2 -c 'write -P 0x5a 100M 4k' " + ReplicaPath(*guest, shadow));
  ASSERT_EQ(corrupt.exit_code, 0) << corrupt.output;
  ASSERT_EQ(RunCommand(LabScript() + " shadowd " + hosts_[shadow].name + " start").exit_code, 0);
  CommandResult bad = Cli(0, "verify " + guest->name());
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_NE(bad.output.find(std::to_string(100 * kMiB) + "+65536"), std::string::npos) << bad.output;
  ASSERT_EQ(Virsh(0, "resume " + guest->name()).exit_code, 0);
}

TEST_F(ReplicationTest, ShadowdKilledMidRoundLeavesTheReplicaConsistentAndRoundsResume) {
  std::unique_ptr<TestGuest> guest;
  const size_t shadow = StartReplicated(guest, {.name = "rp-kill", .disk_mib = 256, .kernel_args = "vs.rate=50"});
  ASSERT_NE(shadow, 0u);
  const std::string overlay = ReplicaPath(*guest, shadow) + ".vs-round";
  uint64_t acks = 0;
  for (size_t victim : {shadow, size_t{0}}) {
    SCOPED_TRACE("kill -9 of shadowd on " + hosts_[victim].name);
    // An ordinary round first, so that the replica holds records the killed round must not disturb.
    ASSERT_TRUE(guest->WaitForAcks(acks + 10, 120s).ok());
    ASSERT_TRUE(Sync(guest->name()).ok());
    auto before = guest->Check(hosts_[shadow], {.prefix_mode = true});
    ASSERT_TRUE(before.ok() && before->ok() && before->newest_seq_on_disk) << oracle::FormatReportText(*before);

    // A slow link and 80 new records (80 dirty blocks, 5 MiB: 10 s at 4 Mbit/s) make a round that takes a while.
    auto acked = guest->WaitForAcks(*before->newest_seq_on_disk + 80, 120s);
    ASSERT_TRUE(acked.ok()) << acked.status().ToString();
    acks = *acked;
    ASSERT_EQ(RunCommand(LabScript() + " shape 4mbit").exit_code, 0);
    auto sync = std::async(std::launch::async, [&] { return Sync(guest->name()); });
    ASSERT_TRUE(WaitUntil([&] { return std::filesystem::exists(overlay); }, 60s)) << "the round never started";
    std::this_thread::sleep_for(1s);
    ASSERT_EQ(RunCommand(LabScript() + " shadowd " + hosts_[victim].name + " kill").exit_code, 0);
    EXPECT_FALSE(sync.get().ok()) << "the round survived the kill";
    // The replica is exactly where the previous round left it: nothing of the killed round leaked in.
    auto after = guest->Check(hosts_[shadow], {.prefix_mode = true});
    ASSERT_TRUE(after.ok()) << after.status().ToString();
    EXPECT_TRUE(after->ok()) << oracle::FormatReportText(*after);
    EXPECT_EQ(after->newest_seq_on_disk, before->newest_seq_on_disk) << oracle::FormatReportText(*after);

    ASSERT_EQ(RunCommand(LabScript() + " shape off").exit_code, 0);
    ASSERT_EQ(RunCommand(LabScript() + " shadowd " + hosts_[victim].name + " start").exit_code, 0);
    // The next round continues from the replica's checkpoint: incremental, no full copy.
    StatusOr<json> next = Internal("not run");
    ASSERT_TRUE(WaitUntil([&] { return (next = Sync(guest->name())).ok(); }, 60s)) << next.status().ToString();
    EXPECT_EQ((*next)["mode"], "incremental") << next->dump();
    EXPECT_FALSE(std::filesystem::exists(overlay)) << "the overlay of the killed round is still there";
    auto resumed = guest->Check(hosts_[shadow], {.prefix_mode = true});
    ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
    EXPECT_TRUE(resumed->ok()) << oracle::FormatReportText(*resumed);
    EXPECT_GE(resumed->newest_seq_on_disk.value_or(0), acks) << oracle::FormatReportText(*resumed);
  }
}

TEST_F(ReplicationTest, AfterQemuIsKilledTheResyncSendsOnlyTheChangedBlocks) {
  std::unique_ptr<TestGuest> guest;
  const uint64_t disk = 256 * kMiB;
  const size_t shadow = StartReplicated(guest, {.name = "rp-sigkill", .disk_mib = 256, .kernel_args = "vs.rate=10"});
  ASSERT_NE(shadow, 0u);
  ASSERT_TRUE(guest->WaitForAcks(3, 90s).ok());
  ASSERT_TRUE(Sync(guest->name()).ok());
  auto synced = guest->Check(hosts_[shadow], {.prefix_mode = true});
  ASSERT_TRUE(synced.ok() && synced->ok() && synced->newest_seq_on_disk) << oracle::FormatReportText(*synced);
  // About 1 % of the disk changes before the kill: 41 records the replica lacks, one 64 KiB block each.
  ASSERT_TRUE(guest->WaitForAcks(*synced->newest_seq_on_disk + 41, 90s).ok());

  // SIGKILL: QEMU cannot store its bitmaps, so the checkpoint chain is unusable afterwards. (The bracket keeps
  // pkill from matching the shell that runs it.)
  CommandResult kill = RunCommand("pkill -KILL -f 'guest=[" + guest->name().substr(0, 1) + "]" +
                                  guest->name().substr(1) + ",'");
  ASSERT_EQ(kill.exit_code, 0) << kill.output;
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto state = conns_[0]->GetDomainState(guest->name());
        return state.ok() && *state == virt::DomainState::kShutoff;
      },
      30s));
  ASSERT_TRUE(conns_[0]->StartDomain(guest->name()).ok());
  ASSERT_TRUE(guest->WaitForAcks(1, 90s).ok());

  // The restarted VM is replicated again at once (its round may come before any `sync`): find the resync among
  // the recent rounds.
  json resync;
  ASSERT_TRUE(WaitUntil(
      [&] {
        (void)Sync(guest->name());
        auto status = CliJson(0, "status " + guest->name());
        if (!status.ok() || !(*status)["replication"].is_object()) return false;
        for (const json& round : (*status)["replication"]["recent_rounds"]) {
          if (round["mode"] == "resync") resync = round;
        }
        return resync.is_object();
      },
      90s))
      << "no resync round after the SIGKILL";
  const uint64_t sent = resync["bytes_sent"];
  std::printf("resync after SIGKILL: %llu bytes sent for a %llu-byte disk (%.2f %%)\n",
              static_cast<unsigned long long>(sent), static_cast<unsigned long long>(disk), 100.0 * sent / disk);
  EXPECT_GE(sent, 41 * 64 * 1024u) << "the resync missed blocks written before the kill";
  EXPECT_LT(sent, disk / 10);
  ExpectConsistentReplica(*guest, shadow);
  auto verify = CliJson(0, "verify " + guest->name());
  ASSERT_TRUE(verify.ok()) << verify.status().ToString();
  EXPECT_TRUE((*verify)["ok"].get<bool>()) << verify->dump();
}

TEST_F(ReplicationTest, SeveralDisksRawAndQcow2AndAResizedDiskAreReplicated) {
  std::unique_ptr<TestGuest> guest;
  const size_t shadow = StartReplicated(
      guest, {.name = "rp-disks", .disk_mib = 64, .kernel_args = "vs.rate=10", .raw_disk_mib = 32});
  ASSERT_NE(shadow, 0u);
  ASSERT_TRUE(guest->WaitForAcks(5, 90s).ok());
  // The guest never touches vdb: write into it through QEMU itself (HMP qemu-io). That taints the domain, which
  // is fine for a test and is why virt-shadow never does it.
  CommandResult write = Virsh(0, "qemu-monitor-command " + guest->name() +
                                     " --hmp 'qemu-io -d /machine/peripheral/virtio-disk1/virtio-backend "
                                     "\"write -P 0x33 1M 128k\"'");
  ASSERT_EQ(write.exit_code, 0) << write.output;
  ASSERT_EQ(write.output.find_first_not_of(" \n"), std::string::npos) << "HMP answered: " << write.output;

  auto compare_both = [&] {
    for (const std::string& path : {guest->disk_path(), guest->raw_disk_path()}) {
      CommandResult compare =
          RunCommand("qemu-img compare -U " + HostPath(hosts_[0], path) + " " + HostPath(hosts_[shadow], path));
      EXPECT_EQ(compare.exit_code, 0) << path << ": " << compare.output;
    }
  };
  ASSERT_EQ(Virsh(0, "suspend " + guest->name()).exit_code, 0);
  auto round = Sync(guest->name());
  ASSERT_TRUE(round.ok()) << round.status().ToString();
  // The raw disk has no persistent bitmap: it is compared by digests, and only its two changed blocks move.
  EXPECT_EQ((*round)["mode"], "resync") << round->dump();
  EXPECT_GE((*round)["bytes_sent"].get<uint64_t>(), 128 * 1024u) << round->dump();
  EXPECT_LT((*round)["bytes_sent"].get<uint64_t>(), 8 * kMiB) << round->dump();
  compare_both();
  ASSERT_EQ(Virsh(0, "resume " + guest->name()).exit_code, 0);

  // Grow the qcow2 disk while the VM runs: the replica follows at the next round.
  ASSERT_EQ(Virsh(0, "blockresize " + guest->name() + " vda 96M").exit_code, 0);
  ASSERT_EQ(Virsh(0, "suspend " + guest->name()).exit_code, 0);
  round = Sync(guest->name());
  ASSERT_TRUE(round.ok()) << round.status().ToString();
  CommandResult info = RunCommand("qemu-img info -U --output=json " + HostPath(hosts_[shadow], guest->disk_path()));
  EXPECT_NE(info.output.find("\"virtual-size\": " + std::to_string(96 * kMiB)), std::string::npos) << info.output;
  compare_both();
  auto verify = CliJson(0, "verify " + guest->name());
  ASSERT_TRUE(verify.ok()) << verify.status().ToString();
  EXPECT_TRUE((*verify)["ok"].get<bool>()) << verify->dump();
  EXPECT_EQ((*verify)["disks"].size(), 2u) << verify->dump();
  ASSERT_EQ(Virsh(0, "resume " + guest->name()).exit_code, 0);
  ExpectConsistentReplica(*guest, shadow);
}

}  // namespace
}  // namespace vs::lab
