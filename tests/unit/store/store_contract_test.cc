// The Store contract of shadowd/store/store.h, run against every implementation: MemoryStore
// (the fake other modules test with) and the RocksDB store in a temporary directory. A fake
// that passes the same suite as production behaves like it.
#include <google/protobuf/timestamp.pb.h>
#include <gtest/gtest.h>
#include <rocksdb/db.h>

#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "shadowd/store/envelope.h"
#include "shadowd/store/history.h"
#include "shadowd/store/keys.h"
#include "shadowd/store/memory_store.h"
#include "shadowd/store/rocksdb_store.h"
#include "shadowd/store/schema.h"
#include "shadowd/store/store.h"
#include "tests/unit/store/store_test_util.h"

namespace vs::store {
namespace {

// A message type that ships with libprotobuf, so these tests need no generated code.
using google::protobuf::Timestamp;

// A backend owns the stored data across "reopens" and can damage stored bytes underneath the
// Store, the way a bad disk or a foreign writer would.
class MemoryBackend {
 public:
  std::string location() const { return "memory"; }
  // MemoryStore is not durable: reopening means running the open-time schema check again on
  // the same object.
  StatusOr<Store*> Open(const Schema& schema) {
    VS_RETURN_IF_ERROR(EnsureSchema(store_, location(), schema));
    return static_cast<Store*>(&store_);
  }
  void Close() {}
  void PutRaw(const std::string& key, const std::string& stored_bytes) { store_.PutRawForTesting(key, stored_bytes); }

 private:
  MemoryStore store_;
};

class RocksDbBackend {
 public:
  std::string location() const { return dir_.path(); }
  StatusOr<Store*> Open(const Schema& schema) {
    store_.reset();  // release the lock before taking it again
    VS_ASSIGN_OR_RETURN(store_, OpenRocksDbStore(dir_.path(), RocksDbStoreOptions{.schema = schema}));
    return store_.get();
  }
  void Close() { store_.reset(); }
  // Writes straight through RocksDB, bypassing the envelope; the Store must be closed (it
  // holds the lock), so this closes it and the test reopens.
  void PutRaw(const std::string& key, const std::string& stored_bytes) {
    store_.reset();
    rocksdb::Options options;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir_.path(), &db).ok());
    std::unique_ptr<rocksdb::DB> owned(db);
    ASSERT_TRUE(owned->Put(rocksdb::WriteOptions(), key, stored_bytes).ok());
  }

 private:
  TempDir dir_;
  std::unique_ptr<Store> store_;
};

std::vector<std::string> KeysOf(const std::vector<Entry>& entries) {
  std::vector<std::string> keys;
  for (const Entry& e : entries) keys.push_back(e.key);
  return keys;
}

// A heartbeat-like record: `seq` seconds, `tag` in the nanos so records of different series differ.
Timestamp Beat(int64_t seq, int32_t tag = 0) {
  Timestamp beat;
  beat.set_seconds(seq);
  beat.set_nanos(tag);
  return beat;
}

template <typename Backend>
class StoreContractTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_NO_FATAL_FAILURE(Reopen()); }

  void Reopen(const Schema& schema = CurrentSchema()) {
    StatusOr<Store*> opened = backend_.Open(schema);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = *opened;
  }

  Status Put(const std::string& key, const std::string& payload) {
    WriteBatch batch;
    batch.Put(key, payload);
    return store_->Write(batch);
  }

  Store& store() { return *store_; }

  Backend backend_;
  Store* store_ = nullptr;
};

using Backends = ::testing::Types<MemoryBackend, RocksDbBackend>;
class BackendNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return std::is_same_v<T, MemoryBackend> ? "Memory" : "RocksDb";
  }
};
TYPED_TEST_SUITE(StoreContractTest, Backends, BackendNames);

TYPED_TEST(StoreContractTest, AbsentKeyIsNulloptNotAnError) {
  EXPECT_EQ(Describe(this->store().Get(Key(Table::kVm, "nobody"))), "<absent>");
}

