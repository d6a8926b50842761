// Test support for the notice tests: a readable gtest printer for Notice, wall times from Unix
// seconds, and FakeHttpClient, which answers each "METHOD URL" with a scripted handler and records
// every request. Not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "common/clock.h"
#include "shadowd/notice/http_client.h"
#include "shadowd/notice/notice.h"

namespace vs::notice {

inline void PrintTo(const Notice& n, std::ostream* os) {
  *os << "Notice{" << SourceName(n.source) << ", " << KindName(n.kind) << ", deadline " << ToUnixMillis(n.deadline)
      << " ms, id '" << n.id << "', detail '" << n.detail << "'}";
}

namespace test_support {

inline WallTime UnixSeconds(int64_t s) { return WallTime(std::chrono::seconds(s)); }

class FakeHttpClient final : public HttpClient {
 public:
  using Handler = std::function<StatusOr<HttpResponse>(const HttpRequest&)>;

  // Answers requests for `method` + `url` (the full URL, query included).
  void On(const std::string& method, const std::string& url, Handler handler) {
    handlers_[method + " " + url] = std::move(handler);
  }
  // Shorthand for a fixed answer.
  void Reply(const std::string& method, const std::string& url, HttpResponse response) {
    On(method, url, [response](const HttpRequest&) -> StatusOr<HttpResponse> { return response; });
  }

  StatusOr<HttpResponse> Send(const HttpRequest& request) override {
    requests.push_back(request);
    auto it = handlers_.find(request.method + " " + request.url);
    if (it == handlers_.end())
      return Unavailable("FakeHttpClient: no handler for " + request.method + " " + request.url);
    return it->second(request);
  }

  // Requests whose method and URL are these.
  std::vector<HttpRequest> RequestsTo(const std::string& method, const std::string& url) const {
    std::vector<HttpRequest> out;
    for (const HttpRequest& r : requests) {
      if (r.method == method && r.url == url) out.push_back(r);
    }
    return out;
  }

  std::vector<HttpRequest> requests;

 private:
  std::map<std::string, Handler> handlers_;
};

// The value of header `name` in `request` (exact name), or "<absent>".
inline std::string HeaderOf(const HttpRequest& request, const std::string& name) {
  for (const auto& [n, v] : request.headers) {
    if (n == name) return v;
  }
  return "<absent>";
}

}  // namespace test_support
}  // namespace vs::notice
