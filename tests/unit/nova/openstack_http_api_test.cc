// OpenStackHttpApi against a fake HttpClient: each call's request (method, URL, token, microversion, body), the
// parsing of realistic answers, the retry after a 401, Placement's generation conflicts and the errors.
#include "shadowd/nova/openstack_http_api.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/nova/fake_openstack.h"

namespace vs::nova {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace testing;  // NOLINT: the fakes
using nlohmann::json;

const std::string kTokens = std::string("POST ") + kAuthUrl + "/auth/tokens";
constexpr char kUuid[] = "4f2c6a1e-7d3b-4c59-9a8e-0b1c2d3e4f50";
const std::string kServerUrl = std::string(kCompute) + "/servers/" + kUuid;

// GET /servers/{id} at microversion 2.79, trimmed to what matters and a few fields around it, as DevStack answers.
constexpr char kServerBody[] = R"({"server": {
  "id": "4f2c6a1e-7d3b-4c59-9a8e-0b1c2d3e4f50", "name": "web-2", "status": "ACTIVE",
  "tenant_id": "e1d2c3b4a5f64e7d8c9b0a1f2e3d4c5b", "user_id": "9c0f0ab2c1d54a3e8f4e2b7a6d5c4b3a",
  "metadata": {"virt_shadow:policy": "gold", "owner": "alice"},
  "hostId": "2e3f...", "image": {"id": "0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d", "links": []},
  "flavor": {"vcpus": 2, "ram": 2048, "disk": 20, "ephemeral": 0, "swap": 0, "original_name": "vs.small",
             "extra_specs": {"hw:cpu_policy": "shared", "virt_shadow:policy": "silver"}},
  "OS-EXT-SRV-ATTR:host": "h1", "OS-EXT-SRV-ATTR:hypervisor_hostname": "h1.lab",
  "OS-EXT-STS:task_state": null, "OS-EXT-STS:vm_state": "active", "OS-EXT-STS:power_state": 1,
  "addresses": {"private": [{"addr": "10.0.0.23", "version": 4}]}, "locked": false, "tags": []}})";

class OpenStackHttpApiTest : public ::testing::Test {
 protected:
  OpenStackHttpApiTest() { http_.Queue(kTokens, TokenResponse("tok-1")); }

  // Every request but Keystone's carries the token and the service's microversion.
  void ExpectServiceHeaders(const notice::HttpRequest& request, const std::string& token = "tok-1") {
    EXPECT_EQ(HeaderOf(request, "X-Auth-Token"), token) << request.url;
    EXPECT_EQ(HeaderOf(request, "Accept"), "application/json");
    EXPECT_EQ(request.timeout, std::chrono::seconds(7));
    if (request.url.starts_with(kCompute)) {
      EXPECT_EQ(HeaderOf(request, "OpenStack-API-Version"), "compute 2.79") << request.url;
      EXPECT_EQ(HeaderOf(request, "X-OpenStack-Nova-API-Version"), "2.79") << request.url;
    } else if (request.url.starts_with(kPlacement)) {
      EXPECT_EQ(HeaderOf(request, "OpenStack-API-Version"), "placement 1.28") << request.url;
    } else {
      EXPECT_EQ(HeaderOf(request, "OpenStack-API-Version"), "") << request.url;
    }
    EXPECT_EQ(HeaderOf(request, "Content-Type"), request.body.empty() ? "" : "application/json");
  }
  // The one request sent to "METHOD URL", checked for its headers.
  notice::HttpRequest Only(const std::string& method_url) {
    std::vector<notice::HttpRequest> sent = http_.Sent(method_url);
    EXPECT_EQ(sent.size(), 1u) << method_url;
    if (sent.empty()) return {};
    ExpectServiceHeaders(sent[0]);
    return sent[0];
  }

  FakeHttpClient http_;
  FakeClock clock_;
  OpenStackHttpApi api_{Options(), http_, clock_};
};

