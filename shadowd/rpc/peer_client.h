// GrpcPeerClient: this host's client of the other hosts' ShadowPeer services (peer_service.h): the
// ReplicaPeer a primary's Replicator sends its rounds through, the SwitchoverPeer the switchover steps
// and the coordinator reach a target with, and the PromotionPeer a returning primary asks whether its fenced VMs
// were promoted (failover::SelfFence).
//
// Each call first waits (a few seconds at most) for the channel to connect, with gRPC's reconnect backoff capped
// at 1 s: a peer that was down is reached as soon as it is back, instead of failing fast for up to gRPC's
// 2 minutes.
//
// With `tls` (peer_tls.h) each channel presents this host's client certificate and accepts only a server whose
// certificate, from the cluster's CA, names the host by its cluster name (not merely its address); without, the
// channels are plaintext.
//
// Ownership: owns one channel per host, made on first use. Thread-safety: safe for concurrent calls.
// Failure modes: NotFound for a host outside the configuration; kUnavailable when the peer cannot be
// reached, kDeadlineExceeded when it is slow; the peer's own errors keep their code (proto/grpc_status.h).
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/thread_annotations.h"
#include "proto/peer.grpc.pb.h"
#include "shadowd/cluster/cluster_hosts.h"
#include "shadowd/failover/promotion_peer.h"
#include "shadowd/replication/replica_peer.h"
#include "shadowd/rpc/peer_tls.h"
#include "shadowd/switchover/switchover_peer.h"

namespace vs::rpc {

class GrpcPeerClient final : public replication::ReplicaPeer,
                             public switchover::SwitchoverPeer,
                             public failover::PromotionPeer {
 public:
  GrpcPeerClient(cluster::ClusterHosts hosts, Clock& clock, std::optional<PeerTls> tls)
      : hosts_(std::move(hosts)), clock_(clock), tls_(std::move(tls)) {}

  // ReplicaPeer
  StatusOr<virtshadow::v1::GetReplicaReply> GetReplica(const std::string& host,
                                                       const virtshadow::v1::GetReplicaRequest& request) override;
  StatusOr<virtshadow::v1::ApplyRoundReply> ApplyRound(const std::string& host,
                                                       const virtshadow::v1::ApplyRoundRequest& request) override;
  Status FinishRound(const std::string& host, const virtshadow::v1::FinishRoundRequest& request) override;
  StatusOr<virtshadow::v1::ReplicaDigestsReply> ReplicaDigests(
      const std::string& host, const virtshadow::v1::ReplicaDigestsRequest& request) override;

  // SwitchoverPeer
  StatusOr<virtshadow::v1::CheckSwitchoverReply> CheckSwitchover(
      const std::string& host, const virtshadow::v1::CheckSwitchoverRequest& request) override;
  Status PrepareSwitchover(const std::string& host, const virtshadow::v1::PrepareSwitchoverRequest& request) override;
  Status CompleteSwitchover(const std::string& host,
                            const virtshadow::v1::CompleteSwitchoverRequest& request) override;
  Status AbortSwitchover(const std::string& host, const virtshadow::v1::AbortSwitchoverRequest& request) override;
  // 500 ms: PeerDrainWatch asks every peer once per refresh.
  StatusOr<virtshadow::v1::HostStateReply> HostState(const std::string& host) override;
  // 60 s: the origin may have to destroy a stale QEMU (libvirt waits up to 10 s for it) and may first finish a
  // self-fence evaluation that asks its peers.
  StatusOr<virtshadow::v1::DiscardStaleCopyReply> DiscardStaleCopy(
      const std::string& host, const virtshadow::v1::DiscardStaleCopyRequest& request) override;

  // PromotionPeer: 3 s (the shadow host answers from its store; SelfFence asks again every 2 s when it does not).
  StatusOr<virtshadow::v1::PromotionQueryReply> QueryPromotion(
      const std::string& host, const virtshadow::v1::PromotionQueryRequest& request) override;

 private:
  template <typename Request, typename Reply>
  using RpcMethod = grpc::Status (virtshadow::v1::ShadowPeer::Stub::*)(grpc::ClientContext*, const Request&, Reply*);

  struct Peer {
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<virtshadow::v1::ShadowPeer::Stub> stub;
  };
  StatusOr<Peer*> PeerFor(const std::string& host);
  // One unary call with a deadline; errors name `what` and the host.
  template <typename Request, typename Reply>
  StatusOr<Reply> Call(const std::string& host, RpcMethod<Request, Reply> method, const Request& request,
                       Duration timeout, const std::string& what);

  const cluster::ClusterHosts hosts_;
  Clock& clock_;
  const std::optional<PeerTls> tls_;
  Mutex mutex_;
  // Entries are never erased, so a Peer* stays valid; its fields are written once, under mutex_, before it is
  // handed out.
  std::map<std::string, Peer> peers_ VS_GUARDED_BY(mutex_);
};

}  // namespace vs::rpc
