// [shadowd] membership: off unless the configuration asks for Corosync; anything else is refused with the fix.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "shadowd/daemon/config.h"

namespace vs::daemon {
namespace {

using ::testing::HasSubstr;

std::string Conf(const std::string& daemon_keys) {
  return "[shadowd]\nhost = h1\n" + daemon_keys + "[host.h1]\nzone = zone-a\nuri = qemu+tcp://10.0.0.2/system\n";
}

TEST(ConfigMembershipTest, OffByDefault) {
  auto config = ParseConfig(Conf(""));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->membership, Config::Membership::kNone);
}

TEST(ConfigMembershipTest, CorosyncAndNoneAreRead) {
  auto corosync = ParseConfig(Conf("membership = corosync\n"));
  ASSERT_TRUE(corosync.ok()) << corosync.status().ToString();
  EXPECT_EQ(corosync->membership, Config::Membership::kCorosync);
  auto none = ParseConfig(Conf("membership = none\n"));
  ASSERT_TRUE(none.ok()) << none.status().ToString();
  EXPECT_EQ(none->membership, Config::Membership::kNone);
}

TEST(ConfigMembershipTest, AnotherEngineIsRefusedNamingTheChoices) {
  auto config = ParseConfig(Conf("membership = etcd\n"));
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), Code::kInvalidArgument);
  EXPECT_THAT(config.status().message(), HasSubstr("membership = 'etcd' is not 'corosync' or 'none'"));
}

}  // namespace
}  // namespace vs::daemon
