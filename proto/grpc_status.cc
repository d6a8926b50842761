#include "proto/grpc_status.h"

namespace vs {

grpc::Status ToGrpcStatus(const Status& status) {
  const std::string& m = status.message();
  switch (status.code()) {
    case Code::kOk: return grpc::Status::OK;
    case Code::kInvalidArgument: return {grpc::StatusCode::INVALID_ARGUMENT, m};
    case Code::kNotFound: return {grpc::StatusCode::NOT_FOUND, m};
    case Code::kAlreadyExists: return {grpc::StatusCode::ALREADY_EXISTS, m};
    case Code::kFailedPrecondition: return {grpc::StatusCode::FAILED_PRECONDITION, m};
    case Code::kUnavailable: return {grpc::StatusCode::UNAVAILABLE, m};
    case Code::kDeadlineExceeded: return {grpc::StatusCode::DEADLINE_EXCEEDED, m};
    case Code::kAborted: return {grpc::StatusCode::ABORTED, m};
    case Code::kResourceExhausted: return {grpc::StatusCode::RESOURCE_EXHAUSTED, m};
    case Code::kPermissionDenied: return {grpc::StatusCode::PERMISSION_DENIED, m};
    case Code::kDataLoss: return {grpc::StatusCode::DATA_LOSS, m};
    case Code::kInternal: return {grpc::StatusCode::INTERNAL, m};
  }
  return {grpc::StatusCode::INTERNAL, m};
}

Status FromGrpcStatus(const grpc::Status& status) {
  const std::string& m = status.error_message();
  switch (status.error_code()) {
    case grpc::StatusCode::OK: return Status::Ok();
    case grpc::StatusCode::INVALID_ARGUMENT: return InvalidArgument(m);
    case grpc::StatusCode::NOT_FOUND: return NotFound(m);
    case grpc::StatusCode::ALREADY_EXISTS: return Status(Code::kAlreadyExists, m);
    case grpc::StatusCode::FAILED_PRECONDITION: return FailedPrecondition(m);
    case grpc::StatusCode::UNAVAILABLE: return Unavailable(m);
    case grpc::StatusCode::DEADLINE_EXCEEDED: return DeadlineExceeded(m);
    case grpc::StatusCode::ABORTED: return Aborted(m);
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return Status(Code::kResourceExhausted, m);
    case grpc::StatusCode::PERMISSION_DENIED: return PermissionDenied(m);
    case grpc::StatusCode::DATA_LOSS: return DataLoss(m);
    case grpc::StatusCode::INTERNAL: return Internal(m);
    case grpc::StatusCode::UNIMPLEMENTED:
      return FailedPrecondition("the peer does not implement the call (" + m + "); update its virt-shadow");
    default:
      return Internal("gRPC code " + std::to_string(static_cast<int>(status.error_code())) + ": " + m);
  }
}

}  // namespace vs
