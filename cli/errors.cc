#include "cli/errors.h"

#include <array>
#include <cctype>

namespace vs::cli {
namespace {

constexpr std::array<ExitCodeDoc, 5> kExitCodeDocs = {{
    {ExitCode::kSuccess, "success"},
    {ExitCode::kFailed, "the operation failed (shadowd or libvirt refused or failed it)"},
    {ExitCode::kUsage, "usage error or invalid input (unknown command or option, bad value, invalid policy)"},
    {ExitCode::kShadowdUnreachable,
     "shadowd unreachable (no socket, connection refused, permission denied, or no answer in time)"},
    {ExitCode::kDomainNotFound, "domain not found (by libvirt, or no record of it on shadowd)"},
}};

// gRPC's connect errors read "failed to connect to all addresses; last error: UNKNOWN:
// unix:/run/x.sock: Connection refused"; the errno text at the end is the useful part.
std::string ShortConnectReason(const std::string& grpc_message) {
  const std::size_t last_error = grpc_message.find("last error:");
  const std::size_t colon = grpc_message.rfind(": ");
  if (last_error == std::string::npos || colon == std::string::npos || colon < last_error) return grpc_message;
  std::string reason = grpc_message.substr(colon + 2);
  if (reason.empty()) return grpc_message;
  reason[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(reason[0])));
  return reason;
}

}  // namespace

std::span<const ExitCodeDoc> ExitCodeDocs() { return kExitCodeDocs; }

ExitCode ExitCodeForShadowd(const Status& status) {
  switch (status.code()) {
    case Code::kOk: return ExitCode::kSuccess;
    case Code::kUnavailable:
    case Code::kDeadlineExceeded: return ExitCode::kShadowdUnreachable;
    case Code::kNotFound: return ExitCode::kDomainNotFound;
    case Code::kInvalidArgument: return ExitCode::kUsage;
    default: return ExitCode::kFailed;
  }
}

ExitCode ExitCodeForLibvirt(const Status& status) {
  switch (status.code()) {
    case Code::kOk: return ExitCode::kSuccess;
    case Code::kNotFound: return ExitCode::kDomainNotFound;
    case Code::kInvalidArgument: return ExitCode::kUsage;
    default: return ExitCode::kFailed;
  }
}

std::string ErrorLine(std::string_view message) {
  std::string line = "virt-shadow: ";
  for (char c : message) {
    const auto byte = static_cast<unsigned char>(c);
    line += byte < 0x20 || byte == 0x7f ? ' ' : c;
  }
  return line;
}

std::string DescribeShadowdFailure(const Status& status, std::string_view subject, std::string_view socket_path,
                                   std::chrono::seconds timeout) {
  const std::string socket(socket_path);
  switch (status.code()) {
    case Code::kUnavailable: {
      const std::string reason = ShortConnectReason(status.message());
      // shadowd makes its socket (and the socket's directory) root's alone: an ordinary user gets EACCES.
      if (reason.find("ermission denied") != std::string::npos) {
        return "cannot reach shadowd at " + socket + ": " + reason + "; the control socket " + socket +
               " is root-only: run virt-shadow as root (sudo virt-shadow ...)";
      }
      return "cannot reach shadowd at " + socket + ": " + reason +
             "; is shadowd running on this host? (--socket or VS_SHADOWD_SOCKET choose another socket)";
    }
    case Code::kDeadlineExceeded:
      return "no answer from shadowd at " + socket + " within " + std::to_string(timeout.count()) + " s: " +
             status.message() + "; check that shadowd is healthy, or retry with a larger --timeout";
    case Code::kNotFound:
      return "shadowd has no record of " + std::string(subject) + ": " + status.message() +
             "; 'virt-shadow list' shows the VMs it knows (a VM gets a record once it is tagged)";
    default:
      return "shadowd could not report " + std::string(subject) + ": " + status.ToString() +
             "; check shadowd's log on this host";
  }
}

}  // namespace vs::cli
