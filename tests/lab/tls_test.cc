// Lab tests of TLS on the three channels between hosts (the lab runs with TLS by default: scripts/lab.sh), each
// against the real servers of a lab host, with a client that has no certificate, one of another CA, and the
// certificate the channel accepts:
// - libvirtd (qemu+tls; no plain TCP listener);
// - a backup job's NBD export (<server tls='yes'>), read by the project's libnbd reader;
// - shadowd's peer service, whose every call about a VM is refused for a host of the cluster that is not the VM's
//   primary (by the certificate the call came with), and served for the primary.
// Migrations over TLS are exercised by every switchover of the other lab tests (qemu.conf's migrate_tls_force
// refuses any other).
//
// The foreign PKI (another CA, with certificates naming a lab host and its address) is made by scripts/pki.sh in a
// temporary directory; the cluster's certificates are the lab hosts' own, read from their private /etc/pki.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "shadowd/nbd/nbd_device.h"
#include "shadowd/rpc/peer_client.h"
#include "shadowd/rpc/peer_tls.h"
#include "tests/lab/lab_env.h"
#include "tests/unit/common/temp_dir.h"

namespace vs::lab {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
namespace v1 = virtshadow::v1;

constexpr char kOtherCaHost[] = "h1";  // the foreign CA's certificate names h1 at h1's address

class TlsTest : public LabTest {
 protected:
  void SetUp() override {
    LabTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(UsesTls(hosts_[0].uri)) << "the lab runs without TLS (started with VS_LAB_TLS=0); these tests need "
                                           "its default: scripts/lab.sh down, then up";
  }

  // Another CA, and a host certificate of it naming h1 at h1's address, under other_/root.
  void MakeOtherPki() {
    const std::string pki = SourceDir() + "/scripts/pki.sh";
    const std::string prefix = "VS_QEMU_USER=$(id -un) " + pki;
    std::filesystem::create_directories(other_.Sub("root"));
    for (const std::string& command :
         {prefix + " ca " + other_.Sub("ca"),
          prefix + " host " + other_.Sub("ca") + " " + other_.Sub("root") + " " + kOtherCaHost + " " +
              hosts_[0].address,
          prefix + " client " + other_.Sub("ca") + " " + other_.Sub("admin") + " lab-admin"}) {
      CommandResult made = RunCommand(command);
      ASSERT_EQ(made.exit_code, 0) << command << ": " << made.output;
    }
  }

  // A directory `name` holding the cluster's CA certificate `ca_file` (so that the client trusts the server and the
  // refusal is the server's) and another CA's client certificate and key, copied from `other_dir` under the
  // names `cert_file` and `key_file`.
  std::string TrustingWithOtherCasCertificate(const std::string& name, const std::string& cluster_ca,
                                              const std::string& ca_file, const std::string& other_dir,
                                              const std::string& cert_file, const std::string& key_file) {
    const std::string dir = other_.Sub(name);
    std::filesystem::create_directories(dir);
    std::filesystem::copy_file(cluster_ca, dir + "/" + ca_file);
    std::filesystem::copy_file(other_dir + "/" + cert_file, dir + "/" + cert_file);
    std::filesystem::copy_file(other_dir + "/" + key_file, dir + "/" + key_file);
    return dir;
  }

  // The libvirt URI of hosts_[0] from here, with the client certificate in pkipath `pki_dir`.
  std::string TlsUri(const std::string& pki_dir) const {
    return "qemu+tls://" + hosts_[0].address + "/system?pkipath=" + pki_dir;
  }

  // The cluster as `as_host` sees it, for a peer client that calls as that host.
  cluster::ClusterHosts ClusterAs(const std::string& as_host) const {
    cluster::ClusterHosts cluster{.this_host = as_host, .hosts = {}, .peer_port = 7479};
    for (const LabHost& host : hosts_) {
      cluster.hosts.push_back({.name = host.name, .zone = host.zone, .uri = host.uri, .address = host.address});
    }
    return cluster;
  }
  rpc::PeerTls TlsOf(const std::string& pki_root) const {
    StatusOr<rpc::PeerTls> tls = rpc::LoadPeerTls(pki_root);
    EXPECT_TRUE(tls.ok()) << tls.status().ToString();
    return tls.ok() ? *tls : rpc::PeerTls{};
  }

