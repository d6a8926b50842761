// shadowd's peer-to-peer surface, for disk replication: the ShadowPeer gRPC service (a thin shell over
// ReplicaKeeper, served on this host's peer address) and GrpcReplicaPeer, the client a primary's
// Replicator uses to reach the shadow hosts' services.
//
// The peer address carries no authentication yet (see the roadmap: TLS for peer RPC); it listens only
// on the configured address, and every write request is checked against the shadow domains of this
// host (ReplicaKeeper's shadow check), so a peer can only write into replicas of shadows held here.
//
// Ownership: the service borrows its keeper; the client owns one channel per host. Thread-safety: both
// are safe for concurrent calls. Failure modes: keeper errors travel with their code (proto/grpc_status.h);
// an unreachable peer is kUnavailable, a slow one kDeadlineExceeded. Each call first waits (a few seconds at
// most) for the channel to connect, with gRPC's reconnect backoff capped at 1 s: a peer that was down (and that
// placement kept asking) is reached as soon as it is back, instead of failing fast for up to gRPC's 2 minutes.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/clock.h"
#include "proto/peer.grpc.pb.h"
#include "shadowd/controller/peer_ops.h"
#include "shadowd/daemon/config.h"
#include "shadowd/daemon/switchover_target.h"
#include "shadowd/replication/replica_keeper.h"
#include "shadowd/replication/replica_peer.h"
#include "shadowd/virt/hypervisor.h"

namespace vs::daemon {

// The shadow domain of `vm_uuid` defined on `local` (this host, `this_host`), if any.
StatusOr<std::optional<controller::PeerShadow>> FindShadowOf(virt::Hypervisor& local, const std::string& this_host,
                                                             const std::string& vm_uuid);

// ReplicaKeeper's shadow check: OK when `local` (this host, `this_host`) has a shadow domain of `vm_uuid`
// that is not running and whose disks include every one of `replica_paths`; NotFound when no shadow of it
// is defined here, FailedPrecondition naming what is wrong otherwise.
Status CheckShadowOwnsReplicas(virt::Hypervisor& local, const std::string& this_host, const std::string& vm_uuid,
                               const std::vector<std::string>& replica_paths);

class PeerService final : public virtshadow::v1::ShadowPeer::Service {
 public:
  PeerService(replication::ReplicaKeeper& keeper, SwitchoverTarget& switchover)
      : keeper_(keeper), switchover_(switchover) {}

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

 private:
  replication::ReplicaKeeper& keeper_;
  SwitchoverTarget& switchover_;
};

class GrpcReplicaPeer final : public replication::ReplicaPeer {
 public:
  GrpcReplicaPeer(const Config& config, Clock& clock) : config_(config), clock_(clock) {}

  StatusOr<virtshadow::v1::GetReplicaReply> GetReplica(const std::string& host,
                                                       const virtshadow::v1::GetReplicaRequest& request) override;
  StatusOr<virtshadow::v1::ApplyRoundReply> ApplyRound(const std::string& host,
                                                       const virtshadow::v1::ApplyRoundRequest& request) override;
  Status FinishRound(const std::string& host, const virtshadow::v1::FinishRoundRequest& request) override;
  StatusOr<virtshadow::v1::ReplicaDigestsReply> ReplicaDigests(
      const std::string& host, const virtshadow::v1::ReplicaDigestsRequest& request) override;

  // The switchover calls (switchover_target.h describes them).
  StatusOr<virtshadow::v1::CheckSwitchoverReply> CheckSwitchover(const std::string& host,
                                                                 const virtshadow::v1::CheckSwitchoverRequest& request);
  Status PrepareSwitchover(const std::string& host, const virtshadow::v1::PrepareSwitchoverRequest& request);
  Status CompleteSwitchover(const std::string& host, const virtshadow::v1::CompleteSwitchoverRequest& request);
  Status AbortSwitchover(const std::string& host, const virtshadow::v1::AbortSwitchoverRequest& request);
  // 500 ms: placement asks every host on each refresh, on the loop thread.
  StatusOr<virtshadow::v1::HostStateReply> HostState(const std::string& host);

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

  const Config& config_;
  Clock& clock_;
  std::mutex mutex_;
  std::map<std::string, Peer> peers_;
};

}  // namespace vs::daemon
