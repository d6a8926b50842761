// FaultInjectingStore: the seam that lets callers' failure paths be tested. (MemoryStore's
// Store semantics are covered by store_contract_test.cc.)
#include "shadowd/store/memory_store.h"

#include <gtest/gtest.h>

#include "tests/unit/store/store_test_util.h"

namespace vs::store {
namespace {

WriteBatch PairBatch(const std::string& value) {
  WriteBatch batch;
  batch.Put(Key(Table::kVm, "a"), value);
  batch.Put(Key(Table::kVm, "b"), value);
  return batch;
}

TEST(FaultInjectingStoreTest, FailsExactlyTheNthWriteAndAppliesNoneOfIt) {
  MemoryStore memory;
  FaultInjectingStore store(memory);
  store.FailNthWrite(2, Unavailable("injected: disk gone"));

  ASSERT_TRUE(store.Write(PairBatch("1")).ok());
  Status failed = store.Write(PairBatch("2"));
  EXPECT_EQ(failed.code(), Code::kUnavailable);
  EXPECT_EQ(failed.message(), "injected: disk gone");
  // Neither key of the failed batch changed.
  EXPECT_EQ(Describe(store.Get(Key(Table::kVm, "a"))), "1");
  EXPECT_EQ(Describe(store.Get(Key(Table::kVm, "b"))), "1");

  // The fault fires once; later writes go through.
  ASSERT_TRUE(store.Write(PairBatch("3")).ok());
  EXPECT_EQ(Describe(memory.Get(Key(Table::kVm, "b"))), "3");
  EXPECT_EQ(store.writes_attempted(), 3);
}

TEST(FaultInjectingStoreTest, CountsFromWhenItIsArmedAndReArmingReplaces) {
  MemoryStore memory;
  FaultInjectingStore store(memory);
  ASSERT_TRUE(store.Write(PairBatch("1")).ok());
  store.FailNthWrite(3, Aborted("first"));
  store.FailNthWrite(1, Internal("second"));
  EXPECT_EQ(store.Write(PairBatch("2")).code(), Code::kInternal);
  EXPECT_TRUE(store.Write(PairBatch("3")).ok());
  EXPECT_TRUE(store.Write(PairBatch("4")).ok());  // the replaced fault does not fire
  EXPECT_EQ(Describe(store.Get(Key(Table::kVm, "a"))), "4");
}

TEST(FaultInjectingStoreTest, ReadsAndRefusalsForwardToTheTarget) {
  MemoryStore memory;
  FaultInjectingStore store(memory);
  ASSERT_TRUE(memory.Write(PairBatch("x")).ok());
  EXPECT_EQ(store.Scan(TablePrefix(Table::kVm))->size(), 2u);
  EXPECT_EQ(store.ScanKeys(TablePrefix(Table::kVm))->size(), 2u);
  WriteBatch bad;
  bad.Put("nowhere/1", "x");
  EXPECT_EQ(store.Write(bad).code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace vs::store
