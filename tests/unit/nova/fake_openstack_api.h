// FakeOpenStackApi: an OpenStackApi with scripted answers that records every call as one line, for the tests of
// what shadowd does with Nova (watcher, live mover, reserving PeerOps). Not thread-safe.
#pragma once

#include <deque>
#include <map>
#include <string>
#include <vector>

#include "shadowd/nova/openstack_api.h"

namespace vs::nova::testing {

class FakeOpenStackApi final : public OpenStackApi {
 public:
  // GetServer answers these in order, the last one repeating; an instance without any answer is NotFound.
  std::map<std::string, std::deque<StatusOr<NovaServer>>> servers;
  std::map<std::string, StatusOr<std::map<std::string, std::string>>> images;
  std::vector<NovaMigration> migrations;
  Status force_complete = Status::Ok();
  Status live_migrate = Status::Ok();
  Status evacuate = Status::Ok();
  std::map<std::string, std::string> compute_nodes;  // host -> compute node UUID
  Status put_allocation = Status::Ok();
  Status delete_allocation = Status::Ok();
  std::map<std::string, Allocation> allocations;  // by consumer
  std::vector<std::string> calls;

  StatusOr<NovaServer> GetServer(const std::string& instance_uuid) override {
    calls.push_back("GetServer " + instance_uuid);
    auto found = servers.find(instance_uuid);
    if (found == servers.end() || found->second.empty()) return NotFound("no server " + instance_uuid);
    StatusOr<NovaServer> answer = found->second.front();
    if (found->second.size() > 1) found->second.pop_front();
    return answer;
  }
  StatusOr<std::map<std::string, std::string>> GetImageProperties(const std::string& image_id) override {
    calls.push_back("GetImageProperties " + image_id);
    auto found = images.find(image_id);
    if (found == images.end()) return NotFound("no image " + image_id);
    return found->second;
  }
  Status LiveMigrate(const std::string& instance_uuid, const std::string& host) override {
    calls.push_back("LiveMigrate " + instance_uuid + " " + host);
    return live_migrate;
  }
  StatusOr<std::vector<NovaMigration>> ListMigrations(const std::string& instance_uuid) override {
    calls.push_back("ListMigrations " + instance_uuid);
    return migrations;
  }
  Status ForceComplete(const std::string& instance_uuid, std::int64_t migration_id) override {
    calls.push_back("ForceComplete " + instance_uuid + " " + std::to_string(migration_id));
    return force_complete;
  }
  Status Evacuate(const std::string& instance_uuid, const std::string& host) override {
    calls.push_back("Evacuate " + instance_uuid + " " + host);
    return evacuate;
  }
  StatusOr<ComputeService> FindComputeService(const std::string& host) override {
    calls.push_back("FindComputeService " + host);
    return ComputeService{.id = "svc-" + host, .host = host, .status = "enabled", .state = "up"};
  }
  Status SetForcedDown(const std::string& service_id, bool forced_down) override {
    calls.push_back("SetForcedDown " + service_id + (forced_down ? " true" : " false"));
    return Status::Ok();
  }
  StatusOr<std::string> ComputeNodeUuid(const std::string& host) override {
    calls.push_back("ComputeNodeUuid " + host);
    auto found = compute_nodes.find(host);
    if (found == compute_nodes.end()) return NotFound("no compute node on " + host);
    return found->second;
  }
  Status PutAllocation(const Allocation& allocation) override {
    calls.push_back("PutAllocation " + allocation.consumer_uuid + " " + allocation.provider_uuid);
    if (put_allocation.ok()) allocations[allocation.consumer_uuid] = allocation;
    return put_allocation;
  }
  Status DeleteAllocation(const std::string& consumer_uuid) override {
    calls.push_back("DeleteAllocation " + consumer_uuid);
    if (delete_allocation.ok()) allocations.erase(consumer_uuid);
    return delete_allocation;
  }
  StatusOr<ProviderUsage> GetProviderUsage(const std::string& provider_uuid) override {
    calls.push_back("GetProviderUsage " + provider_uuid);
    return ProviderUsage{};
  }
};

}  // namespace vs::nova::testing
