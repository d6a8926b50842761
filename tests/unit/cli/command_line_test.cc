// The command line: every command and option into the typed Invocation, defaults from the
// environment, and every kind of bad input refused with a message naming what is wrong.
#include "cli/command_line.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace vs::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

StatusOr<Invocation> Parse(std::vector<std::string> args, Environment env = {}) {
  return ParseCommandLine(args, env);
}

// The command of a successful parse, or a test failure.
template <typename T>
T CommandOf(std::vector<std::string> args) {
  StatusOr<Invocation> invocation = Parse(std::move(args));
  EXPECT_TRUE(invocation.ok()) << invocation.status().ToString();
  if (!invocation.ok()) return T{};
  EXPECT_TRUE(std::holds_alternative<T>(invocation->command));
  return std::holds_alternative<T>(invocation->command) ? std::get<T>(invocation->command) : T{};
}

std::string ErrorOf(std::vector<std::string> args) {
  StatusOr<Invocation> invocation = Parse(std::move(args));
  EXPECT_FALSE(invocation.ok());
  if (invocation.ok()) return "";
  EXPECT_EQ(invocation.status().code(), Code::kInvalidArgument);
  return invocation.status().message();
}

TEST(CliCommandLineTest, EveryCommandParsesToItsStruct) {
  EXPECT_EQ(CommandOf<ListCommand>({"list"}), ListCommand{});
  EXPECT_EQ(CommandOf<StatusCommand>({"status", "web-1"}), StatusCommand{"web-1"});
  EXPECT_EQ(CommandOf<HostsCommand>({"hosts"}), HostsCommand{});
  EXPECT_EQ(CommandOf<ExplainCommand>({"explain", "web-1"}), ExplainCommand{"web-1"});
  EXPECT_EQ(CommandOf<UntagCommand>({"untag", "web-1"}), UntagCommand{"web-1"});
  EXPECT_EQ(CommandOf<TagCommand>({"tag", "web-1"}), (TagCommand{.domain = "web-1"}));
  EXPECT_EQ(CommandOf<SyncCommand>({"sync", "web-1"}), SyncCommand{"web-1"});
  EXPECT_EQ(CommandOf<VerifyCommand>({"verify", "web-1"}), VerifyCommand{"web-1"});
  EXPECT_EQ(CommandOf<SwitchoverCommand>({"switchover", "web-1"}), (SwitchoverCommand{.domain = "web-1"}));
  EXPECT_EQ(CommandOf<DrainCommand>({"drain", "h1"}), (DrainCommand{.host = "h1"}));
  EXPECT_EQ(CommandOf<UndrainCommand>({"undrain", "h1"}), UndrainCommand{"h1"});
  EXPECT_EQ(CommandOf<FailbackCommand>({"failback", "web-1"}), FailbackCommand{"web-1"});
  EXPECT_EQ(CommandOf<SwitchoversCommand>({"switchovers"}), SwitchoversCommand{});
}

TEST(CliCommandLineTest, SwitchoverAndDrainTakeADeadlineBeforeOrAfterTheCommand) {
  EXPECT_EQ(CommandOf<SwitchoverCommand>({"switchover", "db-1", "--deadline", "60"}),
            (SwitchoverCommand{.domain = "db-1", .deadline_seconds = 60}));
  // --deadline belongs to two commands; before the command it is settled once the command is known.
  EXPECT_EQ(CommandOf<SwitchoverCommand>({"--deadline=3600", "switchover", "db-1"}),
            (SwitchoverCommand{.domain = "db-1", .deadline_seconds = 3600}));
  EXPECT_EQ(CommandOf<DrainCommand>({"--deadline", "1", "drain", "h1", "--reason", "kernel upgrade, ticket #42"}),
            (DrainCommand{.host = "h1", .deadline_seconds = 1, .reason = "kernel upgrade, ticket #42"}));
  EXPECT_EQ(CommandOf<DrainCommand>({"drain", "--reason=spot reclaim", "h1"}),
            (DrainCommand{.host = "h1", .deadline_seconds = 0, .reason = "spot reclaim"}));
}

