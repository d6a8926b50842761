#include "cli/app.h"

#include <algorithm>
#include <optional>
#include <variant>

#include "cli/errors.h"
#include "cli/output.h"
#include "cli/shadowd_client.h"
#include "cli/tag.h"

namespace vs::cli {
namespace {

namespace v1 = virtshadow::v1;

// Runs one parsed command; each operator() returns the exit code.
class CommandRunner {
 public:
  CommandRunner(const GlobalOptions& global, const LibvirtConnector& connect_libvirt, Clock& clock, std::ostream& out,
                std::ostream& err)
      : global_(global), connect_libvirt_(connect_libvirt), clock_(clock), out_(out), err_(err) {}

  ExitCode operator()(const HelpCommand& help) {
    out_ << HelpText(help.command);
    return ExitCode::kSuccess;
  }

  ExitCode operator()(const VersionCommand&) {
    out_ << "virt-shadow " << VS_VERSION << "\n";
    return ExitCode::kSuccess;
  }

  ExitCode operator()(const ListCommand&) {
    return Show(Shadowd().ListVms(), "the VM list", VmListToJson, FormatVmTable);
  }

  ExitCode operator()(const StatusCommand& status) {
    return Show(Shadowd().GetVm(status.domain), "VM '" + status.domain + "'", VmToJson, FormatVmDetail);
  }

  ExitCode operator()(const HostsCommand&) {
    return Show(Shadowd().ListHosts(), "the host list", HostsToJson, FormatHostTable);
  }

  ExitCode operator()(const ExplainCommand& explain) {
    return Show(Shadowd().Explain(explain.domain), "the placement of VM '" + explain.domain + "'", ExplanationToJson,
                FormatExplanation);
  }

  ExitCode operator()(const SyncCommand& sync) {
    return Show(Shadowd().Sync(sync.domain), "a replication round of VM '" + sync.domain + "'", SyncToJson,
                FormatSync);
  }

  ExitCode operator()(const VerifyCommand& verify) {
    StatusOr<virtshadow::v1::VerifyReply> reply = Shadowd().Verify(verify.domain);
    const ExitCode shown = Show(reply, "the verification of VM '" + verify.domain + "'", VerifyToJson, FormatVerify);
    if (shown != ExitCode::kSuccess || reply->ok()) return shown;
    err_ << ErrorLine("the replica of '" + verify.domain + "' differs from its source at checkpoint " +
                      reply->checkpoint() + " (see the table)")
         << "\n";
    return ExitCode::kFailed;
  }

  ExitCode operator()(const SwitchoverCommand& switchover) {
    const std::string vm = "VM '" + switchover.domain + "'";
    StatusOr<v1::SwitchoverReply> reply = Shadowd().Switchover(switchover.domain, switchover.deadline_seconds,
                                                                 switchover.precopy_hold_seconds);
    const ExitCode shown = Show(reply, "a switchover of " + vm, ProtoToJson, FormatSwitchover);
    return shown != ExitCode::kSuccess ? shown : OutcomeOf(reply->record(), "the switchover of " + vm);
  }

  ExitCode operator()(const DrainCommand& drain) {
    if (const ExitCode refused = RefuseOtherHost(drain.host, "drain"); refused != ExitCode::kSuccess) return refused;
    StatusOr<v1::DrainReply> reply = Shadowd().Drain(drain.deadline_seconds, drain.reason);
    const ExitCode shown = Show(reply, "the drain of host '" + drain.host + "'", ProtoToJson, FormatDrain);
    if (shown != ExitCode::kSuccess) return shown;
    const auto failed = std::count_if(reply->records().begin(), reply->records().end(), [](const auto& record) {
      return record.phase() == v1::SWITCHOVER_PHASE_FAILED;
    });
    if (failed == 0 && reply->skipped().empty()) return ExitCode::kSuccess;
    err_ << ErrorLine("the drain of host '" + drain.host + "' is incomplete: " + std::to_string(failed) +
                      " switchover(s) failed and " + std::to_string(reply->skipped_size()) +
                      " VM(s) were skipped (see above); those VMs still run here unless their error says otherwise, "
                      "see shadowd's log on this host")
         << "\n";
    return ExitCode::kFailed;
  }

