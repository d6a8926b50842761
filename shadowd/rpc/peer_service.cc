#include "shadowd/rpc/peer_service.h"

#include <grpcpp/grpcpp.h>

#include "proto/grpc_status.h"

namespace vs::rpc {

namespace v1 = virtshadow::v1;

namespace {

template <typename Reply>
grpc::Status Answer(StatusOr<Reply> result, Reply* reply) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *reply = std::move(*result);
  return grpc::Status::OK;
}

}  // namespace

template <typename Serve>
grpc::Status PeerService::ForCaller(const grpc::ServerContext& context, Serve serve) const {
  StatusOr<PeerCaller> caller = CallerOf(context, authentication_);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  return serve(*caller);
}

grpc::Status PeerService::GetReplica(grpc::ServerContext* context, const v1::GetReplicaRequest* request,
                                     v1::GetReplicaReply* reply) {
  return ForCaller(*context, [&](const PeerCaller&) {
    return Answer(keeper_.GetReplica(*request), reply);
  });
}
grpc::Status PeerService::ApplyRound(grpc::ServerContext* context, const v1::ApplyRoundRequest* request,
                                     v1::ApplyRoundReply* reply) {
  return ForCaller(*context, [&](const PeerCaller&) {
    return Answer(keeper_.ApplyRound(*request), reply);
  });
}
grpc::Status PeerService::FinishRound(grpc::ServerContext* context, const v1::FinishRoundRequest* request,
                                      v1::FinishRoundReply*) {
  return ForCaller(*context, [&](const PeerCaller&) {
    return ToGrpcStatus(keeper_.FinishRound(*request));
  });
}
grpc::Status PeerService::ReplicaDigests(grpc::ServerContext* context, const v1::ReplicaDigestsRequest* request,
                                         v1::ReplicaDigestsReply* reply) {
  return ForCaller(*context, [&](const PeerCaller&) {
    return Answer(keeper_.ReplicaDigests(*request), reply);
  });
}

grpc::Status PeerService::CheckSwitchover(grpc::ServerContext* context, const v1::CheckSwitchoverRequest* request,
                                          v1::CheckSwitchoverReply* reply) {
  return ForCaller(*context, [&](const PeerCaller&) {
    return Answer(switchover_.Check(*request), reply);
  });
}
grpc::Status PeerService::PrepareSwitchover(grpc::ServerContext* context, const v1::PrepareSwitchoverRequest* request,
                                            v1::PrepareSwitchoverReply*) {
  return ForCaller(*context, [&](const PeerCaller&) {
    return ToGrpcStatus(switchover_.Prepare(*request));
  });
}
grpc::Status PeerService::CompleteSwitchover(grpc::ServerContext* context, const v1::CompleteSwitchoverRequest* request,
                                             v1::CompleteSwitchoverReply*) {
  return ForCaller(*context, [&](const PeerCaller&) {
    return ToGrpcStatus(switchover_.Complete(*request));
  });
}
grpc::Status PeerService::AbortSwitchover(grpc::ServerContext* context, const v1::AbortSwitchoverRequest* request,
                                          v1::AbortSwitchoverReply*) {
  return ForCaller(*context, [&](const PeerCaller&) {
    return ToGrpcStatus(switchover_.Abort(*request));
  });
}
grpc::Status PeerService::HostState(grpc::ServerContext* context, const v1::HostStateRequest*, v1::HostStateReply* reply) {
  return ForCaller(*context, [&](const PeerCaller&) {
    *reply = switchover_.HostState();
    return grpc::Status::OK;
  });
}

grpc::Status PeerService::QueryPromotion(grpc::ServerContext* context, const v1::PromotionQueryRequest* request,
                                         v1::PromotionQueryReply* reply) {
  return ForCaller(*context, [&](const PeerCaller&) {
    return Answer(promotions_.QueryPromotion(*request), reply);
  });
}

grpc::Status PeerService::DiscardStaleCopy(grpc::ServerContext* context, const v1::DiscardStaleCopyRequest* request,
                                           v1::DiscardStaleCopyReply* reply) {
  return ForCaller(*context, [&](const PeerCaller&) {
    if (self_fence_ == nullptr) {
      return ToGrpcStatus(FailedPrecondition(
          "this host runs without a membership ([shadowd] membership), so it fences nothing and keeps no stale copy "
          "of VM " + request->vm_uuid()));
    }
    return Answer(self_fence_->DiscardStaleCopy(*request), reply);
  });
}

}  // namespace vs::rpc
