#include "shadowd/store/keys.h"

#include <array>
#include <cstdio>

namespace vs::store {
namespace {

constexpr std::array kAllTables = {Table::kMeta,       Table::kVm,        Table::kHost, Table::kReservation,
                                   Table::kCheckpoint, Table::kHeartbeat, Table::kSpool, Table::kSwitchover,
                                   Table::kFailover};

// Escapes the separator and the escape character itself, which keeps the mapping injective
// and guarantees an escaped id contains no '/'.
std::string EscapeId(std::string_view id) {
  std::string out;
  out.reserve(id.size());
  for (char c : id) {
    if (c == '%') {
      out += "%25";
    } else if (c == '/') {
      out += "%2F";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string_view TableName(Table table) {
  switch (table) {
    case Table::kMeta:
      return "meta";
    case Table::kVm:
      return "vm";
    case Table::kHost:
      return "host";
    case Table::kReservation:
      return "reservation";
    case Table::kCheckpoint:
      return "checkpoint";
    case Table::kHeartbeat:
      return "heartbeat";
    case Table::kSpool:
      return "spool";
    case Table::kSwitchover:
      return "switchover";
    case Table::kFailover:
      return "failover";
  }
  return "invalid";  // unreachable for a valid enum value; -Wswitch flags missing cases
}

std::string TablePrefix(Table table) { return std::string(TableName(table)) + "/"; }

Status ValidateKey(std::string_view key) {
  std::string known;
  for (Table table : kAllTables) {
    if (key.starts_with(TablePrefix(table))) return Status::Ok();
    known += (known.empty() ? "" : ", ") + TablePrefix(table);
  }
  return InvalidArgument("key '" + std::string(key) + "' is in no store table (" + known +
                         "); build keys with the helpers of shadowd/store/keys.h");
}

std::string Key(Table table, std::string_view id) { return TablePrefix(table) + EscapeId(id); }

std::string HistoryPrefix(Table table, std::string_view id) { return Key(table, id) + "/"; }

std::string HistoryKey(Table table, std::string_view id, uint64_t seq) {
  char digits[21];  // 2^64-1 has 20 digits
  std::snprintf(digits, sizeof(digits), "%020llu", static_cast<unsigned long long>(seq));
  return HistoryPrefix(table, id) + digits;
}

}  // namespace vs::store
