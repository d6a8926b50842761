// virt-shadow from argv to exit code: parses, runs the command against shadowd (gRPC) or libvirt (through
// the connector), prints the result on `out` and any error, as one line, on `err`.
//
// main() only gathers argv and the environment and supplies the real libvirt connector; tests supply a
// fake one and a shadowd on a temporary socket.
//
// Ownership: borrows everything for the call; a Hypervisor from the connector lives until Run returns.
// Thread-safety: one Run at a time per set of streams. Failure modes: every failure is an exit code
// (cli/errors.h) plus one line on `err`; nothing throws.
#pragma once

#include <functional>
#include <memory>
#include <ostream>
#include <span>
#include <string>

#include "cli/command_line.h"
#include "common/clock.h"
#include "common/status.h"
#include "shadowd/virt/hypervisor.h"

namespace vs::cli {

// Opens a libvirt connection to `uri`; called only by tag and untag.
using LibvirtConnector = std::function<StatusOr<std::unique_ptr<virt::Hypervisor>>(const std::string& uri)>;

// `args` excludes argv[0]. Returns the process exit code.
int Run(std::span<const std::string> args, const Environment& env, const LibvirtConnector& connect_libvirt,
        Clock& clock, std::ostream& out, std::ostream& err);

}  // namespace vs::cli
