// The configuration keys replication needs: the peer and NBD ports, the metrics endpoint, and where
// peers reach each host (its address, by default the host of its libvirt URI).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "shadowd/daemon/config.h"

namespace vs::daemon {
namespace {

using ::testing::HasSubstr;

// A config whose [shadowd] section gets `daemon_keys` and whose only host gets `host_keys`.
std::string Conf(const std::string& daemon_keys, const std::string& host_keys = "uri = qemu+tcp://10.0.0.2/system\n") {
  return "[shadowd]\nhost = h1\n" + daemon_keys + "[host.h1]\nzone = zone-a\n" + host_keys;
}

TEST(ConfigReplicationTest, PortsAndMetricsHaveDefaults) {
  auto config = ParseConfig(Conf(""));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->peer_port, 7479);
  EXPECT_EQ(config->nbd_port, 10809);
  EXPECT_EQ(config->round_concurrency, 4);
  EXPECT_EQ(config->metrics_listen, "");
}

TEST(ConfigReplicationTest, PortsAndMetricsAreRead) {
  auto config =
      ParseConfig(Conf("peer_port = 1\nnbd_port = 65535\nround_concurrency = 1\nmetrics = 10.0.0.2:9177\n"));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->peer_port, 1);
  EXPECT_EQ(config->nbd_port, 65535);
  EXPECT_EQ(config->round_concurrency, 1);
  EXPECT_EQ(config->metrics_listen, "10.0.0.2:9177");
}

TEST(ConfigReplicationTest, RoundConcurrencyIsBoundedAndItsPortsMustExist) {
  auto zero = ParseConfig(Conf("round_concurrency = 0\n"));
  ASSERT_FALSE(zero.ok());
  EXPECT_THAT(zero.status().message(), HasSubstr("[shadowd] round_concurrency = '0'"));
  EXPECT_THAT(zero.status().message(), HasSubstr("1..64"));
  // The default 4 runners need 65534..65537.
  auto beyond = ParseConfig(Conf("nbd_port = 65534\n"));
  ASSERT_FALSE(beyond.ok());
  EXPECT_THAT(beyond.status().message(), HasSubstr("needs ports up to 65537, above 65535"));
}

struct BadPort {
  const char* line;
  const char* message;
};

class ConfigReplicationPortTest : public ::testing::TestWithParam<BadPort> {};

TEST_P(ConfigReplicationPortTest, IsRefusedNamingKeyValueAndRange) {
  auto config = ParseConfig(Conf(std::string(GetParam().line) + "\n"));
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(config.status().message(), HasSubstr(GetParam().message));
  EXPECT_THAT(config.status().message(), HasSubstr("1..65535"));
}

INSTANTIATE_TEST_SUITE_P(
    ConfigReplication, ConfigReplicationPortTest,
    ::testing::Values(BadPort{"peer_port = 0", "[shadowd] peer_port = '0'"},
                      BadPort{"peer_port = 65536", "[shadowd] peer_port = '65536'"},
                      BadPort{"peer_port = -1", "[shadowd] peer_port = '-1'"},
                      BadPort{"peer_port = 74 79", "[shadowd] peer_port = '74 79'"},
                      BadPort{"peer_port = http", "[shadowd] peer_port = 'http'"},
                      BadPort{"nbd_port = 0", "[shadowd] nbd_port = '0'"},
                      BadPort{"nbd_port = 99999999999", "[shadowd] nbd_port = '99999999999'"},
                      BadPort{"nbd_port = 10809x", "[shadowd] nbd_port = '10809x'"}));

struct UriAddress {
  const char* uri;
  const char* address;
};

class ConfigReplicationAddressTest : public ::testing::TestWithParam<UriAddress> {};

TEST_P(ConfigReplicationAddressTest, DefaultsToTheHostOfTheUri) {
  auto config = ParseConfig(Conf("", std::string("uri = ") + GetParam().uri + "\n"));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->hosts[0].address, GetParam().address);
}

INSTANTIATE_TEST_SUITE_P(ConfigReplication, ConfigReplicationAddressTest,
                         ::testing::Values(UriAddress{"qemu+tcp://10.0.0.2/system", "10.0.0.2"},
                                           UriAddress{"qemu+ssh://root@h2:22/system", "h2"},
                                           UriAddress{"qemu+tcp://[::1]/system", "::1"},
                                           UriAddress{"qemu+ssh://admin@[fd00::7]:2222/system", "fd00::7"},
                                           UriAddress{"qemu+tcp://h3", "h3"}));

TEST(ConfigReplicationTest, AnExplicitAddressWinsOverTheUri) {
  auto config = ParseConfig(Conf("", "uri = qemu+ssh://root@h2/system\naddress = 10.77.0.12\n"));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->hosts[0].address, "10.77.0.12");
}

TEST(ConfigReplicationTest, AUriWithoutAHostNeedsAnAddress) {
  auto missing = ParseConfig(Conf("", "uri = qemu:///system\n"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(missing.status().message(), HasSubstr("[host.h1] uri = qemu:///system names no host"));
  EXPECT_THAT(missing.status().message(), HasSubstr("add address ="));

  auto given = ParseConfig(Conf("", "uri = qemu:///system\naddress = 10.0.0.9\n"));
  ASSERT_TRUE(given.ok()) << given.status().ToString();
  EXPECT_EQ(given->hosts[0].address, "10.0.0.9");
}

TEST(ConfigReplicationTest, PeerTargetUsesThePeerPortAndBracketsIpv6) {
  auto config = ParseConfig(Conf("peer_port = 7000\n"));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  cluster::HostConfig host;
  host.address = "10.0.0.2";
  EXPECT_EQ(config->Cluster().PeerTarget(host), "10.0.0.2:7000");
  host.address = "fd00::2";
  EXPECT_EQ(config->Cluster().PeerTarget(host), "[fd00::2]:7000");
  host.address = "h2.example";
  EXPECT_EQ(config->Cluster().PeerTarget(host), "h2.example:7000");

  auto ipv6 = ParseConfig(Conf("", "uri = qemu+tcp://[::1]/system\n"));
  ASSERT_TRUE(ipv6.ok()) << ipv6.status().ToString();
  EXPECT_EQ(ipv6->Cluster().PeerTarget(ipv6->hosts[0]), "[::1]:7479");
}

}  // namespace
}  // namespace vs::daemon
