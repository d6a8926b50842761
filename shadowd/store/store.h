// Store: shadowd's persistent state, an ordered key-value map of protobuf payloads.
//
// All shadowd state (VM protection state, host placement, reservations, replication
// checkpoints, heartbeat history, spooled hook events) lives behind this interface. It is kept
// small so that tests of other modules can use MemoryStore (memory_store.h) instead of RocksDB
// (rocksdb_store.h, the only RocksDB includer).
//
// Contract shared by every implementation:
// - Keys are built with keys.h; Write refuses a key outside the declared tables.
// - Values are payload bytes (normally a serialized protobuf, see PutProto/GetProto). The
//   implementation wraps each one in the checksummed envelope of envelope.h, so a damaged value
//   comes back as DataLoss naming its key, never as a wrong payload.
// - Get returns nullopt for an absent key: absence is an answer, not an error.
// - Write applies a whole WriteBatch atomically: after any failure, none of it is visible.
//   When Write returns OK the batch is DURABLE (synced to disk by the RocksDB store): this is
//   the crash-safety point. shadowd may be killed with -9 at any instant; after a restart every
//   batch is either fully present or fully absent, and every acknowledged one is present.
//   Hence: one state transition = one batch, written before the transition is acted upon.
// - Scan returns the entries whose key starts with `prefix`, in byte-wise key order.
//
// Ownership: the caller owns the Store. Thread-safety: implementations are safe for concurrent
// calls; a batch is atomic, but a read-modify-write spanning Get and Write is not (callers
// serialise their own transitions).
#pragma once

#include <google/protobuf/message_lite.h>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "shadowd/store/keys.h"

namespace vs::store {

// Upper bound for one payload. State records are kilobytes; anything near this is a bug, and
// the bound keeps the envelope's 32-bit length field exact.
inline constexpr size_t kMaxValueBytes = size_t{16} << 20;

// An ordered list of Put/Delete operations, applied in order (a later operation on the same key
// wins). Building a batch does no I/O and cannot fail; problems are reported by Store::Write.
// Thread-safety: none (a value owned by one thread).
class WriteBatch {
 public:
  enum class OpKind { kPut, kDelete };
  struct Op {
    OpKind kind;
    std::string key;
    std::string payload;  // empty for kDelete
  };

  void Put(std::string key, std::string payload);
  // Serializes `message`; if that fails, the batch is marked failed and Write refuses all of it.
  void PutProto(std::string key, const google::protobuf::MessageLite& message);
  void Delete(std::string key);

  const std::vector<Op>& ops() const { return ops_; }
  // Not OK once a PutProto failed to serialize.
  const Status& status() const { return status_; }

 private:
  std::vector<Op> ops_;
  Status status_;
};

// One Scan result.
struct Entry {
  std::string key;
  std::string value;  // the payload, envelope removed
};

class Store {
 public:
  virtual ~Store() = default;

  virtual StatusOr<std::optional<std::string>> Get(std::string_view key) const = 0;
  // See the contract above: atomic, and durable when it returns OK.
  virtual Status Write(const WriteBatch& batch) = 0;
  virtual StatusOr<std::vector<Entry>> Scan(std::string_view prefix) const = 0;
  // The keys Scan would return, without reading or checking values: lets a caller delete
  // entries (e.g. trim a history) even when one of them is damaged.
  virtual StatusOr<std::vector<std::string>> ScanKeys(std::string_view prefix) const = 0;
};

// The checks every implementation runs before applying a batch, so all of them refuse the same
// batches with the same messages: the batch's own status, keys in a declared table, payload size.
Status ValidateBatch(const WriteBatch& batch);

// Parses `payload` (read under `key`) into `message`; DataLoss naming key and type otherwise.
Status ParseProtoInto(std::string_view key, const std::string& payload, google::protobuf::MessageLite& message);

template <typename M>
StatusOr<M> ParseProto(std::string_view key, const std::string& payload) {
  M message;
  VS_RETURN_IF_ERROR(ParseProtoInto(key, payload, message));
  return message;
}

// The message stored under `key`, nullopt when absent, DataLoss when damaged.
template <typename M>
StatusOr<std::optional<M>> GetProto(const Store& store, std::string_view key) {
  VS_ASSIGN_OR_RETURN(std::optional<std::string> payload, store.Get(key));
  if (!payload) return std::optional<M>();
  VS_ASSIGN_OR_RETURN(M message, ParseProto<M>(key, *payload));
  return std::optional<M>(std::move(message));
}

// Every entry under `prefix`, parsed as M (DataLoss naming the key when one does not parse).
template <typename M>
StatusOr<std::vector<M>> ScanProtos(const Store& store, std::string_view prefix) {
  VS_ASSIGN_OR_RETURN(std::vector<Entry> entries, store.Scan(prefix));
  std::vector<M> messages;
  for (const Entry& entry : entries) {
    VS_ASSIGN_OR_RETURN(M message, ParseProto<M>(entry.key, entry.value));
    messages.push_back(std::move(message));
  }
  return messages;
}

}  // namespace vs::store
