// peer_tls_bench: what mutual TLS costs a peer call on 127.0.0.1, against plaintext: a new connection's first call
// (TCP connect, the TLS handshake with both ends' certificates from scripts/pki.sh, one unary call) and a call on an
// open connection. The server has the peer service's credentials (PeerServerCredentials) and a ShadowPeer service
// that answers every call UNIMPLEMENTED: the cost of a call's work is not part of it. Medians of kRuns.
// Needs certtool (gnutls-bin). Run by hand: bench/peer_tls_bench
#include <grpcpp/grpcpp.h>
#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "proto/peer.grpc.pb.h"
#include "shadowd/rpc/peer_tls.h"

namespace {

namespace v1 = virtshadow::v1;
using Clock = std::chrono::steady_clock;
constexpr int kRuns = 300;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "peer_tls_bench: %s\n", what.c_str());
  std::exit(1);
}

double MedianMicros(std::vector<double> micros) {
  std::sort(micros.begin(), micros.end());
  return micros[micros.size() / 2];
}

// One HostState call (answered UNIMPLEMENTED), in microseconds.
double TimedCall(v1::ShadowPeer::Stub& stub) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::HostStateReply reply;
  const auto start = Clock::now();
  const grpc::Status status = stub.HostState(&context, v1::HostStateRequest(), &reply);
  const auto end = Clock::now();
  if (status.error_code() != grpc::StatusCode::UNIMPLEMENTED) Die("the call failed: " + status.error_message());
  return std::chrono::duration<double, std::micro>(end - start).count();
}

void Measure(const char* mode, const std::shared_ptr<grpc::ServerCredentials>& server_credentials,
             const std::shared_ptr<grpc::ChannelCredentials>& channel_credentials) {
  v1::ShadowPeer::Service service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", server_credentials, &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || port == 0) Die("cannot start the server");
  const std::string target = "127.0.0.1:" + std::to_string(port);
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("h1");
  // Each channel connects on its own, instead of sharing the process's connection to the target.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);

  std::vector<double> first_calls;
  for (int i = 0; i < kRuns; ++i) {
    auto stub = v1::ShadowPeer::NewStub(grpc::CreateCustomChannel(target, channel_credentials, args));
    first_calls.push_back(TimedCall(*stub));
  }
  auto stub = v1::ShadowPeer::NewStub(grpc::CreateCustomChannel(target, channel_credentials, args));
  TimedCall(*stub);
  std::vector<double> open_calls;
  for (int i = 0; i < kRuns; ++i) open_calls.push_back(TimedCall(*stub));
  std::printf("%-10s  new connection + first call %8.0f us   call on an open connection %6.0f us\n", mode,
              MedianMicros(first_calls), MedianMicros(open_calls));
  server->Shutdown();
}

}  // namespace

int main() {
  char dir_template[] = "/tmp/vs_peer_tls_bench.XXXXXX";
  const char* dir = mkdtemp(dir_template);
  if (dir == nullptr) Die("cannot make a temporary directory");
  const std::string root = std::string(dir) + "/root";
  std::filesystem::create_directories(root);
  const std::string pki = std::string("VS_QEMU_USER=$(id -un) ") + VS_PKI_SH;
  const std::string make = pki + " ca " + dir + "/ca >/dev/null && " + pki + " host " + dir + "/ca " + root +
                           " h1 127.0.0.1 >/dev/null";
  if (std::system(make.c_str()) != 0) Die("scripts/pki.sh failed: " + make);
  vs::StatusOr<vs::rpc::PeerTls> tls = vs::rpc::LoadPeerTls(root + "/etc/pki");
  std::filesystem::remove_all(dir);
  if (!tls.ok()) Die(tls.status().ToString());

  std::printf("medians of %d, 127.0.0.1, RSA 3072 certificates (scripts/pki.sh)\n", kRuns);
  Measure("plaintext", grpc::InsecureServerCredentials(), grpc::InsecureChannelCredentials());
  Measure("mutual TLS", vs::rpc::PeerServerCredentials(*tls), vs::rpc::PeerChannelCredentials(*tls));
  return 0;
}
