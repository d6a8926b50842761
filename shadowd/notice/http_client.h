// HttpClient: the one HTTP call the metadata pollers need, behind an interface so that pollers
// are tested against a fake and the Boost implementation (beast_http_client.h) stays in one place.
//
// A response with any status code (404, 401, 500, ...) is a successful Send: what a status means
// is the caller's business (404 is "no event" for AWS). Send fails only when no complete response
// arrived.
// Ownership: requests and responses are values. Thread-safety: implementations document theirs.
// Failure modes of Send: InvalidArgument for a malformed request (URL, header), Unavailable for a
// connection problem or an unreadable response, DeadlineExceeded when request.timeout passed,
// ResourceExhausted for a response over the size cap; every message names the URL.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace vs::notice {

struct HttpRequest {
  std::string method = "GET";
  std::string url;  // "http://host:port/path?query"; the port defaults to 80
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // Bounds connect + send + receive together.
  Duration timeout = std::chrono::seconds(2);
};

struct HttpResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // in arrival order, names as sent
  std::string body;

  // The value of the first header called `name` (compared case-insensitively), if any.
  std::optional<std::string_view> Header(std::string_view name) const;
};

class HttpClient {
 public:
  virtual ~HttpClient() = default;
  virtual StatusOr<HttpResponse> Send(const HttpRequest& request) = 0;
};

}  // namespace vs::notice
