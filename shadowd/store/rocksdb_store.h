// The production Store: RocksDB in one directory per host. This header and rocksdb_store.cc
// are the only places in virt-shadow that know RocksDB exists (the header does not include it).
//
// Durability: every Write is a synced RocksDB write (WAL fsync before it returns), so an
// acknowledged batch survives kill -9 and power loss; an unacknowledged one is all or nothing.
// Recovery after a crash happens in OpenRocksDbStore.
// Footprint: tuned for a small state database on every hypervisor host (small write buffers,
// small block cache, bounded info logs); see the .cc for the numbers and why.
//
// Failure modes of OpenRocksDbStore: FailedPrecondition when another process (or this one)
// already has the store open, or when its schema is newer than this binary; DataLoss for a
// corrupt database; Internal/ResourceExhausted for I/O failures (disk full is
// ResourceExhausted); InvalidArgument for an empty path. Every message names the path.
// Ownership: the returned Store owns the database; destroying it closes the database and
// releases the lock. Thread-safety: the Store is safe for concurrent calls.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "shadowd/store/schema.h"
#include "shadowd/store/store.h"

namespace vs::store {

struct RocksDbStoreOptions {
  // The schema this process expects; tests substitute other versions and migrations.
  Schema schema = CurrentSchema();
};

// Opens (creating it if missing) the store in directory `path`, takes its lock and runs
// EnsureSchema before returning.
StatusOr<std::unique_ptr<Store>> OpenRocksDbStore(const std::string& path,
                                                  const RocksDbStoreOptions& options = RocksDbStoreOptions());

}  // namespace vs::store