TYPED_TEST(StoreContractTest, PutOverwriteAndDelete) {
  const std::string key = Key(Table::kVm, "vm-1");
  ASSERT_TRUE(this->Put(key, "first").ok());
  EXPECT_EQ(Describe(this->store().Get(key)), "first");
  ASSERT_TRUE(this->Put(key, "second").ok());
  EXPECT_EQ(Describe(this->store().Get(key)), "second");
  WriteBatch del;
  del.Delete(key);
  ASSERT_TRUE(this->store().Write(del).ok());
  EXPECT_EQ(Describe(this->store().Get(key)), "<absent>");
}

TYPED_TEST(StoreContractTest, EmptyAndBinaryPayloadsRoundTrip) {
  const std::string binary("\0\xff\x01VSE1\0", 9);
  ASSERT_TRUE(this->Put(Key(Table::kVm, "empty"), "").ok());
  ASSERT_TRUE(this->Put(Key(Table::kVm, "binary"), binary).ok());
  EXPECT_EQ(Describe(this->store().Get(Key(Table::kVm, "empty"))), "");
  EXPECT_EQ(Describe(this->store().Get(Key(Table::kVm, "binary"))), binary);
}

TYPED_TEST(StoreContractTest, BatchOperationsApplyInOrder) {
  const std::string a = Key(Table::kVm, "a"), b = Key(Table::kVm, "b");
  WriteBatch batch;
  batch.Put(a, "gone");
  batch.Delete(a);
  batch.Put(b, "old");
  batch.Put(b, "new");
  ASSERT_TRUE(this->store().Write(batch).ok());
  EXPECT_EQ(Describe(this->store().Get(a)), "<absent>");
  EXPECT_EQ(Describe(this->store().Get(b)), "new");
}

TYPED_TEST(StoreContractTest, BatchWithAKeyOutsideTheTablesAppliesNothing) {
  ASSERT_TRUE(this->Put(Key(Table::kVm, "kept"), "before").ok());
  WriteBatch batch;
  batch.Put(Key(Table::kVm, "kept"), "after");
  batch.Put(Key(Table::kHost, "h"), "x");
  batch.Put("vmx/1", "hand-made key");
  Status s = this->store().Write(batch);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("'vmx/1'"), std::string::npos) << s.message();
  EXPECT_EQ(Describe(this->store().Get(Key(Table::kVm, "kept"))), "before");
  EXPECT_EQ(Describe(this->store().Get(Key(Table::kHost, "h"))), "<absent>");
}

TYPED_TEST(StoreContractTest, BatchWithAnOversizedValueAppliesNothing) {
  WriteBatch batch;
  batch.Put(Key(Table::kVm, "small"), "ok");
  batch.Put(Key(Table::kVm, "huge"), std::string(kMaxValueBytes + 1, 'x'));
  Status s = this->store().Write(batch);
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("'vm/huge'"), std::string::npos) << s.message();
  EXPECT_EQ(Describe(this->store().Get(Key(Table::kVm, "small"))), "<absent>");
}

TYPED_TEST(StoreContractTest, ScanReturnsExactlyThePrefixInByteOrder) {
  // Inserted out of order; includes neighbours just below and just above each prefix range
  // ("vm/a" < "vm/a/..." < "vm/a0") and a byte >= 0x80, which must sort after ASCII.
  for (const char* key : {"vm/b", "vm/a0", "spool/z", "vm/\x80utf8", "vm/a/2", "vm/a", "vm/a/1", "reservation/x"}) {
    ASSERT_TRUE(this->Put(key, std::string("v:") + key).ok());
  }
  StatusOr<std::vector<Entry>> vm = this->store().Scan(TablePrefix(Table::kVm));
  ASSERT_TRUE(vm.ok()) << vm.status().ToString();
  EXPECT_EQ(KeysOf(*vm), (std::vector<std::string>{"vm/a", "vm/a/1", "vm/a/2", "vm/a0", "vm/b", "vm/\x80utf8"}));
  EXPECT_EQ((*vm)[1].value, "v:vm/a/1");

  StatusOr<std::vector<Entry>> sub = this->store().Scan("vm/a/");
  ASSERT_TRUE(sub.ok());
  EXPECT_EQ(KeysOf(*sub), (std::vector<std::string>{"vm/a/1", "vm/a/2"}));

  StatusOr<std::vector<Entry>> none = this->store().Scan(TablePrefix(Table::kCheckpoint));
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  StatusOr<std::vector<std::string>> keys = this->store().ScanKeys(TablePrefix(Table::kVm));
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(*keys, KeysOf(*vm));
}