TEST_F(OpenStackHttpApiTest, GetServerReadsTheServerAndItsEmbeddedFlavor) {
  http_.Queue("GET " + kServerUrl, Response(200, kServerBody));
  StatusOr<NovaServer> server = api_.GetServer(kUuid);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  Only("GET " + kServerUrl);
  EXPECT_EQ(server->id, kUuid);
  EXPECT_EQ(server->name, "web-2");
  EXPECT_EQ(server->project_id, "e1d2c3b4a5f64e7d8c9b0a1f2e3d4c5b");
  EXPECT_EQ(server->user_id, "9c0f0ab2c1d54a3e8f4e2b7a6d5c4b3a");
  EXPECT_EQ(server->status, "ACTIVE");
  EXPECT_EQ(server->task_state, "");
  EXPECT_EQ(server->host, "h1");
  EXPECT_EQ(server->image_id, "0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d");
  EXPECT_EQ(server->metadata.at("virt_shadow:policy"), "gold");
  EXPECT_EQ(server->flavor, (NovaFlavor{"vs.small", 2, 2048, 20,
                                        {{"hw:cpu_policy", "shared"}, {"virt_shadow:policy", "silver"}}}));
}

TEST_F(OpenStackHttpApiTest, GetServerBootedFromVolumeHasNoImage) {
  json body = json::parse(kServerBody);
  body["server"]["image"] = "";
  body["server"]["OS-EXT-STS:task_state"] = "migrating";
  http_.Queue("GET " + kServerUrl, Response(200, body.dump()));
  StatusOr<NovaServer> server = api_.GetServer(kUuid);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  EXPECT_EQ(server->image_id, "");
  EXPECT_EQ(server->task_state, "migrating");
}

TEST_F(OpenStackHttpApiTest, GetServerRefusesAnAnswerWithoutTheEmbeddedFlavor) {
  json body = json::parse(kServerBody);
  body["server"]["flavor"] = {{"id", "42"}, {"links", json::array()}};  // below 2.47
  http_.Queue("GET " + kServerUrl, Response(200, body.dump()));
  StatusOr<NovaServer> server = api_.GetServer(kUuid);
  EXPECT_EQ(server.status().code(), Code::kInternal);
  EXPECT_THAT(server.status().message(), HasSubstr("original_name"));
  http_.Queue("GET " + std::string(kCompute) + "/servers/x", Response(200, "not json"));
  EXPECT_EQ(api_.GetServer("x").status().code(), Code::kInternal);
}

TEST_F(OpenStackHttpApiTest, PathPartsAreEncoded) {
  http_.Queue("GET " + std::string(kCompute) + "/servers/..%2F..%2Fos-services%3Fx%3D1",
              Response(404, R"({"itemNotFound": {"message": "Instance could not be found.", "code": 404}})"));
  StatusOr<NovaServer> server = api_.GetServer("../../os-services?x=1");
  EXPECT_EQ(server.status().code(), Code::kNotFound);
  EXPECT_EQ(PercentEncode("h1.lab_2-x~"), "h1.lab_2-x~");
  EXPECT_EQ(PercentEncode("a b/c&d"), "a%20b%2Fc%26d");
}

TEST_F(OpenStackHttpApiTest, GetImagePropertiesTakesTopLevelStrings) {
  const std::string url = std::string("GET ") + kImage + "/v2/images/img-1";
  http_.Queue(url, Response(200, R"({"id": "img-1", "name": "debian-12", "status": "active", "size": 12345,
      "tags": [], "virt_shadow_policy": "gold", "hw_disk_bus": "virtio", "protected": false, "min_ram": 0})"));
  StatusOr<std::map<std::string, std::string>> properties = api_.GetImageProperties("img-1");
  ASSERT_TRUE(properties.ok()) << properties.status().ToString();
  Only(url);
  EXPECT_EQ(properties->at("virt_shadow_policy"), "gold");
  EXPECT_EQ(properties->at("hw_disk_bus"), "virtio");
  EXPECT_EQ(properties->count("size"), 0u);
  EXPECT_EQ(properties->count("protected"), 0u);
}

