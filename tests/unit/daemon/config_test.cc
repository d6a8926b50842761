#include "shadowd/daemon/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vs::daemon {
namespace {

using ::testing::HasSubstr;

constexpr char kGood[] = R"(
[shadowd]
host = h1
grace_seconds = 30
refresh_seconds = 2

[host.h1]
zone = zone-a
uri = qemu+tcp://10.77.0.11/system
cost = 0.20

[host.h2]
zone = zone-b
uri = qemu+tcp://10.77.0.12/system
cost = 0.30
memory_mib = 2048
vcpus = 4
)";

TEST(ConfigTest, ParsesHostsAndDefaults) {
  auto config = ParseConfig(kGood);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->this_host, "h1");
  EXPECT_EQ(config->grace, std::chrono::seconds(30));
  EXPECT_EQ(config->refresh, std::chrono::seconds(2));
  EXPECT_EQ(config->socket_path, "/run/virt-shadow/shadowd.sock");
  EXPECT_EQ(config->hook_socket_path, "/run/virt-shadow/hook.sock");
  ASSERT_EQ(config->hosts.size(), 2u);
  EXPECT_EQ(config->hosts[1].name, "h2");
  EXPECT_EQ(config->hosts[1].zone, "zone-b");
  EXPECT_DOUBLE_EQ(config->hosts[1].cost_per_hour, 0.30);
  EXPECT_EQ(config->hosts[1].memory_mib_cap, 2048u);
  EXPECT_EQ(config->hosts[1].vcpus_cap, 4u);
  EXPECT_FALSE(config->hosts[0].memory_mib_cap.has_value());
  ASSERT_NE(config->FindHost("h2"), nullptr);
  EXPECT_EQ(config->FindHost("h9"), nullptr);
}

struct BadCase {
  const char* text;
  const char* message;
};

class BadConfigTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadConfigTest, NamesWhatIsWrong) {
  auto config = ParseConfig(GetParam().text);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(config.status().message(), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, BadConfigTest,
    ::testing::Values(
        BadCase{"", "no [shadowd] section"},
        BadCase{"[shadowd]\nhost = h1\n", "no [host.h1] section"},
        BadCase{"[shadowd]\nport = 1\n", "unknown key 'port'"},
        BadCase{"[shadowd]\nhost = h1\n[host.h1]\nuri = x\n", "needs a zone"},
        BadCase{"[shadowd]\nhost = h1\n[host.h1]\nzone = a\n", "needs a uri"},
        BadCase{"[shadowd]\nhost = h1\n[host.h1]\nzone = a\nuri = qemu+tcp://h1/system\ncost = cheap\n", "cost = 'cheap'"},
        BadCase{"[shadowd]\nhost = h1\n[host.h1]\nzone = a\nuri = qemu+tcp://h1/system\nmemory_mib = 1\n", "memory_mib = '1'"},
        BadCase{"[shadowd]\nhost = h1\ngrace_seconds = -5\n[host.h1]\nzone = a\nuri = x\n", "grace_seconds"},
        BadCase{"[shadowd]\nhost = h1\n[host.h1]\nzone = a\nuri = x\n", "names no host"},
        BadCase{"[shadowd]\nhost = h1\n[hosts]\nx = 1\n", "unknown section [hosts]"},
        BadCase{"[shadowd]\nhost = h1\n[notices]\nx = 1\n", "[shadowd], [host.NAME], [notice], [switchover], [failover], [tls], [policy.NAME] and [nova]"},
        BadCase{"[shadowd]\nhost = h1\nhook_socket = hook.sock\n", "hook_socket = 'hook.sock' is not an absolute path"},
        BadCase{"[shadowd]\nhost = h1\nhook_socket = /run/virt-shadow/a-socket-path-longer-than-a-sockaddr_un-holds-"
                "which-is-107-bytes-and-no-more-than-that.sock\n",
                "at most 107 bytes"},
        BadCase{"[shadowd]\nhost = h1\nhook_socket = /run/vs.sock\nsocket = /run/vs.sock\n",
                "hook_socket and socket are both '/run/vs.sock'"},
        BadCase{"[shadowd\nhost = h1\n", "config:"}));

// Every integer setting takes plain digits only: istream's unsigned extraction used to read "-4294967295" as 1
// (it negates modulo 2^32), and a value past the type's range must not wrap into the accepted one either.
TEST(ConfigTest, IntegerSettingsRefuseASignAWrapAndAnOutOfRangeValue) {
  const std::string host = "[shadowd]\nhost = h1\n[host.h1]\nzone = a\nuri = qemu+tcp://10.0.0.1/system\n";
  const std::pair<std::string, std::string> cases[] = {
      {host + "vcpus = -4294967295\n", "[host.h1] vcpus = '-4294967295' is not a number in 1..65536"},
      {host + "vcpus = 4294967297\n", "[host.h1] vcpus = '4294967297' is not a number in 1..65536"},
      {host + "vcpus = +4\n", "[host.h1] vcpus = '+4' is not a number in 1..65536"},
      {host + "vcpus = 4 cores\n", "[host.h1] vcpus = '4 cores'"},
      {host + "memory_mib = -18446744073709551615\n", "[host.h1] memory_mib = '-18446744073709551615'"},
      {host + "memory_mib = 18446744073709551617\n", "memory_mib = '18446744073709551617' is not a number in 64.."},
      {host + "memory_mib = 0x1000\n", "[host.h1] memory_mib = '0x1000'"},
      {"[shadowd]\nhost = h1\npeer_port = -65535\n" + host.substr(20), "[shadowd] peer_port = '-65535'"},
      {"[shadowd]\nhost = h1\nnbd_port = 4294977105\n" + host.substr(20), "[shadowd] nbd_port = '4294977105'"},
      {"[shadowd]\nhost = h1\ngrace_seconds = +5\n" + host.substr(20), "[shadowd] grace_seconds = '+5'"},
      {"[shadowd]\nhost = h1\nrefresh_seconds = 18446744073709551621\n" + host.substr(20),
       "refresh_seconds = '18446744073709551621' is not a number in 1..3600"},
      {host + "[notice]\npoll_seconds = -0\n", "[notice] poll_seconds = '-0'"},
      {host + "[switchover]\nwarmup_bandwidth_mibs = -18446744073709551615\n",
       "[switchover] warmup_bandwidth_mibs = '-18446744073709551615' is not a number in 1..1000000"},
      {host + "[switchover]\nstart_cost_ms = 1e3\n", "[switchover] start_cost_ms = '1e3'"},
  };
  for (const auto& [text, message] : cases) {
    auto config = ParseConfig(text);
    ASSERT_FALSE(config.ok()) << text;
    EXPECT_EQ(config.status().code(), Code::kInvalidArgument) << text;
    EXPECT_THAT(config.status().message(), HasSubstr(message)) << text;
  }
  auto leading_zeros = ParseConfig(host + "vcpus = 0016\n");
  ASSERT_TRUE(leading_zeros.ok()) << leading_zeros.status().ToString();
  EXPECT_EQ(leading_zeros->hosts[0].vcpus_cap, 16u);
}

TEST(ConfigTest, MissingFileSaysWhichAndWhatToDo) {
  auto config = LoadConfig("/nonexistent/shadowd.conf");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), Code::kNotFound);
  EXPECT_THAT(config.status().message(), HasSubstr("--config"));
}

