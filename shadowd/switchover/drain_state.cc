#include "shadowd/switchover/drain_state.h"

#include "shadowd/notice/notice.h"
#include "shadowd/store/keys.h"

namespace vs::switchover {
namespace {
std::string DrainKey() { return store::Key(store::Table::kHost, "drain"); }
}  // namespace

bool IsPreemption(const virtshadow::v1::DrainRecord& record) {
  return notice::KindFromName(record.kind()) == notice::Notice::Kind::kPreemption;
}

Status DrainState::Load() {
  VS_ASSIGN_OR_RETURN(auto stored, store::GetProto<virtshadow::v1::DrainRecord>(store_, DrainKey()));
  MutexLock lock(mutex_);
  current_ = std::move(stored);
  return Status::Ok();
}

std::optional<virtshadow::v1::DrainRecord> DrainState::Current() const {
  MutexLock lock(mutex_);
  return current_;
}

StatusOr<bool> DrainState::Enter(const virtshadow::v1::DrainRecord& record) {
  MutexLock lock(mutex_);
  if (current_) {
    const bool sooner = record.deadline_unix_ms() < current_->deadline_unix_ms();
    const bool escalates = IsPreemption(record) && !IsPreemption(*current_);
    if (!sooner && !escalates) return false;
  }
  store::WriteBatch batch;
  batch.PutProto(DrainKey(), record);
  VS_RETURN_IF_ERROR(store_.Write(batch));
  current_ = record;
  return true;
}

StatusOr<bool> DrainState::Clear() {
  MutexLock lock(mutex_);
  const bool was = current_.has_value();
  store::WriteBatch batch;
  batch.Delete(DrainKey());
  VS_RETURN_IF_ERROR(store_.Write(batch));
  current_.reset();
  return was;
}

}  // namespace vs::switchover