TYPED_TEST(StoreContractTest, ProtoRoundTripAndAbsence) {
  const std::string key = Key(Table::kSpool, "7");
  WriteBatch batch;
  batch.PutProto(key, Beat(7, 42));
  ASSERT_TRUE(this->store().Write(batch).ok());
  StatusOr<std::optional<Timestamp>> got = GetProto<Timestamp>(this->store(), key);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->seconds(), 7);
  EXPECT_EQ((*got)->nanos(), 42);

  StatusOr<std::optional<Timestamp>> absent = GetProto<Timestamp>(this->store(), Key(Table::kSpool, "8"));
  ASSERT_TRUE(absent.ok());
  EXPECT_FALSE(absent->has_value());
}

TYPED_TEST(StoreContractTest, PayloadThatIsNotTheMessageIsDataLossNamingKeyAndType) {
  const std::string key = Key(Table::kSpool, "bad");
  ASSERT_TRUE(this->Put(key, "\xff\xff\xff\xff").ok());  // an intact envelope around invalid protobuf
  StatusOr<std::optional<Timestamp>> got = GetProto<Timestamp>(this->store(), key);
  ASSERT_EQ(got.status().code(), Code::kDataLoss);
  EXPECT_NE(got.status().message().find("'spool/bad'"), std::string::npos) << got.status().message();
  EXPECT_NE(got.status().message().find("google.protobuf.Timestamp"), std::string::npos) << got.status().message();
}

TYPED_TEST(StoreContractTest, DamagedValuesAreDataLossNamingTheKey) {
  const std::string intact = EncodeEnvelope("payload");
  std::string flipped = intact;
  flipped.back() ^= 0x01;
  const std::vector<std::pair<std::string, std::string>> damaged = {
      {Key(Table::kVm, "garbage"), "this is not an envelope"},
      {Key(Table::kVm, "truncated"), intact.substr(0, intact.size() - 2)},
      {Key(Table::kVm, "flipped"), flipped},
  };
  ASSERT_TRUE(this->Put(Key(Table::kVm, "healthy"), "fine").ok());
  for (const auto& [key, bytes] : damaged) ASSERT_NO_FATAL_FAILURE(this->backend_.PutRaw(key, bytes));
  ASSERT_NO_FATAL_FAILURE(this->Reopen());

  for (const auto& [key, bytes] : damaged) {
    StatusOr<std::optional<std::string>> got = this->store().Get(key);
    EXPECT_EQ(got.status().code(), Code::kDataLoss) << key;
    EXPECT_NE(got.status().message().find("'" + key + "'"), std::string::npos) << got.status().message();
  }
  EXPECT_EQ(Describe(this->store().Get(Key(Table::kVm, "healthy"))), "fine");
  // A scan over damaged data fails rather than skipping or returning damaged payloads...
  EXPECT_EQ(this->store().Scan(TablePrefix(Table::kVm)).status().code(), Code::kDataLoss);
  // ...but the keys can still be listed, so the damage can be deleted.
  StatusOr<std::vector<std::string>> keys = this->store().ScanKeys(TablePrefix(Table::kVm));
  ASSERT_TRUE(keys.ok());
  EXPECT_EQ(keys->size(), 4u);
}

