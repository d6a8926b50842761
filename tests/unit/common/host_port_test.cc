#include "common/host_port.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace vs {
namespace {

using ::testing::HasSubstr;

TEST(HostPort, SplitsEveryWrittenForm) {
  struct Case {
    std::string text;
    std::string host;
    bool bracketed;
    std::optional<uint16_t> port;
  };
  for (const Case& c : std::vector<Case>{{"10.0.0.2", "10.0.0.2", false, std::nullopt},
                                         {"10.0.0.2:7479", "10.0.0.2", false, 7479},
                                         {"h2:0", "h2", false, 0},
                                         {"[fd00::2]", "fd00::2", true, std::nullopt},
                                         {"[fd00::2]:65535", "fd00::2", true, 65535}}) {
    StatusOr<HostPort> split = SplitHostPort(c.text);
    ASSERT_TRUE(split.ok()) << c.text << ": " << split.status().ToString();
    EXPECT_EQ(split->host, c.host) << c.text;
    EXPECT_EQ(split->bracketed, c.bracketed) << c.text;
    EXPECT_EQ(split->port, c.port) << c.text;
  }
}

TEST(HostPort, RefusesWhatWouldBeMisreadAndSaysWhy) {
  for (const auto& [text, why] : std::vector<std::pair<std::string, std::string>>{
           {"", "no host"},
           {":80", "no host"},
           {"[]:80", "no host"},
           {"[fd00::2", "'[' without ']'"},
           {"[fd00::2]80", "text after ']'"},
           {"fd00::2", "must be written in brackets"},
           {"10.0.0.2:", "port '' is not a number"},
           {"10.0.0.2:65536", "port '65536' is not a number from 0 to 65535"},
           {"10.0.0.2:-1", "port '-1'"},
           {"10.0.0.2:80x", "port '80x'"}}) {
    StatusOr<HostPort> split = SplitHostPort(text);
    ASSERT_FALSE(split.ok()) << "'" << text << "' was accepted";
    EXPECT_EQ(split.status().code(), Code::kInvalidArgument);
    EXPECT_THAT(split.status().message(), HasSubstr(why)) << text;
  }
}

TEST(HostPort, JoinBracketsIpv6AndRoundTrips) {
  EXPECT_EQ(JoinHostPort("10.0.0.2", 7479), "10.0.0.2:7479");
  EXPECT_EQ(JoinHostPort("fd00::2", 10809), "[fd00::2]:10809");
  for (const std::string host : {"10.0.0.2", "fd00::2"}) {
    StatusOr<HostPort> split = SplitHostPort(JoinHostPort(host, 9177));
    ASSERT_TRUE(split.ok());
    EXPECT_EQ(split->host, host);
    EXPECT_EQ(split->port, 9177);
  }
}

}  // namespace
}  // namespace vs
