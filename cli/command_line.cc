#include "cli/command_line.h"

#include <algorithm>
#include <array>
#include <charconv>

#include "cli/errors.h"
#include "shadowd/policy/policy.h"

namespace vs::cli {
namespace {

constexpr std::array<OptionSpec, 6> kGlobalOptions = {{
    {"connect", 'c', "URI", "libvirt URI for tag and untag (default: $LIBVIRT_DEFAULT_URI, else qemu:///system)"},
    {"socket", 0, "PATH",
     "shadowd's unix socket (default: $VS_SHADOWD_SOCKET, else /run/virt-shadow/shadowd.sock)"},
    {"json", 0, "", "print JSON instead of a table or text"},
    {"timeout", 0, "SECONDS",
     "how long to wait for shadowd's answer, 1 to 3600 (default 10; 900 for switchover, drain, failback)"},
    {"help", 0, "", "show the help (of the command, when one is given) and exit"},
    {"version", 0, "", "show the version and exit"},
}};

// A tag option's name is its policy attribute's name (docs/policy.md has the full meaning of each).
constexpr std::array<OptionSpec, 12> kTagOptions = {{
    {"vcpus", 0, "N|P%", "shadow vCPUs: a count, or a percentage of the VM's (default 50%)"},
    {"memory", 0, "SIZE|P%", "shadow memory: e.g. 512MiB, 4GiB, or a percentage of the VM's (default 50%)"},
    {"interval", 0, "D", "how often disk changes are replicated, 1s to 1h: e.g. 5s, 2m (default 5s)"},
    {"warmup", 0, "yes|no", "start copying memory on an early preemption warning (default yes)"},
    {"priority", 0, "N", "0 to 1000; higher moves first when many VMs share a deadline (default 100)"},
    {"critical", 0, "yes|no", "must never run unprotected; hook-failure then defaults to closed (default no)"},
    {"shadows", 0, "N", "how many shadows to keep, on different hosts: 1 to 3 (default 1)"},
    {"zone", 0, "prefer-other|require-other|any", "where a shadow may go relative to the VM's zone"},
    {"cost-cap", 0, "X", "highest cost per hour of a shadow host, e.g. 0.25 (default: no cap)"},
    {"hook-failure", 0, "open|closed",
     "at VM start with shadowd unreachable or an invalid policy: open starts it, closed refuses it"},
    {"live", 0, "", "change the running domain only (with --config: both)"},
    {"config", 0, "", "change the persistent definition only (with --live: both)"},
}};

constexpr std::array<OptionSpec, 2> kSwitchoverOptions = {{
    {"deadline", 0, "SECONDS",
     "by when the VM must run on the target, 1 to 3600 (default: shadowd's drain deadline)"},
    {"precopy-hold", 0, "SECONDS",
     "keep the migration in precopy this long before the postcopy switch, 0 to 600, instead of the plan's "
     "(for comparisons; docs/switchover.md)"},
}};

constexpr std::array<OptionSpec, 2> kDrainOptions = {{
    {"deadline", 0, "SECONDS",
     "by when every VM must have left, 1 to 3600 (default: shadowd's drain deadline)"},
    {"reason", 0, "TEXT", "why the host is drained, kept as the drain notice's detail (one line, at most 256 bytes)"},
}};

constexpr std::array<OptionSpec, 2> kPromoteOptions = {{
    {"force", 0, "", "promote even though the VM's host is a member of the quorate membership (needs --reason)"},
    {"reason", 0, "TEXT", "why, kept in the VM's promotion record and shadowd's log (one line, at most 256 bytes)"},
}};

constexpr std::size_t kMaxReasonBytes = 256;

constexpr std::array<CommandSpec, 14> kCommands = {{
    {"list", Operand::kNone, "every VM with a record on this host's shadowd",
     "Lists every VM that has a record on this host's shadowd: its protection state, shadow host(s), shadow\n"
     "size, and a note (the last error, or why it is unprotected).",
     {}},
    {"status", Operand::kDomain, "one VM in detail",
     "Shows one VM (by libvirt domain name or UUID) in detail: state, primary and shadow hosts, shadow size,\n"
     "the policy in force and the last error; for a VM replicated from this host also the replication:\n"
     "interval, last applied checkpoint and its age (the lag), the last round's mode, bytes and duration,\n"
     "and the round and failure counts. For a VM promoted on this host after its host failed: from where, when,\n"
     "the RPO, the size it grew to and what could not be restored.",
     {}},
    {"hosts", Operand::kNone, "the hosts shadowd knows: capacity, reservations, membership",
     "Lists the hosts this shadowd knows: zone, whether it is up, cost per hour, CPUs and memory, what\n"
     "running VMs use, what shadows reserve, and how many shadows it holds. Where shadowd follows Corosync\n"
     "(membership = corosync), also each host's membership (member, absent since, never seen), when it was\n"
     "last seen, and whether this host's partition is quorate.",
     {}},
    {"explain", Operand::kDomain, "why a VM's shadow host was chosen",
     "Explains the placement of one VM's shadow(s): a summary, then each host's verdict (chosen, eligible,\n"
     "rejected), rank among the eligible and reason.",
     {}},
    {"tag", Operand::kDomain, "protect a VM: write its policy into the domain's metadata",
     "Writes a protection policy into the domain's <metadata> through libvirt (namespace\n"
     "http://virt-shadow.org/xmlns/policy/1.0, key \"shadow\"). If the domain is already tagged, its policy is\n"
     "kept and only the given options change; otherwise unspecified fields take their defaults. The\n"
     "policy is validated before anything is written. By default the running domain (if it runs) and the\n"
     "persistent definition (if it has one) both change; --live or --config alone is refused on a running\n"
     "domain, whose two definitions virt-shadow can only change together. shadowd picks the change up\n"
     "from libvirt's metadata-change event.",
     kTagOptions},
    {"untag", Operand::kDomain, "stop protecting a VM: remove its policy",
     "Removes the policy element from the domain's metadata through libvirt (running domain and\n"
     "persistent definition alike). shadowd then removes the VM's shadow(s).",
     {}},
    {"sync", Operand::kDomain, "run a disk replication round of a VM now",
     "Runs one disk replication round of the VM now (it is protected and runs on this host) and waits for it:\n"
     "QEMU freezes a point-in-time view of every disk, the shadow host copies what changed since its\n"
     "replica's checkpoint into an overlay, both hosts compare block digests, and the overlay is committed.\n"
     "A first round, or one after the replica was lost, copies the whole disk: raise --timeout for it.",
     {}},
    {"verify", Operand::kDomain, "compare a VM's replica with its disks, by checksums",
     "Compares the replica of every disk of the VM with the disk as it was at the last applied checkpoint:\n"
     "each host computes the digests of its 64 KiB blocks, so no disk data crosses the network. Blocks the\n"
     "guest wrote after the checkpoint are skipped and counted. Mismatching byte ranges are named; the exit\n"
     "status is 1 when there is any.",
     {}},
    {"switchover", Operand::kDomain, "move a VM live to its shadow host now",
     "Moves the VM (by libvirt domain name or UUID) live to its shadow host now and waits for the outcome:\n"
     "shadowd checks the shadow host's health, takes a disk-only snapshot onto local overlays, sends the\n"
     "frozen disks' last changes to the replicas (the final round), then migrates the VM live with postcopy,\n"
     "copying only the overlays (--copy-storage-inc). When the health check fails it migrates with\n"
     "--copy-storage-all instead (the fallback). Prints the phase reached, the target, whether the fallback\n"
     "was used and why, the bytes moved, the downtime, the time from the request until the VM ran on the\n"
     "target and the time left before the deadline. The exit status is 1 when the switchover failed.\n"
     "Waits up to 900 s for the outcome unless --timeout is given.",
     kSwitchoverOptions, kSwitchoverTimeout},
    {"drain", Operand::kHost, "move every protected VM off this host, and place no new shadows on it",
     "This host is going away: every VM protected here moves live to its shadow, highest priority first, and\n"
     "no new shadow is placed here until 'virt-shadow undrain'. HOST must be the host this shadowd runs on\n"
     "(each shadowd drains its own host; 'virt-shadow hosts' marks it): the command checks that first. Prints\n"
     "one line per switchover and the VMs that were skipped, with why. The exit status is 1 when any\n"
     "switchover failed or any VM was skipped. Waits up to 900 s for the outcome unless --timeout is given.",
     kDrainOptions, kSwitchoverTimeout},
    {"undrain", Operand::kHost, "end the drain of this host: new shadows may come again",
     "Ends the drain of this host: new shadows may be placed on it again (the VMs that left stay where they\n"
     "are; 'virt-shadow failback' brings one back). HOST must be the host this shadowd runs on: the command\n"
     "checks that first. Prints whether the host was draining.",
     {}},
    {"failback", Operand::kDomain, "move a VM that arrived by a switchover or a promotion back to where it came from",
     "Moves a VM that arrived on this host by a switchover, or was promoted here after its host failed, back\n"
     "to its origin host (a promoted VM's origin first discards the stale copy it kept fenced; the shadow\n"
     "moves there next), live like switchover, and prints the origin and the outcome. shadowd gives the move\n"
     "as long as virt-shadow waits for it. The exit status is 1 when it failed. Waits up to 900 s for the\n"
     "outcome unless --timeout is given.",
     {}, kSwitchoverTimeout},
    {"promote", Operand::kDomain, "start a VM from its shadow on this host: its own host is gone",
     "For an operator who knows the VM's host is gone: this host's shadowd promotes the shadow it holds of the\n"
     "VM (by name or UUID). It settles the replicas at their last committed round, defines the VM (its own name,\n"
     "UUID and devices) in place of the shadow, starts it at the shadow's size and grows it as far as this host\n"
     "allows. Refused while the VM's host is a member of the quorate membership (the VM may still run there)\n"
     "unless --force is given with --reason; a forced promotion may run the VM twice. Prints the decision;\n"
     "'virt-shadow status DOMAIN' shows the outcome, from where and when it was promoted, and the RPO.",
     kPromoteOptions},
    {"switchovers", Operand::kNone, "the switchovers of this host, and whether it is draining",
     "Lists the switchover records of this host: VM, target host, phase, who asked (the reason), when it was\n"
     "requested, how long it took, the downtime and the error; then whether this host is draining, why,\n"
     "and until when.",
     {}},
}};

const CommandSpec* FindCommand(std::string_view name) {
  auto it = std::find_if(kCommands.begin(), kCommands.end(), [&](const CommandSpec& c) { return c.name == name; });
  return it == kCommands.end() ? nullptr : &*it;
}

std::string CommandNames() {
  std::string names;
  for (const CommandSpec& command : kCommands) names += (names.empty() ? "" : ", ") + std::string(command.name);
  return names;
}

struct FoundOption {
  const OptionSpec* spec = nullptr;
  bool global = false;
};

// The first option of that name: a global one, else a command's. Which command's is settled once the
// command is known (ResolveOption), since an option may come before it.
FoundOption FindOption(std::string_view name, bool is_short) {
  auto matches = [&](const OptionSpec& o) {
    return is_short ? name.size() == 1 && o.short_name == name[0] : o.name == name;
  };
  for (const OptionSpec& option : kGlobalOptions) {
    if (matches(option)) return {&option, true};
  }
  for (const CommandSpec& command : kCommands) {
    for (const OptionSpec& option : command.options) {
      if (matches(option)) return {&option, false};
    }
  }
  return {};
}

std::string Dashed(const OptionSpec& option) { return "--" + std::string(option.name); }

// A command's own option named like `option`, or InvalidArgument naming the commands it belongs to.
StatusOr<const OptionSpec*> ResolveOption(const CommandSpec& command, const OptionSpec& option) {
  for (const OptionSpec& own : command.options) {
    if (own.name == option.name) return &own;
  }
  std::string owners;
  for (const CommandSpec& other : kCommands) {
    for (const OptionSpec& theirs : other.options) {
      if (theirs.name == option.name) owners += (owners.empty() ? "'" : ", '") + std::string(other.name) + "'";
    }
  }
  const std::string name(command.name);
  return InvalidArgument("option " + Dashed(option) + " does not apply to '" + name + "': it is an option of " +
                         owners + "; 'virt-shadow " + name + " --help' lists the options of '" + name + "'");
}

StatusOr<long long> ParseWholeSeconds(const std::string& option, const std::string& value, long long max,
                                      const std::string& advice, long long min = 1) {
  long long seconds = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec != std::errc() || end != value.data() + value.size() || seconds < min || seconds > max) {
    return InvalidArgument("invalid value for --" + option + ": '" + value + "' is not a whole number of seconds from " +
                           std::to_string(min) + " to " + std::to_string(max) + "; " + advice);
  }
  return seconds;
}

StatusOr<std::chrono::seconds> ParseTimeout(const std::string& value) {
  VS_ASSIGN_OR_RETURN(long long seconds,
                      ParseWholeSeconds("timeout", value, kMaxTimeout.count(), "use e.g. --timeout 10"));
  return std::chrono::seconds(seconds);
}

StatusOr<std::uint32_t> ParseDeadline(const std::string& value) {
  VS_ASSIGN_OR_RETURN(long long seconds,
                      ParseWholeSeconds("deadline", value, kMaxDeadlineSeconds,
                                        "use e.g. --deadline 120, or leave it out for shadowd's drain deadline"));
  return static_cast<std::uint32_t>(seconds);
}

// The reason ends up in shadowd's records and log lines: one line, bounded.
StatusOr<std::string> ParseReason(const std::string& value) {
  if (value.size() > kMaxReasonBytes) {
    return InvalidArgument("invalid value for --reason: it is " + std::to_string(value.size()) +
                           " bytes long; give at most " + std::to_string(kMaxReasonBytes));
  }
  for (char c : value) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      return InvalidArgument("invalid value for --reason: it contains the control character " +
                             std::to_string(byte) + "; give one line of printable text");
    }
  }
  return value;
}

