// Test support for the crash promotion through Nova: FakeEvacuatingCloud, an OpenStackApi that models evacuate with scripted servers and
// compute services that records every call as one line ("Evacuate <uuid> <host>", ...). Not thread-safe.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "shadowd/nova/openstack_api.h"

namespace vs::nova::testing {

class FakeEvacuatingCloud final : public OpenStackApi {
 public:
  StatusOr<NovaServer> GetServer(const std::string& instance_uuid) override {
    calls.push_back("GetServer " + instance_uuid);
    if (!get_server_error.ok()) return get_server_error;
    auto it = servers.find(instance_uuid);
    if (it == servers.end()) return NotFound("GET /servers/" + instance_uuid + ": 404 Instance could not be found");
    // After an evacuate, each GET moves the server one scripted state on (the last one stays).
    if (auto next = progress.find(instance_uuid); next != progress.end() && !next->second.empty()) {
      it->second = next->second.front();
      if (next->second.size() > 1) next->second.pop_front();
      if (on_progress) on_progress(it->second);
    }
    return it->second;
  }
  StatusOr<std::map<std::string, std::string>> GetImageProperties(const std::string& image_id) override {
    calls.push_back("GetImageProperties " + image_id);
    return Unimplemented("GetImageProperties");
  }
  Status LiveMigrate(const std::string& instance_uuid, const std::string& host) override {
    calls.push_back("LiveMigrate " + instance_uuid + " " + host);
    return Unimplemented("LiveMigrate");
  }
  StatusOr<std::vector<NovaMigration>> ListMigrations(const std::string& instance_uuid) override {
    calls.push_back("ListMigrations " + instance_uuid);
    return Unimplemented("ListMigrations");
  }
  Status ForceComplete(const std::string& instance_uuid, std::int64_t migration_id) override {
    calls.push_back("ForceComplete " + instance_uuid + " " + std::to_string(migration_id));
    return Unimplemented("ForceComplete");
  }
  // Like Nova's API: refused while the server's host's service is up or the server has a task; sets the task
  // (rebuilding) before answering, then the server follows `evacuation[uuid]`, one state per GetServer.
  Status Evacuate(const std::string& instance_uuid, const std::string& host) override {
    calls.push_back("Evacuate " + instance_uuid + " " + host);
    if (!evacuate_error.ok()) return evacuate_error;
    auto it = servers.find(instance_uuid);
    if (it == servers.end()) return NotFound("instance " + instance_uuid);
    if (!it->second.task_state.empty()) return FailedPrecondition("409 instance is in task_state " + it->second.task_state);
    for (const auto& [id, service] : services) {
      if (service.host == it->second.host && !service.forced_down) {
        return FailedPrecondition("409 Compute service of " + service.host + " is still in use.");
      }
    }
    it->second.task_state = "rebuilding";
    it->second.status = "REBUILD";
    progress[instance_uuid] = evacuation[instance_uuid];
    if (on_evacuate) on_evacuate();
    return Status::Ok();
  }
  StatusOr<ComputeService> FindComputeService(const std::string& host) override {
    calls.push_back("FindComputeService " + host);
    for (const auto& [id, service] : services) {
      if (service.host == host) return service;
    }
    return NotFound("no nova-compute service on " + host);
  }
  Status SetForcedDown(const std::string& service_id, bool forced_down) override {
    calls.push_back("SetForcedDown " + service_id + " " + (forced_down ? "true" : "false"));
    if (!forced_down_error.ok()) return forced_down_error;
    auto it = services.find(service_id);
    if (it == services.end()) return NotFound("service " + service_id);
    it->second.forced_down = forced_down;
    it->second.state = forced_down ? "down" : it->second.state;
    return Status::Ok();
  }
  StatusOr<std::string> ComputeNodeUuid(const std::string& host) override {
    calls.push_back("ComputeNodeUuid " + host);
    return Unimplemented("ComputeNodeUuid");
  }
  Status PutAllocation(const Allocation& allocation) override {
    calls.push_back("PutAllocation " + allocation.consumer_uuid);
    return Unimplemented("PutAllocation");
  }
  Status DeleteAllocation(const std::string& consumer_uuid) override {
    calls.push_back("DeleteAllocation " + consumer_uuid);
    if (!delete_allocation_error.ok()) return delete_allocation_error;
    return Status::Ok();
  }
  StatusOr<ProviderUsage> GetProviderUsage(const std::string& provider_uuid) override {
    calls.push_back("GetProviderUsage " + provider_uuid);
    return Unimplemented("GetProviderUsage");
  }

  // The calls whose line starts with `prefix`.
  std::vector<std::string> Calls(const std::string& prefix) const {
    std::vector<std::string> out;
    for (const auto& c : calls) {
      if (c.compare(0, prefix.size(), prefix) == 0) out.push_back(c);
    }
    return out;
  }
  // The calls other than GetServer, in order.
  std::vector<std::string> Actions() const {
    std::vector<std::string> out;
    for (const auto& c : calls) {
      if (c.compare(0, 10, "GetServer ") != 0) out.push_back(c);
    }
    return out;
  }

  std::map<std::string, NovaServer> servers;                   // by uuid
  std::map<std::string, ComputeService> services;              // by id
  std::map<std::string, std::deque<NovaServer>> evacuation;    // what the server goes through once evacuated
  std::map<std::string, std::deque<NovaServer>> progress;      // under way
  std::function<void()> on_evacuate;
  std::function<void(const NovaServer&)> on_progress;
  Status get_server_error, evacuate_error, forced_down_error, delete_allocation_error;
  std::vector<std::string> calls;

 private:
  static Status Unimplemented(const std::string& what) { return Internal(what + " is not faked"); }
};

}  // namespace vs::nova::testing
