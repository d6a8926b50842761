#include "shadowd/cluster/libvirt_cluster.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace vs::cluster {
namespace {

// Records every connection asked for; none opens (the tests look at which libvirtd was dialled, not at what it says).
class RecordingRuntime final : public virt::LibvirtRuntime {
 public:
  StatusOr<std::unique_ptr<virt::Hypervisor>> Connect(const std::string& uri, Clock&) override {
    dialled.push_back(uri);
    return Unavailable("no libvirtd in a unit test");
  }
  std::vector<std::string> dialled;
};

// A TCP port on 127.0.0.1 that accepts connections, or, `silent`, one whose accept queue is full: the kernel then
// drops every further SYN, so a connect waits out its retries, as to a crashed host behind a cut link.
class LoopbackPort {
 public:
  explicit LoopbackPort(bool silent) {
    listener_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    EXPECT_EQ(listen(listener_, silent ? 0 : 16), 0);
    socklen_t length = sizeof address;
    EXPECT_EQ(getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length), 0);
    port_ = ntohs(address.sin_port);
    // A backlog of 0 still queues one connection; two more make sure the queue is full.
    for (int i = 0; silent && i < 2; ++i) {
      const int filler = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      (void)connect(filler, reinterpret_cast<sockaddr*>(&address), sizeof address);
      fillers_.push_back(filler);
    }
  }
  ~LoopbackPort() {
    for (int fd : fillers_) close(fd);
    close(listener_);
  }
  std::string Uri() const { return "qemu+tcp://127.0.0.1:" + std::to_string(port_) + "/system"; }

 private:
  int listener_ = -1;
  int port_ = 0;
  std::vector<int> fillers_;
};

ClusterHosts TwoHosts(const std::string& h1_uri) {
  return {.this_host = "h2",
          .hosts = {{.name = "h1", .zone = "zone-a", .uri = h1_uri, .address = "127.0.0.1"},
                    {.name = "h2", .zone = "zone-b", .uri = "qemu+tcp://127.0.0.1:1/system", .address = "127.0.0.1"}}};
}

// The lab (tests/lab/promotion_restart_test.cc): shadowd on h2, killed during a crash promotion and restarted while
// h1 was crashed behind its cut link, sat 38 to 43 s in its start-up's first Refresh, in libvirt's connect to h1
// (gdb: __libc_connect < virNetSocketNewConnectTCP < virConnectOpen < LibvirtCluster::Conn < Refresh <
// Daemon::BuildController), and the promotion waited for it.
TEST(LibvirtCluster, AHostWhoseLibvirtdDoesNotAnswerIsNotDialledAndHoldsNothingUp) {
  LoopbackPort silent(/*silent=*/true);
  RecordingRuntime runtime;
  FakeClock clock;
  LibvirtCluster cluster(TwoHosts(silent.Uri()), "test:///local", runtime, clock);
  const auto started = std::chrono::steady_clock::now();
  cluster.Refresh();
  const auto took = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(runtime.dialled, std::vector<std::string>{"test:///local"}) << "h1's libvirtd was dialled";
  EXPECT_LT(took, LibvirtCluster::kDialTimeout + std::chrono::seconds(2));
  StatusOr<std::vector<scheduler::Host>> hosts = cluster.Hosts();
  ASSERT_TRUE(hosts.ok()) << hosts.status().ToString();
  for (const scheduler::Host& host : *hosts) EXPECT_FALSE(host.up) << host.name;
}

TEST(LibvirtCluster, AHostWhoseLibvirtdAcceptsIsDialled) {
  LoopbackPort answering(/*silent=*/false);
  RecordingRuntime runtime;
  FakeClock clock;
  LibvirtCluster cluster(TwoHosts(answering.Uri()), "test:///local", runtime, clock);
  cluster.Refresh();
  EXPECT_EQ(runtime.dialled, (std::vector<std::string>{answering.Uri(), "test:///local"}));
}

}  // namespace
}  // namespace vs::cluster
