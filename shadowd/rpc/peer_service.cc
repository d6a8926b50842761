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

grpc::Status PeerService::GetReplica(grpc::ServerContext*, const v1::GetReplicaRequest* request,
                                     v1::GetReplicaReply* reply) {
  return Answer(keeper_.GetReplica(*request), reply);
}
grpc::Status PeerService::ApplyRound(grpc::ServerContext*, const v1::ApplyRoundRequest* request,
                                     v1::ApplyRoundReply* reply) {
  return Answer(keeper_.ApplyRound(*request), reply);
}
grpc::Status PeerService::FinishRound(grpc::ServerContext*, const v1::FinishRoundRequest* request,
                                      v1::FinishRoundReply*) {
  return ToGrpcStatus(keeper_.FinishRound(*request));
}
grpc::Status PeerService::ReplicaDigests(grpc::ServerContext*, const v1::ReplicaDigestsRequest* request,
                                         v1::ReplicaDigestsReply* reply) {
  return Answer(keeper_.ReplicaDigests(*request), reply);
}

grpc::Status PeerService::CheckSwitchover(grpc::ServerContext*, const v1::CheckSwitchoverRequest* request,
                                          v1::CheckSwitchoverReply* reply) {
  return Answer(switchover_.Check(*request), reply);
}
grpc::Status PeerService::PrepareSwitchover(grpc::ServerContext*, const v1::PrepareSwitchoverRequest* request,
                                            v1::PrepareSwitchoverReply*) {
  return ToGrpcStatus(switchover_.Prepare(*request));
}
grpc::Status PeerService::CompleteSwitchover(grpc::ServerContext*, const v1::CompleteSwitchoverRequest* request,
                                             v1::CompleteSwitchoverReply*) {
  return ToGrpcStatus(switchover_.Complete(*request));
}
grpc::Status PeerService::AbortSwitchover(grpc::ServerContext*, const v1::AbortSwitchoverRequest* request,
                                          v1::AbortSwitchoverReply*) {
  return ToGrpcStatus(switchover_.Abort(*request));
}
grpc::Status PeerService::HostState(grpc::ServerContext*, const v1::HostStateRequest*, v1::HostStateReply* reply) {
  *reply = switchover_.HostState();
  return grpc::Status::OK;
}

grpc::Status PeerService::QueryPromotion(grpc::ServerContext*, const v1::PromotionQueryRequest* request,
                                         v1::PromotionQueryReply* reply) {
  return Answer(promotions_.QueryPromotion(*request), reply);
}

grpc::Status PeerService::DiscardStaleCopy(grpc::ServerContext*, const v1::DiscardStaleCopyRequest* request,
                                           v1::DiscardStaleCopyReply* reply) {
  if (self_fence_ == nullptr) {
    return ToGrpcStatus(FailedPrecondition(
        "this host runs without a membership ([shadowd] membership), so it fences nothing and keeps no stale copy "
        "of VM " + request->vm_uuid()));
  }
  return Answer(self_fence_->DiscardStaleCopy(*request), reply);
}

}  // namespace vs::rpc
