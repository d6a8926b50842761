// The virt-shadow command line: argv -> a typed Invocation (one struct per command), and the help
// texts, both driven by one table of commands and options so that parsing and --help cannot disagree.
//
// Options may appear before or after the command, as "--name value", "--name=value" or "-c value";
// "--" ends the options. tag's policy options are validated here, each on its own, by the project's
// policy parser (policy::ParsePolicyElement), so a bad value is refused before any I/O.
//
// Ownership: plain values. Thread-safety: pure functions, no process state (the environment comes in
// as a value). Failure modes: InvalidArgument whose message reads "<what is wrong>: <why>; <what to do>"
// and names the option, command or operand at fault; the caller prefixes "virt-shadow: ".
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/status.h"

namespace vs::cli {

inline constexpr std::string_view kDefaultLibvirtUri = "qemu:///system";
inline constexpr std::string_view kDefaultShadowdSocket = "/run/virt-shadow/shadowd.sock";
inline constexpr std::chrono::seconds kDefaultTimeout{10};
inline constexpr std::chrono::seconds kMaxTimeout{3600};
// What switchover, drain and failback wait without --timeout: a live migration of a large VM takes minutes.
inline constexpr std::chrono::seconds kSwitchoverTimeout{900};
// --deadline's range; 0 is not given on the wire (it means shadowd's configured drain deadline).
inline constexpr std::uint32_t kMaxDeadlineSeconds = 3600;
inline constexpr std::uint32_t kMaxPrecopyHoldSeconds = 600;

// The process environment variables the CLI reads; unset and empty are the same.
struct Environment {
  std::optional<std::string> libvirt_default_uri;  // LIBVIRT_DEFAULT_URI
  std::optional<std::string> shadowd_socket;       // VS_SHADOWD_SOCKET
};

struct GlobalOptions {
  std::string libvirt_uri;     // --connect, for tag and untag
  std::string shadowd_socket;  // --socket
  bool json = false;
  std::chrono::seconds timeout = kDefaultTimeout;  // per shadowd call
  bool operator==(const GlobalOptions&) const = default;
};

// Policy attributes as given on the command line, in order; each value already validated on its own.
using PolicyAttributes = std::vector<std::pair<std::string, std::string>>;

struct ListCommand {
  bool operator==(const ListCommand&) const = default;
};
struct StatusCommand {
  std::string domain;
  bool operator==(const StatusCommand&) const = default;
};
struct HostsCommand {
  bool operator==(const HostsCommand&) const = default;
};
struct ExplainCommand {
  std::string domain;
  bool operator==(const ExplainCommand&) const = default;
};
struct TagCommand {
  std::string domain;
  PolicyAttributes attributes;  // only those given; the rest keep the domain's or the defaults
  bool live = false;            // --live
  bool config = false;          // --config
  bool operator==(const TagCommand&) const = default;
};
struct UntagCommand {
  std::string domain;
  bool operator==(const UntagCommand&) const = default;
};
struct SyncCommand {
  std::string domain;
  bool operator==(const SyncCommand&) const = default;
};
struct VerifyCommand {
  std::string domain;
  bool operator==(const VerifyCommand&) const = default;
};
struct SwitchoverCommand {
  std::string domain;
  std::uint32_t deadline_seconds = 0;  // --deadline; 0: shadowd's configured drain deadline
  std::optional<std::uint32_t> precopy_hold_seconds;  // --precopy-hold; unset: the plan's
  bool operator==(const SwitchoverCommand&) const = default;
};
struct DrainCommand {
  std::string host;
  std::uint32_t deadline_seconds = 0;  // --deadline; 0: shadowd's configured drain deadline
  std::string reason;                  // --reason; empty: shadowd's default
  bool operator==(const DrainCommand&) const = default;
};
struct UndrainCommand {
  std::string host;
  bool operator==(const UndrainCommand&) const = default;
};
struct FailbackCommand {
  std::string domain;
  bool operator==(const FailbackCommand&) const = default;
};
struct PromoteCommand {
  std::string domain;
  bool force = false;   // --force: even though its host is a member of the quorate membership
  std::string reason;   // --reason; required with --force
  bool operator==(const PromoteCommand&) const = default;
};
struct SwitchoversCommand {
  bool operator==(const SwitchoversCommand&) const = default;
};
struct HelpCommand {
  std::optional<std::string> command;  // help for this command; nullopt: the general help
  bool operator==(const HelpCommand&) const = default;
};
struct VersionCommand {
  bool operator==(const VersionCommand&) const = default;
};

using Command = std::variant<ListCommand, StatusCommand, HostsCommand, ExplainCommand, TagCommand, UntagCommand,
                             SyncCommand, VerifyCommand, SwitchoverCommand, DrainCommand, UndrainCommand,
                             FailbackCommand, PromoteCommand, SwitchoversCommand, HelpCommand, VersionCommand>;

struct Invocation {
  GlobalOptions global;
  Command command;
};

// `args` excludes argv[0]. --help and --version win over everything after them.
StatusOr<Invocation> ParseCommandLine(std::span<const std::string> args, const Environment& env);

// An option name may belong to several commands (e.g. --deadline to switchover and drain): it then has the
// same value_name in each, since the scan that meets it may not know the command yet.
struct OptionSpec {
  std::string_view name;        // long name without "--"; for tag's policy options, the attribute name
  char short_name = 0;          // 0: none
  std::string_view value_name;  // empty for a flag
  std::string_view help;
};

// What a command's one operand names, if it takes one.
enum class Operand { kNone, kDomain, kHost };

// The operand's placeholder in usage lines: "DOMAIN", "HOST", or "" for kNone.
std::string_view OperandName(Operand operand);

struct CommandSpec {
  std::string_view name;
  Operand operand = Operand::kNone;
  std::string_view summary;      // one line, for the command list
  std::string_view description;  // for the command's --help
  std::span<const OptionSpec> options;  // the command's own options, beside the global ones
  std::chrono::seconds default_timeout = kDefaultTimeout;  // the wait for shadowd without --timeout
};

std::span<const CommandSpec> Commands();
std::span<const OptionSpec> GlobalOptionSpecs();

// The general help (command == nullopt) or one command's; an unknown command gets the general help.
std::string HelpText(const std::optional<std::string>& command);

}  // namespace vs::cli
