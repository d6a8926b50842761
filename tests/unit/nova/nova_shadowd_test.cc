// What shadowd does with Nova: which policy Nova's records name (NovaPolicyWatcher), a switchover's migration
// through Nova (NovaLiveMover) and the shadows' Placement reservations (NovaReservingPeerOps), against a scripted
// OpenStackApi.
#include <map>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/clock.h"
#include "shadowd/lifecycle/shadow_identity.h"
#include "shadowd/nova/nova_live_mover.h"
#include "shadowd/nova/nova_policy_watcher.h"
#include "shadowd/nova/nova_reserving_peer_ops.h"
#include "tests/unit/nova/fake_openstack_api.h"

namespace vs::nova {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::FakeOpenStackApi;

constexpr char kVm[] = "6f9619ff-8b86-d011-b42d-00c04fc964ff";

NovaServer Server(const std::string& host, const std::string& task_state = "",
                  std::map<std::string, std::string> metadata = {}, const std::string& status = "ACTIVE") {
  NovaServer server;
  server.id = kVm;
  server.name = "vm1";
  server.project_id = "p1";
  server.user_id = "u1";
  server.status = status;
  server.task_state = task_state;
  server.host = host;
  server.metadata = std::move(metadata);
  server.flavor.name = "vs.small";
  server.flavor.extra_specs = {{"virt_shadow:policy", "gold"}};
  server.image_id = "img1";
  return server;
}

policy::DomainFacts NovaFacts() {
  policy::DomainFacts facts;
  facts.uuid = kVm;
  facts.nova = policy::NovaInstanceFacts{.display_name = "vm1", .flavor_name = "vs.small"};
  return facts;
}

// ---- NovaPolicyWatcher

class NovaPolicyWatcherTest : public ::testing::Test {
 protected:
  NovaPolicyWatcherTest() { api_.images.emplace("img1", std::map<std::string, std::string>{}); }
  static NovaPolicyWatcherOptions Options() {
    policy::Policy gold;
    gold.priority = 900;
    return {.named_policies = {{"gold", gold}}};
  }
  std::string SourceNow() {
    std::optional<controller::ExternalPolicy> answer = watcher_.Lookup(kVm, NovaFacts());
    return answer ? answer->source : "(unknown)";
  }

  FakeOpenStackApi api_;
  FakeClock clock_;
  std::vector<std::string> changed_;
  std::vector<std::string> logs_;
  NovaPolicyWatcher watcher_{api_, Options(), clock_, [this](const std::string& vm) { changed_.push_back(vm); },
                             [this](const std::string& line) { logs_.push_back(line); }};
};

TEST_F(NovaPolicyWatcherTest, AnUnknownInstanceIsFetchedAndTheControllerToldOnce) {
  api_.servers[kVm] = {Server("h1")};
  EXPECT_FALSE(watcher_.Lookup(kVm, NovaFacts()).has_value()) << "not known yet";
  watcher_.RefreshOnce();
  EXPECT_THAT(changed_, ElementsAre(kVm));
  std::optional<controller::ExternalPolicy> answer = watcher_.Lookup(kVm, NovaFacts());
  ASSERT_TRUE(answer.has_value());
  ASSERT_TRUE(answer->policy.ok()) << answer->policy.status().ToString();
  ASSERT_TRUE(answer->policy->has_value());
  EXPECT_EQ((*answer->policy)->priority, 900u);
  EXPECT_THAT(answer->source, HasSubstr("virt_shadow:policy=gold"));

  watcher_.RefreshOnce();  // not due yet
  clock_.Advance(std::chrono::seconds(30));
  watcher_.RefreshOnce();  // due, same answer: nobody told
  EXPECT_THAT(changed_, ElementsAre(kVm));
}

TEST_F(NovaPolicyWatcherTest, ARefreshSeesTheRecordsChangeAndNovaDownKeepsTheLastAnswer) {
  NovaServer plain = Server("h1");
  plain.flavor.extra_specs.clear();
  api_.servers[kVm] = {plain};
  watcher_.Lookup(kVm, NovaFacts());
  watcher_.RefreshOnce();
  std::optional<controller::ExternalPolicy> none = watcher_.Lookup(kVm, NovaFacts());
  ASSERT_TRUE(none.has_value() && none->policy.ok());
  EXPECT_FALSE(none->policy->has_value()) << "nothing names a policy: not protected";

  // `openstack server set --property virt_shadow:policy=default`
  NovaServer tagged = plain;
  tagged.metadata = {{"virt_shadow:policy", "default"}};
  api_.servers[kVm] = {tagged};
  clock_.Advance(std::chrono::seconds(30));
  watcher_.RefreshOnce();
  EXPECT_THAT(changed_, ElementsAre(kVm, kVm));
  EXPECT_THAT(SourceNow(), HasSubstr("metadata"));

  api_.servers[kVm] = {Unavailable("nova-api: connection refused")};
  clock_.Advance(std::chrono::seconds(30));
  watcher_.RefreshOnce();
  watcher_.RefreshOnce();
  EXPECT_THAT(SourceNow(), HasSubstr("metadata")) << "the last answer stays";
  EXPECT_EQ(std::count_if(logs_.begin(), logs_.end(),
                          [](const std::string& l) { return l.find("connection refused") != std::string::npos; }),
            1)
      << "logged once";
}

TEST_F(NovaPolicyWatcherTest, AnInstanceNovaDoesNotKnowIsNotProtectedAndOtherDomainsAreNotAsked) {
  watcher_.Lookup(kVm, NovaFacts());
  watcher_.RefreshOnce();
  std::optional<controller::ExternalPolicy> answer = watcher_.Lookup(kVm, NovaFacts());
  ASSERT_TRUE(answer.has_value() && answer->policy.ok());
  EXPECT_FALSE(answer->policy->has_value());

  policy::DomainFacts plain;
  plain.uuid = "11111111-2222-4333-8444-555555555555";
  EXPECT_FALSE(watcher_.Lookup(plain.uuid, plain).has_value());
  api_.calls.clear();
  clock_.Advance(std::chrono::seconds(30));
  watcher_.RefreshOnce();
  EXPECT_THAT(api_.calls, ElementsAre(std::string("GetServer ") + kVm));
}

TEST_F(NovaPolicyWatcherTest, AnInstanceNoLongerAskedAboutIsForgotten) {
  api_.servers[kVm] = {Server("h1")};
  watcher_.Lookup(kVm, NovaFacts());
  watcher_.RefreshOnce();
  clock_.Advance(std::chrono::minutes(11));
  api_.calls.clear();
  watcher_.RefreshOnce();
  EXPECT_THAT(api_.calls, IsEmpty());
  EXPECT_FALSE(watcher_.Lookup(kVm, NovaFacts()).has_value()) << "asked again: unknown until fetched";
}

// ---- NovaLiveMover

class NovaLiveMoverTest : public ::testing::Test {
 protected:
  WallTime Deadline() { return clock_.WallNow() + std::chrono::minutes(2); }
  std::string ShadowUuid() { return lifecycle::ShadowUuid(kVm, 0).value(); }

