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
//   virt-shadow drain HOST                         -> shadow
//   virt-shadow failback                           -> back to the host it came from
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include "images/oracle/serial_log.h"
#include "tests/unit/notice/fake_cloud.h"
#include "tests/lab/lab_env.h"

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

class SwitchoverTest : public LabTest {
 protected:
  size_t IndexOf(const std::string& host) const {
    for (size_t i = 0; i < hosts_.size(); ++i) {
      if (hosts_[i].name == host) return i;
    }
    ADD_FAILURE() << "unknown host " << host;
    return 0;
  }

  // Waits until the VM is protected from `primary` with a replicated shadow; returns the shadow's host index.
  StatusOr<size_t> WaitProtected(const std::string& vm, size_t primary, std::chrono::seconds timeout = 180s) {
    json status;
    const bool ok = WaitUntil(
        [&] {
          auto s = CliJson(primary, "status " + vm);
          if (!s.ok()) return false;
          status = *s;
          return status["state"] == "Protected" && status["replication"].is_object() &&
                 status["replication"]["rounds_applied"].get<uint64_t>() >= 1;
        },
        timeout);
    if (!ok) return DeadlineExceeded(vm + " is not protected and replicated from " + hosts_[primary].name + ": " + status.dump());
    return IndexOf(status["shadows"][0]["host"]);
  }

  static int64_t NowMs() { return ToUnixMillis(std::chrono::system_clock::now()); }

  // The switchover record of `vm` on `host` requested at `since_ms` or later, once it is finished.
  StatusOr<json> WaitSwitchoverDone(const std::string& vm, size_t host, int64_t since_ms, std::chrono::seconds timeout) {
    json found;
    const bool done = WaitUntil(
        [&] {
          auto list = CliJson(host, "switchovers");
          if (!list.ok() || !(*list)["records"].is_array()) return false;
          for (const json& record : (*list)["records"]) {
            if (record["vm_name"] == vm && std::stoll(record["requested_unix_ms"].get<std::string>()) >= since_ms &&
                (record["phase"] == "SWITCHOVER_PHASE_DONE" ||
                                            record["phase"] == "SWITCHOVER_PHASE_FAILED")) {
              found = record;
              return true;
            }
          }
          return false;
        },
        timeout);
    if (!done) return DeadlineExceeded("no finished switchover of " + vm + " on " + hosts_[host].name);
    return found;
  }

  // What every switchover must show: the record is Done before the notice's deadline; the guest runs only on
  // the shadow host, keeps its boot and keeps acknowledging; the new host protects it with a new shadow that
  // is not on a draining host.
  void ExpectSwitchedOver(TestGuest& guest, const json& record, size_t from, size_t to) {
    std::printf("%s -> %s (%s): %s\n", hosts_[from].name.c_str(), hosts_[to].name.c_str(),
                record["reason"].get<std::string>().c_str(), record.dump().c_str());
    ASSERT_EQ(record["phase"], "SWITCHOVER_PHASE_DONE") << record.dump();
    EXPECT_EQ(record["target_host"], hosts_[to].name);
    EXPECT_FALSE(record.value("fallback", false)) << "the health check failed: " << record.dump();
    const int64_t deadline = std::stoll(record["deadline_unix_ms"].get<std::string>());
    const int64_t running = std::stoll(record["running_on_target_unix_ms"].get<std::string>());
    const int64_t finished = std::stoll(record["finished_unix_ms"].get<std::string>());
    EXPECT_GT(running, 0);
    EXPECT_LT(finished, deadline) << "the switchover finished after the notice's deadline";
    guest.MovedTo(*conns_[to]);
    auto state = conns_[to]->GetDomainState(guest.name());
    ASSERT_TRUE(state.ok()) << state.status().ToString();
    EXPECT_EQ(*state, virt::DomainState::kRunning);
    auto left = conns_[from]->ListDomainNames();
    ASSERT_TRUE(left.ok());
    EXPECT_EQ(std::count(left->begin(), left->end(), guest.name()), 0) << "the old host still has the domain";
    const auto log = oracle::ParseSerialLog(guest.SerialLog());
    EXPECT_LE(log.boot_ids.size(), 1u) << "the guest rebooted";
    ASSERT_TRUE(guest.WaitForAcks(log.acks.size() + 3, 60s).ok()) << "no progress on " << hosts_[to].name;
    // The VM runs on the image at its usual path: the top was flattened into the replica.
    auto xml = conns_[to]->GetDomainXml(guest.name());
    ASSERT_TRUE(xml.ok());
    EXPECT_NE(xml->find("file='" + guest.disk_path() + "'"), std::string::npos) << *xml;
    EXPECT_EQ(xml->find(".vs-top"), std::string::npos) << *xml;
    auto shadow = WaitProtected(guest.name(), to);
    ASSERT_TRUE(shadow.ok()) << shadow.status().ToString();
    EXPECT_NE(*shadow, from) << "the new shadow went to the host that just got the notice";
    EXPECT_NE(*shadow, to);
  }

