// Mutual TLS on the peer service, over a throwaway PKI that scripts/pki.sh (GnuTLS's certtool) makes in a temporary
// directory: the cluster's CA with hosts h1 (the server), h2 (a caller of the cluster) and h9 (same CA, not in the
// cluster), and a second CA with a certificate that names h2.
//
// The real peer server (StartPeerServer: PeerService over a real ReplicaKeeper and SwitchoverTarget on
// replication's fakes of libvirt and the replica storage, a MemoryStore, and fakes that answer nothing for the
// rounds, qemu-img and promotions) listens on 127.0.0.1 with h1's certificates and is called by the real
// GrpcPeerClient with each host's certificates, and by plain gRPC channels without one. HostState is the call: a
// drain recorded on the server shows in a served answer. Who the caller is (CallerOf) is read by a test service on
// a server with the same credentials, whose HostState answers with the caller it sees.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <optional>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "proto/grpc_status.h"
#include "shadowd/failover/promotions.h"
#include "shadowd/replication/replica_keeper.h"
#include "shadowd/rpc/peer_client.h"
#include "shadowd/rpc/peer_identity.h"
#include "shadowd/rpc/peer_tls.h"
#include "shadowd/rpc/servers.h"
#include "shadowd/store/memory_store.h"
#include "shadowd/switchover/arrival_records.h"
#include "shadowd/switchover/drain_state.h"
#include "shadowd/switchover/switchover_target.h"
#include "tests/unit/common/temp_dir.h"
#include "tests/unit/replication/fakes.h"

namespace vs::rpc {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
namespace v1 = virtshadow::v1;

// ---- the PKI ----

void Run(const std::string& command) {
  // QEMU's keys go to the user running the test: the PKI is this test's, not libvirt's.
  const std::string line = "VS_QEMU_USER=$(id -un) " + command + " >/dev/null";
  ASSERT_EQ(std::system(line.c_str()), 0) << line;
}

// Made once for the suite: certtool takes a while per key.
class Pki {
 public:
  Pki() {
    const std::string pki = VS_PKI_SH;
    Run(pki + " ca " + Ca());
    for (const char* host : {"h1", "h2", "h9"}) {
      std::filesystem::create_directories(Root(host));
      Run(pki + " host " + Ca() + " " + Root(host) + " " + host + " 127.0.0.1");
    }
    Run(pki + " ca " + dir_.Sub("other-ca"));
    std::filesystem::create_directories(Root("other"));
    Run(pki + " host " + dir_.Sub("other-ca") + " " + Root("other") + " h2 127.0.0.1");
    // A certificate of the cluster's CA that names two of its hosts (pki.sh never makes one).
    std::ofstream(dir_.Sub("two.template")) << "cn = \"h2\"\ndns_name = \"h3\"\ntls_www_client\n";
    Run("certtool --generate-privkey --key-type=ecdsa --outfile " + dir_.Sub("two-key.pem") + " 2>/dev/null");
    Run("certtool --generate-certificate --load-privkey " + dir_.Sub("two-key.pem") + " --load-ca-certificate " +
        Ca() + "/cacert.pem --load-ca-privkey " + Ca() + "/cakey.pem --template " + dir_.Sub("two.template") +
        " --outfile " + dir_.Sub("two-cert.pem") + " 2>/dev/null");
  }

  std::string Ca() const { return dir_.Sub("ca"); }
  std::string Root(const std::string& host) const { return dir_.Sub("root-" + host); }
  PeerTls Of(const std::string& host) const {
    StatusOr<PeerTls> tls = LoadPeerTls(Root(host) + "/etc/pki");
    EXPECT_TRUE(tls.ok()) << tls.status().ToString();
    return tls.ok() ? *tls : PeerTls{};
  }
  std::string Read(const std::string& name) const {
    std::ifstream in(dir_.Sub(name));
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  test_support::TempDir dir_;
};

// A port free a moment ago on 127.0.0.1.
int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    close(fd);
    return 0;
  }
  close(fd);
  return ntohs(address.sin_port);
}

// h1, h2 and h3 all at 127.0.0.1 (one server: h1's), as `this_host` sees them.
cluster::ClusterHosts Cluster(const std::string& this_host, int port) {
  cluster::ClusterHosts hosts{.this_host = this_host, .hosts = {}, .peer_port = port};
  for (const char* name : {"h1", "h2", "h3"}) {
    hosts.hosts.push_back({.name = name, .zone = "zone-a", .uri = "qemu+tcp://127.0.0.1/system",
                           .address = "127.0.0.1"});
  }
  return hosts;
}