// Each policy option is checked alone, so that the error names the option the user typed.
Status ValidatePolicyOption(const std::string& attribute, const std::string& value) {
  policy::RawPolicy raw;
  raw.element_name = std::string(policy::kPolicyElementName);
  raw.attributes = {{attribute, value}};
  StatusOr<policy::Policy> parsed = policy::ParsePolicyElement(raw);
  if (!parsed.ok()) return InvalidArgument("invalid value for --" + attribute + ": " + parsed.status().message());
  return Status::Ok();
}

struct GivenOption {
  FoundOption option;
  std::string value;
};

// A command option as given, once resolved against the command.
struct CommandOption {
  std::string_view name;
  std::string value;
};

std::string_view OperandMeaning(Operand operand) {
  switch (operand) {
    case Operand::kDomain: return "it names the VM (libvirt domain name or UUID)";
    case Operand::kHost: return "it names the host this shadowd runs on, as 'virt-shadow hosts' shows it";
    case Operand::kNone: break;
  }
  return "";
}

StatusOr<Command> BuildCommand(const CommandSpec& spec, const std::vector<std::string>& operands,
                               const std::vector<CommandOption>& options) {
  const std::string usage = "'virt-shadow " + std::string(spec.name) + " --help' shows its usage";
  const std::string operand_name(OperandName(spec.operand));
  std::string operand;
  if (spec.operand != Operand::kNone) {
    if (operands.size() < 2 || operands[1].empty()) {
      return InvalidArgument("missing " + operand_name + " for '" + std::string(spec.name) + "': " +
                             std::string(OperandMeaning(spec.operand)) + "; " + usage);
    }
    operand = operands[1];
  }
  const std::size_t expected = spec.operand == Operand::kNone ? 1 : 2;
  if (operands.size() > expected) {
    return InvalidArgument("unexpected argument '" + operands[expected] + "' for '" + std::string(spec.name) +
                           "': it takes " + (operand_name.empty() ? "no argument" : "one " + operand_name) + "; " +
                           usage);
  }
  if (spec.name == "list") return Command(ListCommand{});
  if (spec.name == "status") return Command(StatusCommand{operand});
  if (spec.name == "hosts") return Command(HostsCommand{});
  if (spec.name == "explain") return Command(ExplainCommand{operand});
  if (spec.name == "untag") return Command(UntagCommand{operand});
  if (spec.name == "sync") return Command(SyncCommand{operand});
  if (spec.name == "verify") return Command(VerifyCommand{operand});
  if (spec.name == "undrain") return Command(UndrainCommand{operand});
  if (spec.name == "failback") return Command(FailbackCommand{operand});
  if (spec.name == "switchovers") return Command(SwitchoversCommand{});
  if (spec.name == "switchover") {
    SwitchoverCommand switchover{.domain = operand};
    for (const CommandOption& o : options) {
      if (o.name == "deadline") {
        VS_ASSIGN_OR_RETURN(switchover.deadline_seconds, ParseDeadline(o.value));
      }
      if (o.name == "precopy-hold") {
        VS_ASSIGN_OR_RETURN(long long seconds, ParseWholeSeconds("precopy-hold", o.value, kMaxPrecopyHoldSeconds,
                                                                 "use e.g. --precopy-hold 0 (postcopy at once)", /*min=*/0));
        switchover.precopy_hold_seconds = static_cast<std::uint32_t>(seconds);
      }
    }
    return Command(std::move(switchover));
  }
  if (spec.name == "promote") {
    PromoteCommand promote{.domain = operand};
    for (const CommandOption& o : options) {
      if (o.name == "force") {
        promote.force = true;
      } else if (o.name == "reason") {
        VS_ASSIGN_OR_RETURN(promote.reason, ParseReason(o.value));
      }
    }
    if (promote.force && promote.reason.empty()) {
      return InvalidArgument("--force needs --reason TEXT for 'promote': a forced promotion may run the VM twice, "
                             "and the reason is kept in its record; " + usage);
    }
    return Command(std::move(promote));
  }
  if (spec.name == "drain") {
    DrainCommand drain{.host = operand};
    for (const CommandOption& o : options) {
      if (o.name == "deadline") {
        VS_ASSIGN_OR_RETURN(drain.deadline_seconds, ParseDeadline(o.value));
      } else if (o.name == "reason") {
        VS_ASSIGN_OR_RETURN(drain.reason, ParseReason(o.value));
      }
    }
    return Command(std::move(drain));
  }
  TagCommand tag;
  tag.domain = operand;
  for (const CommandOption& o : options) {
    const std::string name(o.name);
    const std::string& value = o.value;
    if (name == "live") {
      tag.live = true;
    } else if (name == "config") {
      tag.config = true;
    } else {
      VS_RETURN_IF_ERROR(ValidatePolicyOption(name, value));
      tag.attributes.emplace_back(name, value);
    }
  }
  return Command(std::move(tag));
}

