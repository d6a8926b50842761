// Lab test: a guest writing acknowledged records migrates live, with postcopy, from h1 to h2 through the
// project's libvirt layer; the oracle then finds every acknowledged record on h2's disk and one boot id.
#include <gtest/gtest.h>

#include <algorithm>

#include "images/oracle/serial_log.h"

#include "tests/lab/lab_env.h"

namespace vs::lab {
namespace {

using namespace std::chrono_literals;

class MigrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto hosts = ReadInventory();
    ASSERT_TRUE(hosts.ok()) << hosts.status().ToString();
    hosts_ = *hosts;
    auto runtime = virt::LibvirtRuntime::Start();
    ASSERT_TRUE(runtime.ok()) << runtime.status().ToString();
    runtime_ = std::move(*runtime);
    clock_ = NewRealClock();
    for (int i = 0; i < 2; ++i) {
      auto conn = runtime_->Connect(hosts_[i].uri, *clock_);
      ASSERT_TRUE(conn.ok()) << conn.status().ToString();
      conns_.push_back(std::move(*conn));
    }
  }

  std::vector<LabHost> hosts_;
  std::unique_ptr<virt::LibvirtRuntime> runtime_;
  std::unique_ptr<Clock> clock_;
  std::vector<std::unique_ptr<virt::Hypervisor>> conns_;
};

TEST_F(MigrationTest, PostcopyLiveMigrationLosesNoAcknowledgedRecord) {
  // The dirtier keeps memory changing faster than the precopy cap, so precopy cannot finish on its own and the
  // switch to postcopy is what completes the migration.
  auto guest = TestGuest::Start(*conns_[0], hosts_[0], {hosts_[1]},
                                {.name = "lab-migrate", .kernel_args = "vs.rate=5 vs.dirty=32 vs.dirtyrate=16"});
  ASSERT_TRUE(guest.ok()) << guest.status().ToString();
  auto before = (*guest)->WaitForAcks(10, 90s);
  ASSERT_TRUE(before.ok()) << before.status().ToString();

  auto migrated = conns_[0]->MigrateLive(
      (*guest)->name(), hosts_[1].uri,
      {.postcopy = true, .precopy_bandwidth_mibs = 8, .copy_storage_all = true, .timeout = 240s});
  ASSERT_TRUE(migrated.ok()) << migrated.status().ToString();
  (*guest)->MovedTo(*conns_[1]);
  ASSERT_TRUE(migrated->postcopy_started_after.has_value()) << "libvirt never accepted the switch to postcopy";
  std::printf("migration: %.2f s, postcopy after %.2f s, downtime %s ms, postcopy page requests %s\n",
              std::chrono::duration<double>(migrated->elapsed).count(),
              std::chrono::duration<double>(*migrated->postcopy_started_after).count(),
              migrated->downtime_ms ? std::to_string(*migrated->downtime_ms).c_str() : "?",
              migrated->postcopy_page_requests ? std::to_string(*migrated->postcopy_page_requests).c_str() : "?");

  // It runs on h2 only, and keeps writing there.
  auto state = conns_[1]->GetDomainState((*guest)->name());
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  EXPECT_EQ(*state, virt::DomainState::kRunning);
  auto source_domains = conns_[0]->ListDomainNames();
  ASSERT_TRUE(source_domains.ok());
  EXPECT_EQ(std::count(source_domains->begin(), source_domains->end(), (*guest)->name()), 0)
      << "the source still has the domain";
  auto at_migration = oracle::ParseSerialLog((*guest)->SerialLog()).acks.size();
  auto after = (*guest)->WaitForAcks(at_migration + 5, 60s);
  ASSERT_TRUE(after.ok()) << after.status().ToString();

  // Stop it hard: whatever was acknowledged must already be on h2's disk.
  ASSERT_TRUE(conns_[1]->DestroyDomain((*guest)->name()).ok());
  auto report = (*guest)->Check(hosts_[1]);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  std::printf("%s\n", oracle::FormatReportText(*report).c_str());
  EXPECT_TRUE(report->ok()) << oracle::FormatReportText(*report);
  EXPECT_EQ(report->boot_ids.size(), 1u) << "the guest restarted (a new boot id appeared)";
  EXPECT_TRUE(report->oops_lines.items.empty()) << "kernel trouble in the serial log";
  ASSERT_TRUE(report->newest_seq_on_disk.has_value());
  ASSERT_TRUE(report->last_acked_seq.has_value());
  EXPECT_GE(*report->newest_seq_on_disk, *report->last_acked_seq);
  EXPECT_GT(*report->last_acked_seq, *before) << "no record was acknowledged after the migration";
}

}  // namespace
}  // namespace vs::lab
