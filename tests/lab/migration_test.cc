// Lab test: a guest writing acknowledged records migrates live, with postcopy, h1 -> h2 -> h3 through the
// project's libvirt layer; the oracle then finds every acknowledged record on h3's disk and one boot id.
#include <gtest/gtest.h>

#include <algorithm>

#include "images/oracle/serial_log.h"

#include "tests/lab/lab_env.h"

namespace vs::lab {
namespace {

using namespace std::chrono_literals;

using MigrationTest = LabTest;

// Migrates with postcopy from `from` to `to` and checks that the guest runs only on `to` and keeps writing.
void MigrateAndCheck(TestGuest& guest, virt::Hypervisor& from, virt::Hypervisor& to) {
  auto migrated = from.MigrateLive(guest.name(), to.uri(),
                                   {.postcopy = true, .precopy_bandwidth_mibs = 8, .copy_storage_all = true,
                                    .timeout = std::chrono::seconds(240), .tls = UsesTls(to.uri())});
  ASSERT_TRUE(migrated.ok()) << migrated.status().ToString();
  guest.MovedTo(to);
  ASSERT_TRUE(migrated->postcopy_started_after.has_value()) << "libvirt never accepted the switch to postcopy";
  std::printf("%s -> %s: %.2f s, postcopy after %.2f s, downtime %s ms, postcopy page requests %s\n",
              from.uri().c_str(), to.uri().c_str(), std::chrono::duration<double>(migrated->elapsed).count(),
              std::chrono::duration<double>(*migrated->postcopy_started_after).count(),
              migrated->downtime_ms ? std::to_string(*migrated->downtime_ms).c_str() : "?",
              migrated->postcopy_page_requests ? std::to_string(*migrated->postcopy_page_requests).c_str() : "?");

  auto state = to.GetDomainState(guest.name());
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  EXPECT_EQ(*state, virt::DomainState::kRunning);
  auto source_domains = from.ListDomainNames();
  ASSERT_TRUE(source_domains.ok());
  EXPECT_EQ(std::count(source_domains->begin(), source_domains->end(), guest.name()), 0)
      << "the source still has the domain";
  auto acks_at_switch = oracle::ParseSerialLog(guest.SerialLog()).acks.size();
  auto after = guest.WaitForAcks(acks_at_switch + 5, std::chrono::seconds(60));
  ASSERT_TRUE(after.ok()) << "no progress on the destination: " << after.status().ToString();
}

// h1 (zone-a) -> h2 (zone-b) -> h3 (zone-a): both directions across zones, three different pairs of daemons.
TEST_F(MigrationTest, PostcopyLiveMigrationsLoseNoAcknowledgedRecord) {
  ASSERT_GE(hosts_.size(), 3u) << "this test needs 3 lab hosts";
  // The dirtier keeps memory changing faster than the precopy cap, so precopy cannot finish on its own and the
  // switch to postcopy is what completes each migration.
  auto guest = TestGuest::Start(*conns_[0], hosts_[0], {hosts_[1], hosts_[2]},
                                {.name = "lab-migrate", .kernel_args = "vs.rate=5 vs.dirty=32 vs.dirtyrate=16"});
  ASSERT_TRUE(guest.ok()) << guest.status().ToString();
  auto before = (*guest)->WaitForAcks(10, 90s);
  ASSERT_TRUE(before.ok()) << before.status().ToString();

  ASSERT_NO_FATAL_FAILURE(MigrateAndCheck(**guest, *conns_[0], *conns_[1]));
  ASSERT_NO_FATAL_FAILURE(MigrateAndCheck(**guest, *conns_[1], *conns_[2]));

  // Pull the plug: whatever was acknowledged must already be on h3's disk.
  ASSERT_TRUE(conns_[2]->DestroyDomain((*guest)->name()).ok());
  auto report = (*guest)->Check(hosts_[2]);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  std::printf("%s\n", oracle::FormatReportText(*report).c_str());
  EXPECT_TRUE(report->ok()) << oracle::FormatReportText(*report);
  EXPECT_EQ(report->boot_ids.size(), 1u) << "the guest restarted (a new boot id appeared)";
  EXPECT_TRUE(report->oops_lines.items.empty()) << "kernel trouble in the serial log";
  ASSERT_TRUE(report->newest_seq_on_disk.has_value());
  ASSERT_TRUE(report->last_acked_seq.has_value());
  EXPECT_GE(*report->newest_seq_on_disk, *report->last_acked_seq);
  EXPECT_GT(*report->last_acked_seq, *before) << "no record was acknowledged after the migrations";
}

}  // namespace
}  // namespace vs::lab
