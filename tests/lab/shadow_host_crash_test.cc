// Lab test of a shadow host's crash (issue 12): a writing guest on h1 is protected with its shadow on another
// host; that host crashes (`lab.sh crash`: its link is cut and every process of it, QEMU, libvirtd, shadowd and
// Corosync, dies by SIGKILL). The primary stays up and must protect the VM again on the third host: once the crashed
// host has been out of the quorate membership for the fence bound, h1 gives its shadow up (nothing can be released
// on a dead host), places a new one on the third host and replicates to it, while the guest keeps acknowledging
// writes. The crashed host then boots again (`lab.sh revive`) with its old definitions; h1's orphan sweep releases the stale shadow
// there, so the VM ends with exactly one shadow. Times from the crash are measured and printed.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "tests/lab/switchover_fixture.h"

namespace vs::lab {
namespace {

class ShadowHostCrashTest : public SwitchoverTest {
 protected:
  static double SecondsSince(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  }
  // The crashed host must not stay down for the tests after this one, whatever this one's outcome.
  void TearDown() override {
    if (crashed_.empty()) return;
    RunCommand(LabScript() + " revive " + crashed_);
  }
  std::string crashed_;
};

TEST_F(ShadowHostCrashTest, APrimaryWhoseShadowHostCrashedIsProtectedAgainOnTheThirdHost) {
  size_t shadow = 0;
  auto guest = StartProtectedGuest("vs-shcrash", &shadow);
  ASSERT_NE(guest, nullptr);
  ASSERT_NE(shadow, 0U);
  const size_t third = shadow == 1 ? 2 : 1;
  const std::string shadow_name = guest->name() + "-shadow";
  auto acked = guest->WaitForAcks(1, 30s);
  ASSERT_TRUE(acked.ok()) << acked.status().ToString();

  const auto crash = std::chrono::steady_clock::now();
  crashed_ = hosts_[shadow].name;
  CommandResult crashed = RunCommand(LabScript() + " crash " + crashed_);
  ASSERT_EQ(crashed.exit_code, 0) << crashed.output;

  // Protected again from h1, the shadow on the third host, and a round replicated there after the placement.
  json status;
  double placed_s = -1;
  int64_t placed_ms = 0;
  const bool replicated = WaitUntil(
      [&] {
        auto s = CliJson(0, "status " + guest->name());
        if (!s.ok()) return false;
        status = *s;
        const bool on_third = status["state"] == "Protected" && status["shadows"].size() == 1 &&
                              status["shadows"][0]["host"] == hosts_[third].name;
        if (!on_third) return false;
        if (placed_s < 0) {
          placed_s = SecondsSince(crash);
          placed_ms = NowMs();
        }
        return status["replication"].is_object() &&
               status["replication"]["last_round"]["applied_unix_ms"].get<int64_t>() >= placed_ms;
      },
      150s);
  ASSERT_TRUE(replicated) << "not protected again on " << hosts_[third].name << " after " << crashed_
                          << " crashed: " << status.dump();
  std::printf("shadow host %s crashed: new shadow on %s protected after %.1f s, first round there after %.1f s\n",
              crashed_.c_str(), hosts_[third].name.c_str(), placed_s, SecondsSince(crash));

  // The guest never stopped: it acknowledges new records on h1.
  auto later = guest->WaitForAcks(*acked + 20, 60s);
  ASSERT_TRUE(later.ok()) << "the guest stopped acknowledging on h1: " << later.status().ToString();
  EXPECT_NE(Virsh(0, "domstate " + guest->name()).output.find("running"), std::string::npos);

  // The crashed host boots with its old shadow definition; h1's sweep releases it there.
  CommandResult booted = RunCommand(LabScript() + " revive " + crashed_);
  ASSERT_EQ(booted.exit_code, 0) << booted.output;
  const std::string booted_host = crashed_;
  crashed_.clear();
  std::string left;
  const bool swept = WaitUntil(
      [&] {
        left = Virsh(shadow, "list --all --name").output;
        return left.find(shadow_name) == std::string::npos;
      },
      90s);
  EXPECT_TRUE(swept) << "the stale shadow is still defined on " << booted_host << ": " << left;
  auto after = CliJson(0, "status " + guest->name());
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ((*after)["shadows"].size(), 1U);
  EXPECT_EQ((*after)["shadows"][0]["host"], hosts_[third].name) << after->dump();

  auto report = guest->Check(hosts_[0]);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report->ok()) << oracle::FormatReportText(*report);
  EXPECT_EQ(report->boot_ids.size(), 1u) << "the guest restarted";
}

}  // namespace
}  // namespace vs::lab
