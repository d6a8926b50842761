#include "shadowd/nova/openstack_http_api.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <utility>

namespace vs::nova {
namespace {

using nlohmann::json;

std::string Printable(std::string_view text, std::size_t max_chars = 120) {
  std::string out;
  for (char c : text.substr(0, max_chars)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (text.size() > max_chars) out += "...";
  return out;
}

// A JSON answer's fields, read leniently where OpenStack writes null for "none" and strictly where the API
// promises a value: a missing required field is Internal naming the call and the field.
class Reader {
 public:
  explicit Reader(std::string call) : call_(std::move(call)) {}

  StatusOr<json> Parse(const std::string& body) const {
    json doc = json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (!doc.is_object()) return Internal(call_ + ": the answer is not a JSON object: " + Printable(body));
    return doc;
  }
  StatusOr<json> Object(const json& parent, const char* key) const {
    auto it = parent.find(key);
    if (it == parent.end() || !it->is_object()) return Internal(call_ + ": the answer has no object '" + key + "'");
    return *it;
  }
  StatusOr<json> Array(const json& parent, const char* key) const {
    auto it = parent.find(key);
    if (it == parent.end() || !it->is_array()) return Internal(call_ + ": the answer has no list '" + key + "'");
    return *it;
  }
  // A string field; null or absent is "".
  static std::string String(const json& parent, const char* key) {
    auto it = parent.find(key);
    return it != parent.end() && it->is_string() ? it->get<std::string>() : "";
  }
  StatusOr<std::uint64_t> Unsigned(const json& parent, const char* key) const {
    auto it = parent.find(key);
    if (it == parent.end() || !it->is_number_unsigned()) {
      return Internal(call_ + ": the answer has no whole number '" + key + "'");
    }
    return it->get<std::uint64_t>();
  }
  // Every string value of an object (non-string values, which OpenStack does not put in these maps, skipped).
  static std::map<std::string, std::string> StringMap(const json& parent, const char* key) {
    std::map<std::string, std::string> out;
    auto it = parent.find(key);
    if (it == parent.end() || !it->is_object()) return out;
    for (const auto& [k, v] : it->items()) {
      if (v.is_string()) out.emplace(k, v.get<std::string>());
    }
    return out;
  }

 private:
  std::string call_;
};

std::string InstanceCall(const char* call, const std::string& uuid) { return std::string(call) + "(" + uuid + ")"; }

}  // namespace

std::string PercentEncode(const std::string& text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

OpenStackHttpApi::OpenStackHttpApi(NovaOptions options, notice::HttpClient& http, Clock& clock)
    : http_(http), session_(std::move(options), http, clock) {}

StatusOr<OpenStackHttpApi::Answer> OpenStackHttpApi::Call(const std::string& call, Service service,
                                                          const std::string& method, const std::string& path,
                                                          const std::string& body,
                                                          std::initializer_list<int> expected) {
  for (int attempt = 0;; ++attempt) {
    StatusOr<Token> token = session_.Current();
    if (!token.ok()) return token.status().Annotate(call);
    StatusOr<std::string> endpoint = token->Endpoint(service, session_.options());
    if (!endpoint.ok()) return endpoint.status().Annotate(call);
    notice::HttpRequest request;
    request.method = method;
    request.url = *endpoint + path;
    request.timeout = session_.options().timeout;
    request.headers = {{"X-Auth-Token", token->id}, {"Accept", "application/json"}};
    if (service == Service::kCompute) {
      request.headers.emplace_back("OpenStack-API-Version", std::string("compute ") + kComputeMicroversion);
      request.headers.emplace_back("X-OpenStack-Nova-API-Version", kComputeMicroversion);
    } else if (service == Service::kPlacement) {
      request.headers.emplace_back("OpenStack-API-Version", std::string("placement ") + kPlacementMicroversion);
    }
    if (!body.empty()) {
      request.headers.emplace_back("Content-Type", "application/json");
      request.body = body;
    }
    StatusOr<notice::HttpResponse> response = http_.Send(request);
    if (!response.ok()) return response.status().Annotate(call + ": " + method + " " + request.url);
    if (response->status == 401 && attempt == 0) {
      // Revoked or expired early (Keystone restarted, password changed): once more with a new token.
      session_.Invalidate(token->id);
      continue;
    }
    if (std::find(expected.begin(), expected.end(), response->status) == expected.end()) {
      return HttpStatusError(call, request, *response);
    }
    return Answer{response->status, std::move(response->body)};
  }
}

StatusOr<NovaServer> OpenStackHttpApi::GetServer(const std::string& instance_uuid) {
  const std::string call = InstanceCall("GetServer", instance_uuid);
  VS_ASSIGN_OR_RETURN(Answer answer,
                      Call(call, Service::kCompute, "GET", "/servers/" + PercentEncode(instance_uuid), "", {200}));
  const Reader read(call);
  VS_ASSIGN_OR_RETURN(json doc, read.Parse(answer.body));
  VS_ASSIGN_OR_RETURN(json server, read.Object(doc, "server"));
  NovaServer out;
  out.id = Reader::String(server, "id");
  out.name = Reader::String(server, "name");
  out.project_id = Reader::String(server, "tenant_id");
  out.user_id = Reader::String(server, "user_id");
  out.status = Reader::String(server, "status");
  out.task_state = Reader::String(server, "OS-EXT-STS:task_state");
  out.host = Reader::String(server, "OS-EXT-SRV-ATTR:host");
  out.metadata = Reader::StringMap(server, "metadata");
  // "image" is {"id": ...} for an image-backed server and "" for a volume-backed one.
  if (auto image = server.find("image"); image != server.end() && image->is_object()) {
    out.image_id = Reader::String(*image, "id");
  }
  VS_ASSIGN_OR_RETURN(json flavor, read.Object(server, "flavor"));
  if (!flavor.contains("original_name")) {
    return Internal(call + ": the server's flavor has no original_name; is the compute API older than 2.47?");
  }
  out.flavor.name = Reader::String(flavor, "original_name");
  VS_ASSIGN_OR_RETURN(std::uint64_t vcpus, read.Unsigned(flavor, "vcpus"));
  out.flavor.vcpus = static_cast<std::uint32_t>(std::min<std::uint64_t>(vcpus, UINT32_MAX));
  VS_ASSIGN_OR_RETURN(out.flavor.ram_mib, read.Unsigned(flavor, "ram"));
  VS_ASSIGN_OR_RETURN(out.flavor.disk_gb, read.Unsigned(flavor, "disk"));
  out.flavor.extra_specs = Reader::StringMap(flavor, "extra_specs");
  if (out.id.empty()) return Internal(call + ": the server has no id");
  return out;
}

StatusOr<std::map<std::string, std::string>> OpenStackHttpApi::GetImageProperties(const std::string& image_id) {
  const std::string call = "GetImageProperties(" + image_id + ")";
  VS_ASSIGN_OR_RETURN(Answer answer,
                      Call(call, Service::kImage, "GET", "/v2/images/" + PercentEncode(image_id), "", {200}));
  VS_ASSIGN_OR_RETURN(json doc, Reader(call).Parse(answer.body));
  std::map<std::string, std::string> out;
  for (const auto& [key, value] : doc.items()) {
    if (value.is_string()) out.emplace(key, value.get<std::string>());
  }
  return out;
}

Status OpenStackHttpApi::LiveMigrate(const std::string& instance_uuid, const std::string& host) {
  const json body = {{"os-migrateLive", {{"host", host}, {"block_migration", true}}}};
  return Call(InstanceCall("LiveMigrate", instance_uuid) + " to " + host, Service::kCompute, "POST",
              "/servers/" + PercentEncode(instance_uuid) + "/action", body.dump(), {202})
      .status();
}

StatusOr<std::vector<NovaMigration>> OpenStackHttpApi::ListMigrations(const std::string& instance_uuid) {
  const std::string call = InstanceCall("ListMigrations", instance_uuid);
  VS_ASSIGN_OR_RETURN(Answer answer, Call(call, Service::kCompute, "GET",
                                          "/servers/" + PercentEncode(instance_uuid) + "/migrations", "", {200}));
  const Reader read(call);
  VS_ASSIGN_OR_RETURN(json doc, read.Parse(answer.body));
  VS_ASSIGN_OR_RETURN(json migrations, read.Array(doc, "migrations"));
  std::vector<NovaMigration> out;
  for (const json& m : migrations) {
    if (!m.is_object()) return Internal(call + ": a migration is not an object");
    auto id = m.find("id");
    if (id == m.end() || !id->is_number_integer()) return Internal(call + ": a migration has no numeric id");
    out.push_back({id->get<std::int64_t>(), Reader::String(m, "status"), Reader::String(m, "source_compute"),
                   Reader::String(m, "dest_compute"), Reader::String(m, "migration_type")});
  }
  return out;
}

Status OpenStackHttpApi::ForceComplete(const std::string& instance_uuid, std::int64_t migration_id) {
  const json body = {{"force_complete", nullptr}};
  return Call(InstanceCall("ForceComplete", instance_uuid) + " migration " + std::to_string(migration_id),
              Service::kCompute, "POST",
              "/servers/" + PercentEncode(instance_uuid) + "/migrations/" + std::to_string(migration_id) + "/action",
              body.dump(), {202})
      .status();
}

Status OpenStackHttpApi::Evacuate(const std::string& instance_uuid, const std::string& host) {
  const json body = {{"evacuate", {{"host", host}}}};
  return Call(InstanceCall("Evacuate", instance_uuid) + " to " + host, Service::kCompute, "POST",
              "/servers/" + PercentEncode(instance_uuid) + "/action", body.dump(), {200, 202})
      .status();
}

StatusOr<ComputeService> OpenStackHttpApi::FindComputeService(const std::string& host) {
  const std::string call = "FindComputeService(" + host + ")";
  VS_ASSIGN_OR_RETURN(Answer answer, Call(call, Service::kCompute, "GET",
                                          "/os-services?binary=nova-compute&host=" + PercentEncode(host), "", {200}));
  const Reader read(call);
  VS_ASSIGN_OR_RETURN(json doc, read.Parse(answer.body));
  VS_ASSIGN_OR_RETURN(json services, read.Array(doc, "services"));
  for (const json& s : services) {
    if (!s.is_object() || Reader::String(s, "host") != host) continue;  // Nova filters; do not rely on it
    ComputeService out{Reader::String(s, "id"), host, Reader::String(s, "status"), Reader::String(s, "state"),
                       s.contains("forced_down") && s["forced_down"].is_boolean() && s["forced_down"].get<bool>()};
    if (out.id.empty()) return Internal(call + ": the service has no UUID id; is the compute API older than 2.53?");
    return out;
  }
  return NotFound(call + ": Nova lists no nova-compute service on host '" + host +
                  "' (openstack compute service list --service nova-compute)");
}

Status OpenStackHttpApi::SetForcedDown(const std::string& service_id, bool forced_down) {
  const json body = {{"forced_down", forced_down}};
  return Call("SetForcedDown(" + service_id + ", " + (forced_down ? "true" : "false") + ")", Service::kCompute,
              "PUT", "/os-services/" + PercentEncode(service_id), body.dump(), {200})
      .status();
}

StatusOr<std::string> OpenStackHttpApi::ComputeNodeUuid(const std::string& host) {
  const std::string call = "ComputeNodeUuid(" + host + ")";
  VS_ASSIGN_OR_RETURN(Answer answer, Call(call, Service::kCompute, "GET", "/os-hypervisors/detail", "", {200}));
  const Reader read(call);
  VS_ASSIGN_OR_RETURN(json doc, read.Parse(answer.body));
  VS_ASSIGN_OR_RETURN(json hypervisors, read.Array(doc, "hypervisors"));
  for (const json& h : hypervisors) {
    if (!h.is_object() || !h.contains("service") || !h["service"].is_object()) continue;
    if (Reader::String(h["service"], "host") != host) continue;
    std::string id = Reader::String(h, "id");
    if (id.empty()) return Internal(call + ": the hypervisor has no UUID id; is the compute API older than 2.53?");
    return id;
  }
  return NotFound(call + ": Nova lists no hypervisor whose service host is '" + host +
                  "' (openstack hypervisor list --long)");
}

Status OpenStackHttpApi::PutAllocation(const Allocation& allocation) {
  const std::string call = "PutAllocation(" + allocation.consumer_uuid + " on " + allocation.provider_uuid + ")";
  const std::string path = "/allocations/" + PercentEncode(allocation.consumer_uuid);
  json resources = json::object();
  for (const auto& [resource_class, amount] : allocation.resources) resources[resource_class] = amount;
  for (int attempt = 0;; ++attempt) {
    VS_ASSIGN_OR_RETURN(Answer current, Call(call, Service::kPlacement, "GET", path, "", {200}));
    VS_ASSIGN_OR_RETURN(json doc, Reader(call).Parse(current.body));
    // Absent (or null) for a consumer Placement does not know yet: PUT then creates it with null.
    json generation = doc.contains("consumer_generation") ? doc["consumer_generation"] : json(nullptr);
    const json body = {{"allocations", {{allocation.provider_uuid, {{"resources", resources}}}}},
                       {"project_id", allocation.project_id},
                       {"user_id", allocation.user_id},
                       {"consumer_generation", generation}};
    StatusOr<Answer> put = Call(call, Service::kPlacement, "PUT", path, body.dump(), {204});
    // A generation conflict: someone changed the consumer between our GET and PUT. Once more with its new
    // generation; a second conflict means a busy writer, which the caller should hear about.
    if (!put.ok() && put.status().code() == Code::kAborted && attempt == 0) continue;
    return put.status();
  }
}

Status OpenStackHttpApi::DeleteAllocation(const std::string& consumer_uuid) {
  StatusOr<Answer> answer = Call("DeleteAllocation(" + consumer_uuid + ")", Service::kPlacement, "DELETE",
                                 "/allocations/" + PercentEncode(consumer_uuid), "", {204, 404});
  return answer.status();  // 404: no allocations (already deleted), which is what was asked
}

StatusOr<ProviderUsage> OpenStackHttpApi::GetProviderUsage(const std::string& provider_uuid) {
  const std::string call = "GetProviderUsage(" + provider_uuid + ")";
  const std::string base = "/resource_providers/" + PercentEncode(provider_uuid);
  const Reader read(call);
  ProviderUsage out;
  VS_ASSIGN_OR_RETURN(Answer inventories_answer, Call(call, Service::kPlacement, "GET", base + "/inventories", "", {200}));
  VS_ASSIGN_OR_RETURN(json inventories_doc, read.Parse(inventories_answer.body));
  VS_ASSIGN_OR_RETURN(json inventories, read.Object(inventories_doc, "inventories"));
  for (const auto& [resource_class, inventory] : inventories.items()) {
    if (!inventory.is_object()) return Internal(call + ": inventory " + resource_class + " is not an object");
    ProviderInventory entry;
    VS_ASSIGN_OR_RETURN(entry.total, read.Unsigned(inventory, "total"));
    if (inventory.contains("reserved")) { VS_ASSIGN_OR_RETURN(entry.reserved, read.Unsigned(inventory, "reserved")); }
    if (auto ratio = inventory.find("allocation_ratio"); ratio != inventory.end() && ratio->is_number()) {
      entry.allocation_ratio = ratio->get<double>();
    }
    out.inventories.emplace(resource_class, entry);
  }
  VS_ASSIGN_OR_RETURN(Answer usages_answer, Call(call, Service::kPlacement, "GET", base + "/usages", "", {200}));
  VS_ASSIGN_OR_RETURN(json usages_doc, read.Parse(usages_answer.body));
  VS_ASSIGN_OR_RETURN(json usages, read.Object(usages_doc, "usages"));
  for (const auto& [resource_class, used] : usages.items()) {
    if (!used.is_number_unsigned()) return Internal(call + ": usage " + resource_class + " is not a whole number");
    out.usages.emplace(resource_class, used.get<std::uint64_t>());
  }
  return out;
}

}  // namespace vs::nova
