// Schema version of the store: what the payloads under each table mean.
//
// The version lives under the reserved key "meta/schema_version" (SchemaVersionKey()) as a
// decimal payload. EnsureSchema runs when a store is opened:
// - no version key (a new store): the binary's version is written;
// - same version: nothing to do;
// - a NEWER version (written by a newer shadowd): FailedPrecondition naming both versions,
//   because this binary would misread the data; the operator upgrades shadowd;
// - an OLDER version: the pending migrations run in order, each in ONE batch together with the
//   version bump it achieves, so a crash mid-upgrade leaves the store at a consistent version
//   and the next open resumes from there. A migration reads the store as left by the previous
//   one and adds its rewrites to the batch it is given.
//
// Failure modes: DataLoss when the version key holds something other than a positive number;
// InvalidArgument when a Schema's migration table does not match its version; the store's own
// errors. Thread-safety: run before the store is shared (at open).
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "shadowd/store/store.h"

namespace vs::store {

// Upgrades a store from version v to v+1: reads `store` (at version v) and adds the rewrites to
// `batch`. It must not write to `store` itself.
using Migration = std::function<Status(const Store& store, WriteBatch& batch)>;

struct Schema {
  uint32_t version = 0;
  // migrations[i] upgrades version i+1 to i+2; exactly version-1 entries.
  std::vector<Migration> migrations;
};

// What this shadowd writes and reads: version 1, no migrations yet.
Schema CurrentSchema();

// Brings the store at `location` (a path, named in errors) to `schema.version`, as described above.
Status EnsureSchema(Store& store, std::string_view location, const Schema& schema);

}  // namespace vs::store