TEST_F(OpenStackHttpApiTest, LiveMigrateAndEvacuatePostTheirActions) {
  http_.Queue("POST " + kServerUrl + "/action", Response(202));
  ASSERT_TRUE(api_.LiveMigrate(kUuid, "h2").ok());
  http_.Queue("POST " + kServerUrl + "/action", Response(200, "{}"));
  ASSERT_TRUE(api_.Evacuate(kUuid, "h3").ok());
  std::vector<notice::HttpRequest> sent = http_.Sent("POST " + kServerUrl + "/action");
  ASSERT_EQ(sent.size(), 2u);
  for (const auto& request : sent) ExpectServiceHeaders(request);
  EXPECT_EQ(json::parse(sent[0].body), json::parse(R"({"os-migrateLive": {"host": "h2", "block_migration": true}})"));
  EXPECT_EQ(json::parse(sent[1].body), json::parse(R"({"evacuate": {"host": "h3"}})"));
}

TEST_F(OpenStackHttpApiTest, LiveMigrateReportsNovasRefusal) {
  http_.Queue("POST " + kServerUrl + "/action",
              Response(409, R"({"conflictingRequest": {"message": "Cannot 'os-migrateLive' instance 4f2c while it is in task_state migrating", "code": 409}})"));
  Status status = api_.LiveMigrate(kUuid, "h2");
  EXPECT_EQ(status.code(), Code::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("LiveMigrate(" + std::string(kUuid) + ") to h2: POST " + kServerUrl +
                                          "/action answered HTTP 409: Cannot 'os-migrateLive'"));
  http_.Queue("POST " + kServerUrl + "/action",
              Response(400, R"({"badRequest": {"message": "Compute host h9 could not be found.", "code": 400}})"));
  EXPECT_EQ(api_.LiveMigrate(kUuid, "h9").code(), Code::kInvalidArgument);
}

TEST_F(OpenStackHttpApiTest, MigrationsAreListedAndForcedToComplete) {
  http_.Queue("GET " + kServerUrl + "/migrations", Response(200, R"({"migrations": [{"id": 17, "status": "running",
      "source_compute": "h1", "dest_compute": "h2", "source_node": "h1.lab", "dest_node": "h2.lab",
      "memory_total_bytes": 2147483648, "memory_processed_bytes": 1073741824, "server_uuid": "4f2c",
      "uuid": "b1c2", "created_at": "2026-12-06T10:01:00.000000", "updated_at": null}]})"));
  StatusOr<std::vector<NovaMigration>> migrations = api_.ListMigrations(kUuid);
  ASSERT_TRUE(migrations.ok()) << migrations.status().ToString();
  Only("GET " + kServerUrl + "/migrations");
  EXPECT_THAT(*migrations, ElementsAre(NovaMigration{17, "running", "h1", "h2", ""}));

  http_.Queue("POST " + kServerUrl + "/migrations/17/action", Response(202));
  ASSERT_TRUE(api_.ForceComplete(kUuid, 17).ok());
  notice::HttpRequest force = Only("POST " + kServerUrl + "/migrations/17/action");
  EXPECT_EQ(json::parse(force.body), json::parse(R"({"force_complete": null})"));
}

TEST_F(OpenStackHttpApiTest, ComputeServicesAreFoundAndForcedDown) {
  const std::string list = "GET " + std::string(kCompute) + "/os-services?binary=nova-compute&host=h2";
  http_.Queue(list, Response(200, R"({"services": [{"id": "7d1c-uuid", "binary": "nova-compute", "host": "h2",
      "zone": "nova", "status": "enabled", "state": "down", "forced_down": false, "disabled_reason": null,
      "updated_at": "2026-12-06T10:00:00.000000"}]})"));
  StatusOr<ComputeService> service = api_.FindComputeService("h2");
  ASSERT_TRUE(service.ok()) << service.status().ToString();
  Only(list);
  EXPECT_EQ(*service, (ComputeService{"7d1c-uuid", "h2", "enabled", "down", false}));

  const std::string put = "PUT " + std::string(kCompute) + "/os-services/7d1c-uuid";
  http_.Queue(put, Response(200, R"({"service": {"id": "7d1c-uuid", "forced_down": true}})"));
  ASSERT_TRUE(api_.SetForcedDown("7d1c-uuid", true).ok());
  EXPECT_EQ(json::parse(Only(put).body), json::parse(R"({"forced_down": true})"));

  http_.Queue("GET " + std::string(kCompute) + "/os-services?binary=nova-compute&host=h9",
              Response(200, R"({"services": []})"));
  StatusOr<ComputeService> none = api_.FindComputeService("h9");
  EXPECT_EQ(none.status().code(), Code::kNotFound);
  EXPECT_THAT(none.status().message(), HasSubstr("'h9'"));
}

