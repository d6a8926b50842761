// Lab test: crash promotion (issue 12). The primary host of a protected, writing guest crashes at a random moment
// during replication: `lab.sh crash` cuts its link and SIGKILLs every process of it (libvirtd, QEMU, shadowd,
// Corosync). The shadow host must promote: the VM defined there with its own name and UUID in place of the shadow,
// started, its promotion record DONE with the recovery point; the oracle, over the promoted disk and the crashed
// guest's serial log up to the recovered record, finds a gap-free prefix with no corrupt record; the records lost
// fit the RPO bound; the guest boots on the replica and writes; a new shadow is placed on the third host and
// replicated. Then the crashed host is revived: it learns that its stopped copy is stale (the hook refuses to start
// it), and `virt-shadow failback` returns the VM there: the stale copy discarded (its images adopted by the new
// shadow), the switchover home, the guest writing on, protected again, and the oracle over the disk at home.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <thread>

#include "images/oracle/serial_log.h"
#include "tests/lab/crash_promotion_fixture.h"
#include "tests/lab/lab_env.h"

namespace vs::lab {
namespace {

class FailoverTest : public CrashPromotionTest {};

TEST_F(FailoverTest, AHostCrashPromotesTheShadowWhoseGuestBootsAndWrites) {
  ASSERT_GE(hosts_.size(), 3u) << "needs three hosts: the crashed one, the shadow host, a home for the new shadow";
  size_t shadow = 0;
  std::unique_ptr<TestGuest> guest = StartProtectedGuest("fo-crash", &shadow);
  ASSERT_NE(guest, nullptr);
  ASSERT_NE(shadow, 0u);
  const std::string vm = guest->name();

  // A few rounds first, so that the replica holds records for the oracle to check.
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto s = CliJson(0, "status " + vm);
        return s.ok() && (*s)["replication"].is_object() && (*s)["replication"]["rounds_applied"].get<uint64_t>() >= 3;
      },
      120s))
      << "fewer than 3 rounds of " << vm;
  // A random moment within the 2 s replication interval.
  std::mt19937 rng(std::random_device{}());
  std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 2000)(rng)));
  const int64_t crash_ms = NowMs();
  CommandResult crash = RunCommand(LabScript() + " crash " + hosts_[0].name);
  ASSERT_EQ(crash.exit_code, 0) << crash.output;
  const std::string crashed_log = guest->SerialLog();
  const oracle::SerialLog before = oracle::ParseSerialLog(crashed_log);
  ASSERT_FALSE(before.acks.empty());
  ASSERT_EQ(before.boot_ids.size(), 1u);
  const uint64_t last_acked = before.acks.back().seq;

  json status;
  const bool promoted = WaitPromotionDone(shadow, vm, status);
  ASSERT_TRUE(promoted) << "no promotion of " << vm << " on " << hosts_[shadow].name << ": " << status.dump();
  const json& p = status["promotion"];
  std::printf("promotion: %s\n", p.dump().c_str());
  EXPECT_EQ(p["primary_host"], hosts_[0].name);
  const int64_t decided_ms = p["decided_unix_ms"].get<int64_t>();
  const int64_t started_ms = p["started_unix_ms"].get<int64_t>();
  std::printf("crash -> decided %.1f s, -> started %.1f s; RPO %.1f s (bound %.1f s)\n",
              (decided_ms - crash_ms) / 1000.0, (started_ms - crash_ms) / 1000.0, p["rpo_ms"].get<int64_t>() / 1000.0,
              p["rpo_bound_ms"].get<int64_t>() / 1000.0);
  EXPECT_GT(decided_ms, crash_ms);
  // The recorded RPO is an estimate from above (shadowd does not know the crash's instant); the records lost,
  // below, are what counts. It may not undercut the real one by more than Corosync's detection time.
  EXPECT_GE(p["rpo_ms"].get<int64_t>(), crash_ms - 2200 - p["checkpoint_unix_ms"].get<int64_t>()) << p.dump();

  // The VM runs on the shadow host under its own name; the shadow is gone.
  guest->MovedTo(*conns_[shadow]);
  auto state = conns_[shadow]->GetDomainState(vm);
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  EXPECT_EQ(*state, virt::DomainState::kRunning);
  auto names = conns_[shadow]->ListDomainNames();
  ASSERT_TRUE(names.ok());
  for (const std::string& name : *names) EXPECT_EQ(name.find(vm + "-shadow"), std::string::npos) << name;

  // The guest boots on the replica and writes: a second boot that resumes after the last record the replica held.
  StatusOr<uint64_t> resumed = WaitPromotedBoot(*guest, crashed_log);
  ASSERT_TRUE(resumed.ok()) << resumed.status().ToString();
  const uint64_t recovered = *resumed;
  ASSERT_LE(recovered, last_acked);
  const uint64_t lost = last_acked - recovered;
  // 10 records/s: the bound in records, with one record of slack for the ACK in flight at the crash.
  const uint64_t bound_records = static_cast<uint64_t>(p["rpo_bound_ms"].get<int64_t>()) * 10 / 1000 + 1;
  std::printf("records: last acknowledged %llu, recovered %llu, lost %llu (bound %llu)\n",
              static_cast<unsigned long long>(last_acked), static_cast<unsigned long long>(recovered),
              static_cast<unsigned long long>(lost), static_cast<unsigned long long>(bound_records));
  EXPECT_LE(lost, bound_records);
  ASSERT_TRUE(guest->WaitForAcks(before.acks.size() + 5, 120s).ok()) << "the promoted guest does not write";

  // The oracle: every acknowledged record up to the recovered one is on the promoted disk, gap-free, uncorrupted.
  ExpectGapFreePrefix(*guest, shadow, crashed_log, before, recovered);
  if (HasFatalFailure()) return;

  // Protected again: a new shadow on the third host (not the crashed one), replicated.
  auto new_shadow = WaitProtected(vm, shadow);
  ASSERT_TRUE(new_shadow.ok()) << new_shadow.status().ToString();
  EXPECT_NE(*new_shadow, 0u) << "the new shadow went to the crashed host";
  EXPECT_NE(*new_shadow, shadow);

  // The crashed host comes back with its stale copy of the VM defined and stopped. Its shadowd asks its peers about
  // the VMs it finds stopped and learns of the promotion: the copy is recorded promoted elsewhere (no start).
  const std::string uuid = status["uuid"].get<std::string>();
  const int64_t revive_ms = NowMs();
  CommandResult revive = RunCommand(LabScript() + " revive " + hosts_[0].name);
  ASSERT_EQ(revive.exit_code, 0) << revive.output;
  json fence;
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto hosts = CliJson(0, "hosts");
        if (!hosts.ok()) return false;
        for (const json& fenced : (*hosts)["fenced"]) {
          if (fenced.value("uuid", "") == uuid) fence = fenced;
        }
        return fence.is_object() && fence["state"] == "promoted_elsewhere";
      },
      120s))
      << hosts_[0].name << " never learnt that " << vm << " was promoted: " << fence.dump();
  std::printf("revive -> %s knows its copy is stale: %.1f s (%s)\n", hosts_[0].name.c_str(),
              (NowMs() - revive_ms) / 1000.0, fence["why"].get<std::string>().c_str());
  EXPECT_EQ(fence["promoted_host"], hosts_[shadow].name);
  // The crash closed this test's connection to h1's libvirtd: a new one to the revived libvirtd.
  auto reconnected = runtime_->Connect(hosts_[0].uri, *clock_);
  ASSERT_TRUE(reconnected.ok()) << reconnected.status().ToString();
  conns_[0] = std::move(*reconnected);
  auto stale = conns_[0]->GetDomainState(vm);
  ASSERT_TRUE(stale.ok()) << stale.status().ToString();
  EXPECT_EQ(*stale, virt::DomainState::kShutoff);
  EXPECT_NE(Virsh(0, "start " + vm).exit_code, 0) << "the hook must refuse to start the stale copy";

  // Failback (issue 12, deliverable 4) from the host it was promoted on: h1 discards its stale copy (images kept),
  // the shadow moves there and adopts them (a resync), then the switchover returns the VM.
  const size_t acks_before_failback = oracle::ParseSerialLog(guest->SerialLog()).acks.size();
  const int64_t failback_ms = NowMs();
  CommandResult failback = Cli(shadow, "--json --timeout 300 failback " + vm);
  ASSERT_EQ(failback.exit_code, 0) << failback.output;
  const json reply = json::parse(failback.output);
  const json& record = reply["record"];
  std::printf("failback: %.1f s from the command, downtime %s ms: %s\n", (NowMs() - failback_ms) / 1000.0,
              record.value("downtime_ms", std::string("?")).c_str(), record.dump().c_str());
  EXPECT_EQ(reply["origin_host"], hosts_[0].name);
  ASSERT_EQ(record["phase"], "SWITCHOVER_PHASE_DONE") << record.dump();
  EXPECT_EQ(record["target_host"], hosts_[0].name);
  guest->MovedTo(*conns_[0]);
  auto home = conns_[0]->GetDomainState(vm);
  ASSERT_TRUE(home.ok()) << home.status().ToString();
  EXPECT_EQ(*home, virt::DomainState::kRunning);
  auto left = conns_[shadow]->ListDomainNames();
  ASSERT_TRUE(left.ok());
  EXPECT_EQ(std::count(left->begin(), left->end(), vm), 0) << hosts_[shadow].name << " still has the VM";
  auto xml = conns_[0]->GetDomainXml(vm);
  ASSERT_TRUE(xml.ok());
  EXPECT_NE(xml->find("file='" + guest->disk_path() + "'"), std::string::npos) << *xml;
  EXPECT_EQ(xml->find(".vs-top"), std::string::npos) << *xml;
  // h1's record is released (its marker gone); the promotion on the shadow host is over.
  auto hosts_after = CliJson(0, "hosts");
  ASSERT_TRUE(hosts_after.ok());
  for (const json& fenced : (*hosts_after)["fenced"]) EXPECT_NE(fenced.value("uuid", ""), uuid) << fenced.dump();
  auto promoted_status = CliJson(shadow, "status " + vm);
  EXPECT_FALSE(promoted_status.ok() && (*promoted_status)["promotion"].is_object()) << promoted_status->dump();

  // The guest goes on writing at home, from the same (second) boot, and is protected again from there.
  ASSERT_TRUE(guest->WaitForAcks(acks_before_failback + 5, 60s).ok()) << "no progress on " << hosts_[0].name;
  EXPECT_EQ(oracle::ParseSerialLog(guest->SerialLog()).boot_ids.size(), 2u) << "a reboot after the failback";
  auto home_shadow = WaitProtected(vm, 0);
  ASSERT_TRUE(home_shadow.ok()) << home_shadow.status().ToString();
  EXPECT_NE(*home_shadow, 0u);
  std::printf("failback -> protected again at home (shadow on %s): %.1f s\n", hosts_[*home_shadow].name.c_str(),
              (NowMs() - failback_ms) / 1000.0);

  // The oracle over the disk at home: the first boot's records up to the recovered one, then every record the
  // second boot acknowledged (on h2 and on h1), gap-free and uncorrupted.
  ASSERT_TRUE(conns_[0]->DestroyDomain(vm).ok());
  const std::string full_log = guest->SerialLog();
  const size_t second_boot = full_log.find("VS-BOOT", crashed_log.size());
  ASSERT_NE(second_boot, std::string::npos);
  const size_t line_start = full_log.rfind('\n', second_boot);
  const std::string history = (recovered > 0 ? LogUpToAck(crashed_log, recovered, before.boot_ids.front()) : "") +
                              full_log.substr(line_start == std::string::npos ? second_boot : line_start + 1);
  auto disk = oracle::OpenDisk(HostPath(hosts_[0], guest->disk_path()), oracle::ImageFormat::kQcow2);
  ASSERT_TRUE(disk.ok()) << disk.status().ToString();
  auto report = oracle::Analyse(**disk, history, {});
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  const std::string text = oracle::FormatReportText(*report);
  std::printf("%s\n", text.c_str());
  for (const std::string& violation : report->violations) EXPECT_EQ(violation.rfind("restart:", 0), 0u) << text;
  EXPECT_EQ(report->holes.total, 0u) << text;
  EXPECT_EQ(report->corrupt.total, 0u) << text;
  EXPECT_EQ(report->acked_missing.total, 0u) << text;
  ASSERT_TRUE(report->newest_seq_on_disk.has_value()) << text;
  ASSERT_TRUE(report->last_acked_seq.has_value()) << text;
  EXPECT_GE(*report->newest_seq_on_disk, *report->last_acked_seq) << text;
  (void)Virsh(0, "undefine " + vm + " --checkpoints-metadata --snapshots-metadata");
}

}  // namespace
}  // namespace vs::lab
