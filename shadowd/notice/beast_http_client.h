// BeastHttpClient: HttpClient over Boost.Beast for plain HTTP/1.1, the way metadata services are
// reached (http://169.254.169.254, or a configured endpoint in tests and odd networks).
//
// One connection per request ("Connection: close"): polls come seconds apart, so keeping
// connections alive would only add state. request.timeout is a hard bound on connect + send +
// receive together (one absolute deadline for the whole exchange), so a metadata service that
// accepts and never answers cannot hold a poller. The host must be an IP address (IPv6 in
// brackets): a name lookup cannot be bounded by that deadline, and every metadata service has a
// fixed address anyway. Responses are capped at kMaxResponseHeadBytes of head and
// kMaxResponseBodyBytes of body, which bounds what a hostile endpoint can make us allocate.
//
// Ownership: holds nothing; each Send owns its own io_context and socket.
// Thread-safety: Send may be called from any number of threads at once (no shared state).
// Failure modes: see HttpClient; InvalidArgument names the malformed part of the URL, method or
// header; errors carry the method and URL.
// Time: the deadline is an Asio timer on the steady clock; no timestamps are read.
#pragma once

#include <cstddef>

#include "shadowd/notice/http_client.h"

namespace vs::notice {

class BeastHttpClient final : public HttpClient {
 public:
  static constexpr size_t kMaxResponseHeadBytes = 64 * 1024;
  static constexpr size_t kMaxResponseBodyBytes = 1024 * 1024;

  StatusOr<HttpResponse> Send(const HttpRequest& request) override;
};

}  // namespace vs::notice
