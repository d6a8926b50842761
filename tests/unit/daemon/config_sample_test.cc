// The installed sample configuration (shadowd/daemon/shadowd.conf.sample) and `shadowd --check-config`'s summary.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "shadowd/daemon/config.h"

namespace vs::daemon {
namespace {

using ::testing::HasSubstr;

std::string SampleText() {
  std::ifstream in(VS_SOURCE_DIR "/shadowd/daemon/shadowd.conf.sample");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// As installed every setting is commented out: shadowd refuses to start until an admin fills it in, and says
// what is missing.
TEST(ConfigSampleTest, AsInstalledItSetsNothingAndTheErrorSaysWhatIsMissing) {
  const std::string sample = SampleText();
  ASSERT_FALSE(sample.empty()) << "cannot read the sample";
  auto config = ParseConfig(sample);
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), HasSubstr("[shadowd]"));
}

// Every commented setting and section is one the parser knows, with a value it accepts: uncommented, the
// sample is a valid configuration. (An Azure VM name is required with azure, so the sample's placeholder stays.)
TEST(ConfigSampleTest, UncommentedEverySettingIsKnownAndValid) {
  const std::string uncommented =
      std::regex_replace(SampleText(), std::regex(R"(^;(\[[a-z.0-9]+\]|[a-z_]+ = ))", std::regex::multiline), "$1");
  ASSERT_NE(uncommented, SampleText());
  auto config = ParseConfig(uncommented);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->this_host, "h1");
  EXPECT_EQ(config->membership, Config::Membership::kCorosync);
  EXPECT_EQ(config->notice.gce_url, "http://169.254.169.254");
  ASSERT_EQ(config->policies.count("gold"), 1u);
  EXPECT_TRUE(config->policies.at("gold").critical);
  ASSERT_TRUE(config->nova.has_value());
  EXPECT_EQ(config->nova->auth_url, "http://10.77.0.1:5000/v3");
  EXPECT_EQ(config->nova->password_file, "/etc/virt-shadow/nova.password");
  EXPECT_EQ(config->nova->region_name, "RegionOne");
}

TEST(ConfigSampleTest, DescribeNamesTheHostTheClusterMembershipAndNoticeSources) {
  auto config = ParseConfig(R"(
[shadowd]
host = h2
membership = corosync
metrics = 10.0.0.2:9177
[host.h1]
zone = a
uri = qemu+tcp://10.0.0.1/system
cost = 1
[host.h2]
zone = b
uri = qemu+tcp://10.0.0.2/system
cost = 1
[failover]
fence_action = destroy
[notice]
aws = http://169.254.169.254
)");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  const std::string described = DescribeConfig(*config);
  EXPECT_THAT(described, HasSubstr("this host: h2\n"));
  EXPECT_THAT(described, HasSubstr("2 host(s): h1 (a, qemu+tcp://10.0.0.1/system), h2 (b, qemu+tcp://10.0.0.2/system)"));
  EXPECT_THAT(described, HasSubstr("membership: corosync, fence action destroy"));
  EXPECT_THAT(described, HasSubstr("metrics: 10.0.0.2:9177"));
  EXPECT_THAT(described, HasSubstr("notice sources: AWS http://169.254.169.254"));
}

}  // namespace
}  // namespace vs::daemon