  ExitCode operator()(const UndrainCommand& undrain) {
    if (const ExitCode refused = RefuseOtherHost(undrain.host, "undrain"); refused != ExitCode::kSuccess) {
      return refused;
    }
    return Show(Shadowd().Undrain(), "the drain of host '" + undrain.host + "'", ProtoToJson,
                [&](const v1::UndrainReply& reply) { return FormatUndrain(reply, undrain.host); });
  }

  ExitCode operator()(const FailbackCommand& failback) {
    // shadowd stops trying when virt-shadow stops waiting, so that no move goes on unobserved.
    StatusOr<v1::FailbackReply> reply = Shadowd().Failback(failback.domain, global_.timeout);
    const std::string vm = "VM '" + failback.domain + "'";
    const ExitCode shown = Show(reply, "a failback of " + vm, ProtoToJson, FormatFailback);
    return shown != ExitCode::kSuccess ? shown : OutcomeOf(reply->record(), "the failback of " + vm);
  }

  ExitCode operator()(const PromoteCommand& promote) {
    return Show(Shadowd().Promote(promote.domain, promote.force, promote.reason),
                "the promotion of VM '" + promote.domain + "'", ProtoToJson, FormatPromote);
  }

  ExitCode operator()(const SwitchoversCommand&) {
    return Show(Shadowd().ListSwitchovers(), "the switchovers of this host", ProtoToJson, FormatSwitchoverList);
  }

  ExitCode operator()(const TagCommand& tag) {
    StatusOr<std::unique_ptr<virt::Hypervisor>> hypervisor = ConnectLibvirt();
    if (!hypervisor.ok()) {
      return LibvirtFailure("cannot connect to libvirt at " + global_.libvirt_uri, hypervisor.status());
    }
    StatusOr<std::string> element = TagDomain(**hypervisor, tag);
    if (!element.ok()) return LibvirtFailure("cannot tag domain '" + tag.domain + "'", element.status());
    if (global_.json) {
      out_ << DumpJson({{"domain", tag.domain}, {"policy", *element}});
    } else {
      out_ << "Domain '" << tag.domain << "' tagged: " << *element << "\n";
    }
    return ExitCode::kSuccess;
  }

  ExitCode operator()(const UntagCommand& untag) {
    StatusOr<std::unique_ptr<virt::Hypervisor>> hypervisor = ConnectLibvirt();
    if (!hypervisor.ok()) {
      return LibvirtFailure("cannot connect to libvirt at " + global_.libvirt_uri, hypervisor.status());
    }
    StatusOr<bool> had_policy = UntagDomain(**hypervisor, untag);
    if (!had_policy.ok()) return LibvirtFailure("cannot untag domain '" + untag.domain + "'", had_policy.status());
    if (global_.json) {
      out_ << DumpJson({{"domain", untag.domain}, {"had_policy", *had_policy}});
    } else if (*had_policy) {
      out_ << "Domain '" << untag.domain << "' untagged: policy removed\n";
    } else {
      out_ << "Domain '" << untag.domain << "' had no policy; nothing to remove\n";
    }
    return ExitCode::kSuccess;
  }

 private:
  ShadowdClient& Shadowd() {
    if (!shadowd_) shadowd_.emplace(global_.shadowd_socket, global_.timeout, clock_);
    return *shadowd_;
  }

  StatusOr<std::unique_ptr<virt::Hypervisor>> ConnectLibvirt() { return connect_libvirt_(global_.libvirt_uri); }

