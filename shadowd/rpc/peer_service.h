// PeerService: the ShadowPeer gRPC service served on this host's peer address, a thin shell over this host's
// ReplicaKeeper (replication rounds into the replicas kept here), SwitchoverTarget (the target's half of a
// switchover), Promotions (whether a VM was promoted here, for its returning primary) and SelfFence (a stale copy
// this host keeps fenced, discarded for the failback of the VM promoted elsewhere). Its client is GrpcPeerClient
// (peer_client.h).
//
// Callers: with mutual TLS every call first names its caller (peer_identity.h: the cluster host its certificate
// names) and is refused PERMISSION_DENIED when it names none; with TLS off every caller is unauthenticated. Every
// write request is checked against the shadow domains of this host (ReplicaKeeper's shadow check), so a peer can
// only write into replicas of shadows held here.
//
// Ownership: borrows the keeper, the target, the promotions and the self-fence (null without a membership: no
// stale copies are kept then, and DiscardStaleCopy is refused). Thread-safety: safe for concurrent calls (both are). Failure
// modes: their errors travel with their code (proto/grpc_status.h).
#pragma once

#include "proto/peer.grpc.pb.h"
#include "shadowd/failover/promotions.h"
#include "shadowd/failover/self_fence.h"
#include "shadowd/replication/replica_keeper.h"
#include "shadowd/rpc/peer_identity.h"
#include "shadowd/switchover/switchover_target.h"

namespace vs::rpc {

class PeerService final : public virtshadow::v1::ShadowPeer::Service {
 public:
  PeerService(replication::ReplicaKeeper& keeper, switchover::SwitchoverTarget& switchover,
              failover::Promotions& promotions, failover::SelfFence* self_fence, PeerAuthentication authentication)
      : keeper_(keeper),
        switchover_(switchover),
        promotions_(promotions),
        self_fence_(self_fence),
        authentication_(std::move(authentication)) {}

  grpc::Status GetReplica(grpc::ServerContext*, const virtshadow::v1::GetReplicaRequest* request,
                          virtshadow::v1::GetReplicaReply* reply) override;
  grpc::Status ApplyRound(grpc::ServerContext*, const virtshadow::v1::ApplyRoundRequest* request,
                          virtshadow::v1::ApplyRoundReply* reply) override;
  grpc::Status FinishRound(grpc::ServerContext*, const virtshadow::v1::FinishRoundRequest* request,
                           virtshadow::v1::FinishRoundReply* reply) override;
  grpc::Status ReplicaDigests(grpc::ServerContext*, const virtshadow::v1::ReplicaDigestsRequest* request,
                              virtshadow::v1::ReplicaDigestsReply* reply) override;
  grpc::Status CheckSwitchover(grpc::ServerContext*, const virtshadow::v1::CheckSwitchoverRequest* request,
                               virtshadow::v1::CheckSwitchoverReply* reply) override;
  grpc::Status PrepareSwitchover(grpc::ServerContext*, const virtshadow::v1::PrepareSwitchoverRequest* request,
                                 virtshadow::v1::PrepareSwitchoverReply* reply) override;
  grpc::Status CompleteSwitchover(grpc::ServerContext*, const virtshadow::v1::CompleteSwitchoverRequest* request,
                                  virtshadow::v1::CompleteSwitchoverReply* reply) override;
  grpc::Status AbortSwitchover(grpc::ServerContext*, const virtshadow::v1::AbortSwitchoverRequest* request,
                               virtshadow::v1::AbortSwitchoverReply* reply) override;
  grpc::Status HostState(grpc::ServerContext*, const virtshadow::v1::HostStateRequest* request,
                         virtshadow::v1::HostStateReply* reply) override;
  // A returning primary asks whether its fenced VM was promoted here (Promotions::QueryPromotion: the answer
  // and the veto it leaves are decided under the mutex that decides promotions).
  grpc::Status QueryPromotion(grpc::ServerContext*, const virtshadow::v1::PromotionQueryRequest* request,
                              virtshadow::v1::PromotionQueryReply* reply) override;
  // The host a VM was promoted on fails it back here: SelfFence::DiscardStaleCopy.
  grpc::Status DiscardStaleCopy(grpc::ServerContext*, const virtshadow::v1::DiscardStaleCopyRequest* request,
                                virtshadow::v1::DiscardStaleCopyReply* reply) override;

 private:
  replication::ReplicaKeeper& keeper_;
  switchover::SwitchoverTarget& switchover_;
  failover::Promotions& promotions_;
  failover::SelfFence* const self_fence_;
  const PeerAuthentication authentication_;

  // `serve(caller)`, or PERMISSION_DENIED when the call names no caller (CallerOf).
  template <typename Serve>
  grpc::Status ForCaller(const grpc::ServerContext& context, Serve serve) const;
};

}  // namespace vs::rpc
