#include "cli/shadowd_client.h"

#include <grpcpp/grpcpp.h>

namespace vs::cli {

namespace v1 = virtshadow::v1;

Status FromGrpcStatus(const grpc::Status& status) {
  const std::string& message = status.error_message();
  switch (status.error_code()) {
    case grpc::StatusCode::OK: return Status::Ok();
    case grpc::StatusCode::UNAVAILABLE: return Unavailable(message);
    case grpc::StatusCode::DEADLINE_EXCEEDED: return DeadlineExceeded(message);
    case grpc::StatusCode::NOT_FOUND: return NotFound(message);
    case grpc::StatusCode::INVALID_ARGUMENT: return InvalidArgument(message);
    case grpc::StatusCode::FAILED_PRECONDITION: return FailedPrecondition(message);
    case grpc::StatusCode::UNIMPLEMENTED:  // an older shadowd
      return FailedPrecondition("this shadowd does not implement the call (" + message + "); update shadowd");
    default:
      return Internal("gRPC code " + std::to_string(static_cast<int>(status.error_code())) + ": " + message);
  }
}

ShadowdClient::ShadowdClient(const std::string& socket_path, std::chrono::seconds timeout, Clock& clock)
    : stub_(v1::ShadowD::NewStub(grpc::CreateChannel("unix:" + socket_path, grpc::InsecureChannelCredentials()))),
      timeout_(timeout),
      clock_(clock) {}

void ShadowdClient::SetDeadline(grpc::ClientContext& context) const {
  context.set_deadline(clock_.WallNow() + timeout_);  // gRPC takes a wall-clock deadline
}

StatusOr<v1::ListVmsReply> ShadowdClient::ListVms() {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::ListVmsReply reply;
  VS_RETURN_IF_ERROR(FromGrpcStatus(stub_->ListVms(&context, v1::ListVmsRequest(), &reply)));
  return reply;
}

StatusOr<v1::VmStatus> ShadowdClient::GetVm(const std::string& vm) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::GetVmRequest request;
  request.set_vm(vm);
  v1::VmStatus reply;
  VS_RETURN_IF_ERROR(FromGrpcStatus(stub_->GetVm(&context, request, &reply)));
  return reply;
}

StatusOr<v1::ExplainReply> ShadowdClient::Explain(const std::string& vm) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::ExplainRequest request;
  request.set_vm(vm);
  v1::ExplainReply reply;
  VS_RETURN_IF_ERROR(FromGrpcStatus(stub_->Explain(&context, request, &reply)));
  return reply;
}

StatusOr<v1::ListHostsReply> ShadowdClient::ListHosts() {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::ListHostsReply reply;
  VS_RETURN_IF_ERROR(FromGrpcStatus(stub_->ListHosts(&context, v1::ListHostsRequest(), &reply)));
  return reply;
}

}  // namespace vs::cli