std::string NonEmptyOr(const std::optional<std::string>& value, std::string_view fallback) {
  return value && !value->empty() ? *value : std::string(fallback);
}

void AppendOptionHelp(std::string& text, std::span<const OptionSpec> options) {
  for (const OptionSpec& option : options) {
    std::string left = option.short_name ? std::string("-") + option.short_name + ", " : "    ";
    left += Dashed(option);
    if (!option.value_name.empty()) left += " " + std::string(option.value_name);
    constexpr std::size_t kHelpColumn = 26;  // a longer synopsis puts its help on the next line
    text += "  " + left + (left.size() < kHelpColumn ? std::string(kHelpColumn - left.size(), ' ')
                                                     : "\n" + std::string(kHelpColumn + 2, ' ')) +
            std::string(option.help) + "\n";
  }
}

void AppendExitCodes(std::string& text) {
  text += "\nExit status:\n";
  for (const ExitCodeDoc& doc : ExitCodeDocs()) {
    text += "  " + std::to_string(static_cast<int>(doc.code)) + "  " + std::string(doc.meaning) + "\n";
  }
}

}  // namespace

std::string_view OperandName(Operand operand) {
  switch (operand) {
    case Operand::kDomain: return "DOMAIN";
    case Operand::kHost: return "HOST";
    case Operand::kNone: break;
  }
  return "";
}

