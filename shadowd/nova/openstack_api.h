// OpenStackApi: the calls shadowd makes to an OpenStack cloud, behind an interface so that the logic above
// (which policy a Nova instance has, how a switchover is asked of Nova) is tested with a fake, and the one HTTP
// implementation (openstack_http_api.h, Keystone + Nova + Glance + Placement over notice::HttpClient) stays in
// one place.
//
// Nova calls use compute microversion 2.79 (2.47+ embeds the flavor with its extra specs in a server, 2.53+ names
// services and hypervisors by UUID); Placement calls use placement 1.28 (consumer generations).
//
// Ownership: requests and results are values. Thread-safety: implementations document theirs.
// Failure modes (every call): each error names the call, the method and URL, the HTTP status and the service's
// own message. NotFound for 404 (except where a call says otherwise), PermissionDenied for 401 (after one
// token renewal) and 403, InvalidArgument for 400, FailedPrecondition for a 409 from Nova (e.g. an instance
// busy in another task) and for a missing catalog endpoint, Aborted for a Placement generation conflict,
// Unavailable for 5xx/429 and unreachable services, DeadlineExceeded for a timeout, Internal for an answer that
// is not what the API documents (unparsable JSON, missing fields).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace vs::nova {

// A server's flavor as Nova embeds it (2.47+): a snapshot taken when the server was created or resized, so
// changing the flavor later does not change it.
struct NovaFlavor {
  std::string name;  // "original_name"
  std::uint32_t vcpus = 0;
  std::uint64_t ram_mib = 0;
  std::uint64_t disk_gb = 0;
  std::map<std::string, std::string> extra_specs;
  bool operator==(const NovaFlavor&) const = default;
};

// GET /servers/{id}. Fields Nova reports as null are empty.
struct NovaServer {
  std::string id;
  std::string name;
  std::string project_id;  // "tenant_id"
  std::string user_id;
  std::string status;      // ACTIVE, SHUTOFF, MIGRATING, ...
  std::string task_state;  // "OS-EXT-STS:task_state": migrating, ...; empty when none
  std::string host;        // "OS-EXT-SRV-ATTR:host": the nova-compute service's host (admin only)
  std::map<std::string, std::string> metadata;  // `openstack server set --property K=V`
  NovaFlavor flavor;
  std::string image_id;  // empty when booted from a volume
  bool operator==(const NovaServer&) const = default;
};

// One in-progress live migration of a server (GET /servers/{id}/migrations).
struct NovaMigration {
  std::int64_t id = 0;
  std::string status;  // queued, preparing, running, ...
  std::string source_compute;
  std::string dest_compute;
  std::string migration_type;  // empty when Nova does not say (this API lists live migrations only)
  bool operator==(const NovaMigration&) const = default;
};

// A nova-compute service (GET /os-services).
struct ComputeService {
  std::string id;  // a UUID (2.53+)
  std::string host;
  std::string status;  // enabled, disabled
  std::string state;   // up, down
  bool forced_down = false;
  bool operator==(const ComputeService&) const = default;
};

// What a Placement resource provider has and what is used of it.
struct ProviderInventory {
  std::uint64_t total = 0;
  std::uint64_t reserved = 0;
  double allocation_ratio = 1.0;
  bool operator==(const ProviderInventory&) const = default;
};
struct ProviderUsage {
  std::map<std::string, ProviderInventory> inventories;  // by resource class, e.g. "VCPU", "MEMORY_MB"
  std::map<std::string, std::uint64_t> usages;
  bool operator==(const ProviderUsage&) const = default;
};

// One consumer's allocation against one resource provider.
struct Allocation {
  std::string consumer_uuid;
  std::string provider_uuid;
  std::map<std::string, std::uint64_t> resources;  // e.g. {"MEMORY_MB": 512, "VCPU": 1}
  std::string project_id;
  std::string user_id;
};

class OpenStackApi {
 public:
  virtual ~OpenStackApi() = default;

  // GET {compute}/servers/{id}.
  virtual StatusOr<NovaServer> GetServer(const std::string& instance_uuid) = 0;
  // GET {image}/v2/images/{id}: Glance v2 puts custom properties at the top level; every string-valued key
  // (core ones like "name" included) is returned.
  virtual StatusOr<std::map<std::string, std::string>> GetImageProperties(const std::string& image_id) = 0;
  // POST {compute}/servers/{id}/action {"os-migrateLive": {"host": H, "block_migration": true}}; Nova answers
  // 202 and migrates asynchronously (follow it with ListMigrations / GetServer).
  virtual Status LiveMigrate(const std::string& instance_uuid, const std::string& host) = 0;
  // GET {compute}/servers/{id}/migrations: the server's in-progress live migrations.
  virtual StatusOr<std::vector<NovaMigration>> ListMigrations(const std::string& instance_uuid) = 0;
  // POST {compute}/servers/{id}/migrations/{mid}/action {"force_complete": null} (202): pause the guest, or
  // switch to post-copy where Nova allows it, so that the migration ends.
  virtual Status ForceComplete(const std::string& instance_uuid, std::int64_t migration_id) = 0;
  // POST {compute}/servers/{id}/action {"evacuate": {"host": H}} (200 or 202): rebuild on H a server whose
  // host is down (its nova-compute must be down or forced down).
  virtual Status Evacuate(const std::string& instance_uuid, const std::string& host) = 0;
  // GET {compute}/os-services?binary=nova-compute&host=H; NotFound when H runs none.
  virtual StatusOr<ComputeService> FindComputeService(const std::string& host) = 0;
  // PUT {compute}/os-services/{id} {"forced_down": B}: tells Nova a host is down without waiting for its
  // service to time out (needed before Evacuate).
  virtual Status SetForcedDown(const std::string& service_id, bool forced_down) = 0;
  // The compute node UUID of Nova host H, which is also its Placement resource provider's UUID: from
  // GET {compute}/os-hypervisors/detail, the hypervisor whose service.host is H. (The provider's name is the
  // hypervisor_hostname, which need not be the Nova host name.) NotFound when none. Reads the first page only
  // (Nova's [api] max_limit hypervisors, 1000 by default).
  virtual StatusOr<std::string> ComputeNodeUuid(const std::string& host) = 0;
  // Makes `allocation` the consumer's only allocation: GET {placement}/allocations/{consumer} for its
  // consumer generation (null for a new consumer), then PUT {placement}/allocations/{consumer} (204). A
  // generation conflict (409) is retried once with a fresh generation, then reported as Aborted.
  virtual Status PutAllocation(const Allocation& allocation) = 0;
  // DELETE {placement}/allocations/{consumer} (204); a consumer without allocations (404) is OK.
  virtual Status DeleteAllocation(const std::string& consumer_uuid) = 0;
  // GET {placement}/resource_providers/{uuid}/inventories and .../usages.
  virtual StatusOr<ProviderUsage> GetProviderUsage(const std::string& provider_uuid) = 0;
};

}  // namespace vs::nova
