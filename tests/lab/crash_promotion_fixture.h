// The lab fixture of the crash promotion tests (failover_test.cc, promotion_restart_test.cc): what a promoted guest
// must show after its host crashed. Its second boot resumes after the last record the replica held, and the oracle
// finds every acknowledged record up to that one on the promoted disk, gap-free and uncorrupted.
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "images/oracle/nbd_block_reader.h"
#include "images/oracle/oracle.h"
#include "images/oracle/serial_log.h"
#include "tests/lab/lab_env.h"
#include "tests/lab/switchover_fixture.h"

namespace vs::lab {

class CrashPromotionTest : public SwitchoverTest {
 protected:
  // The serial log's lines up to and including the ACK of `seq` of boot `boot`.
  static std::string LogUpToAck(const std::string& log, uint64_t seq, const std::string& boot) {
    const std::string ack = "VS-ACK seq=" + std::to_string(seq) + " boot=" + boot;
    const size_t at = log.find(ack);
    if (at == std::string::npos) return "";
    const size_t end = log.find('\n', at);
    return log.substr(0, end == std::string::npos ? log.size() : end + 1);
  }

  // Waits up to 120 s for `vm`'s promotion record on hosts_[shadow] to be DONE; `status` is the last status seen.
  bool WaitPromotionDone(size_t shadow, const std::string& vm, json& status) {
    return WaitUntil(
        [&] {
          auto s = CliJson(shadow, "status " + vm);
          if (!s.ok() || !(*s)["promotion"].is_object()) return false;
          status = *s;
          return status["promotion"]["phase"] == "PROMOTION_PHASE_DONE";
        },
        120s);
  }

  // Waits for the promoted guest's boot after `crashed_log` (the serial log as the crash left it) and returns the
  // record it resumes after (its VS-BOOT line's `resume=`).
  StatusOr<uint64_t> WaitPromotedBoot(const TestGuest& guest, const std::string& crashed_log) {
    std::string boot_line;
    const bool booted = WaitUntil(
        [&] {
          const std::string log = guest.SerialLog();
          const size_t at = log.find("VS-BOOT", crashed_log.size());
          if (at == std::string::npos) return false;
          const size_t end = log.find('\n', at);
          if (end == std::string::npos) return false;
          boot_line = log.substr(at, end - at);
          return true;
        },
        120s);
    if (!booted) return DeadlineExceeded("the promoted guest " + guest.name() + " never booted");
    const size_t resume_at = boot_line.find("resume=");
    if (resume_at == std::string::npos) return Internal("a VS-BOOT line without resume=: " + boot_line);
    return std::stoull(boot_line.substr(resume_at + 7));
  }

  // The oracle over the promoted disk on hosts_[host]: every record acknowledged by the crashed boot up to
  // `recovered` is there, gap-free and uncorrupted (records after it were written by the new boot).
  void ExpectGapFreePrefix(const TestGuest& guest, size_t host, const std::string& crashed_log,
                           const oracle::SerialLog& before, uint64_t recovered) {
    if (recovered == 0) return;
    const std::string prefix_log = LogUpToAck(crashed_log, recovered, before.boot_ids.front());
    ASSERT_FALSE(prefix_log.empty()) << "record " << recovered << " was never acknowledged";
    auto disk = oracle::OpenDisk(HostPath(hosts_[host], guest.disk_path()), oracle::ImageFormat::kQcow2);
    ASSERT_TRUE(disk.ok()) << disk.status().ToString();
    auto report = oracle::Analyse(**disk, prefix_log, {.prefix_mode = true});
    ASSERT_TRUE(report.ok()) << report.status().ToString();
    // A crash promotion is a reboot: the one verdict expected is the second boot id (the new boot's records come
    // after the recovered one). Everything else must be clean.
    const std::string text = oracle::FormatReportText(*report);
    for (const std::string& violation : report->violations) {
      EXPECT_EQ(violation.rfind("restart:", 0), 0u) << text;
    }
    EXPECT_EQ(report->holes.total, 0u) << text;
    EXPECT_EQ(report->corrupt.total, 0u) << text;
    EXPECT_EQ(report->acked_missing.total, 0u) << text;
    ASSERT_TRUE(report->newest_seq_on_disk.has_value()) << text;
    EXPECT_GE(*report->newest_seq_on_disk, recovered) << text;
    EXPECT_EQ(report->boot_ids.size(), 2u) << text;
  }
};

}  // namespace vs::lab
