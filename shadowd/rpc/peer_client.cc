#include "shadowd/rpc/peer_client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>

#include "proto/grpc_status.h"

namespace vs::rpc {

namespace v1 = virtshadow::v1;

namespace {

// A round reads and writes up to whole disks (a seed); the quick calls answer from records.
constexpr Duration kRoundTimeout = std::chrono::minutes(15);
constexpr Duration kQueryTimeout = std::chrono::seconds(30);
// How long a call waits for the channel to (re)connect before it reports the peer unreachable.
constexpr Duration kConnectTimeout = std::chrono::seconds(5);
constexpr Duration kKeepalive = std::chrono::seconds(2);
constexpr Duration kKeepaliveTimeout = std::chrono::seconds(3);

}  // namespace

StatusOr<GrpcPeerClient::Peer*> GrpcPeerClient::PeerFor(const std::string& host) {
  MutexLock lock(mutex_);
  Peer& peer = peers_[host];
  if (!peer.stub) {
    const cluster::HostConfig* config = hosts_.Find(host);
    if (config == nullptr) return NotFound("host " + host + " is not in shadowd's configuration");
    grpc::ChannelArguments args;
    // Digest lists of large disks and resync requests exceed gRPC's 4 MiB default.
    args.SetMaxReceiveMessageSize(256 << 20);
    args.SetMaxSendMessageSize(256 << 20);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    // A peer that dies mid-call (its host crashed, its link was cut) sends no RST: without pings a round's call
    // waited out its 15-minute deadline, holding the replication thread (seen in the lab: 150 s, until the host
    // came back). Pings every kKeepalive during a call, however long it sends no data, end it kUnavailable
    // within kKeepalive + kKeepaliveTimeout. The peer server accepts them (servers.cc).
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(kKeepalive).count()));
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(kKeepaliveTimeout).count()));
    args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
    std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
    if (tls_) {
      credentials = PeerChannelCredentials(*tls_);
      // The server's certificate must name the host shadowd meant to reach, as the server checks the caller's.
      args.SetSslTargetNameOverride(host);
    }
    peer.channel = grpc::CreateCustomChannel(hosts_.PeerTarget(*config), credentials, args);
    peer.stub = v1::ShadowPeer::NewStub(peer.channel);
  }
  return &peer;
}

template <typename Request, typename Reply>
StatusOr<Reply> GrpcPeerClient::Call(const std::string& host, RpcMethod<Request, Reply> method,
                                      const Request& request, Duration timeout, const std::string& what) {
  VS_ASSIGN_OR_RETURN(Peer* peer, PeerFor(host));
  auto deadline_in = [&](Duration d) {
    return clock_.WallNow() + std::chrono::duration_cast<std::chrono::system_clock::duration>(d);
  };
  if (!peer->channel->WaitForConnected(deadline_in(std::min<Duration>(timeout, kConnectTimeout)))) {
    return Unavailable(what + " on " + host + ": cannot connect to its peer service at " +
                       hosts_.PeerTarget(*hosts_.Find(host)) + "; is shadowd running there?" +
                       (tls_ ? " With TLS, the handshake fails unless both hosts have [tls] peer = mutual and "
                               "certificates of the same CA, and " + host + "'s names " + host + " (scripts/pki.sh)"
                             : ""));
  }
  grpc::ClientContext context;
  context.set_deadline(deadline_in(timeout));
  Reply reply;
  VS_RETURN_IF_ERROR(FromGrpcStatus((peer->stub.get()->*method)(&context, request, &reply)).Annotate(what + " on " + host));
  return reply;
}

StatusOr<v1::GetReplicaReply> GrpcPeerClient::GetReplica(const std::string& host,
                                                          const v1::GetReplicaRequest& request) {
  return Call(host, &v1::ShadowPeer::Stub::GetReplica, request, kQueryTimeout, "replica state");
}

StatusOr<v1::ApplyRoundReply> GrpcPeerClient::ApplyRound(const std::string& host,
                                                          const v1::ApplyRoundRequest& request) {
  return Call(host, &v1::ShadowPeer::Stub::ApplyRound, request, kRoundTimeout, "applying");
}

Status GrpcPeerClient::FinishRound(const std::string& host, const v1::FinishRoundRequest& request) {
  return Call(host, &v1::ShadowPeer::Stub::FinishRound, request, kRoundTimeout, "finishing").status();
}

StatusOr<v1::ReplicaDigestsReply> GrpcPeerClient::ReplicaDigests(const std::string& host,
                                                                  const v1::ReplicaDigestsRequest& request) {
  return Call(host, &v1::ShadowPeer::Stub::ReplicaDigests, request, kRoundTimeout, "digests");
}

StatusOr<v1::CheckSwitchoverReply> GrpcPeerClient::CheckSwitchover(const std::string& host,
                                                                    const v1::CheckSwitchoverRequest& request) {
  return Call(host, &v1::ShadowPeer::Stub::CheckSwitchover, request, kQueryTimeout, "switchover health check");
}

Status GrpcPeerClient::PrepareSwitchover(const std::string& host, const v1::PrepareSwitchoverRequest& request) {
  return Call(host, &v1::ShadowPeer::Stub::PrepareSwitchover, request, kQueryTimeout, "preparing the switchover")
      .status();
}

Status GrpcPeerClient::CompleteSwitchover(const std::string& host, const v1::CompleteSwitchoverRequest& request) {
  // Flattening the tops copies what the guest wrote during the migration: bounded by the disk size.
  return Call(host, &v1::ShadowPeer::Stub::CompleteSwitchover, request, kRoundTimeout, "completing the switchover")
      .status();
}

Status GrpcPeerClient::AbortSwitchover(const std::string& host, const v1::AbortSwitchoverRequest& request) {
  return Call(host, &v1::ShadowPeer::Stub::AbortSwitchover, request, kQueryTimeout, "aborting the switchover")
      .status();
}

StatusOr<v1::HostStateReply> GrpcPeerClient::HostState(const std::string& host) {
  // Short: PeerDrainWatch asks every peer in turn, and a host whose shadowd is down must not hold up the others.
  return Call(host, &v1::ShadowPeer::Stub::HostState, v1::HostStateRequest(), std::chrono::milliseconds(500),
              "host state");
}

StatusOr<v1::DiscardStaleCopyReply> GrpcPeerClient::DiscardStaleCopy(const std::string& host,
                                                                      const v1::DiscardStaleCopyRequest& request) {
  return Call(host, &v1::ShadowPeer::Stub::DiscardStaleCopy, request, std::chrono::seconds(60),
              "discarding the stale copy");
}

StatusOr<v1::PromotionQueryReply> GrpcPeerClient::QueryPromotion(const std::string& host,
                                                                  const v1::PromotionQueryRequest& request) {
  return Call(host, &v1::ShadowPeer::Stub::QueryPromotion, request, std::chrono::seconds(3), "promotion query");
}

}  // namespace vs::rpc