  void CheckBackupExport(const TestGuest& guest);
  void CheckPeerService(const TestGuest& guest);

  test_support::TempDir other_;
};

TEST_F(TlsTest, LibvirtdServesOnlyClientsWithTheClustersCertificate) {
  ASSERT_NO_FATAL_FAILURE(MakeOtherPki());
  auto connects = [](const std::string& uri) {
    return RunCommand("timeout 20 virsh -q -c '" + uri + "' uri").exit_code == 0;
  };
  EXPECT_TRUE(connects(hosts_[0].uri)) << "lab-admin's certificate of the cluster's CA";
  EXPECT_FALSE(connects("qemu+tcp://" + hosts_[0].address + "/system")) << "plain TCP";
  EXPECT_FALSE(connects(TlsUri(other_.Sub("admin")))) << "another CA (whose client does not trust the server either)";
  const std::string other_client =
      TrustingWithOtherCasCertificate("libvirt-other", LabDir() + "/pki/admin/cacert.pem", "cacert.pem",
                                      other_.Sub("admin"), "clientcert.pem", "clientkey.pem");
  CommandResult refused = RunCommand("timeout 20 virsh -q -c '" + TlsUri(other_client) + "' uri");
  EXPECT_NE(refused.exit_code, 0) << "a client certificate of another CA, trusting the server: " << refused.output;
  // The CA alone, without a client certificate: libvirt's client refuses to start the handshake without one, and
  // without its files' check (no_verify=1) the server must still refuse.
  const std::string ca_only = other_.Sub("ca-only");
  std::filesystem::create_directories(ca_only);
  std::filesystem::copy_file(LabDir() + "/pki/admin/cacert.pem", ca_only + "/cacert.pem");
  EXPECT_FALSE(connects(TlsUri(ca_only))) << "no client certificate";
  EXPECT_FALSE(connects(TlsUri(ca_only) + "&no_verify=1")) << "no client certificate, unverified";
}

// One guest for both channels (a boot is the slow part): untagged first, so that the backup job is the test's
// alone, then tagged for the peer service.
TEST_F(TlsTest, ABackupExportAndThePeerServiceServeOnlyTheClustersHosts) {
  ASSERT_NO_FATAL_FAILURE(MakeOtherPki());
  auto guest = TestGuest::Start(*conns_[0], hosts_[0], {}, {.name = "tls-guest", .disk_mib = 64});
  ASSERT_TRUE(guest.ok()) << guest.status().ToString();
  ASSERT_TRUE((*guest)->WaitForAcks(1, 120s).ok());
  ASSERT_NO_FATAL_FAILURE(CheckBackupExport(**guest));
  ASSERT_NO_FATAL_FAILURE(CheckPeerService(**guest));
}

void TlsTest::CheckBackupExport(const TestGuest& guest) {
  SCOPED_TRACE("the backup export");
  virt::PullBackupRequest backup{.domain = guest.name(),
                                 .disks = {{.target = "vda", .source_path = guest.disk_path()}},
                                 .listen_address = hosts_[0].address,
                                 .port = 10899,
                                 .tls = true};
  ASSERT_TRUE(conns_[0]->BeginPullBackup(backup).ok());
  const std::string tls_uri = "nbds://" + hosts_[0].address + ":10899/vda";
  const std::vector<std::string> contexts = {std::string(nbd::kBaseAllocation)};

  // h2's QEMU client certificate: what h2's shadowd reads h1's exports with.
  auto reader = nbd::ConnectExport(tls_uri, contexts, nbd::ExportTls{HostPath(hosts_[1], "/etc/pki/qemu")});
  ASSERT_TRUE(reader.ok()) << reader.status().ToString();
  std::vector<std::byte> block(64 * 1024);
  EXPECT_TRUE((*reader)->Read(0, block).ok());
  reader->reset();

  auto plaintext = nbd::ConnectExport("nbd://" + hosts_[0].address + ":10899/vda", contexts, std::nullopt);
  EXPECT_EQ(plaintext.status().code(), Code::kUnavailable) << plaintext.status().ToString();
  auto other_ca = nbd::ConnectExport(tls_uri, contexts, nbd::ExportTls{other_.Sub("root") + "/etc/pki/qemu"});
  EXPECT_EQ(other_ca.status().code(), Code::kUnavailable) << other_ca.status().ToString();
  const std::string other_client = TrustingWithOtherCasCertificate(
      "qemu-other", HostPath(hosts_[1], "/etc/pki/qemu/ca-cert.pem"), "ca-cert.pem", other_.Sub("root") + "/etc/pki/qemu",
      "client-cert.pem", "client-key.pem");
  auto refused = nbd::ConnectExport(tls_uri, contexts, nbd::ExportTls{other_client});
  EXPECT_EQ(refused.status().code(), Code::kUnavailable) << "a client certificate of another CA, trusting the server: "
                                                          << refused.status().ToString();
  EXPECT_TRUE(conns_[0]->EndBackup(guest.name()).ok());
}

// Every peer call about the VM is refused for a host that is not its primary, and served for the primary.
void TlsTest::CheckPeerService(const TestGuest& guest) {
  SCOPED_TRACE("the peer service");
  // Tag it live, the way a virsh user would.
  CommandResult tag = Virsh(0, "metadata " + guest.name() + " --uri http://virt-shadow.org/xmlns/policy/1.0 "
                                   "--key shadow --set \"<policy vcpus='1' interval='1h'/>\" --live --config");
  ASSERT_EQ(tag.exit_code, 0) << tag.output;
  nlohmann::json status;
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto s = CliJson(0, "status " + guest.name());
        if (!s.ok()) return false;
        status = *s;
        return status["state"] == "Protected" && status["replication"].is_object() &&
               status["replication"]["rounds_applied"].get<uint64_t>() >= 1;
      },
      180s))
      << guest.name() << " was not protected and replicated: " << status.dump();
  const std::string vm_uuid = status["uuid"];
  const std::string primary = hosts_[0].name;
  const std::string shadow_host = status["shadows"][0]["host"];
  std::string stranger;  // a host of the cluster that is neither the primary nor the shadow's
  for (const LabHost& host : hosts_) {
    if (host.name != primary && host.name != shadow_host) stranger = host.name;
  }
  ASSERT_FALSE(stranger.empty());
  const LabHost& stranger_host = *std::find_if(hosts_.begin(), hosts_.end(), [&](auto& h) { return h.name == stranger; });
  const LabHost& primary_host = hosts_[0];

  std::unique_ptr<Clock> clock = NewRealClock();
  rpc::GrpcPeerClient as_stranger(ClusterAs(stranger), *clock, TlsOf(HostPath(stranger_host, "/etc/pki")));
  // Requests that pass the syntax checks, so that the identity is what answers.
  const std::string replica = guest.disk_path();
  v1::GetReplicaRequest get;
  get.set_vm_uuid(vm_uuid);
  get.add_replica_paths(replica);
  v1::ApplyRoundRequest apply;
  apply.set_vm_uuid(vm_uuid);
  apply.set_primary_host(stranger);
  apply.mutable_round()->set_checkpoint("vs-forged");
  v1::DiskRound* disk = apply.add_disks();
  disk->set_target("vda");
  disk->set_replica_path(replica);
  disk->set_format("qcow2");
  disk->set_virtual_size(64 << 20);
  disk->set_source_uri("nbds://" + stranger_host.address + ":10809/vda");
  disk->set_mode(v1::ROUND_MODE_FULL);
  v1::FinishRoundRequest finish;
  finish.set_vm_uuid(vm_uuid);
  finish.set_checkpoint("vs-forged");
  v1::ReplicaDigestsRequest digests;
  digests.set_vm_uuid(vm_uuid);
  digests.set_replica_path(replica);
  digests.set_format("qcow2");
  v1::CheckSwitchoverRequest check;
  check.set_vm_uuid(vm_uuid);
  v1::PrepareSwitchoverRequest prepare;
  prepare.set_vm_uuid(vm_uuid);
  v1::CompleteSwitchoverRequest complete;
  complete.set_vm_uuid(vm_uuid);
  complete.set_vm_name(guest.name());
  complete.set_origin_host(primary);
  v1::AbortSwitchoverRequest abort;
  abort.set_vm_uuid(vm_uuid);
  const std::vector<std::pair<std::string, Status>> calls = {
      {"GetReplica", as_stranger.GetReplica(shadow_host, get).status()},
      {"ApplyRound", as_stranger.ApplyRound(shadow_host, apply).status()},
      {"FinishRound", as_stranger.FinishRound(shadow_host, finish)},
      {"ReplicaDigests", as_stranger.ReplicaDigests(shadow_host, digests).status()},
      {"CheckSwitchover", as_stranger.CheckSwitchover(shadow_host, check).status()},
      {"PrepareSwitchover", as_stranger.PrepareSwitchover(shadow_host, prepare)},
      {"CompleteSwitchover", as_stranger.CompleteSwitchover(shadow_host, complete)},
      {"AbortSwitchover", as_stranger.AbortSwitchover(shadow_host, abort)},
  };
  for (const auto& [call, refused] : calls) {
    EXPECT_EQ(refused.code(), Code::kPermissionDenied) << call << " from " << stranger << ": " << refused.ToString();
    EXPECT_THAT(refused.message(), HasSubstr("from host " + stranger + " refused: only " + primary + " may make it"))
        << call;
  }

  // The primary's own certificate is served: the refusals above are the identity's, not the calls'.
  rpc::GrpcPeerClient as_primary(ClusterAs(primary), *clock, TlsOf(HostPath(primary_host, "/etc/pki")));
  auto replica_record = as_primary.GetReplica(shadow_host, get);
  EXPECT_TRUE(replica_record.ok()) << replica_record.status().ToString();

  // Callers without a host's certificate: none (plaintext), another CA's naming the primary, and the cluster CA's
  // lab-admin, which names no host.
  rpc::GrpcPeerClient plaintext(ClusterAs(primary), *clock, std::nullopt);
  EXPECT_EQ(plaintext.GetReplica(shadow_host, get).status().code(), Code::kUnavailable);
  rpc::PeerTls other_ca = TlsOf(other_.Sub("root") + "/etc/pki");
  other_ca.ca_cert = TlsOf(HostPath(primary_host, "/etc/pki")).ca_cert;  // it trusts the server: the refusal is the server's
  rpc::GrpcPeerClient as_other_ca(ClusterAs(primary), *clock, other_ca);
  EXPECT_EQ(as_other_ca.GetReplica(shadow_host, get).status().code(), Code::kUnavailable);
  rpc::PeerTls admin = TlsOf(HostPath(primary_host, "/etc/pki"));
  auto read = [](const std::string& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  admin.client_cert = read(LabDir() + "/pki/admin/clientcert.pem");
  admin.client_key = read(LabDir() + "/pki/admin/clientkey.pem");
  ASSERT_FALSE(admin.client_key.empty()) << "no lab-admin key in " << LabDir() << "/pki/admin";
  rpc::GrpcPeerClient as_admin(ClusterAs(primary), *clock, admin);
  const Status admin_refused = as_admin.GetReplica(shadow_host, get).status();
  EXPECT_EQ(admin_refused.code(), Code::kPermissionDenied) << admin_refused.ToString();
  EXPECT_THAT(admin_refused.message(), HasSubstr("lab-admin"));
}

}  // namespace
}  // namespace vs::lab
