// [policy.NAME] and [nova]: named policies parsed as <policy> elements are, Nova's settings with their defaults,
// and the password file's permissions.
#include <sys/stat.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "shadowd/daemon/config.h"
#include "tests/unit/common/temp_dir.h"

namespace vs::daemon {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kBase[] = R"(
[shadowd]
host = h1
[host.h1]
zone = zone-a
uri = qemu+tcp://10.77.0.11/system
)";

StatusOr<Config> Parse(const std::string& extra) { return ParseConfig(kBase + extra); }

TEST(ConfigPolicyTest, NamedPoliciesAreParsedAsPolicyElements) {
  auto config = Parse(R"(
[policy.gold]
vcpus = 2
memory = 1GiB
interval = 10s
critical = yes
priority = 500
shadows = 2
zone = require-other
cost-cap = 0.25
hook-failure = open
[policy.bronze-1.x_y]
enabled = yes
)");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  ASSERT_EQ(config->policies.size(), 2u);
  const policy::Policy& gold = config->policies.at("gold");
  EXPECT_EQ(gold.vcpus, policy::ResourceSpec::Absolute(2));
  EXPECT_EQ(gold.memory, policy::ResourceSpec::Absolute(1024 * 1024));
  EXPECT_EQ(gold.interval, std::chrono::seconds(10));
  EXPECT_TRUE(gold.critical);
  EXPECT_EQ(gold.priority, 500u);
  EXPECT_EQ(gold.shadows, 2u);
  EXPECT_EQ(gold.zone, policy::ZonePreference::kRequireOther);
  EXPECT_EQ(gold.cost_cap_per_hour, 0.25);
  EXPECT_EQ(gold.hook_failure, policy::HookFailureMode::kOpen);
  EXPECT_EQ(config->policies.at("bronze-1.x_y"), policy::Policy());  // the defaults
  EXPECT_FALSE(config->nova.has_value());
  const std::string described = DescribeConfig(*config);
  EXPECT_THAT(described, HasSubstr("policy gold: <policy "));
  EXPECT_THAT(described, HasSubstr("critical=\"yes\""));
  EXPECT_THAT(described, HasSubstr("nova: off\n"));
}

// The same text as a section and as an element gives the same Policy (one parser for both).
TEST(ConfigPolicyTest, AgreesWithTheElementParser) {
  const std::vector<std::pair<std::string, std::string>> attributes = {
      {"enabled", "no"}, {"vcpus", "25%"}, {"memory", "512MiB"}, {"warmup", "no"}, {"critical", "no"}};
  std::string section = "[policy.p]\n";
  policy::RawPolicy raw{.element_name = "policy"};
  for (const auto& [k, v] : attributes) {
    section += k + " = " + v + "\n";
    raw.attributes.emplace_back(k, v);
  }
  auto config = Parse(section);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  StatusOr<policy::Policy> element = policy::ParsePolicyElement(raw);
  ASSERT_TRUE(element.ok());
  EXPECT_EQ(config->policies.at("p"), *element);
}

struct BadCase {
  std::string text;
  std::vector<std::string> expected;  // substrings of the error
};

TEST(ConfigPolicyTest, ErrorsNameSectionKeyValueAndFix) {
  const BadCase cases[] = {
      {"[policy.gold]\nvcpus = 200%\n", {"[policy.gold]", "vcpus = '200%'", "1% to 100%", "e.g. 50%"}},
      {"[policy.gold]\nmemory = lots\n", {"[policy.gold]", "memory = 'lots'"}},
      {"[policy.gold]\ncritical = maybe\n", {"[policy.gold]", "critical = 'maybe'", "yes or no"}},
      {"[policy.gold]\nvcpu = 2\n", {"[policy.gold]", "unknown attribute 'vcpu'", "vcpus"}},
      {"[policy.default]\nenabled = yes\n", {"[policy.default]", "reserved"}},
      {"[policy.none]\nenabled = yes\n", {"[policy.none]", "reserved"}},
      {"[policy.]\nenabled = yes\n", {"[policy.]", "1 to 64 letters"}},
      {"[policy.a b]\nenabled = yes\n", {"[policy.a b]", "1 to 64 letters"}},
      {"[policies]\nenabled = yes\n", {"unknown section [policies]", "[policy.NAME]", "[nova]"}},
  };
  for (const BadCase& c : cases) {
    auto config = Parse(c.text);
    ASSERT_FALSE(config.ok()) << c.text;
    EXPECT_EQ(config.status().code(), Code::kInvalidArgument) << c.text;
    for (const std::string& part : c.expected) EXPECT_THAT(config.status().message(), HasSubstr(part)) << c.text;
  }
}

