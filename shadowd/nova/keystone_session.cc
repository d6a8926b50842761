#include "shadowd/nova/keystone_session.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <utility>

#include "shadowd/notice/http_date.h"

namespace vs::nova {
namespace {

using nlohmann::json;

constexpr std::chrono::minutes kMaxRenewMargin{5};

// Untrusted text from a service, made safe for a message: printable ASCII only, bounded.
std::string Printable(std::string_view text, std::size_t max_chars = 300) {
  std::string out;
  for (char c : text.substr(0, max_chars)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (text.size() > max_chars) out += "...";
  return out;
}

std::string StringField(const json& object, const char* key) {
  if (!object.is_object()) return "";
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

// The catalog entry of `type`: the endpoint with `interface` and, when one is configured, `region` (Keystone
// names it "region_id"; older ones also "region").
std::string FindEndpoint(const json& catalog, const std::string& type, const NovaOptions& options) {
  if (!catalog.is_array()) return "";
  for (const json& service : catalog) {
    if (StringField(service, "type") != type || !service.contains("endpoints") || !service["endpoints"].is_array()) {
      continue;
    }
    for (const json& endpoint : service["endpoints"]) {
      if (StringField(endpoint, "interface") != options.interface) continue;
      if (!options.region_name.empty() && StringField(endpoint, "region_id") != options.region_name &&
          StringField(endpoint, "region") != options.region_name) {
        continue;
      }
      std::string url = StringField(endpoint, "url");
      while (!url.empty() && url.back() == '/') url.pop_back();
      if (!url.empty()) return url;
    }
  }
  return "";
}

}  // namespace

std::string ServiceType(Service service) {
  switch (service) {
    case Service::kCompute: return "compute";
    case Service::kImage: return "image";
    case Service::kPlacement: return "placement";
  }
  return "?";
}

StatusOr<std::string> Token::Endpoint(Service service, const NovaOptions& options) const {
  const std::string& url =
      service == Service::kCompute ? compute_url : service == Service::kImage ? image_url : placement_url;
  if (!url.empty()) return url;
  return FailedPrecondition("Keystone's catalog has no " + ServiceType(service) + " endpoint with interface " +
                            options.interface +
                            (options.region_name.empty() ? "" : " in region " + options.region_name) +
                            "; check `openstack endpoint list --service " + ServiceType(service) +
                            "` and [nova] interface / region_name");
}

std::string ServiceErrorMessage(const std::string& body) {
  json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_object()) {
    // Placement: {"errors": [{"status": 409, "title": "Conflict", "detail": "...", "code": "..."}]}
    if (auto errors = doc.find("errors"); errors != doc.end() && errors->is_array() && !errors->empty()) {
      const json& first = (*errors)[0];
      std::string detail = StringField(first, "detail");
      if (detail.empty()) detail = StringField(first, "title");
      if (!detail.empty()) return Printable(detail);
    }
    // Nova: {"badRequest": {"message": "...", "code": 400}}; Keystone: {"error": {"message": ..., "code": 401}}.
    for (const auto& [kind, value] : doc.items()) {
      std::string message = StringField(value, "message");
      if (!message.empty()) return Printable(message);
    }
  }
  std::string text = body;
  std::replace(text.begin(), text.end(), '\n', ' ');
  return Printable(text);
}

Status HttpStatusError(const std::string& call, const notice::HttpRequest& request,
                       const notice::HttpResponse& response) {
  const std::string message = ServiceErrorMessage(response.body);
  const std::string text = call + ": " + request.method + " " + request.url + " answered HTTP " +
                           std::to_string(response.status) + (message.empty() ? "" : ": " + message);
  const int status = response.status;
  if (status == 400) return InvalidArgument(text);
  if (status == 401) return PermissionDenied(text + " (Keystone refused the credentials or the token)");
  if (status == 403) return PermissionDenied(text + " (the [nova] user's role does not allow this call)");
  if (status == 404) return NotFound(text);
  if (status == 409) {
    // Placement's generation conflicts are races another writer won: retryable. Nova's 409s are states (an
    // instance busy in another task, a host not down): the call fails again until that changes.
    if (response.body.find("placement.concurrent_update") != std::string::npos) return Aborted(text);
    return FailedPrecondition(text);
  }
  if (status == 429 || status >= 500) return Unavailable(text);
  return Internal(text + " (not an answer this call expects)");
}

KeystoneSession::KeystoneSession(NovaOptions options, notice::HttpClient& http, Clock& clock)
    : options_(std::move(options)), http_(http), clock_(clock) {}

StatusOr<Token> KeystoneSession::Current() {
  MutexLock lock(mu_);
  if (token_ && clock_.Now() < token_->renew_at) return *token_;
  token_.reset();
  VS_ASSIGN_OR_RETURN(Token token, Fetch());
  token_ = token;
  return token;
}

void KeystoneSession::Invalidate(const std::string& token_id) {
  MutexLock lock(mu_);
  if (token_ && token_->id == token_id) token_.reset();
}

StatusOr<Token> KeystoneSession::Fetch() {
  const json body = {
      {"auth",
       {{"identity",
         {{"methods", {"password"}},
          {"password",
           {{"user",
             {{"name", options_.username},
              {"domain", {{"name", options_.user_domain_name}}},
              {"password", options_.password}}}}}}},
        {"scope", {{"project", {{"name", options_.project_name}, {"domain", {{"name", options_.project_domain_name}}}}}}}}}};
  notice::HttpRequest request;
  request.method = "POST";
  request.url = options_.auth_url + "/auth/tokens";
  request.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
  request.body = body.dump();
  request.timeout = options_.timeout;
  const std::string call = "Keystone token for user " + options_.username + " in project " + options_.project_name;
  StatusOr<notice::HttpResponse> response = http_.Send(request);
  if (!response.ok()) return response.status().Annotate(call);
  if (response->status != 201) return HttpStatusError(call, request, *response);
  const auto internal = [&](const std::string& what) {
    return Internal(call + ": POST " + request.url + " answered HTTP 201 but " + what);
  };
  std::optional<std::string_view> subject = response->Header("X-Subject-Token");
  if (!subject || subject->empty()) return internal("without an X-Subject-Token header");
  json doc = json::parse(response->body, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object() || !doc.contains("token") || !doc["token"].is_object()) {
    return internal("its body is not {\"token\": {...}}: " + Printable(response->body, 120));
  }
  const json& token_doc = doc["token"];
  StatusOr<WallTime> issued = notice::ParseRfc3339(StringField(token_doc, "issued_at"));
  StatusOr<WallTime> expires = notice::ParseRfc3339(StringField(token_doc, "expires_at"));
  if (!issued.ok() || !expires.ok() || *expires <= *issued) {
    return internal("token.issued_at / expires_at are not RFC 3339 times, the first before the second: '" +
                    Printable(StringField(token_doc, "issued_at"), 64) + "', '" +
                    Printable(StringField(token_doc, "expires_at"), 64) + "'");
  }
  const Duration lifetime = std::chrono::duration_cast<Duration>(*expires - *issued);
  const Duration margin = std::min<Duration>(lifetime / 5, kMaxRenewMargin);
  Token token;
  token.id = std::string(*subject);
  const json catalog = token_doc.contains("catalog") ? token_doc["catalog"] : json::array();
  token.compute_url = FindEndpoint(catalog, "compute", options_);
  token.image_url = FindEndpoint(catalog, "image", options_);
  token.placement_url = FindEndpoint(catalog, "placement", options_);
  token.renew_at = clock_.Now() + lifetime - margin;
  return token;
}

}  // namespace vs::nova