TEST(CliCommandLineTest, SwitchoverTakesAPrecopyHoldInWholeSeconds) {
  EXPECT_EQ(CommandOf<SwitchoverCommand>({"switchover", "db-1", "--precopy-hold", "0"}),
            (SwitchoverCommand{.domain = "db-1", .precopy_hold_seconds = 0u}));
  EXPECT_EQ(CommandOf<SwitchoverCommand>({"switchover", "db-1", "--precopy-hold=600", "--deadline", "60"}),
            (SwitchoverCommand{.domain = "db-1", .deadline_seconds = 60, .precopy_hold_seconds = 600u}));
  EXPECT_FALSE(CommandOf<SwitchoverCommand>({"switchover", "db-1"}).precopy_hold_seconds.has_value());
  for (const char* bad : {"601", "-1", "2.5", "x"}) {
    EXPECT_THAT(ErrorOf({"switchover", "db-1", "--precopy-hold", bad}), HasSubstr("precopy-hold")) << bad;
  }
  EXPECT_THAT(ErrorOf({"drain", "h1", "--precopy-hold", "0"}), HasSubstr("precopy-hold"));
}

TEST(CliCommandLineTest, LongCommandsWait900SecondsUnlessTimeoutIsGiven) {
  for (const char* command : {"switchover", "drain", "failback"}) {
    StatusOr<Invocation> waiting = Parse({command, "x"});
    ASSERT_TRUE(waiting.ok()) << waiting.status().ToString();
    EXPECT_EQ(waiting->global.timeout, std::chrono::seconds(900)) << command;
    StatusOr<Invocation> given = Parse({"--timeout", "30", command, "x"});
    ASSERT_TRUE(given.ok()) << given.status().ToString();
    EXPECT_EQ(given->global.timeout, std::chrono::seconds(30)) << command;
  }
  EXPECT_EQ(Parse({"undrain", "h1"})->global.timeout, std::chrono::seconds(10));
  EXPECT_EQ(Parse({"switchovers"})->global.timeout, std::chrono::seconds(10));
  EXPECT_EQ(Parse({"sync", "web"})->global.timeout, std::chrono::seconds(10));
}

TEST(CliCommandLineTest, DeadlineMustBeWholeSecondsFromOneTo3600) {
  for (const char* command : {"switchover", "drain"}) {
    for (const char* bad : {"0", "3601", "abc", "-5", "1.5", "60s", "99999999999999999999999", " 60"}) {
      std::string message = ErrorOf({command, "x", "--deadline", bad});
      EXPECT_THAT(message, StartsWith("invalid value for --deadline: '" + std::string(bad) +
                                      "' is not a whole number of seconds from 1 to 3600"))
          << command << " " << bad;
      EXPECT_THAT(message, HasSubstr("--deadline 120")) << bad;
    }
    EXPECT_THAT(ErrorOf({command, "x", "--deadline"}), StartsWith("option --deadline needs a value"));
    EXPECT_THAT(ErrorOf({command, "x", "--deadline", "5", "--deadline=6"}),
                StartsWith("option --deadline is given twice"));
  }
}

TEST(CliCommandLineTest, ReasonMustBeOneBoundedLine) {
  std::string message = ErrorOf({"drain", "h1", "--reason", "two\nlines"});
  EXPECT_THAT(message, StartsWith("invalid value for --reason: it contains the control character 10"));
  EXPECT_THAT(message, HasSubstr("one line"));
  EXPECT_THAT(ErrorOf({"drain", "h1", "--reason", "esc\x1b[31m"}), HasSubstr("control character 27"));
  EXPECT_EQ(CommandOf<DrainCommand>({"drain", "h1", "--reason", std::string(256, 'r')}).reason, std::string(256, 'r'));
  message = ErrorOf({"drain", "h1", "--reason", std::string(257, 'r')});
  EXPECT_THAT(message, StartsWith("invalid value for --reason: it is 257 bytes long; give at most 256"));
  EXPECT_LT(message.size(), 200u);  // the value is not echoed
  EXPECT_THAT(ErrorOf({"drain", "h1", "--reason="}), StartsWith("option --reason needs a value"));
}

