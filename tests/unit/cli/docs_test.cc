// The man page and the bash completion name every command, option and exit code that the parser
// knows (cli/command_line.h's tables), so that adding an option without documenting it fails here.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "cli/command_line.h"
#include "cli/errors.h"

namespace vs::cli {
namespace {

using ::testing::HasSubstr;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// troff spells a literal '-' as "\-".
std::string Troff(std::string_view text) {
  std::string escaped;
  for (char c : text) escaped += c == '-' ? std::string("\\-") : std::string(1, c);
  return escaped;
}

std::string Section(const std::string& page, const std::string& name) {
  const std::size_t start = page.find(".SH " + name + "\n");
  EXPECT_NE(start, std::string::npos) << name;
  if (start == std::string::npos) return "";
  return page.substr(start, page.find("\n.SH ", start + 1) - start);
}

// `name` set in bold as a word of its own: ".B name" or ".BR name ," (followed by punctuation).
bool NamesCommand(const std::string& text, std::string_view name) {
  const std::string word(name);
  return text.find(".B " + word + "\n") != std::string::npos || text.find(".BR " + word + " ") != std::string::npos;
}

const std::string kManPage = VS_CLI_SOURCE_DIR "/virt-shadow.1";
const std::string kCompletion = VS_CLI_SOURCE_DIR "/virt-shadow.bash-completion";

TEST(CliManPageTest, DocumentsEveryCommandOptionAndExitCode) {
  const std::string page = ReadFile(kManPage);
  const std::string commands = Section(page, "COMMANDS");
  const std::string synopsis = Section(page, "SYNOPSIS");
  for (const CommandSpec& command : Commands()) {
    const std::string name(command.name);
    EXPECT_THAT(synopsis, HasSubstr(".B " + name + "\n")) << name;
    const std::string operand(OperandName(command.operand));
    EXPECT_THAT(commands, HasSubstr(operand.empty() ? ".B " + name + "\n" : ".BI " + name + " \" " + operand + "\""))
        << name;
    for (const OptionSpec& option : command.options) {
      EXPECT_THAT(commands, HasSubstr(Troff("--" + std::string(option.name)))) << option.name;
    }
  }
  const std::string options = Section(page, "OPTIONS");
  for (const OptionSpec& option : GlobalOptionSpecs()) {
    EXPECT_THAT(options, HasSubstr(Troff("--" + std::string(option.name)))) << option.name;
    if (option.short_name != 0) {
      EXPECT_THAT(options, HasSubstr(Troff(std::string("-") + option.short_name + " ")));
    }
  }
  const std::string exit_status = Section(page, "EXIT STATUS");
  for (const ExitCodeDoc& doc : ExitCodeDocs()) {
    EXPECT_THAT(exit_status, HasSubstr(".B " + std::to_string(static_cast<int>(doc.code)) + "\n"));
  }
  // The switchover sequence and its fallback, and which commands wait longer without --timeout.
  const std::string switchover = Section(page, "SWITCHOVER");
  EXPECT_THAT(switchover, HasSubstr(Troff("--copy-storage-inc")));
  EXPECT_THAT(switchover, HasSubstr(Troff("--copy-storage-all")));
  EXPECT_THAT(switchover, HasSubstr(std::to_string(kSwitchoverTimeout.count()) + " seconds"));
  for (const CommandSpec& command : Commands()) {
    if (command.default_timeout != kDefaultTimeout) {
      EXPECT_TRUE(NamesCommand(switchover, command.name)) << command.name;
      EXPECT_TRUE(NamesCommand(options, command.name)) << command.name;  // under --timeout
    }
  }
  const std::string environment = Section(page, "ENVIRONMENT");
  EXPECT_THAT(environment, HasSubstr("LIBVIRT_DEFAULT_URI"));
  EXPECT_THAT(environment, HasSubstr("VS_SHADOWD_SOCKET"));
}

TEST(CliCompletionTest, KnowsEveryCommandAndOption) {
  const std::string script = ReadFile(kCompletion);
  const std::string marker = "local commands=\"";
  const std::size_t start = script.find(marker);
  ASSERT_NE(start, std::string::npos);
  std::istringstream command_words(
      script.substr(start + marker.size(), script.find('"', start + marker.size()) - start - marker.size()));
  std::vector<std::string> completed{std::istream_iterator<std::string>(command_words), {}};
  std::vector<std::string> known;
  for (const CommandSpec& command : Commands()) known.emplace_back(command.name);
  EXPECT_EQ(completed, known);
  for (const CommandSpec& command : Commands()) {
    for (const OptionSpec& option : command.options) {
      EXPECT_THAT(script, HasSubstr("--" + std::string(option.name))) << option.name;
    }
  }
  for (const OptionSpec& option : GlobalOptionSpecs()) {
    EXPECT_THAT(script, HasSubstr("--" + std::string(option.name))) << option.name;
  }
  EXPECT_THAT(script, HasSubstr("complete -F _virt_shadow virt-shadow"));
}

}  // namespace
}  // namespace vs::cli