  FakeOpenStackApi api_;
  FakeClock clock_;
  std::vector<std::string> logs_;
  NovaLiveMover mover_{api_, clock_, [this](const std::string& line) { logs_.push_back(line); }};
};

TEST_F(NovaLiveMoverTest, TheReservationGoesThenNovaMigratesAndIsToldToCompleteAtOnce) {
  api_.servers[kVm] = {Server("h1"), Server("h1", "migrating"), Server("h1", "migrating"), Server("h2")};
  api_.migrations = {{.id = 7, .status = "running", .source_compute = "h1", .dest_compute = "h2"}};
  StatusOr<switchover::NovaMoveResult> moved = mover_.LiveMigrate(kVm, "h2", Deadline());
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_TRUE(moved->force_completed);
  const std::string vm(kVm);
  EXPECT_THAT(api_.calls, ElementsAre("GetServer " + vm, "DeleteAllocation " + ShadowUuid(), "LiveMigrate " + vm + " h2",
                                      "ListMigrations " + vm, "ForceComplete " + vm + " 7", "GetServer " + vm,
                                      "GetServer " + vm, "GetServer " + vm));
}

TEST_F(NovaLiveMoverTest, NovasRollbackIsAFailureNamingWhereTheInstanceStayed) {
  api_.servers[kVm] = {Server("h1"), Server("h1", "migrating"), Server("h1")};
  StatusOr<switchover::NovaMoveResult> moved = mover_.LiveMigrate(kVm, "h2", Deadline());
  EXPECT_EQ(moved.status().code(), Code::kFailedPrecondition) << moved.status().ToString();
  EXPECT_THAT(moved.status().message(), HasSubstr("still on h1"));
}

TEST_F(NovaLiveMoverTest, AnInstanceInErrorIsAFailure) {
  api_.servers[kVm] = {Server("h1"), Server("h1", "", {}, "ERROR")};
  StatusOr<switchover::NovaMoveResult> moved = mover_.LiveMigrate(kVm, "h2", Deadline());
  EXPECT_EQ(moved.status().code(), Code::kFailedPrecondition);
  EXPECT_THAT(moved.status().message(), HasSubstr("ERROR"));
}

TEST_F(NovaLiveMoverTest, AMigrationThatDoesNotEndByTheDeadlineIsDeadlineExceeded) {
  api_.servers[kVm] = {Server("h1"), Server("h1", "migrating")};
  api_.force_complete = FailedPrecondition("Instance in migration state preparing cannot force complete");
  api_.migrations = {{.id = 7, .status = "running"}};
  StatusOr<switchover::NovaMoveResult> moved = mover_.LiveMigrate(kVm, "h2", clock_.WallNow() + std::chrono::seconds(5));
  EXPECT_EQ(moved.status().code(), Code::kDeadlineExceeded) << moved.status().ToString();
}

TEST_F(NovaLiveMoverTest, AnInstanceAlreadyOnTheTargetIsNotMovedAgain) {
  api_.servers[kVm] = {Server("h2")};
  StatusOr<switchover::NovaMoveResult> moved = mover_.LiveMigrate(kVm, "h2", Deadline());
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_THAT(api_.calls, ElementsAre(std::string("GetServer ") + kVm));
}

// ---- NovaReservingPeerOps

const char kShadowUuid[] = "7f3bc091-3ce0-5dab-9b24-f4d1a600a56e";

std::string ShadowXml(bool nova) {
  return std::string("<domain type='qemu'><name>instance-00000001-shadow</name><uuid>") + kShadowUuid +
         "</uuid><metadata>" +
         (nova ? "<nova:instance xmlns:nova='http://openstack.org/xmlns/libvirt/nova/1.1'><nova:name>vm1</nova:name>"
                 "<nova:owner><nova:user uuid='u1'>demo</nova:user><nova:project uuid='p1'>demo</nova:project>"
                 "</nova:owner></nova:instance>"
               : "") +
         "</metadata><memory unit='KiB'>262144</memory><currentMemory unit='KiB'>131072</currentMemory>"
         "<vcpu current='1'>2</vcpu><os><type>hvm</type></os><devices/></domain>";
}

class RecordingPeers final : public controller::PeerOps {
 public:
  Status CreateReplicaImage(const std::string& host, const std::string& path, std::uint64_t, const std::string&) override {
    calls.push_back("CreateReplicaImage " + host + " " + path);
    return Status::Ok();
  }
  Status DefineShadow(const std::string& host, const std::string&) override {
    calls.push_back("DefineShadow " + host);
    return Status::Ok();
  }
  Status ReleaseShadow(const std::string& host, const std::string& uuid, const std::string&,
                       const std::vector<std::string>&) override {
    calls.push_back("ReleaseShadow " + host + " " + uuid);
    return Status::Ok();
  }
  StatusOr<std::vector<controller::PeerShadow>> ListShadows(const std::string&) override {
    return std::vector<controller::PeerShadow>{};
  }
  std::vector<std::string> calls;
};

class NovaReservingPeerOpsTest : public ::testing::Test {
 protected:
  NovaReservingPeerOpsTest() { api_.compute_nodes["h2"] = "rp-h2"; }
  FakeOpenStackApi api_;
  RecordingPeers inner_;
  NovaReservingPeerOps peers_{inner_, api_, [](const std::string&) {}};
};

TEST_F(NovaReservingPeerOpsTest, ANovaShadowReservesTheVmsFullSizeOnItsHostBeforeItIsDefined) {
  const Status defined = peers_.DefineShadow("h2", ShadowXml(true));
  ASSERT_TRUE(defined.ok()) << defined.ToString();
  ASSERT_EQ(api_.allocations.count(kShadowUuid), 1u);
  const Allocation& allocation = api_.allocations.at(kShadowUuid);
  EXPECT_EQ(allocation.provider_uuid, "rp-h2");
  EXPECT_EQ(allocation.resources.at("MEMORY_MB"), 256u) << "the VM's full memory, not the shadow's";
  EXPECT_EQ(allocation.resources.at("VCPU"), 2u);
  EXPECT_EQ(allocation.project_id, "p1");
  EXPECT_EQ(allocation.user_id, "u1");
  EXPECT_THAT(inner_.calls, ElementsAre("DefineShadow h2"));

  ASSERT_TRUE(peers_.DefineShadow("h2", ShadowXml(true)).ok());  // re-issued: the compute node is known
  EXPECT_EQ(std::count(api_.calls.begin(), api_.calls.end(), "ComputeNodeUuid h2"), 1);

  ASSERT_TRUE(peers_.ReleaseShadow("h2", kShadowUuid, "instance-00000001-shadow", {}).ok());
  EXPECT_EQ(api_.allocations.count(kShadowUuid), 0u);
  EXPECT_EQ(inner_.calls.back(), std::string("ReleaseShadow h2 ") + kShadowUuid);
}

TEST_F(NovaReservingPeerOpsTest, PlacementsRefusalRefusesTheDefineAndAnOtherShadowReservesNothing) {
  api_.put_allocation = FailedPrecondition("Unable to allocate inventory: exceeds capacity for MEMORY_MB");
  const Status refused = peers_.DefineShadow("h2", ShadowXml(true));
  EXPECT_EQ(refused.code(), Code::kFailedPrecondition);
  EXPECT_THAT(refused.message(), HasSubstr("reserving the memory of Nova instance vm1's shadow"));
  EXPECT_THAT(inner_.calls, IsEmpty()) << "no shadow without its reservation";

  api_.calls.clear();
  ASSERT_TRUE(peers_.DefineShadow("h2", ShadowXml(false)).ok());
  EXPECT_THAT(api_.calls, IsEmpty());
}

}  // namespace
}  // namespace vs::nova