TYPED_TEST(StoreContractTest, DataSurvivesReopen) {
  ASSERT_TRUE(this->Put(Key(Table::kCheckpoint, "disk-a"), "round 12").ok());
  this->backend_.Close();
  ASSERT_NO_FATAL_FAILURE(this->Reopen());
  EXPECT_EQ(Describe(this->store().Get(Key(Table::kCheckpoint, "disk-a"))), "round 12");
}

// ---- Schema version ----

// A schema of `version` whose migrations only count how often each one ran.
Schema CountingSchema(uint32_t version, std::vector<int>& runs) {
  Schema schema{.version = version, .migrations = {}};
  runs.assign(version, 0);
  for (uint32_t from = 1; from < version; ++from) {
    schema.migrations.push_back([&runs, from](const Store&, WriteBatch&) {
      ++runs[from];
      return Status::Ok();
    });
  }
  return schema;
}

TYPED_TEST(StoreContractTest, FreshStoreGetsTheCurrentSchemaVersion) {
  EXPECT_EQ(Describe(this->store().Get(SchemaVersionKey())), std::to_string(CurrentSchema().version));
  EXPECT_EQ(SchemaVersionKey(), "meta/schema_version");
}

TYPED_TEST(StoreContractTest, SameSchemaVersionReopensWithoutMigrating) {
  std::vector<int> runs;
  ASSERT_NO_FATAL_FAILURE(this->Reopen(CountingSchema(2, runs)));
  EXPECT_EQ(runs[1], 1);
  ASSERT_NO_FATAL_FAILURE(this->Reopen(CountingSchema(2, runs)));
  EXPECT_EQ(runs[1], 0);
  EXPECT_EQ(Describe(this->store().Get(SchemaVersionKey())), "2");
}

TYPED_TEST(StoreContractTest, NewerSchemaVersionIsRefusedNamingBothVersions) {
  std::vector<int> runs;
  ASSERT_NO_FATAL_FAILURE(this->Reopen(CountingSchema(3, runs)));  // a newer shadowd wrote it
  StatusOr<Store*> opened = this->backend_.Open(CurrentSchema());
  ASSERT_EQ(opened.status().code(), Code::kFailedPrecondition);
  EXPECT_EQ(opened.status().message(), "store at " + this->backend_.location() +
                                           " has schema version 3; this shadowd supports up to 1: upgrade shadowd");
}

TYPED_TEST(StoreContractTest, OlderSchemaVersionRunsItsMigrationInOneBatch) {
  ASSERT_TRUE(this->Put(Key(Table::kVm, "legacy"), "v1 record").ok());
  int runs = 0;
  Schema v2{.version = 2, .migrations = {}};
  v2.migrations.push_back([&runs](const Store& store, WriteBatch& batch) -> Status {
    ++runs;
    VS_ASSIGN_OR_RETURN(std::optional<std::string> old, store.Get(Key(Table::kVm, "legacy")));
    if (!old) return NotFound("legacy record missing");
    batch.Delete(Key(Table::kVm, "legacy"));
    batch.Put(Key(Table::kVm, "current"), "migrated " + *old);
    return Status::Ok();
  });
  ASSERT_NO_FATAL_FAILURE(this->Reopen(v2));
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(Describe(this->store().Get(Key(Table::kVm, "current"))), "migrated v1 record");
  EXPECT_EQ(Describe(this->store().Get(Key(Table::kVm, "legacy"))), "<absent>");
  EXPECT_EQ(Describe(this->store().Get(SchemaVersionKey())), "2");
}