TEST_F(OpenStackHttpApiTest, ComputeNodeUuidMatchesTheServiceHostNotTheHypervisorName) {
  const std::string url = "GET " + std::string(kCompute) + "/os-hypervisors/detail";
  http_.Queue(url, Response(200, R"({"hypervisors": [
      {"id": "cn-1", "hypervisor_hostname": "h2", "state": "up", "status": "enabled",
       "service": {"host": "h1", "id": "s-1", "disabled_reason": null}},
      {"id": "cn-2", "hypervisor_hostname": "lab-node-2.example", "state": "up", "status": "enabled",
       "service": {"host": "h2", "id": "s-2", "disabled_reason": null}}]})"));
  StatusOr<std::string> uuid = api_.ComputeNodeUuid("h2");
  ASSERT_TRUE(uuid.ok()) << uuid.status().ToString();
  EXPECT_EQ(*uuid, "cn-2");
  Only(url);
  EXPECT_EQ(api_.ComputeNodeUuid("h3").status().code(), Code::kNotFound);
}

TEST_F(OpenStackHttpApiTest, PutAllocationCreatesANewConsumerWithANullGeneration) {
  const std::string url = std::string(kPlacement) + "/allocations/c-1";
  http_.Queue("GET " + url, Response(200, R"({"allocations": {}})"));
  http_.Queue("PUT " + url, Response(204));
  Status status = api_.PutAllocation({"c-1", "cn-2", {{"MEMORY_MB", 512}, {"VCPU", 1}}, "p1", "u1"});
  ASSERT_TRUE(status.ok()) << status.ToString();
  Only("GET " + url);
  EXPECT_EQ(json::parse(Only("PUT " + url).body), json::parse(R"({
      "allocations": {"cn-2": {"resources": {"MEMORY_MB": 512, "VCPU": 1}}},
      "project_id": "p1", "user_id": "u1", "consumer_generation": null})"));
}

TEST_F(OpenStackHttpApiTest, PutAllocationRetriesOneGenerationConflict) {
  const std::string url = std::string(kPlacement) + "/allocations/c-1";
  const std::string conflict = R"({"errors": [{"status": 409, "title": "Conflict",
      "detail": "consumer generation conflict - expected 3 but got 4", "code": "placement.concurrent_update"}]})";
  http_.Queue("GET " + url, Response(200, R"({"allocations": {"cn-1": {"resources": {"VCPU": 1}, "generation": 9}},
      "consumer_generation": 3, "project_id": "p1", "user_id": "u1"})"));
  http_.Queue("GET " + url, Response(200, R"({"allocations": {}, "consumer_generation": 4})"));
  http_.Queue("PUT " + url, Response(409, conflict));
  http_.Queue("PUT " + url, Response(204));
  ASSERT_TRUE(api_.PutAllocation({"c-1", "cn-2", {{"VCPU", 1}}, "p1", "u1"}).ok());
  std::vector<notice::HttpRequest> puts = http_.Sent("PUT " + url);
  ASSERT_EQ(puts.size(), 2u);
  EXPECT_EQ(json::parse(puts[0].body)["consumer_generation"], 3);
  EXPECT_EQ(json::parse(puts[1].body)["consumer_generation"], 4);

  // Conflicts twice: reported, with Placement's words.
  FakeHttpClient http;
  http.Queue(kTokens, TokenResponse("tok-1"));
  http.Queue("GET " + url, Response(200, R"({"allocations": {}, "consumer_generation": 5})"));
  http.Queue("PUT " + url, Response(409, conflict));
  OpenStackHttpApi api(Options(), http, clock_);
  Status status = api.PutAllocation({"c-1", "cn-2", {{"VCPU", 1}}, "p1", "u1"});
  EXPECT_EQ(status.code(), Code::kAborted);
  EXPECT_THAT(status.message(), HasSubstr("PutAllocation(c-1 on cn-2): PUT " + url +
                                          " answered HTTP 409: consumer generation conflict"));
  EXPECT_EQ(http.Sent("PUT " + url).size(), 2u);
}

