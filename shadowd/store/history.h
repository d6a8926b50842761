// Bounded time series in the store (heartbeat history per peer, ...).
//
// A series is identified by (table, id); its entries live under HistoryPrefix(table, id) at
// HistoryKey(table, id, seq), so Scan(HistoryPrefix(table, id)) returns them oldest first.
// AppendBounded adds one entry and, in the SAME batch, deletes the oldest ones beyond
// max_entries, so the series never grows past its bound, even across crashes.
//
// Preconditions: at most one AppendBounded per series per batch (the pending batch is not
// visible to the store read that decides what to trim); the caller serialises writers of a
// series. Failure modes: InvalidArgument for max_entries == 0 or a seq not after the newest
// stored one (a clock or counter that went backwards must not silently drop or reorder
// entries); DataLoss when a key under the series' prefix is not a history key; store errors.
// Thread-safety: as the Store's.
#pragma once

#include <google/protobuf/message_lite.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/status.h"
#include "shadowd/store/keys.h"
#include "shadowd/store/store.h"

namespace vs::store {

// Adds `value` as entry `seq` of series (table, id) to `batch`, plus the Deletes that keep the
// series at no more than max_entries once `batch` is written. Reads `store`, never writes it.
Status AppendBounded(const Store& store, WriteBatch& batch, Table table, std::string_view id, uint64_t seq,
                     const google::protobuf::MessageLite& value, size_t max_entries);

}  // namespace vs::store
