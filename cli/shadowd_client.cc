#include "cli/shadowd_client.h"

#include <grpcpp/grpcpp.h>

#include "proto/grpc_status.h"

namespace vs::cli {

namespace v1 = virtshadow::v1;

ShadowdClient::ShadowdClient(const std::string& socket_path, std::chrono::seconds timeout, Clock& clock)
    : stub_(v1::ShadowD::NewStub(grpc::CreateChannel("unix:" + socket_path, grpc::InsecureChannelCredentials()))),
      timeout_(timeout),
      clock_(clock) {}

template <typename Request, typename Reply>
StatusOr<Reply> ShadowdClient::Call(StubMethod<Request, Reply> method, const Request& request) {
  grpc::ClientContext context;
  context.set_deadline(clock_.WallNow() + timeout_);  // gRPC takes a wall-clock deadline
  Reply reply;
  VS_RETURN_IF_ERROR(FromGrpcStatus(((*stub_).*method)(&context, request, &reply)));
  return reply;
}

StatusOr<v1::ListVmsReply> ShadowdClient::ListVms() { return Call(&v1::ShadowD::Stub::ListVms, v1::ListVmsRequest()); }

StatusOr<v1::VmStatus> ShadowdClient::GetVm(const std::string& vm) {
  v1::GetVmRequest request;
  request.set_vm(vm);
  return Call(&v1::ShadowD::Stub::GetVm, request);
}

StatusOr<v1::ExplainReply> ShadowdClient::Explain(const std::string& vm) {
  v1::ExplainRequest request;
  request.set_vm(vm);
  return Call(&v1::ShadowD::Stub::Explain, request);
}

StatusOr<v1::ListHostsReply> ShadowdClient::ListHosts() {
  return Call(&v1::ShadowD::Stub::ListHosts, v1::ListHostsRequest());
}

StatusOr<v1::SyncReply> ShadowdClient::Sync(const std::string& vm) {
  v1::SyncRequest request;
  request.set_vm(vm);
  return Call(&v1::ShadowD::Stub::Sync, request);
}

StatusOr<v1::VerifyReply> ShadowdClient::Verify(const std::string& vm) {
  v1::VerifyRequest request;
  request.set_vm(vm);
  return Call(&v1::ShadowD::Stub::Verify, request);
}

StatusOr<v1::SwitchoverReply> ShadowdClient::Switchover(const std::string& vm, std::uint32_t deadline_seconds,
                                                        std::optional<std::uint32_t> precopy_hold_seconds) {
  v1::SwitchoverRequest request;
  request.set_vm(vm);
  request.set_deadline_seconds(deadline_seconds);
  if (precopy_hold_seconds) request.set_precopy_hold_ms(*precopy_hold_seconds * 1000);
  return Call(&v1::ShadowD::Stub::Switchover, request);
}

StatusOr<v1::DrainReply> ShadowdClient::Drain(std::uint32_t deadline_seconds, const std::string& reason) {
  v1::DrainRequest request;
  request.set_deadline_seconds(deadline_seconds);
  request.set_reason(reason);
  return Call(&v1::ShadowD::Stub::Drain, request);
}

StatusOr<v1::UndrainReply> ShadowdClient::Undrain() { return Call(&v1::ShadowD::Stub::Undrain, v1::UndrainRequest()); }

StatusOr<v1::FailbackReply> ShadowdClient::Failback(const std::string& vm, std::chrono::seconds give_up_after) {
  v1::FailbackRequest request;
  request.set_vm(vm);
  request.set_timeout_seconds(static_cast<std::uint32_t>(give_up_after.count()));
  return Call(&v1::ShadowD::Stub::Failback, request);
}

StatusOr<v1::PromoteReply> ShadowdClient::Promote(const std::string& vm, bool force, const std::string& reason) {
  v1::PromoteRequest request;
  request.set_vm(vm);
  request.set_force(force);
  request.set_reason(reason);
  return Call(&v1::ShadowD::Stub::Promote, request);
}

StatusOr<v1::ListSwitchoversReply> ShadowdClient::ListSwitchovers() {
  return Call(&v1::ShadowD::Stub::ListSwitchovers, v1::ListSwitchoversRequest());
}

}  // namespace vs::cli
