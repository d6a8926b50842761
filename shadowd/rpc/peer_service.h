// PeerService: the ShadowPeer gRPC service served on this host's peer address, a thin shell over this host's
// ReplicaKeeper (replication rounds into the replicas kept here), SwitchoverTarget (the target's half of a
// switchover), Promotions (whether a VM was promoted here, for its returning primary) and SelfFence (a stale copy
// this host keeps fenced, discarded for the failback of the VM promoted elsewhere). Its client is GrpcPeerClient
// (peer_client.h).
//
// Every call goes through RunPeerCall: first PeerGuard (peer_guard.h) validates the request and authorises its
// caller, then the part serves it; an exception a part throws becomes an INTERNAL status and a log line instead of
// ending shadowd. The caller is a PeerCaller (peer_identity.h): with mutual TLS ([tls] peer = mutual) the one cluster
// host its certificate names, and a call whose certificate names none is refused PERMISSION_DENIED before any
// rule; with TLS off every caller is unauthenticated. The rules, per call:
//
//   every call         VM UUIDs 8-4-4-4-12 hex; paths absolute and normal; formats qcow2 or raw; round modes
//                      FULL, INCREMENTAL or RESYNC; hosts those of the cluster configuration; at most kMaxDisks
//                      disks; an exception is INTERNAL. Messages are capped (servers.cc: the digest list of the
//                      largest disk, 2 TiB, plus 16 MiB) and so are the server's threads (a ResourceQuota).
//   GetReplica         only from the VM's primary when one is known here. Reads the record and the images it
//                      names; the requested paths are inspected (qemu-img, as root) only when no record exists
//                      and the VM's shadow here owns them. Settles nothing: a round the primary copied and is
//                      verifying cannot be discarded by a reader.
//   ApplyRound         only from the VM's primary, into a shadow placed here for that primary
//                      (request.primary_host = the shadow's placing host), only into the shadow's disks, only
//                      from an NBD export on that primary (source URI host = its configured address); virtual
//                      sizes 1..2 TiB each and together (block_map.h kMaxVirtualSize); a RESYNC carries one
//                      digest per block; the keeper refuses to shrink a replica and settles the pending round.
//   FinishRound        only from the VM's primary; a commit names the round it finishes (the same checkpoint)
//                      and its mode, which become the replica's applied round; settles.
//   ReplicaDigests     only from the VM's primary, only a disk of its shadow here; settles.
//   CheckSwitchover    only from the VM's primary; settles (the primary is about to move the VM).
//   PrepareSwitchover  only from the VM's primary, only tops over its shadow's disks (or, for the fallback, its
//                      recorded replicas); records the prepared switchover first.
//   CompleteSwitchover only from the VM's primary, naming itself as origin; only for a switchover prepared here,
//                      its tops, its shadow, and the domain that runs here with the VM's UUID.
//   AbortSwitchover    only from the VM's primary; only the tops of a switchover prepared here (none: no-op).
//   HostState          anyone (no input; the drain state is no secret within the cluster).
//   QueryPromotion,
//   DiscardStaleCopy   only from the host named as asking_host, which must be a cluster host.
// "Only from X" compares the caller's host with X once callers are authenticated; an unauthenticated caller
// passes that comparison and every other rule still applies (see docs/security.md).
//
// Ownership: owns the guard; borrows the keeper, the target, the promotions and the self-fence (null without a
// membership: no stale copies are kept then, and DiscardStaleCopy is refused). Thread-safety: safe for concurrent
// calls (all of them are). Failure modes: their errors travel with their code (proto/grpc_status.h).
#pragma once

#include <exception>
#include <string>
#include <string_view>
#include <type_traits>

#include "common/logger.h"
#include "proto/grpc_status.h"
#include "proto/peer.grpc.pb.h"
#include "shadowd/failover/promotions.h"
#include "shadowd/failover/self_fence.h"
#include "shadowd/replication/replica_keeper.h"
#include "shadowd/rpc/peer_guard.h"
#include "shadowd/rpc/peer_identity.h"
#include "shadowd/switchover/switchover_target.h"

namespace vs::rpc {

// Runs one peer call named `name`: `call` returns a Status, or a StatusOr<Reply> whose value becomes *reply. An
// exception it throws (bad_alloc, a library's) becomes INTERNAL and a log line: one failed call, not a dead daemon.
template <typename Reply, typename Call>
grpc::Status RunPeerCall(std::string_view name, const Logger::Line& log, Reply* reply, Call&& call) {
  std::string failure;
  try {
    auto result = call();
    if constexpr (std::is_same_v<decltype(result), Status>) {
      return ToGrpcStatus(result);
    } else {
      if (!result.ok()) return ToGrpcStatus(result.status());
      *reply = std::move(*result);
      return grpc::Status::OK;
    }
  } catch (const std::exception& e) {
    failure = e.what();
  } catch (...) {
    failure = "an exception that is no std::exception";
  }
  log("peer call " + std::string(name) + " failed with an exception: " + failure);
  return ToGrpcStatus(Internal("shadowd failed serving " + std::string(name) + " (" + failure +
                               "); see its log, and retry"));
}

class PeerService final : public virtshadow::v1::ShadowPeer::Service {
 public:
  PeerService(PeerGuard guard, PeerAuthentication authentication, replication::ReplicaKeeper& keeper,
              switchover::SwitchoverTarget& switchover, failover::Promotions& promotions,
              failover::SelfFence* self_fence, Logger::Line log)
      : guard_(std::move(guard)),
        authentication_(std::move(authentication)),
        keeper_(keeper),
        switchover_(switchover),
        promotions_(promotions),
        self_fence_(self_fence),
        log_(std::move(log)) {}

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
  const PeerGuard guard_;
  const PeerAuthentication authentication_;
  replication::ReplicaKeeper& keeper_;
  switchover::SwitchoverTarget& switchover_;
  failover::Promotions& promotions_;
  failover::SelfFence* const self_fence_;
  const Logger::Line log_;

  // The call's caller (CallerOf): PERMISSION_DENIED when its certificate names no host of the cluster.
  StatusOr<PeerCaller> Caller(const grpc::ServerContext* context) const { return CallerOf(*context, authentication_); }

  template <typename Request>
  using Check = Status (PeerGuard::*)(const PeerCaller&, const Request&) const;
  // One call `name`: its caller named, `check` passed, then `serve()` (a Status, or a StatusOr of the reply),
  // all through RunPeerCall.
  template <typename Request, typename Reply, typename Serve>
  grpc::Status Guarded(std::string_view name, const grpc::ServerContext* context, const Request& request,
                       Reply* reply, Check<Request> check, Serve serve) const;
};

}  // namespace vs::rpc
