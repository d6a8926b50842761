// Translation of libvirt errors into vs::Status: the one place where virErrorNumber is interpreted.
// Internal to shadowd/virt; include only from files that already include libvirt.
#pragma once

#include <string_view>

#include "common/status.h"

namespace vs::virt {

// Reads libvirt's last error of this thread (virGetLastError), resets it, and returns a Status whose message is
// "<what>: <libvirt message>". Returns Internal("<what>: unknown libvirt error") if none was recorded.
Status LastLibvirtError(std::string_view what);

}  // namespace vs::virt
