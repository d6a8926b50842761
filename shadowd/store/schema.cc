#include "shadowd/store/schema.h"

#include <charconv>
#include <optional>
#include <string>

namespace vs::store {
namespace {

StatusOr<uint32_t> ParseVersion(std::string_view location, const std::string& payload) {
  uint32_t version = 0;
  const char* end = payload.data() + payload.size();
  auto [ptr, ec] = std::from_chars(payload.data(), end, version);
  if (payload.empty() || ec != std::errc() || ptr != end || version == 0) {
    return DataLoss("store at " + std::string(location) + ": key '" + SchemaVersionKey() + "' holds '" + payload +
                    "', not a schema version (a positive integer)");
  }
  return version;
}

void PutVersion(WriteBatch& batch, uint32_t version) { batch.Put(SchemaVersionKey(), std::to_string(version)); }

}  // namespace

Schema CurrentSchema() { return Schema{.version = 1, .migrations = {}}; }

Status EnsureSchema(Store& store, std::string_view location, const Schema& schema) {
  if (schema.version == 0) return InvalidArgument("schema version 0 is not valid; versions start at 1");
  if (schema.migrations.size() != schema.version - 1) {
    return InvalidArgument("schema version " + std::to_string(schema.version) + " needs " +
                           std::to_string(schema.version - 1) + " migrations (one per older version), has " +
                           std::to_string(schema.migrations.size()));
  }
  VS_ASSIGN_OR_RETURN(std::optional<std::string> stored, store.Get(SchemaVersionKey()));
  if (!stored) {
    WriteBatch batch;
    PutVersion(batch, schema.version);
    return store.Write(batch);
  }
  VS_ASSIGN_OR_RETURN(uint32_t version, ParseVersion(location, *stored));
  if (version > schema.version) {
    return FailedPrecondition("store at " + std::string(location) + " has schema version " + std::to_string(version) +
                              "; this shadowd supports up to " + std::to_string(schema.version) + ": upgrade shadowd");
  }
  for (; version < schema.version; ++version) {
    WriteBatch batch;
    const Status migrated = schema.migrations[version - 1](store, batch);
    if (!migrated.ok()) {
      return migrated.Annotate("migrating store at " + std::string(location) + " from schema version " +
                               std::to_string(version) + " to " + std::to_string(version + 1));
    }
    PutVersion(batch, version + 1);
    VS_RETURN_IF_ERROR(store.Write(batch));
  }
  return Status::Ok();
}

}  // namespace vs::store