TYPED_TEST(StoreContractTest, FailedMigrationStopsAtTheLastCompletedVersion) {
  // 1 -> 2 succeeds, 2 -> 3 fails: the store must stay at 2 with only step 1's changes, and
  // the next open must run only step 2.
  bool second_fails = true;
  std::vector<std::string> ran;
  Schema v3{.version = 3, .migrations = {}};
  v3.migrations.push_back([&ran](const Store&, WriteBatch& batch) {
    ran.push_back("1->2");
    batch.Put(Key(Table::kHost, "step1"), "done");
    return Status::Ok();
  });
  v3.migrations.push_back([&ran, &second_fails](const Store&, WriteBatch& batch) {
    ran.push_back("2->3");
    batch.Put(Key(Table::kHost, "step2"), "done");
    return second_fails ? Internal("disk says no") : Status::Ok();
  });
  StatusOr<Store*> failed = this->backend_.Open(v3);
  ASSERT_EQ(failed.status().code(), Code::kInternal);
  EXPECT_NE(failed.status().message().find("from schema version 2 to 3"), std::string::npos)
      << failed.status().message();

  ASSERT_NO_FATAL_FAILURE(this->Reopen(Schema{.version = 2, .migrations = {v3.migrations[0]}}));
  EXPECT_EQ(Describe(this->store().Get(SchemaVersionKey())), "2");
  EXPECT_EQ(Describe(this->store().Get(Key(Table::kHost, "step1"))), "done");
  EXPECT_EQ(Describe(this->store().Get(Key(Table::kHost, "step2"))), "<absent>");

  second_fails = false;
  ran.clear();
  ASSERT_NO_FATAL_FAILURE(this->Reopen(v3));
  EXPECT_EQ(ran, (std::vector<std::string>{"2->3"}));
  EXPECT_EQ(Describe(this->store().Get(Key(Table::kHost, "step2"))), "done");
  EXPECT_EQ(Describe(this->store().Get(SchemaVersionKey())), "3");
}

TYPED_TEST(StoreContractTest, UnreadableSchemaVersionIsDataLoss) {
  for (const std::string bad : {"", "abc", "0", "2x", "-1", "99999999999"}) {
    ASSERT_TRUE(this->Put(SchemaVersionKey(), bad).ok());
    StatusOr<Store*> opened = this->backend_.Open(CurrentSchema());
    EXPECT_EQ(opened.status().code(), Code::kDataLoss) << "'" << bad << "'";
    EXPECT_NE(opened.status().message().find("holds '" + bad + "'"), std::string::npos) << opened.status().message();
    ASSERT_NO_FATAL_FAILURE(this->backend_.PutRaw(SchemaVersionKey(), EncodeEnvelope("1")));
    ASSERT_NO_FATAL_FAILURE(this->Reopen());
  }
}