TEST(CliCommandLineTest, HostCommandsNeedExactlyOneHost) {
  for (const char* command : {"drain", "undrain"}) {
    std::string message = ErrorOf({command});
    EXPECT_THAT(message, StartsWith("missing HOST for '" + std::string(command) + "'")) << command;
    EXPECT_THAT(message, HasSubstr("the host this shadowd runs on"));
    EXPECT_THAT(message, HasSubstr("'virt-shadow " + std::string(command) + " --help'"));
    EXPECT_THAT(ErrorOf({command, ""}), StartsWith("missing HOST")) << command;
    EXPECT_THAT(ErrorOf({command, "h1", "h2"}),
                StartsWith("unexpected argument 'h2' for '" + std::string(command) + "': it takes one HOST"));
  }
  EXPECT_THAT(ErrorOf({"drain", "--deadline", "60"}), StartsWith("missing HOST for 'drain'"));
}

TEST(CliCommandLineTest, PromoteTakesForceOnlyWithAReason) {
  EXPECT_EQ(CommandOf<PromoteCommand>({"promote", "web"}), (PromoteCommand{.domain = "web"}));
  EXPECT_EQ(CommandOf<PromoteCommand>({"promote", "web", "--force", "--reason", "h1 burned"}),
            (PromoteCommand{.domain = "web", .force = true, .reason = "h1 burned"}));
  EXPECT_EQ(CommandOf<PromoteCommand>({"--reason=gone", "promote", "web"}),
            (PromoteCommand{.domain = "web", .reason = "gone"}));
  EXPECT_THAT(ErrorOf({"promote", "web", "--force"}), StartsWith("--force needs --reason TEXT for 'promote'"));
  EXPECT_THAT(ErrorOf({"promote"}), StartsWith("missing DOMAIN for 'promote'"));
  EXPECT_THAT(ErrorOf({"promote", "web", "--deadline", "5"}), StartsWith("option --deadline does not apply"));
}

TEST(CliCommandLineTest, SwitchoverOptionsBelongToTheirCommandsOnly) {
  std::string message = ErrorOf({"undrain", "h1", "--deadline", "5"});
  EXPECT_THAT(message, StartsWith("option --deadline does not apply to 'undrain'"));
  EXPECT_THAT(message, HasSubstr("it is an option of 'switchover', 'drain'"));
  EXPECT_THAT(message, HasSubstr("'virt-shadow undrain --help'"));
  EXPECT_THAT(ErrorOf({"switchover", "web", "--reason", "x"}),
              StartsWith("option --reason does not apply to 'switchover': it is an option of 'drain', 'promote';"));
  EXPECT_THAT(ErrorOf({"--deadline", "5", "failback", "web"}),
              StartsWith("option --deadline does not apply to 'failback'"));
  EXPECT_THAT(ErrorOf({"switchovers", "--deadline", "5"}),
              StartsWith("option --deadline does not apply to 'switchovers'"));
  EXPECT_THAT(ErrorOf({"drain", "h1", "--vcpus", "2"}), StartsWith("option --vcpus does not apply to 'drain'"));
  EXPECT_THAT(ErrorOf({"tag", "web", "--deadline", "5"}), StartsWith("option --deadline does not apply to 'tag'"));
}

