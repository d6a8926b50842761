#include "shadowd/daemon/peer_service.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>

#include "proto/grpc_status.h"
#include "shadowd/daemon/domain_scan.h"

namespace vs::daemon {

namespace v1 = virtshadow::v1;

namespace {

// A round reads and writes up to whole disks (a seed); the quick calls answer from records.
constexpr Duration kRoundTimeout = std::chrono::minutes(15);
constexpr Duration kQueryTimeout = std::chrono::seconds(30);
// How long a call waits for the channel to (re)connect before it reports the peer unreachable.
constexpr Duration kConnectTimeout = std::chrono::seconds(5);

template <typename Reply>
grpc::Status Answer(StatusOr<Reply> result, Reply* reply) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *reply = std::move(*result);
  return grpc::Status::OK;
}

}  // namespace

StatusOr<std::optional<controller::PeerShadow>> FindShadowOf(virt::Hypervisor& local, const std::string& this_host,
                                                             const std::string& vm_uuid) {
  VS_ASSIGN_OR_RETURN(std::vector<ScannedDomain> domains, ScanDomains(local, this_host));
  return ShadowOf(domains, vm_uuid);
}

Status CheckShadowOwnsReplicas(virt::Hypervisor& local, const std::string& this_host, const std::string& vm_uuid,
                               const std::vector<std::string>& replica_paths) {
  VS_ASSIGN_OR_RETURN(auto shadow, FindShadowOf(local, this_host, vm_uuid));
  if (!shadow) {
    return NotFound("no shadow of VM " + vm_uuid + " is defined on " + this_host +
                    ": its primary must place one before replicating");
  }
  const std::string& name = shadow->shadow_name;
  VS_ASSIGN_OR_RETURN(virt::DomainState state, local.GetDomainState(name));
  if (state != virt::DomainState::kShutoff) {
    return FailedPrecondition("shadow " + name + " of " + vm_uuid + " is " + std::string(virt::DomainStateName(state)) +
                              " on " + this_host + ": its replicas are in use and cannot be written");
  }
  for (const auto& path : replica_paths) {
    const auto& owned = shadow->replica_paths;
    if (std::find(owned.begin(), owned.end(), path) == owned.end()) {
      return FailedPrecondition(path + " is not a disk of shadow " + name + " on " + this_host +
                                ": refusing to write it");
    }
  }
  return Status::Ok();
}

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

StatusOr<GrpcReplicaPeer::Peer*> GrpcReplicaPeer::PeerFor(const std::string& host) {
  std::lock_guard<std::mutex> guard(mutex_);
  Peer& peer = peers_[host];
  if (!peer.stub) {
    const HostConfig* config = config_.FindHost(host);
    if (config == nullptr) return NotFound("host " + host + " is not in shadowd's configuration");
    grpc::ChannelArguments args;
    // Digest lists of large disks and resync requests exceed gRPC's 4 MiB default.
    args.SetMaxReceiveMessageSize(256 << 20);
    args.SetMaxSendMessageSize(256 << 20);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    peer.channel = grpc::CreateCustomChannel(config_.PeerTarget(*config), grpc::InsecureChannelCredentials(), args);
    peer.stub = v1::ShadowPeer::NewStub(peer.channel);
  }
  return &peer;
}

template <typename Request, typename Reply>
StatusOr<Reply> GrpcReplicaPeer::Call(const std::string& host, RpcMethod<Request, Reply> method,
                                      const Request& request, Duration timeout, const std::string& what) {
  VS_ASSIGN_OR_RETURN(Peer* peer, PeerFor(host));
  auto deadline_in = [&](Duration d) {
    return clock_.WallNow() + std::chrono::duration_cast<std::chrono::system_clock::duration>(d);
  };
  if (!peer->channel->WaitForConnected(deadline_in(std::min<Duration>(timeout, kConnectTimeout)))) {
    return Unavailable(what + " on " + host + ": cannot connect to its peer service at " +
                       config_.PeerTarget(*config_.FindHost(host)) + "; is shadowd running there?");
  }
  grpc::ClientContext context;
  context.set_deadline(deadline_in(timeout));
  Reply reply;
  VS_RETURN_IF_ERROR(FromGrpcStatus((peer->stub.get()->*method)(&context, request, &reply)).Annotate(what + " on " + host));
  return reply;
}

StatusOr<v1::GetReplicaReply> GrpcReplicaPeer::GetReplica(const std::string& host,
                                                          const v1::GetReplicaRequest& request) {
  return Call(host, &v1::ShadowPeer::Stub::GetReplica, request, kQueryTimeout, "replica state");
}

StatusOr<v1::ApplyRoundReply> GrpcReplicaPeer::ApplyRound(const std::string& host,
                                                          const v1::ApplyRoundRequest& request) {
  return Call(host, &v1::ShadowPeer::Stub::ApplyRound, request, kRoundTimeout, "applying");
}

Status GrpcReplicaPeer::FinishRound(const std::string& host, const v1::FinishRoundRequest& request) {
  return Call(host, &v1::ShadowPeer::Stub::FinishRound, request, kRoundTimeout, "finishing").status();
}

StatusOr<v1::ReplicaDigestsReply> GrpcReplicaPeer::ReplicaDigests(const std::string& host,
                                                                  const v1::ReplicaDigestsRequest& request) {
  return Call(host, &v1::ShadowPeer::Stub::ReplicaDigests, request, kRoundTimeout, "digests");
}

StatusOr<v1::CheckSwitchoverReply> GrpcReplicaPeer::CheckSwitchover(const std::string& host,
                                                                    const v1::CheckSwitchoverRequest& request) {
  return Call(host, &v1::ShadowPeer::Stub::CheckSwitchover, request, kQueryTimeout, "switchover health check");
}

Status GrpcReplicaPeer::PrepareSwitchover(const std::string& host, const v1::PrepareSwitchoverRequest& request) {
  return Call(host, &v1::ShadowPeer::Stub::PrepareSwitchover, request, kQueryTimeout, "preparing the switchover")
      .status();
}

Status GrpcReplicaPeer::CompleteSwitchover(const std::string& host, const v1::CompleteSwitchoverRequest& request) {
  // Flattening the tops copies what the guest wrote during the migration: bounded by the disk size.
  return Call(host, &v1::ShadowPeer::Stub::CompleteSwitchover, request, kRoundTimeout, "completing the switchover")
      .status();
}

Status GrpcReplicaPeer::AbortSwitchover(const std::string& host, const v1::AbortSwitchoverRequest& request) {
  return Call(host, &v1::ShadowPeer::Stub::AbortSwitchover, request, kQueryTimeout, "aborting the switchover")
      .status();
}

StatusOr<v1::HostStateReply> GrpcReplicaPeer::HostState(const std::string& host) {
  // Short: placement asks every host on the loop thread, and a host whose shadowd is down must not stall it.
  return Call(host, &v1::ShadowPeer::Stub::HostState, v1::HostStateRequest(), std::chrono::milliseconds(500),
              "host state");
}

}  // namespace vs::daemon
