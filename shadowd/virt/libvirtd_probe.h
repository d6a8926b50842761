// Whether a remote libvirtd answers at all, within a bound: libvirt's own connect (virConnectOpen over qemu+tcp)
// has no timeout and waits out the kernel's SYN retries when the host is gone behind a cut link or a dead host's
// address (measured in the lab: a restarted shadowd sat 38 to 43 s in one connect to a crashed host). Callers try
// this first and treat a host that does not answer as unreachable.
//
// Thread-safety: a pure function of its arguments (one socket of its own). Failure modes: kUnavailable when the
// address does not resolve or nothing accepts a TCP connection on libvirtd's port within `timeout`.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "common/clock.h"
#include "common/status.h"

namespace vs::virt {

// "qemu+tcp://10.77.0.11/system" -> {"10.77.0.11", "16509"}, "qemu+tls://h1:1234/system?pkipath=/x" ->
// {"h1", "1234"} (TLS's default port is 16514); nullopt for other transports (unix, ssh...).
std::optional<std::pair<std::string, std::string>> TcpEndpointOf(const std::string& uri);

// For a +tcp or +tls URI: a TCP connection to its libvirtd's port within `timeout`. Other transports: OK (nothing to try).
Status LibvirtdAnswers(const std::string& uri, Duration timeout);

}  // namespace vs::virt
