#include "shadowd/store/history.h"

#include <charconv>
#include <string>
#include <vector>

namespace vs::store {
namespace {

constexpr size_t kSeqDigits = 20;

StatusOr<uint64_t> SeqOfKey(std::string_view prefix, std::string_view key) {
  const std::string_view digits = key.substr(prefix.size());
  uint64_t seq = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), seq);
  if (digits.size() != kSeqDigits || ec != std::errc() || ptr != digits.data() + digits.size()) {
    return DataLoss("key '" + std::string(key) + "' under history prefix '" + std::string(prefix) +
                    "' does not end in a " + std::to_string(kSeqDigits) + "-digit sequence number");
  }
  return seq;
}

}  // namespace

Status AppendBounded(const Store& store, WriteBatch& batch, Table table, std::string_view id, uint64_t seq,
                     const google::protobuf::MessageLite& value, size_t max_entries) {
  const std::string prefix = HistoryPrefix(table, id);
  if (max_entries == 0) return InvalidArgument("history '" + prefix + "': max_entries must be at least 1");
  VS_ASSIGN_OR_RETURN(std::vector<std::string> keys, store.ScanKeys(prefix));
  if (!keys.empty()) {
    VS_ASSIGN_OR_RETURN(uint64_t newest, SeqOfKey(prefix, keys.back()));
    if (seq <= newest) {
      return InvalidArgument("history '" + prefix + "': seq " + std::to_string(seq) +
                             " is not after the newest entry " + std::to_string(newest) +
                             "; sequence numbers must increase");
    }
  }
  // Keys are in seq order (fixed-width digits), so the oldest are at the front.
  const size_t total = keys.size() + 1;
  for (size_t i = 0; total > max_entries && i < total - max_entries; ++i) batch.Delete(keys[i]);
  batch.PutProto(HistoryKey(table, id, seq), value);
  return Status::Ok();
}

}  // namespace vs::store
