#include "shadowd/rpc/peer_service.h"

#include <grpcpp/grpcpp.h>

namespace vs::rpc {

namespace v1 = virtshadow::v1;

grpc::Status PeerService::GetReplica(grpc::ServerContext* context, const v1::GetReplicaRequest* request,
                                     v1::GetReplicaReply* reply) {
  return RunPeerCall("GetReplica", log_, reply, [&]() -> StatusOr<v1::GetReplicaReply> {
    VS_ASSIGN_OR_RETURN(const PeerCaller caller, Caller(context));
    VS_RETURN_IF_ERROR(guard_.GetReplica(caller, *request));
    return keeper_.GetReplica(*request);
  });
}
grpc::Status PeerService::ApplyRound(grpc::ServerContext* context, const v1::ApplyRoundRequest* request,
                                     v1::ApplyRoundReply* reply) {
  return RunPeerCall("ApplyRound", log_, reply, [&]() -> StatusOr<v1::ApplyRoundReply> {
    VS_ASSIGN_OR_RETURN(const PeerCaller caller, Caller(context));
    VS_RETURN_IF_ERROR(guard_.ApplyRound(caller, *request));
    return keeper_.ApplyRound(*request);
  });
}
grpc::Status PeerService::FinishRound(grpc::ServerContext* context, const v1::FinishRoundRequest* request,
                                      v1::FinishRoundReply* reply) {
  return RunPeerCall("FinishRound", log_, reply, [&]() -> Status {
    VS_ASSIGN_OR_RETURN(const PeerCaller caller, Caller(context));
    VS_RETURN_IF_ERROR(guard_.FinishRound(caller, *request));
    return keeper_.FinishRound(*request);
  });
}
grpc::Status PeerService::ReplicaDigests(grpc::ServerContext* context, const v1::ReplicaDigestsRequest* request,
                                         v1::ReplicaDigestsReply* reply) {
  return RunPeerCall("ReplicaDigests", log_, reply, [&]() -> StatusOr<v1::ReplicaDigestsReply> {
    VS_ASSIGN_OR_RETURN(const PeerCaller caller, Caller(context));
    VS_RETURN_IF_ERROR(guard_.ReplicaDigests(caller, *request));
    return keeper_.ReplicaDigests(*request);
  });
}

grpc::Status PeerService::CheckSwitchover(grpc::ServerContext* context, const v1::CheckSwitchoverRequest* request,
                                          v1::CheckSwitchoverReply* reply) {
  return RunPeerCall("CheckSwitchover", log_, reply, [&]() -> StatusOr<v1::CheckSwitchoverReply> {
    VS_ASSIGN_OR_RETURN(const PeerCaller caller, Caller(context));
    VS_RETURN_IF_ERROR(guard_.CheckSwitchover(caller, *request));
    return switchover_.Check(*request);
  });
}
grpc::Status PeerService::PrepareSwitchover(grpc::ServerContext* context, const v1::PrepareSwitchoverRequest* request,
                                            v1::PrepareSwitchoverReply* reply) {
  return RunPeerCall("PrepareSwitchover", log_, reply, [&]() -> Status {
    VS_ASSIGN_OR_RETURN(const PeerCaller caller, Caller(context));
    VS_RETURN_IF_ERROR(guard_.PrepareSwitchover(caller, *request));
    return switchover_.Prepare(*request);
  });
}
grpc::Status PeerService::CompleteSwitchover(grpc::ServerContext* context, const v1::CompleteSwitchoverRequest* request,
                                             v1::CompleteSwitchoverReply* reply) {
  return RunPeerCall("CompleteSwitchover", log_, reply, [&]() -> Status {
    VS_ASSIGN_OR_RETURN(const PeerCaller caller, Caller(context));
    VS_RETURN_IF_ERROR(guard_.CompleteSwitchover(caller, *request));
    return switchover_.Complete(*request);
  });
}
grpc::Status PeerService::AbortSwitchover(grpc::ServerContext* context, const v1::AbortSwitchoverRequest* request,
                                          v1::AbortSwitchoverReply* reply) {
  return RunPeerCall("AbortSwitchover", log_, reply, [&]() -> Status {
    VS_ASSIGN_OR_RETURN(const PeerCaller caller, Caller(context));
    VS_RETURN_IF_ERROR(guard_.AbortSwitchover(caller, *request));
    return switchover_.Abort(*request);
  });
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
  return RunPeerCall("QueryPromotion", log_, reply, [&]() -> StatusOr<v1::PromotionQueryReply> {
    VS_ASSIGN_OR_RETURN(const PeerCaller caller, Caller(context));
    VS_RETURN_IF_ERROR(guard_.QueryPromotion(caller, *request));
    return promotions_.QueryPromotion(*request);
  });
}

grpc::Status PeerService::DiscardStaleCopy(grpc::ServerContext* context, const v1::DiscardStaleCopyRequest* request,
                                           v1::DiscardStaleCopyReply* reply) {
  return RunPeerCall("DiscardStaleCopy", log_, reply, [&]() -> StatusOr<v1::DiscardStaleCopyReply> {
    VS_ASSIGN_OR_RETURN(const PeerCaller caller, Caller(context));
    VS_RETURN_IF_ERROR(guard_.DiscardStaleCopy(caller, *request));
    if (self_fence_ == nullptr) {
      return FailedPrecondition(
          "this host runs without a membership ([shadowd] membership), so it fences nothing and keeps no stale "
          "copy of VM " + request->vm_uuid());
    }
    return self_fence_->DiscardStaleCopy(*request);
  });
}

}  // namespace vs::rpc
