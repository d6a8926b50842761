#include "images/oracle/serial_log.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vs::oracle {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::vector<std::uint64_t> AckedSeqs(const SerialLog& log) {
  std::vector<std::uint64_t> seqs;
  for (const SerialAck& ack : log.acks) seqs.push_back(ack.seq);
  return seqs;
}

TEST(OracleSerialLog, FindsTokensAnywhereInALine) {
  const SerialLog log = ParseSerialLog(
      "[    1.234] random: crng init done VS-ACK seq=1 boot=abcd1234\r\n"
      "login: VS-ACK seq=2 boot=abcd1234 trailing text\n"
      "VS-ACK seq=3 boot=abcd1234VS-ACK seq=4 boot=abcd1234\n"
      "VS-ACK seq=5 boot=abcd1234");  // last line without newline
  EXPECT_THAT(AckedSeqs(log), ElementsAre(1, 2, 3, 4, 5));
  EXPECT_EQ(log.acks[0].boot, "abcd1234");
  EXPECT_THAT(log.malformed_lines, IsEmpty());
}

TEST(OracleSerialLog, KeepsTornTokensAsMalformedInsteadOfMisreadingThem) {
  const SerialLog log = ParseSerialLog(
      "VS-ACK seq=1[    2.000] kernel: hello2 boot=abcd1234\n"  // seq torn by a kernel message
      "VS-ACK seq=7 boot=abcd[    2.1] x\n"                      // boot torn
      "VS-ACK seq=0 boot=abcd1234\n"                             // no record 0
      "VS-BOOT boot=abcd1234\n");                                // resume missing
  EXPECT_THAT(log.acks, IsEmpty());
  EXPECT_THAT(log.boot_ids, IsEmpty());
  EXPECT_EQ(log.malformed_lines.size(), 4u);
  EXPECT_EQ(log.malformed_lines[0], "VS-ACK seq=1[    2.000] kernel: hello2 boot=abcd1234");
}

TEST(OracleSerialLog, ListsBootIdsInOrderOfFirstAppearance) {
  const SerialLog log = ParseSerialLog(
      "VS-BOOT boot=0f0e0d0c resume=0\n"
      "VS-ACK seq=1 boot=0f0e0d0c\n"
      "VS-BOOT boot=abcd1234 resume=1\n"
      "VS-ACK seq=2 boot=abcd1234\n"
      "VS-BOOT boot=0f0e0d0c resume=2\n");
  EXPECT_THAT(log.boot_ids, ElementsAre("0f0e0d0c", "abcd1234"));
}

TEST(OracleSerialLog, ReportsEveryKernelTroubleMarkerVerbatim) {
  const SerialLog log = ParseSerialLog(
      "[ 1.0] Oops: 0002 [#1] SMP\n"
      "[ 1.1] BUG: kernel NULL pointer dereference\r\n"
      "[ 1.2] Kernel panic - not syncing: Fatal exception\n"
      "[ 1.3] general protection fault: 0000\n"
      "[ 1.4] Call Trace:\n"
      "[ 1.5] WARNING: CPU: 0 PID: 1 at x.c:1\n"
      "[ 1.6] a normal line with warning and bug in lowercase\n"
      "VS-DIRTY mib=256 rate=100\n");
  EXPECT_THAT(log.oops_lines,
              ElementsAre("[ 1.0] Oops: 0002 [#1] SMP", "[ 1.1] BUG: kernel NULL pointer dereference",
                          "[ 1.2] Kernel panic - not syncing: Fatal exception", "[ 1.3] general protection fault: 0000",
                          "[ 1.4] Call Trace:", "[ 1.5] WARNING: CPU: 0 PID: 1 at x.c:1"));
  EXPECT_THAT(log.acks, IsEmpty());
  EXPECT_THAT(log.malformed_lines, IsEmpty());
}

TEST(OracleSerialLog, EmptyAndBinaryInputYieldNothing) {
  EXPECT_THAT(ParseSerialLog("").acks, IsEmpty());
  constexpr char kHostile[] = "\0\xff\xfe\n\n\r\nVS-\nVS-ACK";
  const SerialLog log = ParseSerialLog(std::string(kHostile, sizeof kHostile - 1));
  EXPECT_THAT(log.acks, IsEmpty());
  EXPECT_EQ(log.malformed_lines.size(), 1u);  // the bare "VS-ACK" at the end
}

}  // namespace
}  // namespace vs::oracle
