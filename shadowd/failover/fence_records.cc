#include "shadowd/failover/fence_records.h"

#include "shadowd/failover/fence_machine.h"
#include "shadowd/failover/fence_marker.h"
#include "shadowd/store/keys.h"

namespace vs::failover {
namespace {
constexpr std::string_view kFencePrefix = "fence:";
}  // namespace

std::string FenceRecords::KeyOf(const std::string& vm_uuid) {
  return store::Key(store::Table::kFailover, std::string(kFencePrefix) + vm_uuid);
}

StatusOr<std::optional<virtshadow::v1::FenceRecord>> FenceRecords::Get(const std::string& vm_uuid) const {
  const std::string key = KeyOf(vm_uuid);
  VS_ASSIGN_OR_RETURN(std::optional<std::string> value, store_.Get(key));
  if (!value) return std::optional<virtshadow::v1::FenceRecord>();
  virtshadow::v1::FenceRecord record;
  if (!record.ParseFromString(*value)) return DataLoss("fence record " + key + " does not parse");
  return std::optional<virtshadow::v1::FenceRecord>(std::move(record));
}

StatusOr<std::vector<virtshadow::v1::FenceRecord>> FenceRecords::List() const {
  // Key(...) escapes the id; "fence:" has nothing to escape, so this prefix is exactly the keys built by KeyOf.
  VS_ASSIGN_OR_RETURN(std::vector<store::Entry> entries,
                      store_.Scan(store::Key(store::Table::kFailover, kFencePrefix)));
  std::vector<virtshadow::v1::FenceRecord> records;
  for (const store::Entry& entry : entries) {
    virtshadow::v1::FenceRecord record;
    if (!record.ParseFromString(entry.value)) return DataLoss("fence record " + entry.key + " does not parse");
    records.push_back(std::move(record));
  }
  return records;
}

Status FenceRecords::Put(const std::vector<virtshadow::v1::FenceRecord>& records) {
  if (records.empty()) return Status::Ok();
  store::WriteBatch batch;
  for (const auto& record : records) batch.PutProto(KeyOf(record.vm_uuid()), record);
  VS_RETURN_IF_ERROR(store_.Write(batch));
  if (!marker_dir_.empty()) {
    if (Status marked = WriteFenceMarkers(marker_dir_, records); !marked.ok() && on_marker_error_) {
      on_marker_error_(marked);
    }
  }
  return Status::Ok();
}

std::vector<virtshadow::v1::FenceRecord> Blocking(const std::vector<virtshadow::v1::FenceRecord>& records) {
  std::vector<virtshadow::v1::FenceRecord> blocking;
  for (const auto& record : records) {
    if (BlocksStart(record.state())) blocking.push_back(record);
  }
  return blocking;
}

std::vector<metrics::MetricFamily> FenceMetrics(const std::vector<virtshadow::v1::FenceRecord>& records) {
  using metrics::MetricFamily;
  const std::vector<virtshadow::v1::FenceRecord> blocking = Blocking(records);
  MetricFamily count{"virt_shadow_fenced_vms",
                     "This host's VMs that it fenced (paused or destroyed on a quorum loss) and has not released.",
                     MetricFamily::Type::kGauge, {}};
  count.samples.push_back({{}, static_cast<double>(blocking.size())});
  MetricFamily each{"virt_shadow_vm_fenced", "1 for each VM this host fenced and has not released.",
                    MetricFamily::Type::kGauge, {}};
  for (const auto& record : blocking) {
    each.samples.push_back({{{"vm", record.vm_name()},
                             {"uuid", record.vm_uuid()},
                             {"state", std::string(FenceStateName(record.state()))}},
                            1.0});
  }
  return {count, each};
}

}  // namespace vs::failover