  // A printed switchover record: a failed one is exit 1, with the error on `err_` too.
  ExitCode OutcomeOf(const v1::SwitchoverRecord& record, const std::string& what) {
    if (record.phase() != v1::SWITCHOVER_PHASE_FAILED) return ExitCode::kSuccess;
    const std::string target = record.target_host().empty() ? "" : " to host '" + record.target_host() + "'";
    err_ << ErrorLine(what + target + " failed: " +
                      (record.error().empty() ? "shadowd gave no reason" : record.error()) +
                      "; the VM still runs where it was unless the error says otherwise, see shadowd's log on "
                      "this host")
         << "\n";
    return ExitCode::kFailed;
  }

  // Each shadowd drains only the host it runs on; `host` names it, so that a drain typed on the wrong
  // host's shell cannot move that host's VMs. kSuccess when `host` is this host.
  ExitCode RefuseOtherHost(const std::string& host, const std::string& command) {
    StatusOr<v1::ListHostsReply> hosts = Shadowd().ListHosts();
    if (!hosts.ok()) {
      err_ << ErrorLine(DescribeShadowdFailure(hosts.status(), "the host it runs on", global_.shadowd_socket,
                                               global_.timeout))
           << "\n";
      return ExitCodeForShadowd(hosts.status());
    }
    if (hosts->this_host() == host) return ExitCode::kSuccess;
    if (hosts->this_host().empty()) {
      err_ << ErrorLine("cannot " + command + " host '" + host +
                        "': shadowd did not say which host it runs on; check its configuration and its log")
           << "\n";
      return ExitCode::kFailed;
    }
    err_ << ErrorLine("cannot " + command + " host '" + host + "': this shadowd runs on '" + hosts->this_host() +
                      "' and each shadowd " + command + "s only its own host; run 'virt-shadow " + command + " " +
                      host + "' on " + host)
         << "\n";
    return ExitCode::kUsage;
  }

  template <typename Reply, typename ToJson, typename ToText>
  ExitCode Show(const StatusOr<Reply>& reply, const std::string& subject, ToJson to_json, ToText to_text) {
    if (!reply.ok()) {
      err_ << ErrorLine(DescribeShadowdFailure(reply.status(), subject, global_.shadowd_socket, global_.timeout))
           << "\n";
      return ExitCodeForShadowd(reply.status());
    }
    out_ << (global_.json ? DumpJson(to_json(*reply)) : to_text(*reply));
    return ExitCode::kSuccess;
  }

  // Our own refusals (InvalidArgument, FailedPrecondition) already say what to do; libvirt's do not.
  ExitCode LibvirtFailure(const std::string& what, const Status& status) {
    std::string advice;
    switch (status.code()) {
      case Code::kNotFound:
        advice = "; 'virsh -c " + global_.libvirt_uri + " list --all' lists the domains";
        break;
      case Code::kUnavailable:
        advice = "; is libvirtd running? (--connect or LIBVIRT_DEFAULT_URI choose another URI)";
        break;
      case Code::kInvalidArgument:
      case Code::kFailedPrecondition:
        break;
      default:
        advice = "; see libvirtd's log";
    }
    err_ << ErrorLine(what + ": " + status.message() + advice) << "\n";
    return ExitCodeForLibvirt(status);
  }

  const GlobalOptions& global_;
  const LibvirtConnector& connect_libvirt_;
  Clock& clock_;
  std::ostream& out_;
  std::ostream& err_;
  std::optional<ShadowdClient> shadowd_;  // created on first use: tag and untag never touch the socket
};

}  // namespace

int Run(std::span<const std::string> args, const Environment& env, const LibvirtConnector& connect_libvirt,
        Clock& clock, std::ostream& out, std::ostream& err) {
  StatusOr<Invocation> invocation = ParseCommandLine(args, env);
  if (!invocation.ok()) {
    err << ErrorLine(invocation.status().message()) << "\n";
    return static_cast<int>(ExitCode::kUsage);
  }
  CommandRunner runner(invocation->global, connect_libvirt, clock, out, err);
  return static_cast<int>(std::visit(runner, invocation->command));
}

}  // namespace vs::cli