std::span<const CommandSpec> Commands() { return kCommands; }
std::span<const OptionSpec> GlobalOptionSpecs() { return kGlobalOptions; }

StatusOr<Invocation> ParseCommandLine(std::span<const std::string> args, const Environment& env) {
  Invocation invocation{.global = {.libvirt_uri = NonEmptyOr(env.libvirt_default_uri, kDefaultLibvirtUri),
                                   .shadowd_socket = NonEmptyOr(env.shadowd_socket, kDefaultShadowdSocket)},
                        .command = ListCommand{}};
  std::vector<std::string> operands;  // the command name, then its arguments
  std::vector<GivenOption> given;
  bool options_ended = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (options_ended || arg.size() < 2 || arg[0] != '-') {
      operands.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_ended = true;
      continue;
    }
    const bool is_short = arg[1] != '-';
    const std::size_t equals = is_short ? std::string::npos : arg.find('=');
    const std::string name = arg.substr(is_short ? 1 : 2, equals == std::string::npos ? std::string::npos
                                                                                      : equals - 2);
    const FoundOption found = FindOption(name, is_short);
    if (found.spec == nullptr) {
      return InvalidArgument("unknown option '" + arg.substr(0, equals) +
                             "': it is not a virt-shadow option; 'virt-shadow --help' lists the options");
    }
    GivenOption option{.option = found, .value = ""};
    if (found.spec->value_name.empty()) {
      if (equals != std::string::npos) {
        return InvalidArgument("option " + Dashed(*found.spec) + " takes no value, but got '" +
                               arg.substr(equals + 1) + "'; give it alone, e.g. " + Dashed(*found.spec));
      }
    } else if (equals != std::string::npos) {
      option.value = arg.substr(equals + 1);
    } else if (i + 1 < args.size()) {
      option.value = args[++i];
    }
    if (!found.spec->value_name.empty() && option.value.empty()) {
      const std::string value_name(found.spec->value_name);
      return InvalidArgument("option " + Dashed(*found.spec) + " needs a value: " + value_name + "; e.g. " +
                             Dashed(*found.spec) + " " + value_name);
    }
    if (found.spec->name == "help") {
      const bool has_command = !operands.empty() && FindCommand(operands[0]) != nullptr;
      invocation.command = HelpCommand{has_command ? std::optional<std::string>(operands[0]) : std::nullopt};
      return invocation;
    }
    if (found.spec->name == "version") {
      invocation.command = VersionCommand{};
      return invocation;
    }
    for (const GivenOption& earlier : given) {
      if (earlier.option.spec == found.spec) {
        return InvalidArgument("option " + Dashed(*found.spec) + " is given twice; give it once");
      }
    }
    given.push_back(std::move(option));
  }

  if (operands.empty()) {
    return InvalidArgument("no command given: virt-shadow needs one of " + CommandNames() +
                           "; 'virt-shadow --help' shows the usage");
  }
  const CommandSpec* spec = FindCommand(operands[0]);
  if (spec == nullptr) {
    return InvalidArgument("unknown command '" + operands[0] + "': it is not one of " + CommandNames() +
                           "; 'virt-shadow --help' shows the usage");
  }
  invocation.global.timeout = spec->default_timeout;
  std::vector<CommandOption> command_options;
  for (const GivenOption& g : given) {
    if (!g.option.global) {
      VS_ASSIGN_OR_RETURN(const OptionSpec* own, ResolveOption(*spec, *g.option.spec));
      command_options.push_back({own->name, g.value});
      continue;
    }
    const std::string_view name = g.option.spec->name;
    if (name == "connect") invocation.global.libvirt_uri = g.value;
    if (name == "socket") invocation.global.shadowd_socket = g.value;
    if (name == "json") invocation.global.json = true;
    if (name == "timeout") {
      VS_ASSIGN_OR_RETURN(invocation.global.timeout, ParseTimeout(g.value));
    }
  }
  VS_ASSIGN_OR_RETURN(invocation.command, BuildCommand(*spec, operands, command_options));
  return invocation;
}

