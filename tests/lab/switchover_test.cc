// Lab test of the live switchover (issue 5): one guest writing acknowledged records is chased around the lab
// by every kind of notice. Each notice goes to the host the guest runs on at that moment; shadowd there moves
// it live to its shadow (snapshot, final replication round, --copy-storage-inc + postcopy migration), the new
// host places a new shadow (never on a draining host), and the old host is declared back (`undrain`) before the
// next notice. A failback returns the guest to the host it came from, and at the end the oracle reads the
// disk after the plug is pulled: every acknowledged record of the whole run must be there, written by one
// boot of the guest.
//
//   ACPI power button on h1 (acpid's socket)      h1 -> shadow
//   GCE instance/preempted on the next host        -> shadow
//   AWS rebalance recommendation (warm-up), then spot instance-action (IMDSv2) -> shadow
//   Azure Scheduled Events Preempt (+ approval)    -> shadow
//   virt-shadow drain HOST                         -> shadow (then the image left there is removed)
//   virt-shadow drain SHADOW-HOST                  the guest stays; its shadow is placed anew elsewhere
//   virt-shadow failback                           -> back to the host it came from
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include "images/oracle/serial_log.h"
#include "tests/unit/notice/fake_cloud.h"
#include "tests/lab/lab_env.h"
#include "tests/lab/switchover_fixture.h"

