#include "images/oracle/record_format.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "images/oracle/crc32.h"
#include "tests/unit/oracle/test_image.h"

namespace vs::oracle {
namespace {

using ::testing::HasSubstr;
using testing::kBootA;
using testing::RecordBody;
using testing::RecordSector;
using testing::Sector;

// Expected values were computed with busybox `crc32` and Python's zlib.crc32 on the build host.
TEST(OracleCrc32, MatchesBusyboxCrc32) {
  EXPECT_EQ(Crc32Hex(""), "00000000");
  EXPECT_EQ(Crc32Hex("a"), "e8b7be43");
  EXPECT_EQ(Crc32Hex("123456789"), "cbf43926");
  EXPECT_EQ(Crc32Hex("VSREC v1 seq=1 boot=abcd1234 up=1.00"), "ce0457a5");
  EXPECT_EQ(Crc32Hex(std::string(70000, 'x')), "c5614828");
}

TEST(OracleRecordFormat, ParsesValidRecord) {
  StatusOr<Record> record = ParseRecordSector(RecordSector(42, kBootA, "123.45"));
  ASSERT_TRUE(record.ok()) << record.status().ToString();
  EXPECT_EQ(record->seq, 42u);
  EXPECT_EQ(record->boot, kBootA);
  EXPECT_EQ(record->uptime, "123.45");
}

TEST(OracleRecordFormat, AcceptsUptimeWithoutFraction) {
  EXPECT_TRUE(ParseRecordSector(RecordSector(1, kBootA, "7")).ok());
}

// Builds a sector with a correct CRC over an arbitrary body, so only the named defect is wrong.
std::string SectorWithGoodCrc(const std::string& body, const std::string& tail = "\n") {
  return Sector(body + " crc=" + Crc32Hex(body) + tail);
}

struct BadRecordCase {
  std::string name;
  std::string sector;
  std::string reason;  // a substring of the expected error message
};

void PrintTo(const BadRecordCase& c, std::ostream* os) { *os << c.name; }

class OracleRecordFormatRejects : public ::testing::TestWithParam<BadRecordCase> {};

TEST_P(OracleRecordFormatRejects, NamesTheDefect) {
  StatusOr<Record> record = ParseRecordSector(GetParam().sector);
  ASSERT_FALSE(record.ok());
  EXPECT_EQ(record.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(record.status().message(), HasSubstr(GetParam().reason));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, OracleRecordFormatRejects,
    ::testing::Values(
        BadRecordCase{"CrcMismatch", Sector(RecordBody(3, kBootA) + " crc=00012345\n"), "crc mismatch: stored 00012345"},
        BadRecordCase{"WrongVersion", SectorWithGoodCrc("VSREC v2 seq=3 boot=abcd1234 up=1.00"), "'VSREC v1 '"},
        BadRecordCase{"SeqZero", SectorWithGoodCrc(RecordBody(0, kBootA)), "field seq: 0"},
        BadRecordCase{"SeqOverflow", SectorWithGoodCrc("VSREC v1 seq=18446744073709551616 boot=abcd1234 up=1.00"),
                      "field seq: not a 64-bit"},
        BadRecordCase{"SeqNotNumber", SectorWithGoodCrc("VSREC v1 seq=x boot=abcd1234 up=1.00"), "field seq"},
        BadRecordCase{"BootUppercase", SectorWithGoodCrc(RecordBody(3, "ABCD1234")), "field boot"},
        BadRecordCase{"BootTooShort", SectorWithGoodCrc(RecordBody(3, "abcd123")), "field boot"},
        BadRecordCase{"BootTooLong", SectorWithGoodCrc(RecordBody(3, "abcd12345")), "field boot"},
        BadRecordCase{"UptimeTrailingDot", SectorWithGoodCrc(RecordBody(3, kBootA, "12.")), "field up"},
        BadRecordCase{"UptimeMissing", SectorWithGoodCrc("VSREC v1 seq=3 boot=abcd1234 up="), "field up"},
        BadRecordCase{"NoNewline", SectorWithGoodCrc(RecordBody(3, kBootA), ""), "expected newline"},
        BadRecordCase{"TrailingBytes", SectorWithGoodCrc(RecordBody(3, kBootA), "\nleftover"),
                      "non-NUL bytes after the record line 'leftover'"},
        BadRecordCase{"Truncated", std::string("VSREC v1 seq=3 boot=abcd1234"), "expected ' '"},
        BadRecordCase{"Binary", Sector(std::string("VSREC \x01\x02\xff", 9)), "got 'VSREC ??" "?'"}),
    [](const ::testing::TestParamInfo<BadRecordCase>& info) { return info.param.name; });

TEST(OracleRecordFormat, SlotForSeqWrapsOverRecordSlots) {
  // 4 slots: header + 3 record slots.
  EXPECT_EQ(SlotForSeq(1, 4), 1u);
  EXPECT_EQ(SlotForSeq(3, 4), 3u);
  EXPECT_EQ(SlotForSeq(4, 4), 1u);
  EXPECT_EQ(SlotForSeq(8, 4), 2u);
  EXPECT_EQ(SlotForSeq(UINT64_MAX, 16384), 1 + (UINT64_MAX - 1) % 16383);
}

TEST(OracleRecordFormat, ParsesHeader) {
  StatusOr<Header> header = ParseHeaderSector(Sector("VSHDR v1 last=77 boot=abcd1234\n"));
  ASSERT_TRUE(header.ok()) << header.status().ToString();
  EXPECT_EQ(header->last, 77u);
  EXPECT_EQ(header->boot, kBootA);
}

TEST(OracleRecordFormat, RejectsBadHeader) {
  EXPECT_THAT(ParseHeaderSector(Sector("VSHDR v1 last=x boot=abcd1234")).status().message(), HasSubstr("last"));
  EXPECT_THAT(ParseHeaderSector(Sector("VSHDR v1 last=1 boot=abcd1234")).status().message(),
              HasSubstr("expected newline after boot"));
  EXPECT_THAT(ParseHeaderSector(Sector("VSHDR v1 last=1 boot=abcd1234\nx")).status().message(),
              HasSubstr("non-NUL bytes after the header line"));
}

TEST(OracleRecordFormat, RecognisesMagic) {
  EXPECT_TRUE(LooksLikeRecord(RecordSector(1, kBootA)));
  EXPECT_FALSE(LooksLikeRecord(Sector("")));
  EXPECT_FALSE(LooksLikeRecord("VSREC"));
  EXPECT_TRUE(LooksLikeHeader("VSHDR v1"));
  EXPECT_FALSE(LooksLikeHeader(RecordSector(1, kBootA)));
}

TEST(OracleRecordFormat, IsBootIdWantsExactlyEightLowercaseHexDigits) {
  EXPECT_TRUE(IsBootId("abcd1234"));
  EXPECT_FALSE(IsBootId("abcd123"));
  EXPECT_FALSE(IsBootId("abcd12345"));
  EXPECT_FALSE(IsBootId("ABCD1234"));
  EXPECT_FALSE(IsBootId("abcd123g"));
  EXPECT_FALSE(IsBootId("abcd1234 "));
}

}  // namespace
}  // namespace vs::oracle
