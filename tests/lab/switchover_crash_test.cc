// Lab test: shadowd killed with -9 in the middle of a live switchover and restarted (issue 10). The switchover
// must still finish exactly once: the record ends Done, the guest runs only on the new host, on its image at
// its usual path (no top left), keeps acknowledging records, and the oracle finds every acknowledged record.
//   1. The TARGET's shadowd killed 4 s into `virt-shadow drain` and restarted 2 s later: the reproduction of the
//      acceptance run's loss (the record said Done and the VM stayed on its top).
//   2. The SOURCE's shadowd killed while libvirt migrates and restarted: the restarted shadowd waits for the
//      migration, checks the guest on the target and completes.
//   3. A busy disk at completion: a block job holds the guest's disk on the target when the completion comes;
//      the flatten waits for it and the switchover is Done only once the guest runs on its image.
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "tests/lab/lab_env.h"
#include "tests/lab/switchover_fixture.h"

namespace vs::lab {
namespace {

class SwitchoverCrashTest : public SwitchoverTest {
 protected:
  void Shadowd(size_t host, const std::string& action) {
    CommandResult r = RunCommand(LabScript() + " shadowd " + hosts_[host].name + " " + action);
    ASSERT_EQ(r.exit_code, 0) << action << " " << hosts_[host].name << ": " << r.output;
  }

  void ExpectNothingLost(TestGuest& guest, size_t host) {
    auto report = guest.Check(hosts_[host]);
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_TRUE(report->ok()) << oracle::FormatReportText(*report);
    EXPECT_EQ(report->boot_ids.size(), 1u);
  }
};

TEST_F(SwitchoverCrashTest, ShadowdKilledOnTheTargetOrTheSourceMidSwitchoverStillEndsFlattenedAndDoneOnce) {
  ASSERT_GE(hosts_.size(), 3u);
  size_t shadow = 0;
  std::unique_ptr<TestGuest> started = StartProtectedGuest("sw-crash", &shadow);
  ASSERT_TRUE(started);
  TestGuest& guest = *started;
  size_t at = 0;

  // 1. The target's shadowd dies 4 s into a drain (mid-migration or mid-completion) and is back 2 s later.
  {
    const int64_t requested = NowMs();
    CommandResult drained;
    std::thread drain([&] { drained = Cli(at, "--timeout 300 drain " + hosts_[at].name + " --deadline 60"); });
    std::this_thread::sleep_for(4s);
    Shadowd(shadow, "kill");
    std::this_thread::sleep_for(2s);
    Shadowd(shadow, "start");
    drain.join();
    auto record = WaitSwitchoverDone(guest.name(), at, requested, 240s);
    ASSERT_TRUE(record.ok()) << record.status().ToString() << "\ndrain: " << drained.output;
    ASSERT_NO_FATAL_FAILURE(ExpectSwitchedOver(guest, *record, at, shadow));
    EXPECT_GT(std::stoll((*record)["downtime_ms"].get<std::string>()), 0) << record->dump();
    ASSERT_NO_FATAL_FAILURE(ExpectNothingLost(guest, shadow));
    Undrain(at);
    at = shadow;
    auto next = WaitProtected(guest.name(), at);
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    shadow = *next;
  }

  // 2. The source's shadowd dies while libvirt migrates (a 3 s precopy hold makes that phase long enough to
  //    catch) and is back 2 s later: libvirt finishes the migration alone; the restarted shadowd resumes.
  {
    const int64_t requested = NowMs();
    CommandResult asked;
    std::thread switchover(
        [&] { asked = Cli(at, "--timeout 300 switchover " + guest.name() + " --deadline 120 --precopy-hold 3"); });
    ASSERT_TRUE(WaitPhase(guest.name(), at, requested, {"SWITCHOVER_PHASE_MIGRATING"}, 60s)) << "never saw it migrating";
    Shadowd(at, "kill");
    switchover.join();  // the CLI loses its shadowd: its answer does not matter
    std::this_thread::sleep_for(2s);
    Shadowd(at, "start");
    auto record = WaitSwitchoverDone(guest.name(), at, requested, 240s);
    ASSERT_TRUE(record.ok()) << record.status().ToString();
    ASSERT_NO_FATAL_FAILURE(ExpectSwitchedOver(guest, *record, at, shadow, /*source_leaving=*/false));
    ASSERT_NO_FATAL_FAILURE(ExpectNothingLost(guest, shadow));
    at = shadow;
    auto next = WaitProtected(guest.name(), at);
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    shadow = *next;
  }

  // 3. A busy disk at completion: as soon as the guest runs on the target, the target's shadowd is stopped and
  //    a shallow block copy (a mirror job that holds the disk until it is aborted) is started on the guest's
  //    disk there; shadowd comes back while the job still holds the disk, and the job is aborted 8 s later.
  //    The flatten must wait for it (retrying), never give up into Done.
  {
    const int64_t requested = NowMs();
    CommandResult asked;
    std::thread switchover([&] { asked = Cli(at, "--timeout 300 switchover " + guest.name() + " --deadline 120"); });
    ASSERT_TRUE(WaitUntil(
        [&] {
          auto state = conns_[shadow]->GetDomainState(guest.name());
          return state.ok() && *state == virt::DomainState::kRunning;
        },
        60s))
        << "the guest never ran on " << hosts_[shadow].name;
    Shadowd(shadow, "kill");
    const std::string copy = "/var/lib/libvirt/images/sw-crash-busy.qcow2";
    CommandResult job;
    const bool busy = WaitUntil(
        [&] {
          job = Virsh(shadow, "blockcopy " + guest.name() + " vda " + copy + " --shallow --transient-job");
          return job.exit_code == 0;
        },
        30s);
    Shadowd(shadow, "start");
    ASSERT_TRUE(busy) << "could not start a block job on " << hosts_[shadow].name << ": " << job.output;
    std::this_thread::sleep_for(8s);
    const int64_t freed_at = NowMs();
    CommandResult aborted = Virsh(shadow, "blockjob " + guest.name() + " vda --abort");
    EXPECT_EQ(aborted.exit_code, 0) << aborted.output;
    std::filesystem::remove(HostPath(hosts_[shadow], copy));
    switchover.join();
    auto record = WaitSwitchoverDone(guest.name(), at, requested, 300s);
    ASSERT_TRUE(record.ok()) << record.status().ToString() << "\n" << asked.output;
    std::printf("busy disk at completion: %s\n", record->dump().c_str());
    // Done only after the disk was free: the flatten waited for the job instead of giving up into Done.
    EXPECT_GE(std::stoll((*record)["finished_unix_ms"].get<std::string>()), freed_at) << record->dump();
    ASSERT_NO_FATAL_FAILURE(ExpectSwitchedOver(guest, *record, at, shadow, /*source_leaving=*/false));
    ASSERT_NO_FATAL_FAILURE(ExpectNothingLost(guest, shadow));
    at = shadow;
  }
  ASSERT_TRUE(conns_[at]->DestroyDomain(guest.name()).ok());
  ASSERT_NO_FATAL_FAILURE(ExpectNothingLost(guest, at));
  RemoveImages(guest.name());
}

}  // namespace
}  // namespace vs::lab
