#include "libvirt-hook/grpc_deliverer.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>

#include "proto/shadowd.grpc.pb.h"
#include "shadowd/policy/domain_xml.h"

namespace vs::hook {
namespace {

Status FromGrpc(const grpc::Status& status, const std::string& socket_path, Duration deadline) {
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:  // gRPC's message names the socket and the errno
      return Unavailable("cannot reach shadowd: " + status.error_message());
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return DeadlineExceeded("shadowd at unix:" + socket_path + " did not answer within " +
                              std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(deadline).count()) +
                              " ms");
    default:
      return Internal("shadowd at unix:" + socket_path + " failed the call with gRPC code " +
                      std::to_string(static_cast<int>(status.error_code())) + ": " + status.error_message());
  }
}

}  // namespace

GrpcDeliverer::GrpcDeliverer(std::string socket_path, Duration answer_within, Clock& clock)
    : socket_path_(std::move(socket_path)), answer_within_(answer_within), clock_(clock) {}

StatusOr<virtshadow::v1::HookVerdict> GrpcDeliverer::Deliver(const virtshadow::v1::HookEvent& event) {
  const MonoTime answer_by = clock_.Now() + answer_within_;
  // Not GRPC_ARG_MINIMAL_STACK: it drops the deadline filter, and a hung shadowd then held the call
  // for the 20 s HTTP/2 settings timeout (measured).
  grpc::ChannelArguments arguments;
  arguments.SetMaxSendMessageSize(static_cast<int>(policy::kMaxHookEventBytes));
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateCustomChannel("unix:" + socket_path_, grpc::InsecureChannelCredentials(), arguments);
  std::unique_ptr<virtshadow::v1::ShadowD::Stub> stub = virtshadow::v1::ShadowD::NewStub(channel);
  const Duration timeout = std::max<Duration>(answer_by - clock_.Now(), kMinCallTime);
  grpc::ClientContext context;  // gRPC takes a wall-clock deadline
  context.set_deadline(clock_.WallNow() + std::chrono::duration_cast<WallTime::duration>(timeout));
  virtshadow::v1::HookVerdict verdict;
  grpc::Status status = stub->DeliverHookEvent(&context, event, &verdict);
  if (!status.ok()) return FromGrpc(status, socket_path_, timeout);
  return verdict;
}

}  // namespace vs::hook
