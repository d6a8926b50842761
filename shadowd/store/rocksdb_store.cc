#include "shadowd/store/rocksdb_store.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include "shadowd/store/envelope.h"

namespace vs::store {
namespace {

// The one translation of RocksDB statuses into vs::Status. `operation` says what was being
// done ("open", "write", ...); the path is in every message so a log line is self-contained.
Status FromRocksDb(const rocksdb::Status& s, const std::string& path, std::string_view operation) {
  if (s.ok()) return Status::Ok();
  const std::string detail = "store at " + path + ": " + std::string(operation) + ": " + s.ToString();
  // RocksDB reports a held LOCK file as an IOError whose message names the file, both when
  // another process holds it ("While lock file: PATH/LOCK: Resource temporarily unavailable")
  // and when this process does ("lock hold by current process ...: PATH/LOCK: ...").
  if (s.IsIOError() && s.ToString().find("/LOCK: ") != std::string::npos) {
    return FailedPrecondition("store " + path +
                              " is in use by another process (LOCK held); is shadowd already running? (" +
                              s.ToString() + ")");
  }
  if (s.IsNoSpace() || s.IsMemoryLimit()) return ResourceExhausted(detail);
  // Other I/O errors (EIO, EACCES, a missing parent directory) do not go away by retrying.
  if (s.IsIOError()) return Internal(detail);
  if (s.IsCorruption()) return DataLoss(detail);
  if (s.IsNotFound()) return NotFound(detail);
  if (s.IsInvalidArgument()) return InvalidArgument(detail);
  if (s.IsBusy() || s.IsTryAgain() || s.IsAborted()) return Aborted(detail);
  if (s.IsTimedOut()) return DeadlineExceeded(detail);
  if (s.IsShutdownInProgress()) return Unavailable(detail);
  return Internal(detail);
}

// Small-footprint settings: the store holds a few thousand small records on every hypervisor
// host, next to the guests, so memory and threads stay modest and the info log is bounded.
rocksdb::Options SmallFootprintOptions() {
  rocksdb::Options options;
  options.create_if_missing = true;
  // 2 x 4 MiB memtables instead of the default 2 x 64 MiB.
  options.write_buffer_size = size_t{4} << 20;
  options.max_write_buffer_number = 2;
  // A 4 MiB block cache (default 32 MiB) that also holds index and filter blocks, so their
  // memory is bounded by it instead of growing with the number of files.
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(size_t{4} << 20);
  table.cache_index_and_filter_blocks = true;
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  options.max_open_files = 64;
  options.max_background_jobs = 2;
  // RocksDB's info LOG otherwise grows without bound on hosts that run for months.
  options.max_log_file_size = size_t{1} << 20;
  options.keep_log_file_num = 3;
  // After kill -9 the WAL may end in a torn record of a write that was never acknowledged:
  // recover up to the last intact record instead of refusing to open. Synced (acknowledged)
  // writes precede it and are kept.
  options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  return options;
}

class RocksDbStore final : public Store {
 public:
  RocksDbStore(std::string path, std::unique_ptr<rocksdb::DB> db) : path_(std::move(path)), db_(std::move(db)) {}

  StatusOr<std::optional<std::string>> Get(std::string_view key) const override {
    std::string stored;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), key, &stored);
    if (s.IsNotFound()) return std::optional<std::string>();
    VS_RETURN_IF_ERROR(FromRocksDb(s, path_, "get '" + std::string(key) + "'"));
    VS_ASSIGN_OR_RETURN(std::string payload, DecodeEnvelope(key, stored));
    return std::optional<std::string>(std::move(payload));
  }

  Status Write(const WriteBatch& batch) override {
    VS_RETURN_IF_ERROR(ValidateBatch(batch));
    rocksdb::WriteBatch rocks_batch;
    for (const WriteBatch::Op& op : batch.ops()) {
      rocksdb::Status s = op.kind == WriteBatch::OpKind::kPut ? rocks_batch.Put(op.key, EncodeEnvelope(op.payload))
                                                              : rocks_batch.Delete(op.key);
      VS_RETURN_IF_ERROR(FromRocksDb(s, path_, "add '" + op.key + "' to a write batch"));
    }
    rocksdb::WriteOptions write_options;
    write_options.sync = true;  // the crash-safety point of the Store contract
    return FromRocksDb(db_->Write(write_options, &rocks_batch), path_, "write");
  }

  StatusOr<std::vector<Entry>> Scan(std::string_view prefix) const override {
    std::vector<Entry> entries;
    VS_RETURN_IF_ERROR(ForEachUnderPrefix(prefix, [&](std::string key, std::string_view stored) -> Status {
      VS_ASSIGN_OR_RETURN(std::string payload, DecodeEnvelope(key, stored));
      entries.push_back({std::move(key), std::move(payload)});
      return Status::Ok();
    }));
    return entries;
  }

  StatusOr<std::vector<std::string>> ScanKeys(std::string_view prefix) const override {
    std::vector<std::string> keys;
    VS_RETURN_IF_ERROR(ForEachUnderPrefix(prefix, [&](std::string key, std::string_view) -> Status {
      keys.push_back(std::move(key));
      return Status::Ok();
    }));
    return keys;
  }

 private:
  template <typename Visit>
  Status ForEachUnderPrefix(std::string_view prefix, Visit visit) const {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      VS_RETURN_IF_ERROR(visit(it->key().ToString(), it->value().ToStringView()));
    }
    return FromRocksDb(it->status(), path_, "scan '" + std::string(prefix) + "'");
  }

  const std::string path_;
  const std::unique_ptr<rocksdb::DB> db_;
};

}  // namespace

StatusOr<std::unique_ptr<Store>> OpenRocksDbStore(const std::string& path, const RocksDbStoreOptions& options) {
  if (path.empty()) return InvalidArgument("store path is empty; pass the directory that holds shadowd's state");
  rocksdb::DB* raw_db = nullptr;
  VS_RETURN_IF_ERROR(FromRocksDb(rocksdb::DB::Open(SmallFootprintOptions(), path, &raw_db), path, "open"));
  auto store = std::make_unique<RocksDbStore>(path, std::unique_ptr<rocksdb::DB>(raw_db));
  VS_RETURN_IF_ERROR(EnsureSchema(*store, path, options.schema));
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace vs::store
