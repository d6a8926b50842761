#include "images/oracle/oracle.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>

#include "tests/unit/oracle/test_image.h"

namespace vs::oracle {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using testing::AckLine;
using testing::BootLine;
using testing::kBootA;
using testing::kBootB;
using testing::RecordSector;
using testing::RunLog;
using testing::Sector;
using testing::TestImage;

constexpr std::uint64_t kSlots = 16;  // 15 record slots

Report AnalyseOk(const TestImage& image, std::string_view serial, AnalyseOptions options = {}) {
  MemoryBlockReader disk(image.bytes());
  StatusOr<Report> report = Analyse(disk, serial, options);
  EXPECT_TRUE(report.ok()) << report.status().ToString();
  return report.ok() ? std::move(report).value() : Report{};
}

AnalyseOptions PrefixMode() {
  AnalyseOptions options;
  options.prefix_mode = true;
  return options;
}

TEST(OracleAnalyse, CleanRunIsOk) {
  TestImage image(kSlots);
  image.WriteRange(1, 5, kBootA);
  const Report report = AnalyseOk(image, RunLog(kBootA, 0, 1, 5));
  EXPECT_TRUE(report.ok()) << FormatReportText(report);
  EXPECT_EQ(report.slots, kSlots);
  EXPECT_EQ(report.valid_records, 5u);
  EXPECT_EQ(report.newest_seq_on_disk, 5u);
  EXPECT_EQ(report.oldest_seq_in_window, 1u);
  EXPECT_EQ(report.ack_count, 5u);
  EXPECT_EQ(report.last_acked_seq, 5u);
  EXPECT_THAT(report.boot_ids, ElementsAre(kBootA));
  ASSERT_TRUE(report.header.has_value());
  EXPECT_EQ(report.header->last, 5u);
}

// A record written and flushed but whose ACK the console never printed is not a loss.
TEST(OracleAnalyse, UnacknowledgedNewerRecordIsOk) {
  TestImage image(kSlots);
  image.WriteRange(1, 6, kBootA);
  EXPECT_TRUE(AnalyseOk(image, RunLog(kBootA, 0, 1, 5)).ok());
}

TEST(OracleAnalyse, AckBeyondNewestRecordIsAcknowledgedLoss) {
  TestImage image(kSlots);
  image.WriteRange(1, 4, kBootA);
  const Report report = AnalyseOk(image, RunLog(kBootA, 0, 1, 5));
  EXPECT_THAT(report.acked_missing.items, ElementsAre(5));
  EXPECT_THAT(report.violations,
              ElementsAre(HasSubstr("acknowledged loss: 1 acknowledged record(s)"),
                          HasSubstr("acknowledged loss: newest record on disk is seq 4 but seq 5 was acknowledged")));
  EXPECT_THAT(report.holes.items, IsEmpty());
}

TEST(OracleAnalyse, AckedRecordMissingInTheMiddleIsLossAndHole) {
  TestImage image(kSlots);
  image.WriteRange(1, 5, kBootA);
  image.PutSector(3, Sector(""));
  const Report report = AnalyseOk(image, RunLog(kBootA, 0, 1, 5));
  EXPECT_THAT(report.acked_missing.items, ElementsAre(3));
  EXPECT_THAT(report.holes.items, ElementsAre(3));
  EXPECT_THAT(report.violations, ElementsAre(HasSubstr("acknowledged loss"), HasSubstr("hole: 1 sequence")));
}

// Records 1 and 2 are gone but nothing newer is: not a hole (it is before the oldest record),
// yet they were ACKed and are still inside the window.
TEST(OracleAnalyse, AckedRecordsBeforeOldestOnDiskAreLoss) {
  TestImage image(kSlots);
  image.WriteRange(1, 5, kBootA);
  image.PutSector(1, Sector(""));
  image.PutSector(2, Sector(""));
  const Report report = AnalyseOk(image, RunLog(kBootA, 0, 1, 5));
  EXPECT_EQ(report.oldest_seq_in_window, 3u);
  EXPECT_THAT(report.holes.items, IsEmpty());
  EXPECT_THAT(report.acked_missing.items, ElementsAre(1, 2));
  EXPECT_THAT(report.violations, ElementsAre(HasSubstr("acknowledged loss: 2")));
}

// Same seq, different boot: the ACKed record was overwritten by another run.
TEST(OracleAnalyse, AckedRecordReplacedByAnotherBootIsLoss) {
  TestImage image(kSlots);
  image.WriteRange(1, 3, kBootA);
  image.Write(3, kBootB);
  const Report report = AnalyseOk(image, RunLog(kBootA, 0, 1, 3));
  EXPECT_THAT(report.acked_missing.items, ElementsAre(3));
}

TEST(OracleAnalyse, HoleWithoutAcksIsViolation) {
  TestImage image(kSlots);
  image.WriteRange(1, 6, kBootA);
  image.PutSector(3, Sector(""));
  image.PutSector(4, Sector(""));
  const Report report = AnalyseOk(image, "");
  EXPECT_THAT(report.holes.items, ElementsAre(3, 4));
  EXPECT_THAT(report.violations, ElementsAre("hole: 2 sequence number(s) missing between seq 1 and seq 6 (first: seq 3)"));
}

TEST(OracleAnalyse, CorruptCrcIsReportedWithSlotAndReason) {
  TestImage image(kSlots);
  image.WriteRange(1, 3, kBootA);
  std::string sector = RecordSector(2, kBootA);
  sector[sector.find("up=1") + 3] = '9';  // a flipped byte inside the checksummed text
  image.PutSector(2, sector);
  const Report report = AnalyseOk(image, "");
  ASSERT_THAT(report.corrupt.items, SizeIs(1));
  EXPECT_EQ(report.corrupt.items[0].slot, 2u);
  EXPECT_THAT(report.corrupt.items[0].reason, HasSubstr("crc mismatch"));
  EXPECT_THAT(report.holes.items, ElementsAre(2));
  EXPECT_THAT(report.violations, ElementsAre(HasSubstr("hole"), HasSubstr("corrupt: 1 slot(s) hold a bad record "
                                                                          "(first: slot 2: crc mismatch")));
}

TEST(OracleAnalyse, RecordInWrongSlotIsCorrupt) {
  TestImage image(kSlots);
  image.WriteRange(1, 4, kBootA);
  image.PutSector(6, RecordSector(3, kBootA));
  const Report report = AnalyseOk(image, "");
  ASSERT_THAT(report.corrupt.items, SizeIs(1));
  EXPECT_EQ(report.corrupt.items[0].slot, 6u);
  EXPECT_EQ(report.corrupt.items[0].reason, "seq 3 belongs in slot 3");
  EXPECT_EQ(report.newest_seq_on_disk, 4u);  // the misplaced record does not count
  EXPECT_FALSE(report.ok());
}

TEST(OracleAnalyse, GarbageAfterRecordMagicIsCorrupt) {
  TestImage image(kSlots);
  image.WriteRange(1, 2, kBootA);
  image.PutSector(5, Sector("VSREC \xde\xad\xbe\xef garbage"));
  const Report report = AnalyseOk(image, "");
  ASSERT_THAT(report.corrupt.items, SizeIs(1));
  EXPECT_EQ(report.corrupt.items[0].slot, 5u);
  EXPECT_THAT(report.corrupt.items[0].reason, HasSubstr("expected 'VSREC v1 '"));
}

// The format defines anything not starting with "VSREC " as an empty slot.
TEST(OracleAnalyse, GarbageWithoutRecordMagicIsAnEmptySlot) {
  TestImage image(kSlots);
  image.WriteRange(1, 2, kBootA);
  image.PutSector(9, Sector("\x7f" "ELF random bytes VSREC v1 seq=9"));
  const Report report = AnalyseOk(image, RunLog(kBootA, 0, 1, 2));
  EXPECT_TRUE(report.ok()) << FormatReportText(report);
  EXPECT_EQ(report.valid_records, 2u);
}

TEST(OracleAnalyse, WrapAroundKeepsOnlyTheWindowWithoutFalseHoles) {
  TestImage image(kSlots);
  image.WriteRange(1, 40, kBootA);  // 40 records over 15 slots: 26..40 remain
  const Report report = AnalyseOk(image, RunLog(kBootA, 0, 1, 40));
  EXPECT_TRUE(report.ok()) << FormatReportText(report);
  EXPECT_EQ(report.valid_records, 15u);
  EXPECT_EQ(report.oldest_seq_in_window, 26u);
  EXPECT_EQ(report.newest_seq_on_disk, 40u);
}

// A slot still holding the record one lap older means the newer write never landed.
TEST(OracleAnalyse, WrapAroundWithStaleSlotIsHoleAndLoss) {
  TestImage image(kSlots);
  image.WriteRange(1, 40, kBootA);
  image.PutSector(SlotForSeq(33, kSlots), RecordSector(33 - 15, kBootA));
  const Report report = AnalyseOk(image, RunLog(kBootA, 0, 1, 40));
  EXPECT_THAT(report.holes.items, ElementsAre(33));
  EXPECT_THAT(report.acked_missing.items, ElementsAre(33));
  EXPECT_THAT(report.corrupt.items, IsEmpty());  // a stale record is in its own slot
}

TEST(OracleAnalyse, RebootWithResumedSequenceIsRestartOnly) {
  TestImage image(kSlots);
  image.WriteRange(1, 3, kBootA);
  image.WriteRange(4, 6, kBootB);
  const Report report = AnalyseOk(image, RunLog(kBootA, 0, 1, 3) + RunLog(kBootB, 3, 4, 6));
  EXPECT_THAT(report.boot_ids, ElementsAre(kBootA, kBootB));
  EXPECT_THAT(report.violations, ElementsAre("restart: 2 boot ids seen: abcd1234, 0f0e0d0c"));
  EXPECT_THAT(report.holes.items, IsEmpty());
  EXPECT_THAT(report.acked_missing.items, IsEmpty());
}

// The serial log may have lost the first boot (e.g. a fresh log file); the disk still shows it.
TEST(OracleAnalyse, BootIdsFromRecordsFollowTheSerialOnesInSeqOrder) {
  TestImage image(kSlots);
  image.WriteRange(1, 3, kBootA);
  image.WriteRange(4, 6, kBootB);
  const Report report = AnalyseOk(image, RunLog(kBootB, 3, 4, 6));
  EXPECT_THAT(report.boot_ids, ElementsAre(kBootB, kBootA));
  EXPECT_THAT(report.violations, ElementsAre(HasSubstr("restart")));
}

TEST(OracleAnalyse, KernelTroubleLinesAreReportedVerbatim) {
  TestImage image(kSlots);
  image.WriteRange(1, 2, kBootA);
  const std::string oops = "[   12.345678] BUG: unable to handle page fault for address: 0000000000001234";
  const Report report = AnalyseOk(image, RunLog(kBootA, 0, 1, 2) + oops + "\r\n[   12.4] Call Trace:\n");
  EXPECT_THAT(report.oops_lines.items, ElementsAre(oops, "[   12.4] Call Trace:"));
  EXPECT_THAT(report.violations, ElementsAre("oops: 2 kernel-trouble line(s) in the serial log (first: " + oops + ")"));
}

TEST(OracleAnalyse, TheKernelsHangReportsCountAsKernelTrouble) {
  TestImage image(kSlots);
  image.WriteRange(1, 2, kBootA);
  const std::string hung = "[  40.1] INFO: task sh:57 blocked for more than 10 seconds.";
  const std::string rcu = "[  41.2] rcu: INFO: rcu_sched detected stalls on CPUs/tasks:";
  const std::string lockup = "[  42.3] NMI watchdog: Watchdog detected hard LOCKUP on cpu 0";
  const Report report = AnalyseOk(image, RunLog(kBootA, 0, 1, 2) + hung + "\n" + rcu + "\n" + lockup + "\n");
  EXPECT_THAT(report.oops_lines.items, ElementsAre(hung, rcu, lockup));
}

TEST(OracleAnalyse, AcksPrecededByOtherTextStillCount) {
  TestImage image(kSlots);
  image.WriteRange(1, 2, kBootA);
  const std::string serial = BootLine(kBootA, 0) + "[    3.1] virtio_blk: VS-ACK seq=1 boot=abcd1234\r\n" +
                             "Debian login: VS-ACK seq=2 boot=abcd1234\n" + "random text VS-ACK seq=3 boot=abcd1234\n";
  const Report report = AnalyseOk(image, serial);
  EXPECT_EQ(report.ack_count, 3u);
  EXPECT_EQ(report.last_acked_seq, 3u);
  EXPECT_THAT(report.acked_missing.items, ElementsAre(3));
}

TEST(OracleAnalyse, MalformedSerialTokensAreListedButNotViolations) {
  TestImage image(kSlots);
  image.WriteRange(1, 1, kBootA);
  const Report report = AnalyseOk(image, RunLog(kBootA, 0, 1, 1) + "VS-ACK seq=2[ 1.0] x boot=abcd1234\n");
  EXPECT_EQ(report.malformed_serial_lines.total, 1u);
  EXPECT_TRUE(report.ok());
}

TEST(OracleAnalyse, PrefixModeAcceptsLaggingReplica) {
  TestImage replica(kSlots);
  replica.WriteRange(1, 6, kBootA);
  const std::string serial = RunLog(kBootA, 0, 1, 10);
  const Report prefix = AnalyseOk(replica, serial, PrefixMode());
  EXPECT_TRUE(prefix.ok()) << FormatReportText(prefix);
  EXPECT_EQ(prefix.last_acked_seq, 10u);
  // The same disk as a source's own disk lost ACKed records.
  EXPECT_FALSE(AnalyseOk(replica, serial).ok());
}

TEST(OracleAnalyse, PrefixModeStillCatchesHole) {
  TestImage replica(kSlots);
  replica.WriteRange(1, 6, kBootA);
  replica.PutSector(4, Sector(""));
  const Report report = AnalyseOk(replica, RunLog(kBootA, 0, 1, 10), PrefixMode());
  EXPECT_THAT(report.holes.items, ElementsAre(4));
  EXPECT_THAT(report.violations, ::testing::Contains(HasSubstr("hole")));
}

TEST(OracleAnalyse, PrefixModeStillCatchesCorruption) {
  TestImage replica(kSlots);
  replica.WriteRange(1, 6, kBootA);
  replica.PutSector(6, Sector("VSREC v1 seq=6 torn"));
  const Report report = AnalyseOk(replica, RunLog(kBootA, 0, 1, 10), PrefixMode());
  EXPECT_THAT(report.corrupt.items, SizeIs(1));
  EXPECT_FALSE(report.ok());
}

// Relaxed, not removed: ACKed records up to the replica's newest record must be there.
TEST(OracleAnalyse, PrefixModeStillRequiresAckedRecordsBeforeTheReplicasNewest) {
  TestImage replica(kSlots);
  replica.WriteRange(1, 6, kBootA);
  replica.PutSector(1, Sector(""));
  const Report report = AnalyseOk(replica, RunLog(kBootA, 0, 1, 10), PrefixMode());
  EXPECT_THAT(report.acked_missing.items, ElementsAre(1));
  EXPECT_THAT(report.violations, ElementsAre(HasSubstr("acknowledged loss: 1")));
}

TEST(OracleAnalyse, EmptyDiskAndEmptySerialIsOk) {
  TestImage image(kSlots);
  const Report report = AnalyseOk(image, "");
  EXPECT_TRUE(report.ok());
  EXPECT_EQ(report.valid_records, 0u);
  EXPECT_FALSE(report.newest_seq_on_disk.has_value());
  EXPECT_FALSE(report.oldest_seq_in_window.has_value());
  EXPECT_FALSE(report.last_acked_seq.has_value());
  EXPECT_FALSE(report.header.has_value());
  EXPECT_THAT(report.boot_ids, IsEmpty());
}

TEST(OracleAnalyse, EmptyDiskWithAcksIsLoss) {
  TestImage image(kSlots);
  const Report report = AnalyseOk(image, RunLog(kBootA, 0, 1, 2));
  EXPECT_THAT(report.acked_missing.items, ElementsAre(1, 2));
  EXPECT_THAT(report.violations, ::testing::Contains("acknowledged loss: newest record on disk is none but seq 2 "
                                                     "was acknowledged"));
}

TEST(OracleAnalyse, ExpectBootAcceptsTheSameBoot) {
  TestImage image(kSlots);
  image.WriteRange(1, 2, kBootA);
  AnalyseOptions options;
  options.expect_boot = std::string(kBootA);
  EXPECT_TRUE(AnalyseOk(image, RunLog(kBootA, 0, 1, 2), options).ok());
}

TEST(OracleAnalyse, ExpectBootRejectsAnotherBoot) {
  TestImage image(kSlots);
  image.WriteRange(1, 2, kBootB);
  AnalyseOptions options;
  options.expect_boot = std::string(kBootA);
  const Report report = AnalyseOk(image, RunLog(kBootB, 0, 1, 2), options);
  EXPECT_THAT(report.violations,
              ElementsAre("restart: boot id(s) 0f0e0d0c seen, expected only abcd1234",
                          "restart: expected boot id abcd1234 is in neither the serial log nor a record"));
}

TEST(OracleAnalyse, ExpectBootRejectsAnEmptyRun) {
  TestImage image(kSlots);
  AnalyseOptions options;
  options.expect_boot = std::string(kBootA);
  EXPECT_THAT(AnalyseOk(image, "", options).violations, ElementsAre(HasSubstr("is in neither")));
}

TEST(OracleAnalyse, RejectsMalformedExpectBoot) {
  MemoryBlockReader disk(TestImage(kSlots).bytes());
  AnalyseOptions options;
  options.expect_boot = "ABCD";
  StatusOr<Report> report = Analyse(disk, "", options);
  EXPECT_EQ(report.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(report.status().message(), HasSubstr("'ABCD' is not 8 lowercase hex digits"));
}

TEST(OracleAnalyse, RejectsDiskWithoutRecordSlot) {
  MemoryBlockReader disk(std::string(kSlotBytes * 2 - 1, '\0'));
  StatusOr<Report> report = Analyse(disk, "", {});
  EXPECT_EQ(report.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(report.status().message(), HasSubstr("disk of 131071 bytes has no record slot"));
}

TEST(OracleAnalyse, ReportsUnparsableHeaderWithoutFailingTheVerdict) {
  TestImage image(kSlots);
  image.WriteRange(1, 1, kBootA);
  image.PutSector(0, Sector("VSHDR v1 last=oops"));
  const Report report = AnalyseOk(image, RunLog(kBootA, 0, 1, 1));
  EXPECT_FALSE(report.header.has_value());
  EXPECT_THAT(report.header_problem, HasSubstr("field last"));
  EXPECT_TRUE(report.ok());
}

TEST(OracleAnalyse, CapsLongListsButCountsEverything) {
  TestImage image(200);
  image.Write(1, kBootA);
  image.Write(150, kBootA);
  const Report report = AnalyseOk(image, "");
  EXPECT_EQ(report.holes.total, 148u);
  EXPECT_THAT(report.holes.items, SizeIs(CappedList<std::uint64_t>::kMaxListed));
  EXPECT_EQ(report.holes.items.front(), 2u);
}

// Hostile record: the largest seq there is, correctly placed and checksummed.
TEST(OracleAnalyse, HugeSeqDoesNotOverflowOrHang) {
  TestImage image(kSlots);
  image.PutSector(SlotForSeq(UINT64_MAX, kSlots), RecordSector(UINT64_MAX, kBootA));
  const Report report = AnalyseOk(image, "VS-ACK seq=18446744073709551615 boot=abcd1234\n");
  EXPECT_EQ(report.newest_seq_on_disk, UINT64_MAX);
  EXPECT_EQ(report.oldest_seq_in_window, UINT64_MAX);
  EXPECT_THAT(report.acked_missing.items, IsEmpty());
  EXPECT_TRUE(report.ok()) << FormatReportText(report);
}

// A 1 GiB disk without the 1 GiB: sectors live in a map, reads are counted.
class SparseCountingReader final : public BlockReader {
 public:
  explicit SparseCountingReader(std::uint64_t size) : size_(size) {}
  void Put(std::uint64_t offset, std::string sector) { sectors_[offset] = std::move(sector); }
  std::uint64_t Size() const override { return size_; }
  StatusOr<std::string> ReadAt(std::uint64_t offset, std::size_t length) override {
    ++reads_;
    max_length_ = std::max(max_length_, length);
    const auto it = sectors_.find(offset);
    std::string data = it == sectors_.end() ? std::string() : it->second;
    data.resize(length, '\0');
    return data;
  }
  int reads() const { return reads_; }
  std::size_t max_length() const { return max_length_; }

 private:
  std::uint64_t size_;
  std::map<std::uint64_t, std::string> sectors_;
  int reads_ = 0;
  std::size_t max_length_ = 0;
};

TEST(OracleAnalyse, ScansAGibibyteWithOneSectorReadPerSlot) {
  constexpr std::uint64_t kGiB = 1ull << 30;
  constexpr std::uint64_t kBigSlots = kGiB / kSlotBytes;
  SparseCountingReader disk(kGiB);
  std::string serial;
  for (std::uint64_t seq = 1; seq <= 20000; ++seq) {  // wraps once
    disk.Put(SlotForSeq(seq, kBigSlots) * kSlotBytes, RecordSector(seq, kBootA));
    serial += AckLine(seq, kBootA);
  }
  const auto start = std::chrono::steady_clock::now();
  StatusOr<Report> report = Analyse(disk, serial, {});
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report->ok()) << FormatReportText(*report);
  EXPECT_EQ(report->oldest_seq_in_window, 20000 - (kBigSlots - 1) + 1);
  EXPECT_EQ(disk.reads(), static_cast<int>(kBigSlots));
  EXPECT_EQ(disk.max_length(), kSectorBytes);
  EXPECT_LT(elapsed, std::chrono::milliseconds(500));
}

TEST(OracleReportOutput, TextShowsVerdictViolationsAndDetails) {
  TestImage image(kSlots);
  image.WriteRange(1, 4, kBootA);
  image.PutSector(2, Sector("VSREC v1 seq=2 torn"));
  const std::string text = FormatReportText(AnalyseOk(image, RunLog(kBootA, 0, 1, 4)));
  EXPECT_THAT(text, AllOf(HasSubstr("verdict: VIOLATION\n  - acknowledged loss"), HasSubstr("holes: 1\n  seq 2\n"),
                          HasSubstr("corrupt slots: 1\n  slot 2: "), HasSubstr("header: last=4 boot=abcd1234"),
                          HasSubstr("records on disk: 3 valid, newest 4, oldest in window 1")));
  EXPECT_THAT(FormatReportText(AnalyseOk(TestImage(kSlots), "")), HasSubstr("verdict: OK\n"));
}

TEST(OracleReportOutput, TextSaysHowManyItemsWereLeftOff) {
  TestImage image(200);
  image.Write(1, kBootA);
  image.Write(150, kBootA);
  EXPECT_THAT(FormatReportText(AnalyseOk(image, "")), HasSubstr("holes: 148\n  seq 2\n"));
  EXPECT_THAT(FormatReportText(AnalyseOk(image, "")), HasSubstr("  (and 98 more)\n"));
}

TEST(OracleReportOutput, JsonCarriesTheReport) {
  TestImage image(kSlots);
  image.WriteRange(1, 3, kBootA);
  image.PutSector(2, Sector(""));
  const std::string serial = RunLog(kBootA, 0, 1, 3) + std::string("WARNING: bad byte \xff here\n");
  const nlohmann::json json = nlohmann::json::parse(FormatReportJson(AnalyseOk(image, serial)));
  EXPECT_EQ(json["ok"], false);
  EXPECT_EQ(json["newest_seq_on_disk"], 3);
  EXPECT_EQ(json["oldest_seq_in_window"], 1);
  EXPECT_EQ(json["last_acked_seq"], 3);
  EXPECT_EQ(json["holes"]["listed"], nlohmann::json::array({2}));
  EXPECT_EQ(json["acked_missing"]["total"], 1);
  EXPECT_EQ(json["boot_ids"], nlohmann::json::array({"abcd1234"}));
  EXPECT_EQ(json["header"]["last"], 3);
  // Invalid UTF-8 from the console is replaced, not thrown on.
  EXPECT_EQ(json["oops_lines"]["listed"][0], "WARNING: bad byte \xef\xbf\xbd here");
  EXPECT_EQ(json["violations"].size(), 3u);
}

TEST(OracleReportOutput, JsonUsesNullForAbsentValues) {
  const nlohmann::json json = nlohmann::json::parse(FormatReportJson(AnalyseOk(TestImage(kSlots), "")));
  EXPECT_EQ(json["ok"], true);
  EXPECT_TRUE(json["newest_seq_on_disk"].is_null());
  EXPECT_TRUE(json["last_acked_seq"].is_null());
  EXPECT_TRUE(json["header"].is_null());
}

}  // namespace
}  // namespace vs::oracle
