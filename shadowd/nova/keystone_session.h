// KeystoneSession: a project-scoped Keystone v3 token and the endpoints of its catalog, fetched with a password
// and renewed before it expires.
//
//   POST {auth_url}/auth/tokens  {"auth": {"identity": {"methods": ["password"], "password": {"user": {"name",
//        "domain": {"name"}, "password"}}}, "scope": {"project": {"name", "domain": {"name"}}}}}
//   -> 201, the token in header X-Subject-Token; body {"token": {"issued_at", "expires_at", "catalog": [{"type":
//      "compute", "endpoints": [{"interface": "public", "region": "RegionOne", "url": ...}]}, ...]}}
//
// The token's lifetime is expires_at - issued_at, both Keystone's clock, counted from the moment it arrived on
// the injected monotonic clock: a skew between this host's clock and Keystone's does not matter. It is renewed
// once less than a fifth of that lifetime (at most 5 minutes) is left, and when a caller reports a 401 for it
// (Keystone may revoke tokens early, e.g. on a password change).
// Endpoints: the catalog entries of type compute, image and placement with the configured interface, and the
// configured region when one is (else the first); a missing one is an error only when a call needs it.
//
// Ownership: keeps a reference to `http` and `clock`, which outlive it. The password is kept, to renew, and
// never appears in an error or log.
// Thread-safety: thread-safe; a Mutex guards the token, and a fetch happens under it (callers needing a token
// meanwhile wait for that one fetch rather than starting their own).
// Failure modes of Current: what the HTTP call fails with (Unavailable, DeadlineExceeded, ...), and for Keystone's
// answer PermissionDenied on 401 (wrong user, password or domain), NotFound on 404 (the project), Internal when
// a 201 lacks the token header, a parsable body or its times; each names the URL, the status and Keystone's
// message.
#pragma once

#include <optional>
#include <string>

#include "common/clock.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "shadowd/notice/http_client.h"
#include "shadowd/nova/nova_options.h"

namespace vs::nova {

// The three services shadowd calls; their catalog types.
enum class Service { kCompute, kImage, kPlacement };
std::string ServiceType(Service service);  // "compute", "image", "placement"

struct Token {
  std::string id;  // X-Subject-Token
  std::string compute_url;  // catalog endpoints, without a trailing '/'; empty when the catalog has none
  std::string image_url;
  std::string placement_url;
  MonoTime renew_at{};  // on the session's clock

  // The endpoint of `service`, or FailedPrecondition naming the catalog type, interface and region.
  StatusOr<std::string> Endpoint(Service service, const NovaOptions& options) const;
};

class KeystoneSession {
 public:
  KeystoneSession(NovaOptions options, notice::HttpClient& http, Clock& clock);

  // A token that was valid when last checked, fetched or renewed as needed.
  StatusOr<Token> Current() VS_EXCLUDES(mu_);
  // A call was refused with 401 under `token_id`: forget it, so that the next Current fetches another. A no-op
  // if the session already holds a different token (another thread renewed it).
  void Invalidate(const std::string& token_id) VS_EXCLUDES(mu_);

  const NovaOptions& options() const { return options_; }

 private:
  StatusOr<Token> Fetch() VS_REQUIRES(mu_);

  const NovaOptions options_;
  notice::HttpClient& http_;
  Clock& clock_;
  Mutex mu_;
  std::optional<Token> token_ VS_GUARDED_BY(mu_);
};

// --- Shared by the session and the API (openstack_http_api.cc); not for other users. ---

// The Status for an HTTP answer that is not the expected one: the one place HTTP statuses become codes.
// `call` names the operation ("GetServer"); the message quotes the service's own error message from the body
// (Nova/Keystone {"<kind>": {"message": ...}}, Placement {"errors": [{"detail": ...}]}, else the body's start).
Status HttpStatusError(const std::string& call, const notice::HttpRequest& request,
                       const notice::HttpResponse& response);
// The service's error message from a response body, printable and at most ~300 characters.
std::string ServiceErrorMessage(const std::string& body);

}  // namespace vs::nova
