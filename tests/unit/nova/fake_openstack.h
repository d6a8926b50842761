// Test support for the nova tests: FakeHttpClient, which answers "METHOD URL" from scripted queues and records
// every request, and canned Keystone answers. Not thread-safe.
#pragma once

#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "shadowd/notice/http_client.h"
#include "shadowd/nova/nova_options.h"

namespace vs::nova::testing {

inline constexpr char kAuthUrl[] = "http://10.77.0.1:5000/v3";
inline constexpr char kCompute[] = "http://10.77.0.1:8774/v2.1";
inline constexpr char kImage[] = "http://10.77.0.1:9292";
inline constexpr char kPlacement[] = "http://10.77.0.1:8778";
inline constexpr char kPassword[] = "pw-never-printed";

inline NovaOptions Options() {
  NovaOptions options;
  options.auth_url = kAuthUrl;
  options.username = "virt-shadow";
  options.password = kPassword;
  options.project_name = "service";
  options.timeout = std::chrono::seconds(7);
  return options;
}

inline notice::HttpResponse Response(int status, const std::string& body = "",
                                     std::vector<std::pair<std::string, std::string>> headers = {}) {
  return {status, std::move(headers), body};
}

inline nlohmann::json Endpoint(const std::string& interface, const std::string& region, const std::string& url) {
  return {{"id", "e-" + interface + region}, {"interface", interface}, {"region_id", region}, {"region", region},
          {"url", url}};
}

// A catalog as DevStack's Keystone returns it: public endpoints in RegionOne, internal ones on another network, and
// a second region.
inline nlohmann::json Catalog() {
  using nlohmann::json;
  return json::array({
      {{"type", "identity"}, {"name", "keystone"}, {"endpoints", {Endpoint("public", "RegionOne", kAuthUrl)}}},
      {{"type", "compute"},
       {"name", "nova"},
       {"endpoints",
        {Endpoint("public", "RegionOne", kCompute), Endpoint("internal", "RegionOne", "http://10.0.0.1:8774/v2.1"),
         Endpoint("public", "RegionTwo", "http://10.88.0.1:8774/v2.1/")}}},
      {{"type", "image"},
       {"name", "glance"},
       {"endpoints", {Endpoint("public", "RegionOne", kImage), Endpoint("internal", "RegionOne", "http://10.0.0.1:9292")}}},
      {{"type", "placement"},
       {"name", "placement"},
       {"endpoints",
        {Endpoint("public", "RegionOne", kPlacement), Endpoint("internal", "RegionOne", "http://10.0.0.1:8778")}}},
  });
}

// Keystone's 201 for POST /auth/tokens: a token issued at 10:00 that lives `lifetime_minutes`.
inline notice::HttpResponse TokenResponse(const std::string& token, int lifetime_minutes = 60,
                                          nlohmann::json catalog = Catalog()) {
  const std::string expires =
      "2026-12-06T" + std::to_string(10 + lifetime_minutes / 60) + ":" +
      (lifetime_minutes % 60 < 10 ? "0" : "") + std::to_string(lifetime_minutes % 60) + ":00.000000Z";
  nlohmann::json body = {{"token",
                          {{"methods", {"password"}},
                           {"user", {{"id", "u1"}, {"name", "virt-shadow"}, {"domain", {{"id", "default"}, {"name", "Default"}}}}},
                           {"project", {{"id", "p1"}, {"name", "service"}}},
                           {"issued_at", "2026-12-06T10:00:00.000000Z"},
                           {"expires_at", expires},
                           {"catalog", std::move(catalog)}}}};
  return Response(201, body.dump(), {{"X-Subject-Token", token}, {"Content-Type", "application/json"}});
}

class FakeHttpClient final : public notice::HttpClient {
 public:
  // Answers for "METHOD URL", in order; the last one repeats until another is queued.
  void Queue(const std::string& method_url, notice::HttpResponse response) {
    answers_[method_url].push_back({std::move(response), false});
  }
  // Makes "METHOD URL" fail as a transport error.
  void Fail(const std::string& method_url, Status status) { failures_.emplace(method_url, std::move(status)); }

  StatusOr<notice::HttpResponse> Send(const notice::HttpRequest& request) override {
    requests.push_back(request);
    const std::string key = request.method + " " + request.url;
    if (auto failure = failures_.find(key); failure != failures_.end()) return failure->second;
    auto it = answers_.find(key);
    if (it == answers_.end() || it->second.empty()) return Response(599, "no scripted answer for " + key);
    std::deque<Answer>& queue = it->second;
    while (queue.size() > 1 && queue.front().served) queue.pop_front();
    queue.front().served = true;
    return queue.front().response;
  }

  // The requests sent as "METHOD URL".
  std::vector<notice::HttpRequest> Sent(const std::string& method_url) const {
    std::vector<notice::HttpRequest> out;
    for (const auto& r : requests) {
      if (r.method + " " + r.url == method_url) out.push_back(r);
    }
    return out;
  }

  std::vector<notice::HttpRequest> requests;

 private:
  struct Answer {
    notice::HttpResponse response;
    bool served;
  };
  std::map<std::string, std::deque<Answer>> answers_;
  std::map<std::string, Status> failures_;
};

// The value of header `name` in `request` ("" if absent).
inline std::string HeaderOf(const notice::HttpRequest& request, const std::string& name) {
  for (const auto& [k, v] : request.headers) {
    if (k == name) return v;
  }
  return "";
}

}  // namespace vs::nova::testing
