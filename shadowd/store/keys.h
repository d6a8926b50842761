// Key layout of shadowd's store: the one place that knows how keys are spelled.
//
// Every key is "<table>/<id>", where <table> is one of the Table names below and <id> is the
// caller's identifier with '%' and '/' percent-escaped, so an id can never reach into another
// table or another id's range ("vm/a/..." cannot be produced by any id other than "a").
// Time series (heartbeats, ...) add one more level: "<table>/<id>/<seq>", where <seq> is a
// 20-digit zero-padded decimal, so a prefix Scan returns the entries in seq order.
//
// Nobody concatenates key strings by hand elsewhere: build them with Key(), HistoryKey() and
// HistoryPrefix(). Store::Write refuses keys outside the tables declared here.
//
// Thread-safety: pure functions. Failure modes: none when building keys (every id is
// representable); ValidateKey reports keys that were not built here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace vs::store {

enum class Table {
  kMeta,         // store bookkeeping, e.g. the schema version
  kVm,           // per-VM protection state
  kHost,         // host placement facts
  kReservation,  // capacity reserved for shadows
  kCheckpoint,   // replication checkpoints
  kHeartbeat,    // bounded heartbeat history per peer
  kSpool,        // hook events accepted while a peer was unreachable
  kSwitchover,   // live switchovers of this host's VMs (SwitchoverRecord per VM)
  kFailover,     // host failure: fence records ("fence:VM_UUID"), crash promotions on this host and the vetoes
                 // against them ("promotion:", "veto:"; proto/failover.proto)
};

// "vm", "host", ...: the table's name, without the '/' separator.
std::string_view TableName(Table table);

// "vm/": every key of `table` starts with this and no key of another table does.
std::string TablePrefix(Table table);

// OK when `key` lies in one of the tables above; InvalidArgument naming the key otherwise.
Status ValidateKey(std::string_view key);

// "<table>/<escaped id>".
std::string Key(Table table, std::string_view id);

// "<table>/<escaped id>/": the prefix under which the time series of `id` lives.
std::string HistoryPrefix(Table table, std::string_view id);

// "<table>/<escaped id>/<seq as 20 zero-padded digits>".
std::string HistoryKey(Table table, std::string_view id, uint64_t seq);

// The reserved key holding the store's schema version.
inline std::string SchemaVersionKey() { return Key(Table::kMeta, "schema_version"); }

}  // namespace vs::store