  // The old host is back: it may take shadows again.
  void Undrain(size_t host) {
    CommandResult undrain = Cli(host, "undrain " + hosts_[host].name);
    EXPECT_EQ(undrain.exit_code, 0) << undrain.output;
  }
};

TEST_F(SwitchoverTest, EveryNoticeKindMovesTheGuestLiveToItsShadowAndFailbackReturnsIt) {
  ASSERT_GE(hosts_.size(), 3u);
  auto started_cloud = FakeCloud::Start(kFakeCloudAddress, kFakeCloudPort);
  ASSERT_TRUE(started_cloud.ok()) << started_cloud.status().ToString();
  FakeCloud& cloud = **started_cloud;
  auto started_acpid = FakeAcpid::Start(LabDir() + "/h1/acpid.socket");
  ASSERT_TRUE(started_acpid.ok()) << started_acpid.status().ToString();
  FakeAcpid& acpid = **started_acpid;

  // Images the guest leaves behind as it moves (its old bases are kept as seeds) go at the end.
  auto remove_images = [&] {
    for (const LabHost& host : hosts_) std::filesystem::remove(HostPath(host, "/var/lib/libvirt/images/sw-chase.qcow2"));
  };
  for (auto& conn : conns_) {  // left by an interrupted earlier run
    (void)conn->DestroyDomain("sw-chase");
    (void)conn->UndefineDomain("sw-chase");
  }
  remove_images();
  auto started = TestGuest::Start(*conns_[0], hosts_[0], {},
                                  {.name = "sw-chase", .disk_mib = 128, .kernel_args = "vs.rate=10 vs.dirty=32 vs.dirtyrate=8",
                                   .metadata = PolicyElement("vcpus='1' interval='2s'")});
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  TestGuest& guest = **started;
  ASSERT_TRUE(guest.WaitForAcks(5, 90s).ok());
  auto first_shadow = WaitProtected(guest.name(), 0);
  ASSERT_TRUE(first_shadow.ok()) << first_shadow.status().ToString();
  size_t at = 0, shadow = *first_shadow;

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
  notified = NowMs();
  cloud.SetAwsRebalance(hosts_[at].name, std::chrono::system_clock::now());
  {
    json held;
    const bool warming = WaitUntil(
        [&] {
          auto list = CliJson(at, "switchovers");
          if (!list.ok()) return false;
          for (const json& record : (*list)["records"]) {
            if (record["vm_name"] == guest.name() && std::stoll(record["requested_unix_ms"].get<std::string>()) >= notified &&
                record["phase"] == "SWITCHOVER_PHASE_MIGRATING") {
              held = record;
              return true;
            }
          }
          return false;
        },
        120s);
    ASSERT_TRUE(warming) << "no warm-up migration started after the rebalance recommendation";
    EXPECT_TRUE(held["warm"].get<bool>()) << held.dump();
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
  ASSERT_TRUE(WaitProtected(guest.name(), at).ok());

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
  remove_images();
}

}  // namespace
}  // namespace vs::lab
