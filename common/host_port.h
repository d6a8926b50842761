// Host and port as written in configuration, URLs and listen addresses: "HOST", "HOST:PORT", "[IPv6]" and
// "[IPv6]:PORT". One parser and one formatter, so that every place agrees on the brackets.
//
// Pure functions; thread-safe. Failure modes: SplitHostPort returns InvalidArgument whose message is a short
// reason ("'[' without ']'", ...) for the caller to put in its own context (which setting, what is expected).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace vs {

struct HostPort {
  std::string host;              // without brackets; never empty
  bool bracketed = false;        // written as [host]: an IPv6 address
  std::optional<uint16_t> port;  // 0..65535 as written; callers that need 1..65535 check
};

// Splits an authority without user information. An unbracketed host with more than one ':' is refused: an
// IPv6 address must be written in brackets, or its last group would be read as a port.
StatusOr<HostPort> SplitHostPort(std::string_view text);

// "host:port", the host in brackets when it contains ':' (an IPv6 address).
std::string JoinHostPort(std::string_view host, uint16_t port);

}  // namespace vs