// ---- fakes of what the peer service's parts talk to: none of them is reached by HostState ----

class NoRounds final : public replication::RoundScheduler {
 public:
  void Hold(const std::string&) override {}
  void Unhold(const std::string&) override {}
  std::future<StatusOr<bool>> Quiesce(const std::string&) override { return Fails<bool>(); }
  std::future<StatusOr<v1::AppliedRound>> RequestRound(const std::string&) override {
    return Fails<v1::AppliedRound>();
  }
  std::future<StatusOr<v1::AppliedRound>> RequestFinalRound(const std::string&) override {
    return Fails<v1::AppliedRound>();
  }
  StatusOr<v1::ReplicationRecord> RecordOf(const std::string&) const override { return Internal("no rounds"); }
  Status Forget(const std::string&) override { return Internal("no rounds"); }

 private:
  template <typename T>
  static std::future<StatusOr<T>> Fails() {
    std::promise<StatusOr<T>> promise;
    promise.set_value(Internal("no rounds"));
    return promise.get_future();
  }
};

class NoImages final : public nbd::ImageTool {
 public:
  StatusOr<nbd::ImageFacts> Info(const std::string&) const override { return Internal("no images"); }
  Status CreateOverlay(const std::string&, const std::string&, std::string_view) const override {
    return Internal("no images");
  }
  Status RemoveBitmap(const std::string&, const std::string&) const override { return Internal("no images"); }
};

class NoPromotionHost final : public failover::PromotionHost {
 public:
  StatusOr<std::vector<controller::PeerShadow>> LocalShadows() override { return Internal("no host"); }
  StatusOr<v1::ReplicaRecord> SettleReplica(const std::string&) override { return Internal("no host"); }
  StatusOr<std::string> DefinitionXml(const std::string&) override { return Internal("no host"); }
  Status Define(const std::string&) override { return Internal("no host"); }
  Status Undefine(const std::string&) override { return Internal("no host"); }
  StatusOr<failover::PromotedVmState> VmState(const std::string&) override { return Internal("no host"); }
  Status Start(const std::string&) override { return Internal("no host"); }
  StatusOr<failover::VmSize> LiveSize(const std::string&) override { return Internal("no host"); }
  StatusOr<failover::VmSize> FreeBesides(const std::string&) override { return Internal("no host"); }
  Status SetVcpusLive(const std::string&, std::uint32_t) override { return Internal("no host"); }
  Status SetMemoryLive(const std::string&, std::uint64_t) override { return Internal("no host"); }
};

// Answers HostState with the caller CallerOf names (in drain_reason), or CallerOf's refusal.
class CallerEcho final : public v1::ShadowPeer::Service {
 public:
  explicit CallerEcho(PeerAuthentication authentication) : authentication_(std::move(authentication)) {}
  grpc::Status HostState(grpc::ServerContext* context, const v1::HostStateRequest*,
                         v1::HostStateReply* reply) override {
    StatusOr<PeerCaller> caller = CallerOf(*context, authentication_);
    if (!caller.ok()) return ToGrpcStatus(caller.status());
    reply->set_drain_reason(caller->Describe());
    return grpc::Status::OK;
  }

 private:
  const PeerAuthentication authentication_;
};

class PeerTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { pki_ = new Pki(); }
  static void TearDownTestSuite() {
    delete pki_;
    pki_ = nullptr;
  }

  PeerTlsTest() {
    v1::DrainRecord drain;
    drain.set_source("test");
    drain.set_kind("preemption");
    drain.set_deadline_unix_ms(1);
    EXPECT_TRUE(drain_.Enter(drain).ok());
  }

  // The peer server of h1, with its certificates or without TLS.
  void StartServer(bool tls) {
    for (int attempt = 0; attempt < 5 && server_ == nullptr; ++attempt) {  // the free port may be taken meanwhile
      port_ = FreePort();
      // Every VM's primary is h3 here: the guard's identity rule, fed by the certificate, is what answers.
      PeerGuard guard(Cluster("h1", port_),
                      [](const std::string&) -> StatusOr<VmOnThisHost> { return VmOnThisHost{.primary_host = "h3"}; });
      auto server = StartPeerServer("127.0.0.1:" + std::to_string(port_), keeper_, target_, promotions_, nullptr,
                                    std::move(guard), tls ? std::optional<PeerTls>(pki_->Of("h1")) : std::nullopt,
                                    Cluster("h1", port_), [](const std::string&) {});
      if (server.ok()) server_ = std::move(*server);
    }
    ASSERT_NE(server_, nullptr);
  }
  // The echo of who calls, on a server with h1's credentials (or none).
  void StartEcho(bool tls) {
    port_ = FreePort();
    echo_ = std::make_unique<CallerEcho>(PeerAuthentication{tls, Cluster("h1", port_)});
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:" + std::to_string(port_),
                             tls ? PeerServerCredentials(pki_->Of("h1")) : grpc::InsecureServerCredentials());
    builder.RegisterService(echo_.get());
    echo_server_ = builder.BuildAndStart();
    ASSERT_NE(echo_server_, nullptr);
  }
  // HostState of h1 asked by `caller` (this_host of its client) with `tls`.
  StatusOr<v1::HostStateReply> AskAs(const std::string& caller, std::optional<PeerTls> tls) {
    GrpcPeerClient client(Cluster(caller, port_), *clock_, std::move(tls));
    return client.HostState("h1");
  }
  // HostState over a channel of `credentials`, without GrpcPeerClient.
  grpc::Status AskWith(std::shared_ptr<grpc::ChannelCredentials> credentials) {
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("h1");
    auto stub = v1::ShadowPeer::NewStub(
        grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port_), std::move(credentials), args));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::HostStateReply reply;
    return stub->HostState(&context, v1::HostStateRequest(), &reply);
  }

  static Pki* pki_;
  std::unique_ptr<Clock> clock_ = NewRealClock();
  test_support::TempDir dir_;
  store::MemoryStore store_;
  replication::testing::FakeReplicaStorage storage_{nullptr};
  replication::ReplicaKeeper keeper_{store_, storage_,
                                     [](const std::string&, const std::vector<std::string>&) { return Status::Ok(); },
                                     *clock_};
  replication::testing::FakeBackupHypervisor libvirt_;
  switchover::ArrivalRecords arrivals_{store_, *clock_};
  switchover::DrainState drain_{store_};
  NoRounds rounds_;
  NoImages images_;
  switchover::SwitchoverTarget target_{libvirt_, keeper_, arrivals_, drain_, rounds_, images_, "h1", *clock_,
                                       [](const std::string&) {}, [] { return true; }};
  NoPromotionHost promotion_host_;
  failover::Promotions promotions_{store_, *clock_, promotion_host_, failover::PromotionSettings{.this_host = "h1"},
                                   [](const std::string&) {}};
  int port_ = 0;
  std::unique_ptr<RunningServer> server_;
  std::unique_ptr<CallerEcho> echo_;
  std::unique_ptr<grpc::Server> echo_server_;
};

Pki* PeerTlsTest::pki_ = nullptr;

// ---- the real peer server ----

TEST_F(PeerTlsTest, AHostOfTheClusterWithItsCertificateIsServed) {
  StartServer(true);
  StatusOr<v1::HostStateReply> state = AskAs("h2", pki_->Of("h2"));
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  EXPECT_TRUE(state->draining());
  EXPECT_THAT(state->drain_reason(), HasSubstr("test preemption"));
}

TEST_F(PeerTlsTest, AClientWithoutACertificateIsRefusedInTheHandshake) {
  StartServer(true);
  grpc::SslCredentialsOptions no_certificate;
  no_certificate.pem_root_certs = pki_->Of("h2").ca_cert;
  const grpc::Status status = AskWith(grpc::SslCredentials(no_certificate));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  const grpc::Status plaintext = AskWith(grpc::InsecureChannelCredentials());
  EXPECT_EQ(plaintext.error_code(), grpc::StatusCode::UNAVAILABLE) << plaintext.error_message();
}

TEST_F(PeerTlsTest, AClientWithACertificateOfAnotherCaIsRefusedInTheHandshake) {
  StartServer(true);
  PeerTls other = pki_->Of("other");  // names h2, but another CA issued it
  other.ca_cert = pki_->Of("h2").ca_cert;  // it trusts the server: the refusal is the server's
  StatusOr<v1::HostStateReply> state = AskAs("h2", other);
  ASSERT_FALSE(state.ok());
  EXPECT_EQ(state.status().code(), Code::kUnavailable) << state.status().ToString();
}

TEST_F(PeerTlsTest, AClientWhoseCertificateNamesNoHostOfTheClusterIsDeniedNamingItsNames) {
  StartServer(true);
  StatusOr<v1::HostStateReply> state = AskAs("h2", pki_->Of("h9"));
  ASSERT_FALSE(state.ok());
  EXPECT_EQ(state.status().code(), Code::kPermissionDenied) << state.status().ToString();
  EXPECT_THAT(state.status().message(), AllOf(HasSubstr("DNS:h9"), HasSubstr("CN:h9"), HasSubstr("h1, h2, h3"),
                                              HasSubstr("scripts/pki.sh host")));
}

