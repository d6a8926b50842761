// OpenStackHttpApi: OpenStackApi over HTTP (notice::HttpClient), with a KeystoneSession for the token and the
// endpoints. The only code that knows the wire format of Nova, Glance and Placement.
//
// Every request carries X-Auth-Token, Accept: application/json, Content-Type: application/json with a body, and
// the microversion of its service (OpenStack-API-Version: compute 2.79 or placement 1.28; Nova also gets the
// legacy X-OpenStack-Nova-API-Version). A 401 makes the session drop the token and the call is sent once more
// with a new one. Path parts (instance UUIDs come from domain XML, so from users) are percent-encoded.
//
// Ownership: keeps references to `http` and `clock`, which outlive it. Thread-safety: thread-safe when `http` is
// (BeastHttpClient is): calls share nothing but the session, which locks. Failure modes: see openstack_api.h;
// errors are made by HttpStatusError (keystone_session.h), the one place HTTP statuses become codes.
#pragma once

#include <initializer_list>
#include <string>

#include "common/clock.h"
#include "shadowd/notice/http_client.h"
#include "shadowd/nova/keystone_session.h"
#include "shadowd/nova/nova_options.h"
#include "shadowd/nova/openstack_api.h"

namespace vs::nova {

inline constexpr char kComputeMicroversion[] = "2.79";
inline constexpr char kPlacementMicroversion[] = "1.28";

class OpenStackHttpApi final : public OpenStackApi {
 public:
  OpenStackHttpApi(NovaOptions options, notice::HttpClient& http, Clock& clock);

  StatusOr<NovaServer> GetServer(const std::string& instance_uuid) override;
  StatusOr<std::map<std::string, std::string>> GetImageProperties(const std::string& image_id) override;
  Status LiveMigrate(const std::string& instance_uuid, const std::string& host) override;
  StatusOr<std::vector<NovaMigration>> ListMigrations(const std::string& instance_uuid) override;
  Status ForceComplete(const std::string& instance_uuid, std::int64_t migration_id) override;
  Status Evacuate(const std::string& instance_uuid, const std::string& host) override;
  StatusOr<ComputeService> FindComputeService(const std::string& host) override;
  Status SetForcedDown(const std::string& service_id, bool forced_down) override;
  StatusOr<std::string> ComputeNodeUuid(const std::string& host) override;
  Status PutAllocation(const Allocation& allocation) override;
  Status DeleteAllocation(const std::string& consumer_uuid) override;
  StatusOr<ProviderUsage> GetProviderUsage(const std::string& provider_uuid) override;

 private:
  struct Answer {
    int status = 0;
    std::string body;
  };
  // Sends METHOD {service endpoint}{path} with `body` (none when empty) and the service's headers; retries once
  // after a 401 with a fresh token. An answer whose status is not in `expected` becomes HttpStatusError.
  StatusOr<Answer> Call(const std::string& call, Service service, const std::string& method, const std::string& path,
                        const std::string& body, std::initializer_list<int> expected);

  notice::HttpClient& http_;
  KeystoneSession session_;
};

// "a%2Fb" for "a/b": everything but RFC 3986's unreserved characters percent-encoded, for a path segment or a
// query value.
std::string PercentEncode(const std::string& text);

}  // namespace vs::nova