TEST_F(OpenStackHttpApiTest, PutAllocationReportsOtherConflictsAtOnce) {
  const std::string url = std::string(kPlacement) + "/allocations/c-1";
  http_.Queue("GET " + url, Response(200, R"({"allocations": {}})"));
  http_.Queue("PUT " + url, Response(409, R"({"errors": [{"status": 409, "title": "Conflict",
      "detail": "Unable to allocate inventory: Unable to create allocation for 'MEMORY_MB' on resource provider 'cn-2'. The requested amount would exceed the capacity.", "code": "placement.undefined_code"}]})"));
  Status status = api_.PutAllocation({"c-1", "cn-2", {{"MEMORY_MB", 1 << 20}}, "p1", "u1"});
  EXPECT_EQ(status.code(), Code::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("would exceed the capacity"));
  EXPECT_EQ(http_.Sent("PUT " + url).size(), 1u);
}

TEST_F(OpenStackHttpApiTest, DeleteAllocationTakesAMissingConsumerAsDone) {
  const std::string url = "DELETE " + std::string(kPlacement) + "/allocations/c-1";
  http_.Queue(url, Response(204));
  EXPECT_TRUE(api_.DeleteAllocation("c-1").ok());
  Only(url);
  http_.Queue(url, Response(404, R"({"errors": [{"status": 404, "title": "Not Found",
      "detail": "No allocations for consumer 'c-1'"}]})"));
  EXPECT_TRUE(api_.DeleteAllocation("c-1").ok());
  http_.Queue(url, Response(503, "Service Unavailable"));
  EXPECT_EQ(api_.DeleteAllocation("c-1").code(), Code::kUnavailable);
}

TEST_F(OpenStackHttpApiTest, ProviderUsageReadsInventoriesAndUsages) {
  const std::string base = std::string(kPlacement) + "/resource_providers/cn-2";
  http_.Queue("GET " + base + "/inventories", Response(200, R"({"resource_provider_generation": 7, "inventories": {
      "VCPU": {"total": 8, "reserved": 0, "min_unit": 1, "max_unit": 8, "step_size": 1, "allocation_ratio": 4.0},
      "MEMORY_MB": {"total": 15992, "reserved": 512, "min_unit": 1, "max_unit": 15992, "step_size": 1,
                    "allocation_ratio": 1.0}}})"));
  http_.Queue("GET " + base + "/usages",
              Response(200, R"({"resource_provider_generation": 7, "usages": {"VCPU": 3, "MEMORY_MB": 4096}})"));
  StatusOr<ProviderUsage> usage = api_.GetProviderUsage("cn-2");
  ASSERT_TRUE(usage.ok()) << usage.status().ToString();
  Only("GET " + base + "/inventories");
  Only("GET " + base + "/usages");
  EXPECT_EQ(usage->inventories.at("VCPU"), (ProviderInventory{8, 0, 4.0}));
  EXPECT_EQ(usage->inventories.at("MEMORY_MB"), (ProviderInventory{15992, 512, 1.0}));
  EXPECT_EQ(usage->usages, (std::map<std::string, std::uint64_t>{{"MEMORY_MB", 4096}, {"VCPU", 3}}));
}

