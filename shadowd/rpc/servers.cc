#include "shadowd/rpc/servers.h"

#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "shadowd/rpc/peer_service.h"

namespace vs::rpc {

namespace {

// Digest lists of large disks and resync requests exceed gRPC's 4 MiB default.
constexpr int kPeerMessageLimit = 256 << 20;

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
                                                         failover::SelfFence* self_fence,
                                                         const std::optional<PeerTls>& tls,
                                                         cluster::ClusterHosts hosts) {
  auto server = std::make_unique<ServiceServer<PeerService>>(std::make_unique<PeerService>(
      keeper, target, promotions, self_fence, PeerAuthentication{tls.has_value(), std::move(hosts)}));
  grpc::ServerBuilder builder;
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
  std::error_code ignored;
  std::filesystem::remove(socket_path, ignored);  // a socket left by a killed shadowd
  grpc::ServerBuilder builder;
  VS_RETURN_IF_ERROR(
      server->Listen(builder, "unix:" + socket_path, grpc::InsecureServerCredentials()).Annotate("control service"));
  if (chmod(socket_path.c_str(), 0600) != 0) {
    return Internal("control service: cannot make " + socket_path + " root-only: " + std::strerror(errno));
  }
  return std::unique_ptr<RunningServer>(std::move(server));
}

}  // namespace vs::rpc
