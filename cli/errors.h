// virt-shadow's exit codes, which vs::Status leads to which, and the one-line error messages
// "virt-shadow: <what failed>: <why>; <what to do>" on stderr.
//
// Statuses come from two places with different meanings: shadowd (through ShadowdClient, which turns
// gRPC codes into vs::Status) and libvirt (through virt::Hypervisor). Unavailable from shadowd is
// exit 3, but from libvirt it is an ordinary failure (exit 1): exit 3 tells scripts "shadowd is not
// there", nothing else.
//
// Ownership: values. Thread-safety: pure functions. Failure modes: none.
#pragma once

#include <chrono>
#include <span>
#include <string>
#include <string_view>

#include "common/status.h"

namespace vs::cli {

enum class ExitCode : int {
  kSuccess = 0,
  kFailed = 1,              // the operation failed: shadowd or libvirt said no
  kUsage = 2,               // usage error or invalid input
  kShadowdUnreachable = 3,  // no answer from shadowd within --timeout
  kDomainNotFound = 4,
};

struct ExitCodeDoc {
  ExitCode code;
  std::string_view meaning;
};
// Every exit code with its meaning, for --help (the man page says the same).
std::span<const ExitCodeDoc> ExitCodeDocs();

ExitCode ExitCodeForShadowd(const Status& status);
ExitCode ExitCodeForLibvirt(const Status& status);

// "virt-shadow: " + `message` on one line: line breaks and other control characters in it (libvirt
// and gRPC messages, domain names) become spaces, so that the error stays one line.
std::string ErrorLine(std::string_view message);

// The message (without "virt-shadow: ") for a failed shadowd call about `subject` (e.g. "the VM list",
// "VM 'web-1'"); `status` must not be OK.
std::string DescribeShadowdFailure(const Status& status, std::string_view subject, std::string_view socket_path,
                                   std::chrono::seconds timeout);

}  // namespace vs::cli
