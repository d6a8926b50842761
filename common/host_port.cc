#include "common/host_port.h"

#include <charconv>

namespace vs {

StatusOr<HostPort> SplitHostPort(std::string_view text) {
  HostPort parsed;
  std::string_view host = text;
  std::optional<std::string_view> port;
  if (text.starts_with('[')) {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return InvalidArgument("'[' without ']'");
    host = text.substr(1, close - 1);
    parsed.bracketed = true;
    const std::string_view after = text.substr(close + 1);
    if (!after.empty()) {
      if (!after.starts_with(':')) return InvalidArgument("text after ']' that is not ':port'");
      port = after.substr(1);
    }
  } else if (const size_t colon = text.find(':'); colon != std::string_view::npos) {
    if (text.find(':', colon + 1) != std::string_view::npos) {
      return InvalidArgument("an IPv6 address must be written in brackets, e.g. [fd00::1]:80");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host.empty()) return InvalidArgument("no host");
  parsed.host = std::string(host);
  if (port) {
    uint16_t number = 0;
    const auto [end, ec] = std::from_chars(port->data(), port->data() + port->size(), number);
    if (port->empty() || ec != std::errc() || end != port->data() + port->size()) {
      return InvalidArgument("port '" + std::string(*port) + "' is not a number from 0 to 65535");
    }
    parsed.port = number;
  }
  return parsed;
}

std::string JoinHostPort(std::string_view host, uint16_t port) {
  const bool ipv6 = host.find(':') != std::string_view::npos;
  return (ipv6 ? "[" + std::string(host) + "]" : std::string(host)) + ":" + std::to_string(port);
}

}  // namespace vs