TEST(CliCommandLineTest, AnOptionSharedByCommandsTakesTheSameValueInEach) {
  for (const CommandSpec& a : Commands()) {
    for (const CommandSpec& b : Commands()) {
      for (const OptionSpec& x : a.options) {
        for (const OptionSpec& y : b.options) {
          if (x.name == y.name) {
            EXPECT_EQ(x.value_name, y.value_name) << x.name << " of " << a.name << "/" << b.name;
          }
        }
      }
      for (const OptionSpec& global : GlobalOptionSpecs()) {
        for (const OptionSpec& own : a.options) EXPECT_NE(own.name, global.name) << a.name;
      }
    }
  }
}

TEST(CliCommandLineTest, TagTakesEveryPolicyOptionInOrder) {
  TagCommand tag = CommandOf<TagCommand>(
      {"tag", "db-1", "--vcpus", "4", "--memory=16GiB", "--interval", "1s", "--warmup", "no", "--priority", "900",
       "--critical", "yes", "--shadows", "2", "--zone", "require-other", "--cost-cap", "0.25", "--hook-failure",
       "closed", "--live", "--config"});
  EXPECT_EQ(tag.domain, "db-1");
  EXPECT_EQ(tag.attributes, (PolicyAttributes{{"vcpus", "4"},
                                              {"memory", "16GiB"},
                                              {"interval", "1s"},
                                              {"warmup", "no"},
                                              {"priority", "900"},
                                              {"critical", "yes"},
                                              {"shadows", "2"},
                                              {"zone", "require-other"},
                                              {"cost-cap", "0.25"},
                                              {"hook-failure", "closed"}}));
  EXPECT_TRUE(tag.live);
  EXPECT_TRUE(tag.config);
}

TEST(CliCommandLineTest, TagAcceptsPercentagesAndEachFlagAlone) {
  TagCommand tag = CommandOf<TagCommand>({"tag", "web", "--vcpus", "50%", "--memory", "25%", "--live"});
  EXPECT_EQ(tag.attributes, (PolicyAttributes{{"vcpus", "50%"}, {"memory", "25%"}}));
  EXPECT_TRUE(tag.live);
  EXPECT_FALSE(tag.config);
  tag = CommandOf<TagCommand>({"tag", "--config", "web"});
  EXPECT_FALSE(tag.live);
  EXPECT_TRUE(tag.config);
  EXPECT_TRUE(tag.attributes.empty());
}

TEST(CliCommandLineTest, DefaultsComeFromTheEnvironmentThenTheBuiltIns) {
  StatusOr<Invocation> plain = Parse({"list"});
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->global, (GlobalOptions{.libvirt_uri = "qemu:///system",
                                          .shadowd_socket = "/run/virt-shadow/shadowd.sock",
                                          .json = false,
                                          .timeout = std::chrono::seconds(10)}));

  Environment env{.libvirt_default_uri = "qemu+tcp://h1/system", .shadowd_socket = "/tmp/s.sock"};
  StatusOr<Invocation> from_env = Parse({"list"}, env);
  ASSERT_TRUE(from_env.ok());
  EXPECT_EQ(from_env->global.libvirt_uri, "qemu+tcp://h1/system");
  EXPECT_EQ(from_env->global.shadowd_socket, "/tmp/s.sock");

  StatusOr<Invocation> empty_env = Parse({"list"}, Environment{.libvirt_default_uri = "", .shadowd_socket = ""});
  ASSERT_TRUE(empty_env.ok());
  EXPECT_EQ(empty_env->global.libvirt_uri, "qemu:///system");
  EXPECT_EQ(empty_env->global.shadowd_socket, "/run/virt-shadow/shadowd.sock");

  StatusOr<Invocation> explicit_options = Parse({"-c", "test:///default", "--socket", "/x.sock", "list"}, env);
  ASSERT_TRUE(explicit_options.ok());
  EXPECT_EQ(explicit_options->global.libvirt_uri, "test:///default");
  EXPECT_EQ(explicit_options->global.shadowd_socket, "/x.sock");
}