TYPED_TEST(StoreContractTest, SchemaWhoseMigrationsDoNotMatchItsVersionIsRefused) {
  EXPECT_EQ(this->backend_.Open(Schema{.version = 2, .migrations = {}}).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(this->backend_.Open(Schema{.version = 0, .migrations = {}}).status().code(), Code::kInvalidArgument);
}

// ---- Bounded history ----

TYPED_TEST(StoreContractTest, BoundedHistoryKeepsTheNewestEntriesInOrder) {
  for (uint64_t seq = 1; seq <= 7; ++seq) {
    WriteBatch batch;
    ASSERT_TRUE(AppendBounded(this->store(), batch, Table::kHeartbeat, "peer-a", seq, Beat(seq), 3).ok());
    ASSERT_TRUE(this->store().Write(batch).ok());
  }
  StatusOr<std::vector<Entry>> history = this->store().Scan(HistoryPrefix(Table::kHeartbeat, "peer-a"));
  ASSERT_TRUE(history.ok());
  ASSERT_EQ(history->size(), 3u);
  std::vector<uint64_t> seqs;
  for (const Entry& e : *history) {
    StatusOr<Timestamp> event = ParseProto<Timestamp>(e.key, e.value);
    ASSERT_TRUE(event.ok());
    seqs.push_back(static_cast<uint64_t>(event->seconds()));
    EXPECT_EQ(e.key, HistoryKey(Table::kHeartbeat, "peer-a", static_cast<uint64_t>(event->seconds())));
  }
  EXPECT_EQ(seqs, (std::vector<uint64_t>{5, 6, 7}));
}

TYPED_TEST(StoreContractTest, BoundedHistoryOrdersAcrossDigitCountsAndKeepsSeriesApart) {
  // 9 < 10 < 1e12 numerically must also hold for the keys; "peer" and "peer/x" are different
  // series and must not trim each other.
  for (uint64_t seq : {9ull, 10ull, 1000000000000ull}) {
    WriteBatch batch;
    ASSERT_TRUE(AppendBounded(this->store(), batch, Table::kHeartbeat, "peer", seq, Beat(seq, 1), 2).ok());
    ASSERT_TRUE(AppendBounded(this->store(), batch, Table::kHeartbeat, "peer/x", seq, Beat(seq, 2), 5).ok());
    ASSERT_TRUE(this->store().Write(batch).ok());
  }
  StatusOr<std::vector<std::string>> peer = this->store().ScanKeys(HistoryPrefix(Table::kHeartbeat, "peer"));
  ASSERT_TRUE(peer.ok());
  EXPECT_EQ(*peer, (std::vector<std::string>{HistoryKey(Table::kHeartbeat, "peer", 10),
                                             HistoryKey(Table::kHeartbeat, "peer", 1000000000000ull)}));
  StatusOr<std::vector<std::string>> other = this->store().ScanKeys(HistoryPrefix(Table::kHeartbeat, "peer/x"));
  ASSERT_TRUE(other.ok());
  EXPECT_EQ(other->size(), 3u);
}

TYPED_TEST(StoreContractTest, BoundedHistoryRefusesBadArguments) {
  WriteBatch batch;
  ASSERT_TRUE(AppendBounded(this->store(), batch, Table::kHeartbeat, "p", 5, Beat(5), 3).ok());
  ASSERT_TRUE(this->store().Write(batch).ok());
  WriteBatch refused;
  for (uint64_t stale : {5ull, 4ull}) {
    Status s = AppendBounded(this->store(), refused, Table::kHeartbeat, "p", stale, Beat(stale), 3);
    EXPECT_EQ(s.code(), Code::kInvalidArgument);
    EXPECT_NE(s.message().find("not after the newest entry 5"), std::string::npos) << s.message();
  }
  EXPECT_EQ(AppendBounded(this->store(), refused, Table::kHeartbeat, "p", 6, Beat(6), 0).code(),
            Code::kInvalidArgument);
  EXPECT_TRUE(refused.ops().empty());
}

TYPED_TEST(StoreContractTest, BoundedHistoryTrimsADamagedOldEntry) {
  WriteBatch first;
  ASSERT_TRUE(AppendBounded(this->store(), first, Table::kHeartbeat, "p", 1, Beat(1), 2).ok());
  ASSERT_TRUE(this->store().Write(first).ok());
  ASSERT_NO_FATAL_FAILURE(this->backend_.PutRaw(HistoryKey(Table::kHeartbeat, "p", 1), "rotten"));
  ASSERT_NO_FATAL_FAILURE(this->Reopen());
  for (uint64_t seq : {2ull, 3ull}) {
    WriteBatch batch;
    ASSERT_TRUE(AppendBounded(this->store(), batch, Table::kHeartbeat, "p", seq, Beat(seq), 2).ok());
    ASSERT_TRUE(this->store().Write(batch).ok());
  }
  StatusOr<std::vector<Entry>> history = this->store().Scan(HistoryPrefix(Table::kHeartbeat, "p"));
  ASSERT_TRUE(history.ok()) << history.status().ToString();
  EXPECT_EQ(KeysOf(*history),
            (std::vector<std::string>{HistoryKey(Table::kHeartbeat, "p", 2), HistoryKey(Table::kHeartbeat, "p", 3)}));
}

}  // namespace
}  // namespace vs::store