namespace vs::lab {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using notice::test_support::FakeAcpid;
using notice::test_support::FakeCloud;

// Where the lab's shadowd.conf points every host's cloud pollers (scripts/lab.sh, write_shadowd_conf): the
// bridge's address in the root namespace, which every lab host reaches.
constexpr char kFakeCloudAddress[] = "10.77.0.1";
constexpr uint16_t kFakeCloudPort = 18169;

TEST_F(SwitchoverTest, EveryNoticeKindMovesTheGuestLiveToItsShadowAndFailbackReturnsIt) {
  ASSERT_GE(hosts_.size(), 3u);
  auto started_cloud = FakeCloud::Start(kFakeCloudAddress, kFakeCloudPort);
  ASSERT_TRUE(started_cloud.ok()) << started_cloud.status().ToString();
  FakeCloud& cloud = **started_cloud;
  auto started_acpid = FakeAcpid::Start(LabDir() + "/h1/acpid.socket");
  ASSERT_TRUE(started_acpid.ok()) << started_acpid.status().ToString();
  FakeAcpid& acpid = **started_acpid;

  // Images the guest leaves behind as it moves (its old bases are kept as seeds) go at the end.
  size_t shadow = 0;
  std::unique_ptr<TestGuest> started = StartProtectedGuest("sw-chase", &shadow);
  ASSERT_TRUE(started);
  TestGuest& guest = *started;
  size_t at = 0;

  // 1. ACPI power button on h1: acpid's line on its socket.
  ASSERT_TRUE(WaitUntil([&] { return acpid.ConnectedClients() > 0; }, 30s)) << "h1's shadowd never connected to acpid";
  int64_t notified = NowMs();
  ASSERT_EQ(acpid.PressPowerButton(), 1u);
  {
    auto record = WaitSwitchoverDone(guest.name(), at, notified, 120s);
    ASSERT_TRUE(record.ok()) << record.status().ToString();
    EXPECT_NE((*record)["reason"].get<std::string>().find("acpi-power-button"), std::string::npos);
    ASSERT_NO_FATAL_FAILURE(ExpectSwitchedOver(guest, *record, at, shadow));
  }
  Undrain(at);
  at = shadow;
  shadow = *WaitProtected(guest.name(), at);

  // 2. GCE: instance/preempted turns TRUE.
  notified = NowMs();
  cloud.SetGcePreempted(hosts_[at].name, true);
  {
    auto record = WaitSwitchoverDone(guest.name(), at, notified, 120s);
    ASSERT_TRUE(record.ok()) << record.status().ToString();
    EXPECT_NE((*record)["reason"].get<std::string>().find("gce"), std::string::npos);
    ASSERT_NO_FATAL_FAILURE(ExpectSwitchedOver(guest, *record, at, shadow));
  }
  cloud.ClearAll(hosts_[at].name);
  Undrain(at);
  at = shadow;
  shadow = *WaitProtected(guest.name(), at);

  // 3. AWS, warmed up: the rebalance recommendation (an early warning) starts the switchover at once and holds
  //    its migration in precopy under the warm-up cap (5 MiB/s, below the guest's 8 MiB/s of dirtied memory);
  //    the spot instance-action that follows only has to make the postcopy switch.
  //    First a warm-up that no notice follows: `undrain` cancels it, and the guest stays, on its own image.
  {
    const int64_t warned = NowMs();
    cloud.SetAwsRebalance(hosts_[at].name, std::chrono::system_clock::now());
    ASSERT_TRUE(WaitPhase(guest.name(), at, warned, {"SWITCHOVER_PHASE_MIGRATING"}, 120s))
        << "no warm-up migration started after the rebalance recommendation";
    CommandResult undrain = Cli(at, "undrain " + hosts_[at].name);
    EXPECT_EQ(undrain.exit_code, 0) << undrain.output;
    EXPECT_NE(undrain.output.find("1 warm-up migration(s) held in precopy were cancelled"), std::string::npos)
        << undrain.output;
    auto cancelled = WaitSwitchoverDone(guest.name(), at, warned, 60s);
    ASSERT_TRUE(cancelled.ok()) << cancelled.status().ToString();
    EXPECT_EQ((*cancelled)["phase"], "SWITCHOVER_PHASE_FAILED") << cancelled->dump();
    EXPECT_NE((*cancelled)["error"].get<std::string>().find("cancelled"), std::string::npos) << cancelled->dump();
    auto state = conns_[at]->GetDomainState(guest.name());
    ASSERT_TRUE(state.ok()) << "the guest left although its warm-up was cancelled: " << state.status().ToString();
    EXPECT_EQ(*state, virt::DomainState::kRunning);
    auto xml = conns_[at]->GetDomainXml(guest.name());
    ASSERT_TRUE(xml.ok());
    EXPECT_EQ(xml->find(".vs-top"), std::string::npos)
        << "still on a top after the cancelled warm-up: " << cancelled->dump() << "\n" << *xml;
    const auto log = oracle::ParseSerialLog(guest.SerialLog());
    ASSERT_TRUE(guest.WaitForAcks(log.acks.size() + 3, 60s).ok()) << "no progress after the cancelled warm-up";
    cloud.ClearAll(hosts_[at].name);
    std::this_thread::sleep_for(1100ms);  // the next recommendation must carry another time (another notice)
  }
  notified = NowMs();
  cloud.SetAwsRebalance(hosts_[at].name, std::chrono::system_clock::now());
  {
    std::optional<json> held = WaitPhase(guest.name(), at, notified, {"SWITCHOVER_PHASE_MIGRATING"}, 120s);
    ASSERT_TRUE(held) << "no warm-up migration started after the rebalance recommendation";
    EXPECT_TRUE((*held)["warm"].get<bool>()) << held->dump();
    std::this_thread::sleep_for(5s);  // held: still migrating, the guest still runs here
    auto state = conns_[at]->GetDomainState(guest.name());
    ASSERT_TRUE(state.ok()) << "the warm-up did not hold: " << state.status().ToString();
    EXPECT_EQ(*state, virt::DomainState::kRunning);
  }
  const int64_t action_at = NowMs();
  cloud.SetAwsInstanceAction(hosts_[at].name, "terminate", std::chrono::system_clock::now() + 120s);
  {
    auto record = WaitSwitchoverDone(guest.name(), at, notified, 180s);
    ASSERT_TRUE(record.ok()) << record.status().ToString();
    EXPECT_NE((*record)["reason"].get<std::string>().find("aws"), std::string::npos);
    EXPECT_TRUE((*record)["warm"].get<bool>()) << record->dump();
    const int64_t running = std::stoll((*record)["running_on_target_unix_ms"].get<std::string>());
    std::printf("warm: running on the shadow host %lld ms after the instance-action was served\n",
                static_cast<long long>(running - action_at));
    // One poll (1 s) plus the postcopy switch; a cold switchover takes seconds more (snapshot, final round,
    // destination start).
    EXPECT_LT(running - action_at, 8000) << record->dump();
    ASSERT_NO_FATAL_FAILURE(ExpectSwitchedOver(guest, *record, at, shadow));
  }
  cloud.ClearAll(hosts_[at].name);
  Undrain(at);
  at = shadow;
  shadow = *WaitProtected(guest.name(), at);

  // 4. Azure: a Preempt scheduled event for this host; shadowd approves it once the guest is gone.
  notified = NowMs();
  cloud.AddAzureEvent(hosts_[at].name, "Preempt", hosts_[at].name, std::chrono::system_clock::now() + 30s);
  {
    auto record = WaitSwitchoverDone(guest.name(), at, notified, 120s);
    ASSERT_TRUE(record.ok()) << record.status().ToString();
    EXPECT_NE((*record)["reason"].get<std::string>().find("azure"), std::string::npos);
    ASSERT_NO_FATAL_FAILURE(ExpectSwitchedOver(guest, *record, at, shadow));
    EXPECT_TRUE(WaitUntil([&] { return !cloud.ApprovedAzureEvents(hosts_[at].name).empty(); }, 30s))
        << "the Azure event was not approved after the drain";
  }
  cloud.ClearAll(hosts_[at].name);
  Undrain(at);
  at = shadow;
  shadow = *WaitProtected(guest.name(), at);

  // 5. An operator's drain.
  const size_t drained = at;
  {
    notified = NowMs();
    CommandResult drain = Cli(at, "--timeout 300 drain " + hosts_[at].name + " --deadline 60");
    EXPECT_EQ(drain.exit_code, 0) << drain.output;
    auto record = WaitSwitchoverDone(guest.name(), at, notified, 10s);
    ASSERT_TRUE(record.ok()) << record.status().ToString();
    EXPECT_NE((*record)["reason"].get<std::string>().find("drain"), std::string::npos);
    ASSERT_NO_FATAL_FAILURE(ExpectSwitchedOver(guest, *record, at, shadow));
  }
  Undrain(drained);
  at = shadow;
  {
    auto next = WaitProtected(guest.name(), at);
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    shadow = *next;
  }
  // The image the guest left on the drained host: removed by its new host once that host is back and the grace
  // period (5 s in the lab) has passed, since the new shadow went elsewhere.
  ASSERT_NE(shadow, drained);
  EXPECT_TRUE(WaitUntil([&] { return !std::filesystem::exists(HostPath(hosts_[drained], guest.disk_path())); }, 60s))
      << "the image left on " << hosts_[drained].name << " is still there after the grace period";

  // A drain of the shadow's host (not the guest's): the guest stays where it is and gets a new shadow elsewhere,
  // replicated, before that host goes.
  {
    const size_t leaving = shadow;
    CommandResult drain = Cli(leaving, "--timeout 300 drain " + hosts_[leaving].name + " --deadline 60");
    EXPECT_EQ(drain.exit_code, 0) << drain.output;
    json status;
    const bool moved = WaitUntil(
        [&] {
          auto s = CliJson(at, "status " + guest.name());
          if (!s.ok()) return false;
          status = *s;
          return status["state"] == "Protected" && status["shadows"][0]["host"] != hosts_[leaving].name;
        },
        120s);
    EXPECT_TRUE(moved) << "the shadow stayed on draining " << hosts_[leaving].name << ": " << status.dump();
    auto next = WaitProtected(guest.name(), at);
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    shadow = *next;
    EXPECT_NE(shadow, leaving);
    EXPECT_NE(shadow, at);
    auto state = conns_[at]->GetDomainState(guest.name());
    ASSERT_TRUE(state.ok()) << state.status().ToString();
    EXPECT_EQ(*state, virt::DomainState::kRunning) << "the guest must not move when its shadow's host drains";
    Undrain(leaving);
  }

  // 6. Failback: back to the host the guest came from (its shadow moves there first).
  {
    CommandResult failback = Cli(at, "--json --timeout 600 failback " + guest.name());
    ASSERT_EQ(failback.exit_code, 0) << failback.output;
    const json reply = json::parse(failback.output);
    EXPECT_EQ(reply["origin_host"], hosts_[drained].name);
    ASSERT_NO_FATAL_FAILURE(ExpectSwitchedOver(guest, reply["record"], at, drained));
    at = drained;
  }

  // Pull the plug: every acknowledged record of the whole chase is on the disk, from one boot.
  ASSERT_TRUE(conns_[at]->DestroyDomain(guest.name()).ok());
  auto report = guest.Check(hosts_[at]);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  std::printf("%s\n", oracle::FormatReportText(*report).c_str());
  EXPECT_TRUE(report->ok()) << oracle::FormatReportText(*report);
  EXPECT_EQ(report->boot_ids.size(), 1u) << "the guest restarted (a new boot id appeared)";
  EXPECT_TRUE(report->oops_lines.items.empty()) << "kernel trouble in the serial log (TCG switchover oops?)";
  ASSERT_TRUE(report->newest_seq_on_disk.has_value());
  ASSERT_TRUE(report->last_acked_seq.has_value());
  EXPECT_GE(*report->newest_seq_on_disk, *report->last_acked_seq);
  RemoveImages(guest.name());
}

}  // namespace
}  // namespace vs::lab