TEST(CliCommandLineTest, GlobalOptionsGoBeforeOrAfterTheCommandInEitherSpelling) {
  const GlobalOptions expected{
      .libvirt_uri = "test:///default", .shadowd_socket = "/s", .json = true, .timeout = std::chrono::seconds(3)};
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"--connect", "test:///default", "--socket", "/s", "--json", "--timeout", "3", "status", "web"},
           {"status", "web", "-c", "test:///default", "--socket=/s", "--json", "--timeout=3"},
           {"--json", "status", "--connect=test:///default", "web", "--timeout", "3", "--socket", "/s"}}) {
    StatusOr<Invocation> invocation = Parse(args);
    ASSERT_TRUE(invocation.ok()) << invocation.status().ToString();
    EXPECT_EQ(invocation->global, expected);
    EXPECT_EQ(std::get<StatusCommand>(invocation->command).domain, "web");
  }
}

TEST(CliCommandLineTest, TimeoutMustBeWholeSecondsFromOneTo3600) {
  EXPECT_EQ(Parse({"--timeout", "1", "list"})->global.timeout, std::chrono::seconds(1));
  EXPECT_EQ(Parse({"--timeout", "3600", "list"})->global.timeout, std::chrono::seconds(3600));
  for (const char* bad : {"0", "3601", "abc", "-5", "1.5", "10s", "99999999999999999999999"}) {
    std::string message = ErrorOf({"--timeout", bad, "list"});
    EXPECT_THAT(message, StartsWith("invalid value for --timeout: '" + std::string(bad) + "'")) << bad;
    EXPECT_THAT(message, HasSubstr("--timeout 10")) << bad;
  }
}

TEST(CliCommandLineTest, DoubleDashEndsTheOptions) {
  EXPECT_EQ(CommandOf<StatusCommand>({"status", "--", "-odd-name"}), StatusCommand{"-odd-name"});
  EXPECT_EQ(CommandOf<StatusCommand>({"status", "-"}), StatusCommand{"-"});
}

TEST(CliCommandLineTest, HelpAndVersionWinOverMissingArguments) {
  EXPECT_EQ(CommandOf<HelpCommand>({"--help"}), HelpCommand{});
  EXPECT_EQ(CommandOf<HelpCommand>({"tag", "--help"}), HelpCommand{"tag"});
  EXPECT_EQ(CommandOf<HelpCommand>({"--json", "status", "--help", "--bogus"}), HelpCommand{"status"});
  EXPECT_EQ(CommandOf<HelpCommand>({"frobnicate", "--help"}), HelpCommand{});
  EXPECT_EQ(CommandOf<VersionCommand>({"--version"}), VersionCommand{});
  EXPECT_EQ(CommandOf<VersionCommand>({"list", "--version"}), VersionCommand{});
}

TEST(CliCommandLineTest, MissingOrUnknownCommandIsNamed) {
  EXPECT_THAT(ErrorOf({}), StartsWith("no command given"));
  EXPECT_THAT(ErrorOf({"--json"}), StartsWith("no command given"));
  std::string message = ErrorOf({"lsit"});
  EXPECT_THAT(message, StartsWith("unknown command 'lsit'"));
  EXPECT_THAT(message, HasSubstr("list, status, hosts, explain, tag, untag"));
  EXPECT_THAT(message, HasSubstr("virt-shadow --help"));
}

TEST(CliCommandLineTest, EveryDomainCommandNeedsExactlyOneDomain) {
  for (const char* command : {"status", "explain", "tag", "untag", "sync", "verify", "switchover", "failback"}) {
    EXPECT_THAT(ErrorOf({command}), StartsWith("missing DOMAIN for '" + std::string(command) + "'")) << command;
    EXPECT_THAT(ErrorOf({command, ""}), StartsWith("missing DOMAIN")) << command;
    EXPECT_THAT(ErrorOf({command, "a", "b"}), StartsWith("unexpected argument 'b' for '" + std::string(command) + "'"));
  }
  for (const char* command : {"list", "hosts", "switchovers"}) {
    EXPECT_THAT(ErrorOf({command, "web"}), StartsWith("unexpected argument 'web' for '" + std::string(command) +
                                                      "': it takes no argument"));
  }
}