// The identity the certificate gives is the one the authorisation rules compare: h2 is a host of the cluster,
// but not the primary of the VM (h3), so it may not finish that VM's round on h1.
TEST_F(PeerTlsTest, AHostThatIsNotTheVmsPrimaryIsDeniedItsWrites) {
  StartServer(true);
  v1::FinishRoundRequest finish;
  finish.set_vm_uuid("6f1c2f4e-8d2a-4c1b-9e3a-0b5d7c9e1f20");
  finish.set_checkpoint("vs-1");
  GrpcPeerClient as_h2(Cluster("h2", port_), *clock_, pki_->Of("h2"));
  const Status refused = as_h2.FinishRound("h1", finish);
  EXPECT_EQ(refused.code(), Code::kPermissionDenied) << refused.ToString();
  EXPECT_THAT(refused.message(), AllOf(HasSubstr("FinishRound of VM"),
                                       HasSubstr("from host h2 refused: only h3 may make it on this host")));
}

TEST_F(PeerTlsTest, AClientRefusesAServerWhoseCertificateNamesAnotherHost) {
  StartServer(true);
  // h1's server answers at the address where the client's configuration places h3.
  GrpcPeerClient client(Cluster("h2", port_), *clock_, pki_->Of("h2"));
  StatusOr<v1::HostStateReply> state = client.HostState("h3");
  ASSERT_FALSE(state.ok());
  EXPECT_EQ(state.status().code(), Code::kUnavailable) << state.status().ToString();
  EXPECT_TRUE(client.HostState("h1").ok());
}

TEST_F(PeerTlsTest, WithoutTlsThePeerServiceServesPlaintext) {
  StartServer(false);
  StatusOr<v1::HostStateReply> state = AskAs("h2", std::nullopt);
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  EXPECT_TRUE(state->draining());
  EXPECT_FALSE(AskAs("h2", pki_->Of("h2")).ok());  // a TLS client does not talk to it
}

// ---- who calls: CallerOf ----

TEST_F(PeerTlsTest, TheCallerIsTheHostItsCertificateNames) {
  StartEcho(true);
  StatusOr<v1::HostStateReply> state = AskAs("h2", pki_->Of("h2"));
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  EXPECT_EQ(state->drain_reason(), "host h2");
}

TEST_F(PeerTlsTest, ACertificateNamingTwoHostsOfTheClusterIsDenied) {
  StartEcho(true);
  PeerTls two = pki_->Of("h2");
  two.client_cert = pki_->Read("two-cert.pem");
  two.client_key = pki_->Read("two-key.pem");
  StatusOr<v1::HostStateReply> state = AskAs("h2", two);
  ASSERT_FALSE(state.ok());
  EXPECT_EQ(state.status().code(), Code::kPermissionDenied) << state.status().ToString();
  EXPECT_THAT(state.status().message(), AllOf(HasSubstr("several hosts of the cluster (h2, h3)"), HasSubstr("DNS:h3"),
                                              HasSubstr("CN:h2")));
}

TEST_F(PeerTlsTest, WithoutTlsTheCallerIsUnauthenticated) {
  StartEcho(false);
  StatusOr<v1::HostStateReply> state = AskAs("h2", std::nullopt);
  ASSERT_TRUE(state.ok()) << state.status().ToString();
  EXPECT_EQ(state->drain_reason(), "an unauthenticated caller (TLS off)");
}

// ---- loading the PKI ----

TEST_F(PeerTlsTest, LoadingThePkiNamesTheMissingOrWrongFile) {
  const std::string root = pki_->Root("h2") + "/etc/pki";
  ASSERT_TRUE(LoadPeerTls(root).ok());
  StatusOr<PeerTls> missing = LoadPeerTls(dir_.path());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_THAT(missing.status().message(),
              AllOf(HasSubstr(dir_.Sub("CA/cacert.pem") + " does not exist"), HasSubstr("scripts/pki.sh host")));

  std::filesystem::copy(root, dir_.Sub("pki"), std::filesystem::copy_options::recursive);
  std::filesystem::copy_file(dir_.Sub("pki/libvirt/servercert.pem"), dir_.Sub("pki/libvirt/private/clientkey.pem"),
                             std::filesystem::copy_options::overwrite_existing);
  StatusOr<PeerTls> swapped = LoadPeerTls(dir_.Sub("pki"));
  ASSERT_FALSE(swapped.ok());
  EXPECT_EQ(swapped.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(swapped.status().message(), HasSubstr("clientkey.pem holds no PEM PRIVATE KEY"));
}

}  // namespace
}  // namespace vs::rpc
