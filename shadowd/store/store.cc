#include "shadowd/store/store.h"

namespace vs::store {

void WriteBatch::Put(std::string key, std::string payload) {
  ops_.push_back({OpKind::kPut, std::move(key), std::move(payload)});
}

void WriteBatch::PutProto(std::string key, const google::protobuf::MessageLite& message) {
  std::string payload;
  // Fails only for messages over protobuf's 2 GiB limit or with unset proto2 required fields.
  if (!message.SerializeToString(&payload)) {
    if (status_.ok()) {
      status_ = InvalidArgument("cannot serialize " + message.GetTypeName() + " for key '" + key + "'");
    }
    return;
  }
  Put(std::move(key), std::move(payload));
}

void WriteBatch::Delete(std::string key) { ops_.push_back({OpKind::kDelete, std::move(key), std::string()}); }

Status ValidateBatch(const WriteBatch& batch) {
  VS_RETURN_IF_ERROR(batch.status());
  for (const WriteBatch::Op& op : batch.ops()) {
    VS_RETURN_IF_ERROR(ValidateKey(op.key));
    if (op.payload.size() > kMaxValueBytes) {
      return InvalidArgument("value for key '" + op.key + "' is " + std::to_string(op.payload.size()) +
                             " bytes; the store accepts at most " + std::to_string(kMaxValueBytes));
    }
  }
  return Status::Ok();
}

Status ParseProtoInto(std::string_view key, const std::string& payload, google::protobuf::MessageLite& message) {
  if (!message.ParseFromString(payload)) {
    return DataLoss("value of key '" + std::string(key) + "' does not parse as " + message.GetTypeName());
  }
  return Status::Ok();
}

}  // namespace vs::store