TEST(ConfigNovaTest, MinimalSectionTakesTheDefaults) {
  auto config = Parse(R"(
[nova]
auth_url = http://10.77.0.1:5000/v3/
username = virt-shadow
password = s3cret
project_name = service
)");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  ASSERT_TRUE(config->nova.has_value());
  const nova::NovaOptions& nova = *config->nova;
  EXPECT_EQ(nova.auth_url, "http://10.77.0.1:5000/v3");  // the trailing slash dropped
  EXPECT_EQ(nova.username, "virt-shadow");
  EXPECT_EQ(nova.password, "s3cret");
  EXPECT_EQ(nova.password_file, "");
  EXPECT_EQ(nova.project_name, "service");
  EXPECT_EQ(nova.user_domain_name, "Default");
  EXPECT_EQ(nova.project_domain_name, "Default");
  EXPECT_EQ(nova.region_name, "");
  EXPECT_EQ(nova.interface, "public");
  EXPECT_EQ(nova.timeout, std::chrono::seconds(10));
  EXPECT_EQ(nova.policy_key, "virt_shadow:policy");
  EXPECT_EQ(nova.image_property, "virt_shadow_policy");
  EXPECT_THAT(DescribeConfig(*config), HasSubstr("nova: http://10.77.0.1:5000/v3 as virt-shadow"));
  EXPECT_THAT(DescribeConfig(*config), Not(HasSubstr("s3cret")));
}

TEST(ConfigNovaTest, EverySetting) {
  auto config = Parse(R"(
[nova]
auth_url = http://10.77.0.1:5000/v3
username = vs
password_file = /etc/virt-shadow/nova.password
project_name = admin
user_domain_name = users
project_domain_name = projects
region_name = RegionTwo
interface = internal
timeout_seconds = 30
policy_key = acme:shadow
image_property = acme_shadow
)");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  const nova::NovaOptions& nova = *config->nova;
  EXPECT_EQ(nova.password, "");  // read by LoadConfig
  EXPECT_EQ(nova.password_file, "/etc/virt-shadow/nova.password");
  EXPECT_EQ(nova.user_domain_name, "users");
  EXPECT_EQ(nova.project_domain_name, "projects");
  EXPECT_EQ(nova.region_name, "RegionTwo");
  EXPECT_EQ(nova.interface, "internal");
  EXPECT_EQ(nova.timeout, std::chrono::seconds(30));
  EXPECT_EQ(nova.policy_key, "acme:shadow");
  EXPECT_EQ(nova.image_property, "acme_shadow");
}

