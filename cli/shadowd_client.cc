#include "cli/shadowd_client.h"

#include <grpcpp/grpcpp.h>

#include "proto/grpc_status.h"

namespace vs::cli {

namespace v1 = virtshadow::v1;

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

StatusOr<v1::SyncReply> ShadowdClient::Sync(const std::string& vm) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::SyncRequest request;
  request.set_vm(vm);
  v1::SyncReply reply;
  VS_RETURN_IF_ERROR(FromGrpcStatus(stub_->Sync(&context, request, &reply)));
  return reply;
}

StatusOr<v1::VerifyReply> ShadowdClient::Verify(const std::string& vm) {
  grpc::ClientContext context;
  SetDeadline(context);
  v1::VerifyRequest request;
  request.set_vm(vm);
  v1::VerifyReply reply;
  VS_RETURN_IF_ERROR(FromGrpcStatus(stub_->Verify(&context, request, &reply)));
  return reply;
}

}  // namespace vs::cli
