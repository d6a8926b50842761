#include "shadowd/rpc/peer_service.h"

#include <grpcpp/grpcpp.h>

namespace vs::rpc {

namespace v1 = virtshadow::v1;

template <typename Request, typename Reply, typename Serve>
grpc::Status PeerService::Guarded(std::string_view name, const grpc::ServerContext* context, const Request& request,
                                  Reply* reply, Check<Request> check, Serve serve) const {
  return RunPeerCall(name, log_, reply, [&]() -> decltype(serve()) {
    VS_ASSIGN_OR_RETURN(const PeerCaller caller, Caller(context));
    VS_RETURN_IF_ERROR((guard_.*check)(caller, request));
    return serve();
  });
}

grpc::Status PeerService::GetReplica(grpc::ServerContext* context, const v1::GetReplicaRequest* request,
                                     v1::GetReplicaReply* reply) {
  return Guarded("GetReplica", context, *request, reply, &PeerGuard::GetReplica,
                 [&] { return keeper_.GetReplica(*request); });
}
grpc::Status PeerService::ApplyRound(grpc::ServerContext* context, const v1::ApplyRoundRequest* request,
                                     v1::ApplyRoundReply* reply) {
  return Guarded("ApplyRound", context, *request, reply, &PeerGuard::ApplyRound,
                 [&] { return keeper_.ApplyRound(*request); });
}
grpc::Status PeerService::FinishRound(grpc::ServerContext* context, const v1::FinishRoundRequest* request,
                                      v1::FinishRoundReply* reply) {
  return Guarded("FinishRound", context, *request, reply, &PeerGuard::FinishRound,
                 [&] { return keeper_.FinishRound(*request); });
}
grpc::Status PeerService::ReplicaDigests(grpc::ServerContext* context, const v1::ReplicaDigestsRequest* request,
                                         v1::ReplicaDigestsReply* reply) {
  return Guarded("ReplicaDigests", context, *request, reply, &PeerGuard::ReplicaDigests,
                 [&] { return keeper_.ReplicaDigests(*request); });
}

grpc::Status PeerService::CheckSwitchover(grpc::ServerContext* context, const v1::CheckSwitchoverRequest* request,
                                          v1::CheckSwitchoverReply* reply) {
  return Guarded("CheckSwitchover", context, *request, reply, &PeerGuard::CheckSwitchover,
                 [&] { return switchover_.Check(*request); });
}
grpc::Status PeerService::PrepareSwitchover(grpc::ServerContext* context, const v1::PrepareSwitchoverRequest* request,
                                            v1::PrepareSwitchoverReply* reply) {
  return Guarded("PrepareSwitchover", context, *request, reply, &PeerGuard::PrepareSwitchover,
                 [&] { return switchover_.Prepare(*request); });
}
grpc::Status PeerService::CompleteSwitchover(grpc::ServerContext* context, const v1::CompleteSwitchoverRequest* request,
                                             v1::CompleteSwitchoverReply* reply) {
  return Guarded("CompleteSwitchover", context, *request, reply, &PeerGuard::CompleteSwitchover,
                 [&] { return switchover_.Complete(*request); });
}
grpc::Status PeerService::AbortSwitchover(grpc::ServerContext* context, const v1::AbortSwitchoverRequest* request,
                                          v1::AbortSwitchoverReply* reply) {
  return Guarded("AbortSwitchover", context, *request, reply, &PeerGuard::AbortSwitchover,
                 [&] { return switchover_.Abort(*request); });
}
grpc::Status PeerService::HostState(grpc::ServerContext* context, const v1::HostStateRequest*,
                                    v1::HostStateReply* reply) {
  return RunPeerCall("HostState", log_, reply, [&]() -> StatusOr<v1::HostStateReply> {
    VS_RETURN_IF_ERROR(Caller(context).status());  // any host of the cluster may ask
    return switchover_.HostState();
  });
}

grpc::Status PeerService::QueryPromotion(grpc::ServerContext* context, const v1::PromotionQueryRequest* request,
                                         v1::PromotionQueryReply* reply) {
  return Guarded("QueryPromotion", context, *request, reply, &PeerGuard::QueryPromotion,
                 [&] { return promotions_.QueryPromotion(*request); });
}

grpc::Status PeerService::DiscardStaleCopy(grpc::ServerContext* context, const v1::DiscardStaleCopyRequest* request,
                                           v1::DiscardStaleCopyReply* reply) {
  return Guarded("DiscardStaleCopy", context, *request, reply, &PeerGuard::DiscardStaleCopy,
                 [&]() -> StatusOr<v1::DiscardStaleCopyReply> {
    if (self_fence_ == nullptr) {
      return FailedPrecondition(
          "this host runs without a membership ([shadowd] membership), so it fences nothing and keeps no stale "
          "copy of VM " + request->vm_uuid());
    }
    return self_fence_->DiscardStaleCopy(*request);
  });
}

}  // namespace vs::rpc
