#include "shadowd/rpc/servers.h"

#include <grpcpp/grpcpp.h>

#include <filesystem>

#include "common/private_paths.h"
#include "shadowd/rpc/control_server_options.h"
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

  Status Listen(grpc::ServerBuilder& builder, const std::string& address) {
    builder.AddListeningPort(address, grpc::InsecureServerCredentials());
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
                                                         failover::SelfFence* self_fence) {
  auto server = std::make_unique<ServiceServer<PeerService>>(
      std::make_unique<PeerService>(keeper, target, promotions, self_fence));
  grpc::ServerBuilder builder;
  builder.SetMaxReceiveMessageSize(kPeerMessageLimit);
  builder.SetMaxSendMessageSize(kPeerMessageLimit);
  // The peers ping every 2 s during a call, data or not (peer_client.cc): allowed, never a strike.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 1000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  VS_RETURN_IF_ERROR(server->Listen(builder, address).Annotate("peer service"));
  return std::unique_ptr<RunningServer>(std::move(server));
}

StatusOr<std::unique_ptr<RunningServer>> StartControlServer(const std::string& socket_path,
                                                            cluster::ClusterHosts hosts, Duration drain_deadline,
                                                            ShadowService::Parts parts, Logger::Line log) {
  auto server = std::make_unique<ServiceServer<ShadowService>>(
      std::make_unique<ShadowService>(std::move(hosts), drain_deadline, parts, std::move(log)));
  grpc::ServerBuilder builder;
  ConfigureControlServer(builder);
  VS_RETURN_IF_ERROR(CreatePrivateSocket(socket_path, [&] {
                       std::error_code ignored;
                       std::filesystem::remove(socket_path, ignored);  // a socket left by a killed shadowd
                       return server->Listen(builder, "unix:" + socket_path);
                     }).Annotate("control service"));
  return std::unique_ptr<RunningServer>(std::move(server));
}

}  // namespace vs::rpc