TEST(CliCommandLineTest, BadOptionsAreNamed) {
  EXPECT_THAT(ErrorOf({"list", "--jsn"}), StartsWith("unknown option '--jsn'"));
  EXPECT_THAT(ErrorOf({"list", "--jsn=1"}), StartsWith("unknown option '--jsn'"));
  EXPECT_THAT(ErrorOf({"-x", "list"}), StartsWith("unknown option '-x'"));
  EXPECT_THAT(ErrorOf({"tag", "web", "--vpcus", "2"}), StartsWith("unknown option '--vpcus'"));
  EXPECT_THAT(ErrorOf({"list", "--json=yes"}), StartsWith("option --json takes no value"));
  EXPECT_THAT(ErrorOf({"tag", "web", "--live=no"}), StartsWith("option --live takes no value"));
  EXPECT_THAT(ErrorOf({"list", "--socket"}), StartsWith("option --socket needs a value"));
  EXPECT_THAT(ErrorOf({"list", "--socket="}), StartsWith("option --socket needs a value"));
  EXPECT_THAT(ErrorOf({"tag", "web", "--vcpus"}), StartsWith("option --vcpus needs a value"));
  EXPECT_THAT(ErrorOf({"-c"}), StartsWith("option --connect needs a value"));
  EXPECT_THAT(ErrorOf({"tag", "web", "--vcpus", "2", "--vcpus=3"}), StartsWith("option --vcpus is given twice"));
  EXPECT_THAT(ErrorOf({"--json", "list", "--json"}), StartsWith("option --json is given twice"));
}

TEST(CliCommandLineTest, TagOptionsBelongToTagOnly) {
  for (const char* command : {"list", "hosts"}) {
    std::string message = ErrorOf({command, "--vcpus", "2"});
    EXPECT_THAT(message, StartsWith("option --vcpus does not apply to '" + std::string(command) + "'"));
    EXPECT_THAT(message, HasSubstr("option of 'tag'"));
  }
  EXPECT_THAT(ErrorOf({"status", "web", "--live"}), StartsWith("option --live does not apply to 'status'"));
  EXPECT_THAT(ErrorOf({"untag", "web", "--config"}), StartsWith("option --config does not apply to 'untag'"));
}

struct BadValueCase {
  const char* option;
  const char* value;
};

TEST(CliCommandLineTest, BadPolicyValuesGetTheParsersErrorNamingTheOption) {
  for (const BadValueCase& c : std::vector<BadValueCase>{{"vcpus", "0"},
                                                         {"vcpus", "abc"},
                                                         {"vcpus", "101%"},
                                                         {"vcpus", "-1"},
                                                         {"memory", "12XB"},
                                                         {"memory", "1MiB"},
                                                         {"interval", "0s"},
                                                         {"interval", "2h"},
                                                         {"warmup", "maybe"},
                                                         {"priority", "1001"},
                                                         {"critical", "y"},
                                                         {"shadows", "4"},
                                                         {"zone", "other"},
                                                         {"cost-cap", "-1"},
                                                         {"cost-cap", "inf"},
                                                         {"hook-failure", "ajar"}}) {
    const std::string option = c.option;
    std::string message = ErrorOf({"tag", "web", "--" + option, c.value});
    EXPECT_THAT(message, StartsWith("invalid value for --" + option + ": policy attribute '" + option + "': '" +
                                    c.value + "'"))
        << option << "=" << c.value;
    EXPECT_THAT(message, HasSubstr("; use")) << option << "=" << c.value;
  }
}

