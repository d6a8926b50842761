// Translation of libvirt errors into vs::Status: the one place where virErrorNumber is interpreted.
// Internal to shadowd/virt; include only from files that already include libvirt.
#pragma once

#include <string_view>

#include "common/status.h"

namespace vs::virt {

// The code for a libvirt error of `domain` (virErrorDomain) and `code` (virErrorNumber). Every error of the RPC
// layer is kUnavailable, whatever its number: libvirt reports a connection whose peer died as
// VIR_ERR_INTERNAL_ERROR "client socket is closed" (virnetclient.c), and only kUnavailable makes a caller drop
// the connection and dial again (a cached connection to a host that crashed and came back stayed dead).
Code CodeForLibvirtError(int domain, int code);

// Reads libvirt's last error of this thread (virGetLastError), resets it, and returns a Status whose message is
// "<what>: <libvirt message>". Returns Internal("<what>: unknown libvirt error") if none was recorded.
Status LastLibvirtError(std::string_view what);

}  // namespace vs::virt