// ---- [notice] and [switchover]

// A valid config whose last section is `extra` (e.g. "[notice]\ngce = ...\n").
std::string WithSection(const std::string& extra) {
  return "[shadowd]\nhost = h1\n[host.h1]\nzone = a\nuri = qemu+tcp://10.0.0.1/system\n" + extra;
}

TEST(ConfigNoticeTest, EverySourceIsOffByDefault) {
  auto config = ParseConfig(WithSection(""));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  const notice::NoticeSourcesOptions& n = config->notice;
  EXPECT_EQ(n.acpid_socket, "");
  EXPECT_EQ(n.input_device, "");
  EXPECT_EQ(n.gce_url, "");
  EXPECT_EQ(n.aws_url, "");
  EXPECT_EQ(n.azure_url, "");
  EXPECT_EQ(n.power_button_deadline, std::chrono::seconds(30));
  EXPECT_EQ(n.poll_interval, std::chrono::seconds(2));
  EXPECT_EQ(config->drain_deadline, std::chrono::seconds(120));
}

TEST(ConfigNoticeTest, ReadsEveryKey) {
  auto config = ParseConfig(WithSection(R"([notice]
acpid_socket = /var/run/acpid.socket
input_device = /dev/input/event3
power_button_deadline_seconds = 25
gce = http://169.254.169.254
aws = http://[fd00:ec2::254]:8080
azure = http://10.77.0.1:18169/h1/
azure_vm_name = vm-7
poll_seconds = 1
drain_deadline_seconds = 60
)"));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  const notice::NoticeSourcesOptions& n = config->notice;
  EXPECT_EQ(n.acpid_socket, "/var/run/acpid.socket");
  EXPECT_EQ(n.input_device, "/dev/input/event3");
  EXPECT_EQ(n.power_button_deadline, std::chrono::seconds(25));
  EXPECT_EQ(n.gce_url, "http://169.254.169.254");
  EXPECT_EQ(n.aws_url, "http://[fd00:ec2::254]:8080");
  EXPECT_EQ(n.azure_url, "http://10.77.0.1:18169/h1/");
  EXPECT_EQ(n.azure_vm_name, "vm-7");
  EXPECT_EQ(n.poll_interval, std::chrono::seconds(1));
  EXPECT_EQ(config->drain_deadline, std::chrono::seconds(60));
}

TEST(ConfigSwitchoverTest, Defaults) {
  auto config = ParseConfig(WithSection(""));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_DOUBLE_EQ(config->switchover.bandwidth_mibs, 100);
  EXPECT_DOUBLE_EQ(config->switchover.safety_margin, 0.2);
  EXPECT_EQ(config->switchover.start_cost, std::chrono::milliseconds(1500));
  EXPECT_EQ(config->switchover.snapshot_cost, std::chrono::milliseconds(150));
  EXPECT_EQ(config->switchover.warmup_bandwidth_mibs, 5u);
  EXPECT_FALSE(config->switchover.hold_planned_precopy);
}

TEST(ConfigSwitchoverTest, ReadsEveryKey) {
  auto config = ParseConfig(WithSection(R"([switchover]
bandwidth_mibs = 12.5
safety_margin = 0
start_cost_ms = 0
snapshot_cost_ms = 90
warmup_bandwidth_mibs = 1
precopy_hold = planned
)"));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_DOUBLE_EQ(config->switchover.bandwidth_mibs, 12.5);
  EXPECT_DOUBLE_EQ(config->switchover.safety_margin, 0);
  EXPECT_EQ(config->switchover.start_cost, std::chrono::milliseconds(0));
  EXPECT_EQ(config->switchover.snapshot_cost, std::chrono::milliseconds(90));
  EXPECT_EQ(config->switchover.warmup_bandwidth_mibs, 1u);
  EXPECT_TRUE(config->switchover.hold_planned_precopy);
}

TEST(ConfigSwitchoverTest, PrecopyHoldIsNoneOrPlanned) {
  auto none = ParseConfig(WithSection("[switchover]\nprecopy_hold = none\n"));
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_FALSE(none->switchover.hold_planned_precopy);
  auto bad = ParseConfig(WithSection("[switchover]\nprecopy_hold = 3s\n"));
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("precopy_hold = '3s' must be 'none'"));
}

struct BadSection {
  std::string text;  // the section, appended to a valid config
  std::string message;
};

class BadSectionTest : public ::testing::TestWithParam<BadSection> {};

TEST_P(BadSectionTest, NamesTheKeyAndTheFix) {
  auto config = ParseConfig(WithSection(GetParam().text));
  ASSERT_FALSE(config.ok()) << GetParam().text;
  EXPECT_EQ(config.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(config.status().message(), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Notice, BadSectionTest,
    ::testing::Values(
        BadSection{"[notice]\nacpid = /var/run/acpid.socket\n", "[notice] has an unknown key 'acpid'"},
        BadSection{"[notice]\nacpid_socket = acpid.socket\n", "acpid_socket = 'acpid.socket' is not an absolute path"},
        BadSection{"[notice]\nacpid_socket =\n", "remove the key to leave this source off"},
        BadSection{"[notice]\nacpid_socket = /" + std::string(120, 'a') + "\n", "acpid_socket is 121 bytes long"},
        BadSection{"[notice]\ninput_device = event0\n", "input_device = 'event0' is not an absolute path"},
        BadSection{"[notice]\npower_button_deadline_seconds = 0\n", "power_button_deadline_seconds = '0'"},
        BadSection{"[notice]\ngce = https://169.254.169.254\n",
                   "gce = 'https://169.254.169.254' is not a plain http://"},
        BadSection{"[notice]\ngce = http://metadata.google.internal\n", "does not name its host by IP address"},
        BadSection{"[notice]\naws = http://169.254.169.254:0\n", "has port '0'"},
        BadSection{"[notice]\naws = http://169.254.169.254:\n", "has port ''"},
        BadSection{"[notice]\naws = http://169.254.169.254:80x\n", "has port '80x'"},
        BadSection{"[notice]\naws = http://[fd00::1\n", "'[' without ']'"},
        BadSection{"[notice]\naws = http://10.0.0.1/latest?x=1\n", "contains a space, control character, '?' or '#'"},
        BadSection{"[notice]\nazure = http://169.254.169.254\n", "add azure_vm_name = "},
        BadSection{"[notice]\nazure_vm_name = vm1\n", "azure_vm_name is set but azure is not"},
        BadSection{"[notice]\npoll_seconds = 0\n", "poll_seconds = '0' is not a number in 1..3600"},
        BadSection{"[notice]\npoll_seconds = 1.5\n", "poll_seconds = '1.5'"},
        BadSection{"[notice]\ndrain_deadline_seconds = -1\n", "drain_deadline_seconds = '-1'"}));

INSTANTIATE_TEST_SUITE_P(
    Switchover, BadSectionTest,
    ::testing::Values(
        BadSection{"[switchover]\nbandwidth = 5\n", "[switchover] has an unknown key 'bandwidth'"},
        BadSection{"[switchover]\nbandwidth_mibs = 0\n", "bandwidth_mibs = '0' must be above 0"},
        BadSection{"[switchover]\nbandwidth_mibs = -3\n", "bandwidth_mibs = '-3'"},
        BadSection{"[switchover]\nbandwidth_mibs = nan\n", "bandwidth_mibs = 'nan'"},
        BadSection{"[switchover]\nsafety_margin = 1\n", "safety_margin = '1' leaves no time"},
        BadSection{"[switchover]\nsafety_margin = 1.5\n", "safety_margin = '1.5' is not a number in 0..1"},
        BadSection{"[switchover]\nsafety_margin = -0.1\n", "safety_margin = '-0.1'"},
        BadSection{"[switchover]\nstart_cost_ms = fast\n", "start_cost_ms = 'fast'"},
        BadSection{"[switchover]\nsnapshot_cost_ms = -1\n", "snapshot_cost_ms = '-1'"},
        BadSection{"[switchover]\nwarmup_bandwidth_mibs = 0\n", "warmup_bandwidth_mibs = '0'"},
        BadSection{"[switchover]\nwarmup_bandwidth_mibs = -1\n", "warmup_bandwidth_mibs = '-1'"},
        BadSection{"[switchover]\nwarmup_bandwidth_mibs = 2.5\n", "warmup_bandwidth_mibs = '2.5'"}));

TEST(ConfigTest, TlsIsOffByDefaultWithLibvirtsPki) {
  auto config = ParseConfig(kGood);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_FALSE(config->peer_tls);
  EXPECT_FALSE(config->nbd_tls);
  EXPECT_FALSE(config->switchover.migration_tls);
  EXPECT_EQ(config->tls_pki, "/etc/pki");
}

TEST(ConfigTest, TlsMutualWithItsPki) {
  auto config = ParseConfig(std::string(kGood) + "[tls]\npeer = mutual\npki = /var/lib/pki\n");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_TRUE(config->peer_tls);
  EXPECT_EQ(config->tls_pki, "/var/lib/pki");
  auto none = ParseConfig(std::string(kGood) + "[tls]\npeer = none\n");
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_FALSE(none->peer_tls);
}

TEST(ConfigTest, EachTlsChannelIsSetOnItsOwn) {
  auto nbd = ParseConfig(std::string(kGood) + "[tls]\nnbd = mutual\n");
  ASSERT_TRUE(nbd.ok()) << nbd.status().ToString();
  EXPECT_TRUE(nbd->nbd_tls);
  EXPECT_FALSE(nbd->peer_tls);
  EXPECT_FALSE(nbd->switchover.migration_tls);
  auto migration = ParseConfig(std::string(kGood) + "[tls]\nmigration = mutual\n");
  ASSERT_TRUE(migration.ok()) << migration.status().ToString();
  EXPECT_TRUE(migration->switchover.migration_tls);
  EXPECT_FALSE(migration->nbd_tls);
  EXPECT_NE(DescribeConfig(*migration).find("TLS: peer service none, NBD exports none, migrations mutual"),
            std::string::npos)
      << DescribeConfig(*migration);
}

INSTANTIATE_TEST_SUITE_P(
    Tls, BadSectionTest,
    ::testing::Values(BadSection{"[tls]\npeer = yes\n", "[tls] peer = 'yes' is not 'mutual' or 'none'"},
                      BadSection{"[tls]\nnbd = on\n", "[tls] nbd = 'on' is not 'mutual' or 'none'"},
                      BadSection{"[tls]\nmigration = tls\n", "[tls] migration = 'tls' is not 'mutual' or 'none'"},
                      BadSection{"[tls]\npki = etc/pki\n", "[tls] pki = 'etc/pki' is not an absolute path"},
                      BadSection{"[tls]\npki =\n", "[tls] pki = '' is not an absolute path"},
                      BadSection{"[tls]\nca_cert = /x\n", "[tls] has an unknown key 'ca_cert'"}));

}  // namespace
}  // namespace vs::daemon
