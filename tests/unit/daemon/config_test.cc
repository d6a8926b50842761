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
        BadCase{"[shadowd\nhost = h1\n", "config:"}));

TEST(ConfigTest, MissingFileSaysWhichAndWhatToDo) {
  auto config = LoadConfig("/nonexistent/shadowd.conf");
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), Code::kNotFound);
  EXPECT_THAT(config.status().message(), HasSubstr("--config"));
}

}  // namespace
}  // namespace vs::daemon
