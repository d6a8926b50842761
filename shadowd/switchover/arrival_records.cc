#include "shadowd/switchover/arrival_records.h"

#include "shadowd/store/keys.h"

namespace vs::switchover {

namespace v1 = virtshadow::v1;

namespace {

std::string OriginKey(const std::string& vm_uuid) { return store::Key(store::Table::kHost, "origin:" + vm_uuid); }
std::string GuestFailedKey(const std::string& vm_uuid) {
  return store::Key(store::Table::kHost, "guest-failed:" + vm_uuid);
}

std::string PreparedKey(const std::string& vm_uuid) { return store::Key(store::Table::kHost, "prepared:" + vm_uuid); }

}  // namespace

Status ArrivalRecords::RecordPrepared(v1::SwitchoverRecord prepared) {
  prepared.set_requested_unix_ms(ToUnixMillis(clock_.WallNow()));
  MutexLock lock(prepared_mutex_);
  return PutPrepared(prepared);
}

Status ArrivalRecords::PutPrepared(const v1::SwitchoverRecord& prepared) {
  store::WriteBatch batch;
  batch.PutProto(PreparedKey(prepared.vm_uuid()), prepared);
  return store_.Write(batch);
}

StatusOr<std::optional<v1::SwitchoverRecord>> ArrivalRecords::PreparedOf(const std::string& vm_uuid) const {
  return store::GetProto<v1::SwitchoverRecord>(store_, PreparedKey(vm_uuid));
}

StatusOr<std::vector<v1::SwitchoverRecord>> ArrivalRecords::UnfinishedFrom(const std::string& source_host) const {
  VS_ASSIGN_OR_RETURN(std::vector<v1::SwitchoverRecord> prepared,
                      store::ScanProtos<v1::SwitchoverRecord>(store_, store::Key(store::Table::kHost, "prepared:")));
  std::erase_if(prepared, [&](const v1::SwitchoverRecord& record) {
    return record.source_host() != source_host || record.finished_unix_ms() != 0 || record.fallback();
  });
  return prepared;
}

Status ArrivalRecords::RecordCompleted(v1::SwitchoverRecord prepared) {
  prepared.set_finished_unix_ms(ToUnixMillis(clock_.WallNow()));
  MutexLock lock(prepared_mutex_);
  VS_ASSIGN_OR_RETURN(std::optional<v1::SwitchoverRecord> stored, PreparedOf(prepared.vm_uuid()));
  if (stored && stored->requested_unix_ms() != prepared.requested_unix_ms()) return Status::Ok();
  return PutPrepared(prepared);
}

Status ArrivalRecords::ForgetPrepared(const std::string& vm_uuid) {
  MutexLock lock(prepared_mutex_);
  store::WriteBatch batch;
  batch.Delete(PreparedKey(vm_uuid));
  return store_.Write(batch);
}

Status ArrivalRecords::RecordOrigin(const std::string& vm_uuid, const std::string& vm_name,
                                    const std::string& origin_host, v1::OriginRecord::Arrival arrived_by,
                                    const std::string& why) {
  v1::OriginRecord origin;
  origin.set_vm_uuid(vm_uuid);
  origin.set_vm_name(vm_name);
  origin.set_origin_host(origin_host);
  origin.set_arrived_by(arrived_by);
  origin.set_why(why);
  origin.set_arrived_unix_ms(ToUnixMillis(clock_.WallNow()));
  store::WriteBatch batch;
  batch.PutProto(OriginKey(vm_uuid), origin);
  return store_.Write(batch);
}

StatusOr<std::optional<v1::OriginRecord>> ArrivalRecords::OriginOf(const std::string& vm_uuid) const {
  return store::GetProto<v1::OriginRecord>(store_, OriginKey(vm_uuid));
}

StatusOr<std::vector<v1::OriginRecord>> ArrivalRecords::Origins() const {
  return store::ScanProtos<v1::OriginRecord>(store_, store::Key(store::Table::kHost, "origin:"));
}

Status ArrivalRecords::SettleFormerImage(const std::string& vm_uuid, const std::string& outcome) {
  VS_ASSIGN_OR_RETURN(std::optional<v1::OriginRecord> origin, OriginOf(vm_uuid));
  if (!origin) return NotFound("VM " + vm_uuid + " did not arrive here by a switchover");
  origin->set_former_image_settled_unix_ms(ToUnixMillis(clock_.WallNow()));
  origin->set_former_image_outcome(outcome);
  store::WriteBatch batch;
  batch.PutProto(OriginKey(vm_uuid), *origin);
  return store_.Write(batch);
}

Status ArrivalRecords::RecordGuestFailure(const std::string& vm_uuid, const std::string& vm_name,
                                          const std::string& origin_host, const std::string& seen) {
  v1::GuestFailedRecord failed;
  failed.set_vm_uuid(vm_uuid);
  failed.set_vm_name(vm_name);
  failed.set_origin_host(origin_host);
  failed.set_seen(seen);
  failed.set_failed_unix_ms(ToUnixMillis(clock_.WallNow()));
  store::WriteBatch batch;
  batch.PutProto(GuestFailedKey(vm_uuid), failed);
  return store_.Write(batch);
}

StatusOr<std::optional<v1::GuestFailedRecord>> ArrivalRecords::GuestFailureOf(const std::string& vm_uuid) const {
  return store::GetProto<v1::GuestFailedRecord>(store_, GuestFailedKey(vm_uuid));
}

StatusOr<std::vector<v1::GuestFailedRecord>> ArrivalRecords::GuestFailures() const {
  return store::ScanProtos<v1::GuestFailedRecord>(store_, store::Key(store::Table::kHost, "guest-failed:"));
}

Status ArrivalRecords::ForgetGuestFailure(const std::string& vm_uuid) {
  store::WriteBatch batch;
  batch.Delete(GuestFailedKey(vm_uuid));
  return store_.Write(batch);
}

}  // namespace vs::switchover
