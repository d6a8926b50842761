#include "shadowd/store/keys.h"

#include <gtest/gtest.h>

namespace vs::store {
namespace {

TEST(StoreKeysTest, KeysAreTableSlashId) {
  EXPECT_EQ(Key(Table::kVm, "web-1"), "vm/web-1");
  EXPECT_EQ(Key(Table::kReservation, "h2"), "reservation/h2");
  EXPECT_EQ(TablePrefix(Table::kHeartbeat), "heartbeat/");
  EXPECT_EQ(TableName(Table::kSpool), "spool");
}

TEST(StoreKeysTest, SlashAndPercentInIdsAreEscapedSoIdsCannotOverlap) {
  EXPECT_EQ(Key(Table::kVm, "a/b"), "vm/a%2Fb");
  EXPECT_EQ(Key(Table::kVm, "a%2Fb"), "vm/a%252Fb");  // distinct from the id "a/b"
  EXPECT_NE(Key(Table::kVm, "a/b"), Key(Table::kVm, "a%2Fb"));
  // The history of "a" cannot contain keys of the id "a/1".
  EXPECT_FALSE(Key(Table::kHeartbeat, "a/1").starts_with(HistoryPrefix(Table::kHeartbeat, "a")));
}

TEST(StoreKeysTest, HistoryKeysAreFixedWidthSoByteOrderIsNumericOrder) {
  EXPECT_EQ(HistoryKey(Table::kHeartbeat, "h1", 42), "heartbeat/h1/00000000000000000042");
  EXPECT_EQ(HistoryKey(Table::kHeartbeat, "h1", UINT64_MAX), "heartbeat/h1/18446744073709551615");
  EXPECT_LT(HistoryKey(Table::kHeartbeat, "h1", 9), HistoryKey(Table::kHeartbeat, "h1", 10));
  EXPECT_TRUE(HistoryKey(Table::kHeartbeat, "h1", 0).starts_with(HistoryPrefix(Table::kHeartbeat, "h1")));
}

TEST(StoreKeysTest, ValidateKeyAcceptsEveryTableAndRefusesOthersByName) {
  for (Table t : {Table::kMeta, Table::kVm, Table::kHost, Table::kReservation, Table::kCheckpoint, Table::kHeartbeat,
                  Table::kSpool}) {
    EXPECT_TRUE(ValidateKey(Key(t, "x")).ok()) << TableName(t);
  }
  for (const char* bad : {"", "vm", "vmx/1", "VM/1", "/vm/1", "unknown/1"}) {
    Status s = ValidateKey(bad);
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find(std::string("'") + bad + "'"), std::string::npos) << s.message();
  }
  EXPECT_NE(ValidateKey("vmx/1").message().find("vm/, host/"), std::string::npos);
}

}  // namespace
}  // namespace vs::store
