#include "shadowd/rpc/servers.h"

#include <grpcpp/grpcpp.h>

#include <filesystem>
#include <limits>

#include "common/private_paths.h"
#include "shadowd/policy/domain_xml.h"
#include "shadowd/replication/block_map.h"
#include "shadowd/rpc/peer_service.h"

namespace vs::rpc {

namespace {

// The largest legitimate peer message carries one 8-byte digest per 64 KiB block of the largest round
// (replication::kMaxVirtualSize, 2 TiB: 2^25 blocks, 256 MiB): a RESYNC round's source digests, a round's reply,
// a ReplicaDigests reply. 16 MiB more cover the rest of such a message (paths, URIs, the ops of a round, whose
// coalesced runs are far fewer than its blocks). gRPC's 4 MiB default is too small for large disks.
constexpr uint64_t kPeerMessageLimitBytes =
    replication::BlockCount(replication::kMaxVirtualSize) * sizeof(uint64_t) + (uint64_t{16} << 20);
static_assert(kPeerMessageLimitBytes <= static_cast<uint64_t>(std::numeric_limits<int>::max()));
constexpr int kPeerMessageLimit = static_cast<int>(kPeerMessageLimitBytes);

// Calls served at once (each holds a gRPC thread while it runs; a round holds it while it copies). Every primary
// runs up to its round_concurrency rounds at once (ReplicationWorker, 4 by default), so a host sees about four
// rounds per peer plus a few switchover, placement (HostState) and promotion calls: 32 serves about seven peers
// that all send at full concurrency at the same moment. Past it a call gets
// RESOURCE_EXHAUSTED (a round fails and is retried with backoff) instead of a flood exhausting the host's threads
// and memory (each call may carry a message of up to kPeerMessageLimit).
constexpr int kPeerMaxThreads = 32;

template <typename Service>
class ServiceServer final : public RunningServer {
 public:
  explicit ServiceServer(std::unique_ptr<Service> service) : service_(std::move(service)) {}
  ~ServiceServer() override { Shutdown(); }

  Status Listen(grpc::ServerBuilder& builder, const std::string& address,
                std::shared_ptr<grpc::ServerCredentials> credentials) {
    builder.AddListeningPort(address, std::move(credentials));
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    if (!server_) return Unavailable("cannot listen on " + address);
    return Status::Ok();
  }
  void Shutdown() override {
    if (server_) server_->Shutdown();
    server_.reset();
  }

 private:
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace

StatusOr<std::unique_ptr<RunningServer>> StartPeerServer(const std::string& address,
                                                         replication::ReplicaKeeper& keeper,
                                                         switchover::SwitchoverTarget& target,
                                                         failover::Promotions& promotions,
                                                         failover::SelfFence* self_fence, PeerGuard guard,
                                                         const std::optional<PeerTls>& tls,
                                                         cluster::ClusterHosts hosts, Logger::Line log) {
  auto server = std::make_unique<ServiceServer<PeerService>>(std::make_unique<PeerService>(
      std::move(guard), PeerAuthentication{tls.has_value(), std::move(hosts)}, keeper, target, promotions,
      self_fence, std::move(log)));
  grpc::ServerBuilder builder;
  grpc::ResourceQuota quota("shadowd peer service");
  quota.SetMaxThreads(kPeerMaxThreads);
  builder.SetResourceQuota(quota);
  builder.SetMaxReceiveMessageSize(kPeerMessageLimit);
  builder.SetMaxSendMessageSize(kPeerMessageLimit);
  // The peers ping every 2 s during a call, data or not (peer_client.cc): allowed, never a strike.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 1000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  VS_RETURN_IF_ERROR(
      server->Listen(builder, address, tls ? PeerServerCredentials(*tls) : grpc::InsecureServerCredentials())
          .Annotate(tls ? "peer service (mutual TLS)" : "peer service"));
  return std::unique_ptr<RunningServer>(std::move(server));
}

StatusOr<std::unique_ptr<RunningServer>> StartControlServer(const std::string& socket_path,
                                                            cluster::ClusterHosts hosts, Duration drain_deadline,
                                                            ShadowService::Parts parts, Logger::Line log) {
  auto server = std::make_unique<ServiceServer<ShadowService>>(
      std::make_unique<ShadowService>(std::move(hosts), drain_deadline, parts, std::move(log)));
  grpc::ServerBuilder builder;
  // A hook event carries the whole domain XML: gRPC's 4 MiB default turned larger tagged ones away (the hook socket
  // takes the same policy::kMaxHookEventBytes).
  builder.SetMaxReceiveMessageSize(static_cast<int>(policy::kMaxHookEventBytes));
  VS_RETURN_IF_ERROR(CreatePrivateSocket(socket_path, [&] {
                       std::error_code ignored;
                       std::filesystem::remove(socket_path, ignored);  // a socket left by a killed shadowd
                       return server->Listen(builder, "unix:" + socket_path, grpc::InsecureServerCredentials());
                     }).Annotate("control service"));
  return std::unique_ptr<RunningServer>(std::move(server));
}

}  // namespace vs::rpc
