// In-memory Store fakes for unit tests of shadowd modules (no RocksDB, no disk).
//
// MemoryStore keeps the Store contract of store.h, including envelopes: values are stored
// encoded, so DataLoss paths can be exercised with PutRawForTesting. It is not durable; a
// "restart" in a test is simply reusing the same object.
//
// FaultInjectingStore forwards to another Store and can be told to fail one upcoming Write
// with a given Status without applying it (the leveldb EnvWrapper pattern), so the failure
// paths of callers are testable.
//
// Ownership: FaultInjectingStore borrows its target, which must outlive it.
// Thread-safety: both are safe for concurrent calls (one internal mutex each).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/thread_annotations.h"
#include "shadowd/store/store.h"

namespace vs::store {

class MemoryStore final : public Store {
 public:
  StatusOr<std::optional<std::string>> Get(std::string_view key) const override;
  Status Write(const WriteBatch& batch) override;
  StatusOr<std::vector<Entry>> Scan(std::string_view prefix) const override;
  StatusOr<std::vector<std::string>> ScanKeys(std::string_view prefix) const override;

  // Stores `stored_bytes` under `key` verbatim, bypassing the envelope and all checks, to
  // simulate a damaged value.
  void PutRawForTesting(std::string key, std::string stored_bytes);

 private:
  mutable Mutex mu_;
  std::map<std::string, std::string, std::less<>> encoded_ VS_GUARDED_BY(mu_);  // key -> envelope
};

class FaultInjectingStore final : public Store {
 public:
  explicit FaultInjectingStore(Store& target) : target_(target) {}

  StatusOr<std::optional<std::string>> Get(std::string_view key) const override { return target_.Get(key); }
  // Fails without touching the target when this is the armed write; forwards otherwise.
  Status Write(const WriteBatch& batch) override;
  StatusOr<std::vector<Entry>> Scan(std::string_view prefix) const override { return target_.Scan(prefix); }
  StatusOr<std::vector<std::string>> ScanKeys(std::string_view prefix) const override {
    return target_.ScanKeys(prefix);
  }

  // Makes the nth Write from now (1 = the next one) return `failure` instead of applying the
  // batch. One fault at a time: arming again replaces the previous one. Precondition: nth >= 1,
  // !failure.ok().
  void FailNthWrite(int nth, Status failure);
  // Writes attempted through this wrapper so far, failed ones included.
  int writes_attempted() const;

 private:
  Store& target_;
  mutable Mutex mu_;
  int writes_attempted_ VS_GUARDED_BY(mu_) = 0;
  int fail_at_write_ VS_GUARDED_BY(mu_) = 0;  // 0 = no fault armed
  Status failure_ VS_GUARDED_BY(mu_);
};

}  // namespace vs::store