TEST_F(OpenStackHttpApiTest, A401RenewsTheTokenAndRetriesOnce) {
  http_.Queue(kTokens, TokenResponse("tok-2"));  // after the fixture's tok-1
  http_.Queue("GET " + kServerUrl, Response(401, R"({"error": {"code": 401, "message": "The request you have made requires authentication.", "title": "Unauthorized"}})"));
  http_.Queue("GET " + kServerUrl, Response(200, kServerBody));
  StatusOr<NovaServer> server = api_.GetServer(kUuid);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  std::vector<notice::HttpRequest> gets = http_.Sent("GET " + kServerUrl);
  ASSERT_EQ(gets.size(), 2u);
  ExpectServiceHeaders(gets[0], "tok-1");
  ExpectServiceHeaders(gets[1], "tok-2");
  EXPECT_EQ(http_.Sent(kTokens).size(), 2u);

  // Refused again with the new token: reported, not retried for ever.
  FakeHttpClient http;
  http.Queue(kTokens, TokenResponse("tok-1"));
  http.Queue(kTokens, TokenResponse("tok-2"));
  http.Queue("GET " + kServerUrl, Response(401, R"({"error": {"code": 401, "message": "The request you have made requires authentication."}})"));
  StatusOr<NovaServer> refused = OpenStackHttpApi(Options(), http, clock_).GetServer(kUuid);
  EXPECT_EQ(refused.status().code(), Code::kPermissionDenied);
  EXPECT_THAT(refused.status().message(), HasSubstr("HTTP 401: The request you have made requires authentication."));
  EXPECT_EQ(http.Sent("GET " + kServerUrl).size(), 2u);
  EXPECT_EQ(http.Sent(kTokens).size(), 2u);
}

TEST_F(OpenStackHttpApiTest, TheTokenIsRenewedWhenItExpires) {
  http_.Queue(kTokens, TokenResponse("tok-2"));  // after the fixture's tok-1
  http_.Queue("GET " + kServerUrl, Response(200, kServerBody));
  ASSERT_TRUE(api_.GetServer(kUuid).ok());
  ASSERT_TRUE(api_.GetServer(kUuid).ok());
  EXPECT_EQ(http_.Sent(kTokens).size(), 1u);
  clock_.Advance(std::chrono::hours(1));
  ASSERT_TRUE(api_.GetServer(kUuid).ok());
  EXPECT_EQ(http_.Sent(kTokens).size(), 2u);
  EXPECT_EQ(HeaderOf(http_.Sent("GET " + kServerUrl).back(), "X-Auth-Token"), "tok-2");
}

TEST_F(OpenStackHttpApiTest, ErrorsBeforeAnyCallNameTheCall) {
  FakeHttpClient http;
  json catalog = Catalog();
  catalog.erase(3);  // no placement
  http.Queue(kTokens, TokenResponse("tok", 60, catalog));
  OpenStackHttpApi api(Options(), http, clock_);
  Status status = api.DeleteAllocation("c-1");
  EXPECT_EQ(status.code(), Code::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("DeleteAllocation(c-1): Keystone's catalog has no placement endpoint"));

  http.Fail("GET " + kServerUrl, DeadlineExceeded("GET " + kServerUrl + ": no answer within 7 s"));
  StatusOr<NovaServer> server = api.GetServer(kUuid);
  EXPECT_EQ(server.status().code(), Code::kDeadlineExceeded);
  EXPECT_THAT(server.status().message(), HasSubstr("GetServer(" + std::string(kUuid) + ")"));

  FakeHttpClient refused;
  refused.Queue(kTokens, Response(401, R"({"error": {"code": 401, "message": "bad credentials"}})"));
  StatusOr<NovaServer> unauthenticated = OpenStackHttpApi(Options(), refused, clock_).GetServer(kUuid);
  EXPECT_EQ(unauthenticated.status().code(), Code::kPermissionDenied);
  EXPECT_THAT(unauthenticated.status().message(), HasSubstr("GetServer(" + std::string(kUuid) + "): Keystone token"));
  EXPECT_THAT(unauthenticated.status().message(), Not(HasSubstr(kPassword)));
}

}  // namespace
}  // namespace vs::nova
