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

// [failover] fence_action: pause unless destroy is asked for.
TEST(ConfigFailoverTest, FenceActionPausesByDefault) {
  auto config = ParseConfig(Conf(""));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->fence_action, Config::FenceAction::kPause);
  auto paused = ParseConfig(Conf("") + "[failover]\nfence_action = pause\n");
  ASSERT_TRUE(paused.ok()) << paused.status().ToString();
  EXPECT_EQ(paused->fence_action, Config::FenceAction::kPause);
}

TEST(ConfigFailoverTest, FenceDirDefaultsToTheHooksDefault) {
  auto config = ParseConfig(Conf(""));
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->fence_dir, "/var/lib/virt-shadow/fenced");
  auto moved = ParseConfig(Conf("fence_dir = /srv/fenced\n"));
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(moved->fence_dir, "/srv/fenced");
}

TEST(ConfigFailoverTest, FenceActionDestroyIsRead) {
  auto config = ParseConfig(Conf("") + "[failover]\nfence_action = destroy\n");
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->fence_action, Config::FenceAction::kDestroy);
}

TEST(ConfigFailoverTest, AnotherFenceActionOrKeyIsRefused) {
  auto config = ParseConfig(Conf("") + "[failover]\nfence_action = reboot\n");
  ASSERT_FALSE(config.ok());
  EXPECT_THAT(config.status().message(), HasSubstr("fence_action = 'reboot' must be 'pause'"));
  auto unknown = ParseConfig(Conf("") + "[failover]\nfence = pause\n");
  ASSERT_FALSE(unknown.ok());
  EXPECT_THAT(unknown.status().message(), HasSubstr("fence"));
}

}  // namespace
}  // namespace vs::daemon