TEST(CliCommandLineTest, HostileArgumentsAreRefusedBriefly) {
  const std::string huge(100'000, '9');
  std::string message = ErrorOf({"tag", "web", "--vcpus", huge});
  EXPECT_THAT(message, StartsWith("invalid value for --vcpus"));
  EXPECT_LT(message.size(), 500u);  // the parser quotes only a prefix of the value
  EXPECT_EQ(CommandOf<StatusCommand>({"status", huge}).domain, huge);  // names are shadowd's to judge
  EXPECT_THAT(ErrorOf({"tag", "web", "--zone", std::string("any\0x", 5)}), StartsWith("invalid value for --zone"));
}

TEST(CliCommandLineTest, HelpListsEveryCommandOptionAndExitCode) {
  const std::string general = HelpText(std::nullopt);
  for (const CommandSpec& command : Commands()) EXPECT_THAT(general, HasSubstr("  " + std::string(command.name)));
  for (const OptionSpec& option : GlobalOptionSpecs()) EXPECT_THAT(general, HasSubstr("--" + std::string(option.name)));
  EXPECT_THAT(general, HasSubstr("-c, --connect URI"));
  for (const char* code : {"  0  ", "  1  ", "  2  ", "  3  ", "  4  "}) EXPECT_THAT(general, HasSubstr(code));
  EXPECT_THAT(general, Not(HasSubstr("--vcpus")));

  const std::string tag = HelpText("tag");
  EXPECT_THAT(tag, StartsWith("Usage: virt-shadow tag DOMAIN [OPTIONS]"));
  for (const char* option : {"--vcpus N|P%", "--memory SIZE|P%", "--interval D", "--warmup yes|no", "--priority N",
                             "--critical yes|no", "--shadows N", "--zone prefer-other|require-other|any",
                             "--cost-cap X", "--hook-failure open|closed", "--live", "--config", "--connect"}) {
    EXPECT_THAT(tag, HasSubstr(option));
  }
  EXPECT_THAT(tag, HasSubstr("Exit status:"));
  const std::string list = HelpText("list");
  EXPECT_THAT(list, StartsWith("Usage: virt-shadow list\n"));
  EXPECT_THAT(list, Not(HasSubstr("--vcpus")));
  EXPECT_EQ(HelpText("nonsense"), general);
}

TEST(CliCommandLineTest, HelpShowsEachCommandsOperandAndTheLongerWait) {
  const std::string general = HelpText(std::nullopt);
  for (const char* synopsis : {"  switchover DOMAIN  ", "  drain HOST  ", "  undrain HOST  ", "  failback DOMAIN  ",
                               "  switchovers  ", "  status DOMAIN  ", "  list  "}) {
    EXPECT_THAT(general, HasSubstr(synopsis));
  }
  const std::string drain = HelpText("drain");
  EXPECT_THAT(drain, StartsWith("Usage: virt-shadow drain HOST [OPTIONS]\n"));
  EXPECT_THAT(drain, HasSubstr("--deadline SECONDS"));
  EXPECT_THAT(drain, HasSubstr("--reason TEXT"));
  EXPECT_THAT(HelpText("undrain"), StartsWith("Usage: virt-shadow undrain HOST\n"));
  EXPECT_THAT(HelpText("switchover"), StartsWith("Usage: virt-shadow switchover DOMAIN [OPTIONS]\n"));
  EXPECT_THAT(HelpText("switchover"), Not(HasSubstr("--reason")));
  EXPECT_THAT(HelpText("switchovers"), StartsWith("Usage: virt-shadow switchovers\n"));
  std::string timeout_help;
  for (const OptionSpec& option : GlobalOptionSpecs()) {
    if (option.name == "timeout") timeout_help = option.help;
  }
  for (const CommandSpec& command : Commands()) {
    if (command.default_timeout == kDefaultTimeout) continue;
    EXPECT_THAT(std::string(command.description), HasSubstr("Waits up to 900 s")) << command.name;
    EXPECT_THAT(timeout_help, HasSubstr(std::string(command.name))) << command.name;
  }
}

}  // namespace
}  // namespace vs::cli
