#include "shadowd/store/memory_store.h"

#include <cassert>

#include "shadowd/store/envelope.h"

namespace vs::store {

StatusOr<std::optional<std::string>> MemoryStore::Get(std::string_view key) const {
  MutexLock lock(mu_);
  auto it = encoded_.find(key);
  if (it == encoded_.end()) return std::optional<std::string>();
  VS_ASSIGN_OR_RETURN(std::string payload, DecodeEnvelope(key, it->second));
  return std::optional<std::string>(std::move(payload));
}

Status MemoryStore::Write(const WriteBatch& batch) {
  // Validation and encoding happen before the lock and before any change, so a refused batch
  // leaves nothing behind: that is what makes the batch atomic here.
  VS_RETURN_IF_ERROR(ValidateBatch(batch));
  std::vector<std::string> encoded_values;
  encoded_values.reserve(batch.ops().size());
  for (const WriteBatch::Op& op : batch.ops()) {
    encoded_values.push_back(op.kind == WriteBatch::OpKind::kPut ? EncodeEnvelope(op.payload) : std::string());
  }
  MutexLock lock(mu_);
  for (size_t i = 0; i < batch.ops().size(); ++i) {
    const WriteBatch::Op& op = batch.ops()[i];
    if (op.kind == WriteBatch::OpKind::kPut) {
      encoded_[op.key] = std::move(encoded_values[i]);
    } else {
      encoded_.erase(op.key);
    }
  }
  return Status::Ok();
}

StatusOr<std::vector<Entry>> MemoryStore::Scan(std::string_view prefix) const {
  MutexLock lock(mu_);
  std::vector<Entry> entries;
  for (auto it = encoded_.lower_bound(prefix); it != encoded_.end() && it->first.starts_with(prefix); ++it) {
    VS_ASSIGN_OR_RETURN(std::string payload, DecodeEnvelope(it->first, it->second));
    entries.push_back({it->first, std::move(payload)});
  }
  return entries;
}

StatusOr<std::vector<std::string>> MemoryStore::ScanKeys(std::string_view prefix) const {
  MutexLock lock(mu_);
  std::vector<std::string> keys;
  for (auto it = encoded_.lower_bound(prefix); it != encoded_.end() && it->first.starts_with(prefix); ++it) {
    keys.push_back(it->first);
  }
  return keys;
}

void MemoryStore::PutRawForTesting(std::string key, std::string stored_bytes) {
  MutexLock lock(mu_);
  encoded_[std::move(key)] = std::move(stored_bytes);
}

Status FaultInjectingStore::Write(const WriteBatch& batch) {
  {
    MutexLock lock(mu_);
    ++writes_attempted_;
    if (writes_attempted_ == fail_at_write_) {
      fail_at_write_ = 0;
      return failure_;
    }
  }
  return target_.Write(batch);
}

void FaultInjectingStore::FailNthWrite(int nth, Status failure) {
  assert(nth >= 1 && !failure.ok());
  MutexLock lock(mu_);
  fail_at_write_ = writes_attempted_ + nth;
  failure_ = std::move(failure);
}

int FaultInjectingStore::writes_attempted() const {
  MutexLock lock(mu_);
  return writes_attempted_;
}

}  // namespace vs::store