std::string HelpText(const std::optional<std::string>& command) {
  const CommandSpec* spec = command ? FindCommand(*command) : nullptr;
  std::string text;
  auto synopsis = [](const CommandSpec& c) {
    return std::string(c.name) + (c.operand == Operand::kNone ? "" : " " + std::string(OperandName(c.operand)));
  };
  if (spec == nullptr) {
    text = "Usage: virt-shadow [OPTIONS] COMMAND [DOMAIN|HOST] [COMMAND OPTIONS]\n\n"
           "Shows and changes the virt-shadow protection of libvirt VMs: their shadows on other hosts,\n"
           "kept by this host's shadowd, and moves them there live.\n\nCommands:\n";
    std::size_t column = 0;
    for (const CommandSpec& c : kCommands) column = std::max(column, synopsis(c).size() + 2);
    for (const CommandSpec& c : kCommands) {
      const std::string left = synopsis(c);
      text += "  " + left + std::string(column - left.size(), ' ') + std::string(c.summary) + "\n";
    }
    text += "\nOptions (before or after the command):\n";
    AppendOptionHelp(text, kGlobalOptions);
    AppendExitCodes(text);
    text += "\n'virt-shadow COMMAND --help' shows a command's options; 'man virt-shadow' has the details.\n";
    return text;
  }
  text = "Usage: virt-shadow " + synopsis(*spec) +
         (spec->options.empty() ? "" : " [OPTIONS]") + "\n\n" + std::string(spec->description) + "\n";
  if (!spec->options.empty()) {
    text += "\nOptions of " + std::string(spec->name) + ":\n";
    AppendOptionHelp(text, spec->options);
  }
  text += "\nGlobal options:\n";
  AppendOptionHelp(text, kGlobalOptions);
  AppendExitCodes(text);
  return text;
}

}  // namespace vs::cli
