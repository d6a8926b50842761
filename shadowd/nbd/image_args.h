// Checks on what goes into qemu-img and qemu-nbd command lines, shared by both wrappers. qemu reads an
// image name like "nbd:host:port" or "json:{...}" as a protocol or a set of options rather than a file,
// and a format lands inside an option string for qemu-nbd --image-opts, so untrusted text (e.g. from
// a domain XML) must not get there unchecked. Pure functions; thread-safe.
#pragma once

#include <string_view>

#include "common/status.h"

namespace vs::nbd {

// An absolute path (qemu never reads an absolute path as a protocol) without NUL bytes.
// InvalidArgument naming `what` ("image", "backing file") and the path otherwise.
Status CheckImagePath(std::string_view path, std::string_view what);

// A plain qemu driver name: lower-case letters, digits and '_' ("raw", "qcow2").
Status CheckImageFormat(std::string_view format);

}  // namespace vs::nbd