TEST(ConfigNovaTest, ErrorsNameTheKeyAndTheFix) {
  const std::string base = "[nova]\nauth_url = http://10.77.0.1:5000/v3\nusername = vs\nproject_name = p\n";
  const BadCase cases[] = {
      {"[nova]\nusername = vs\npassword = x\nproject_name = p\n", {"[nova] needs auth_url", "e.g. auth_url = "}},
      {"[nova]\nauth_url = https://10.0.0.1:5000/v3\nusername = vs\npassword = x\nproject_name = p\n",
       {"[nova] auth_url = 'https://10.0.0.1:5000/v3'", "plain http://", "e.g. auth_url = http://10.77.0.1:5000/v3"}},
      {"[nova]\nauth_url = http://keystone:5000/v3\nusername = vs\npassword = x\nproject_name = p\n",
       {"[nova] auth_url", "IP address"}},
      {"[nova]\nauth_url = http://10.0.0.1:5000/v3\npassword = x\nproject_name = p\n", {"[nova] needs username"}},
      {"[nova]\nauth_url = http://10.0.0.1:5000/v3\nusername = vs\npassword = x\n", {"[nova] needs project_name"}},
      {base, {"[nova] needs a password", "password_file = "}},
      {base + "password = x\npassword_file = /etc/p\n", {"both password and password_file"}},
      {base + "password_file = relative\n", {"[nova] password_file = 'relative'", "absolute path"}},
      {base + "password = x\ninterface = private\n", {"[nova] interface = 'private'", "public, internal or admin"}},
      {base + "password = x\ntimeout_seconds = 0\n", {"[nova] timeout_seconds = '0'", "1..300"}},
      {base + "password = x\nregion = r\n", {"[nova] has an unknown key 'region'", "region_name"}},
      {base + "password = x\npolicy_key =\n", {"[nova] policy_key is empty"}},
  };
  for (const BadCase& c : cases) {
    auto config = Parse(c.text);
    ASSERT_FALSE(config.ok()) << c.text;
    EXPECT_EQ(config.status().code(), Code::kInvalidArgument) << c.text;
    for (const std::string& part : c.expected) EXPECT_THAT(config.status().message(), HasSubstr(part)) << c.text;
  }
}

void WriteFile(const std::string& path, const std::string& text, mode_t mode) {
  std::ofstream(path) << text;
  ASSERT_EQ(::chmod(path.c_str(), mode), 0);
}

TEST(ConfigNovaTest, LoadConfigReadsThePasswordFile) {
  test_support::TempDir dir;
  const std::string password = dir.Sub("nova.password");
  WriteFile(password, "pa ss\n", 0600);
  const std::string conf = dir.Sub("shadowd.conf");
  WriteFile(conf,
            std::string(kBase) + "[nova]\nauth_url = http://10.77.0.1:5000/v3\nusername = vs\nproject_name = p\n"
                                 "password_file = " + password + "\n",
            0644);
  auto config = LoadConfig(conf);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->nova->password, "pa ss");

  WriteFile(password, "pa ss\n", 0640);
  config = LoadConfig(conf);
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), Code::kFailedPrecondition);
  EXPECT_THAT(config.status().message(), HasSubstr("[nova] password_file = " + password + " has mode 0640"));
  EXPECT_THAT(config.status().message(), HasSubstr("chmod 600 " + password));
  EXPECT_THAT(config.status().message(), HasSubstr(conf));
}

TEST(ConfigNovaTest, ReadSecretFileRefusesWhatOthersCanReadAndEmptyOrMissingFiles) {
  test_support::TempDir dir;
  const std::string path = dir.Sub("secret");
  for (mode_t mode : {0604, 0644, 0660, 0606}) {
    WriteFile(path, "x\n", mode);
    StatusOr<std::string> secret = ReadSecretFile(path, "[nova] password_file");
    ASSERT_FALSE(secret.ok()) << std::oct << mode;
    EXPECT_EQ(secret.status().code(), Code::kFailedPrecondition);
  }
  WriteFile(path, "first\r\nsecond\n", 0400);
  StatusOr<std::string> secret = ReadSecretFile(path, "[nova] password_file");
  ASSERT_TRUE(secret.ok()) << secret.status().ToString();
  EXPECT_EQ(*secret, "first");
  WriteFile(path, "", 0600);
  EXPECT_EQ(ReadSecretFile(path, "k").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ReadSecretFile(dir.Sub("absent"), "k").status().code(), Code::kNotFound);
}

}  // namespace
}  // namespace vs::daemon
