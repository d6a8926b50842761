// The TCP endpoint of an IP literal split by SplitHostPort (host_port.h), for the places that use Boost.Asio
// (the metrics endpoint, the cloud metadata client). Header-only, so that vs_common itself does not depend on
// Boost.
//
// Names are refused: shadowd never resolves one (a lookup can hang a poller or the metrics thread for its
// resolver's timeout). Pure; thread-safe. Failure modes: InvalidArgument with a short reason for the caller to
// put in its own context.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "common/host_port.h"
#include "common/status.h"

namespace vs {

inline StatusOr<boost::asio::ip::tcp::endpoint> IpEndpoint(const HostPort& split, uint16_t port) {
  namespace ip = boost::asio::ip;
  boost::system::error_code parse_error;
  const ip::address address = split.bracketed ? ip::address(ip::make_address_v6(split.host, parse_error))
                                              : ip::address(ip::make_address_v4(split.host, parse_error));
  if (parse_error) return InvalidArgument("the host must be an IP address (IPv6 in brackets), not a name");
  return ip::tcp::endpoint(address, port);
}

}  // namespace vs
