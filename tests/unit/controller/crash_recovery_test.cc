// kill -9 at every point: each flow is cut after its first k effects (store writes and PeerOps
// calls), for every k; the "dead" controller is dropped, the store and the peers' state are kept, a
// new controller recovers and runs to quiescence, and the outcome must be exactly what an uncut run
// gives: one shadow on one host and nothing orphaned, or nothing at all after a release.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <memory>

#include "shadowd/controller/controller.h"
#include "shadowd/store/keys.h"
#include "shadowd/store/memory_store.h"
#include "tests/unit/controller/fakes.h"
#include "tests/unit/controller/test_domains.h"

namespace vs::controller {
namespace {

namespace v1 = virtshadow::v1;
using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::BudgetStore;
using testing::kDataDisk;
using testing::kRootDisk;
using testing::kShadowUuid;
using testing::kVmName;
using testing::kVmUuid;
using testing::PrimaryXml;

constexpr Duration kGrace = 30s;

// What survives a crash: the durable store, the other hosts, the clock.
struct World {
  World() : cluster(peers) {
    for (const char* host : {"h1", "h2", "h3", "h4"}) peers.hosts[host];
    cluster.hosts = {testing::MakeHost("h1", "zone-a", 0.1), testing::MakeHost("h2", "zone-a", 0.1),
                     testing::MakeHost("h3", "zone-b", 0.5), testing::MakeHost("h4", "zone-b", 0.3)};
    images.sizes = {{kRootDisk, testing::kRootDiskBytes}, {kDataDisk, testing::kDataDiskBytes}};
    peers.budget = &budget;
  }
  std::unique_ptr<ProtectionController> Boot(store::Store& through) {
    ControllerOptions options;
    options.this_host = "h1";
    options.grace_period = kGrace;
    return std::make_unique<ProtectionController>(std::move(options), through, peers, cluster, images, clock);
  }

  FakeClock clock;
  store::MemoryStore store;
  testing::FakePeers peers;
  testing::FakeCluster cluster;
  testing::FakeImages images;
  testing::CrashBudget budget;
};

DomainObservation Vm(bool running) { return {PrimaryXml(), running, kVmUuid, kVmName}; }

// The daemon's start-up sequence, then timers and work until nothing is left to do.
void RestartAndConverge(World& world, bool vm_running) {
  world.budget.remaining = std::numeric_limits<int>::max();
  BudgetStore store(world.store, world.budget);
  std::unique_ptr<ProtectionController> controller = world.Boot(store);
  VS_ASSERT_OK(controller->Recover());
  VS_ASSERT_OK(controller->ReconcileLocalDomains({Vm(vm_running)}));
  VS_ASSERT_OK(controller->SweepOrphans(world.peers.AllShadows()));
  VS_ASSERT_OK(controller->RunPending());
  for (int i = 0; i < 20 && controller->NextTimerDeadline(); ++i) {
    world.clock.Advance(10s);
    VS_ASSERT_OK(controller->OnTimer());
    VS_ASSERT_OK(controller->RunPending());
  }
  EXPECT_FALSE(controller->NextTimerDeadline().has_value());
  EXPECT_FALSE(controller->HasPending());
}

std::optional<v1::VmRecord> StoredRecord(World& world) {
  StatusOr<std::optional<v1::VmRecord>> record =
      store::GetProto<v1::VmRecord>(world.store, store::Key(store::Table::kVm, kVmUuid));
  EXPECT_TRUE(record.ok()) << record.status().ToString();
  return record.ok() ? *record : std::nullopt;
}

void ExpectExactlyOneShadow(World& world) {
  const std::optional<v1::VmRecord> record = StoredRecord(world);
  ASSERT_TRUE(record.has_value());
  ASSERT_EQ(record->state(), v1::PROTECTION_STATE_PROTECTED) << record->last_error();
  const std::string& host = record->shadows(0).host();
  for (const auto& [name, peer] : world.peers.hosts) {
    if (name == host) {
      EXPECT_EQ(peer.domains.size(), 1u) << name;
      EXPECT_EQ(peer.domains.count(kShadowUuid), 1u) << name;
      EXPECT_EQ(peer.images.size(), 2u) << name;
    } else {
      EXPECT_THAT(peer.domains, IsEmpty()) << name;
      EXPECT_THAT(peer.images, IsEmpty()) << name << " holds orphaned replica images";
    }
  }
}

void ExpectNothingLeft(World& world) {
  EXPECT_FALSE(StoredRecord(world).has_value());
  for (const auto& [name, peer] : world.peers.hosts) {
    EXPECT_THAT(peer.domains, IsEmpty()) << name;
    EXPECT_THAT(peer.images, IsEmpty()) << name;
  }
}

// Tag + start on a fresh host.
void PlacementFlow(World& world) {
  BudgetStore store(world.store, world.budget);
  std::unique_ptr<ProtectionController> controller = world.Boot(store);
  controller->Recover().IgnoreError();  // after the cut, failures are the point
  controller->OnDomainObserved(Vm(true)).IgnoreError();
  controller->RunPending().IgnoreError();
}

// Stop a protected VM and let its grace period run out.
void ReleaseFlow(World& world) {
  BudgetStore store(world.store, world.budget);
  std::unique_ptr<ProtectionController> controller = world.Boot(store);
  controller->Recover().IgnoreError();
  controller->ReconcileLocalDomains({Vm(false)}).IgnoreError();
  world.clock.Advance(kGrace);
  controller->OnTimer().IgnoreError();
  controller->RunPending().IgnoreError();
}

TEST(CrashRecoveryTest, PlacementFlowHasTheExpectedCutPoints) {
  World world;
  PlacementFlow(world);
  ExpectExactlyOneShadow(world);
  // write Unplaced, write Placing, 2 x CreateReplicaImage, DefineShadow, write Protected.
  EXPECT_EQ(world.budget.used, 6);
  EXPECT_THAT(world.peers.calls, ElementsAre("CreateReplicaImage h4 " + kRootDisk, "CreateReplicaImage h4 " + kDataDisk,
                                             "DefineShadow h4 " + kShadowUuid));
}

TEST(CrashRecoveryTest, KilledAtAnyPointOfThePlacementConvergesToExactlyOneShadow) {
  constexpr int kEffects = 6;
  for (int cut = 0; cut <= kEffects; ++cut) {
    SCOPED_TRACE("crash after effect " + std::to_string(cut));
    World world;
    world.budget.remaining = cut;
    PlacementFlow(world);
    if (cut == 4) {  // both images created, no domain yet: the state recovery must adopt
      EXPECT_EQ(world.peers.hosts["h4"].images.size(), 2u);
      EXPECT_THAT(world.peers.hosts["h4"].domains, IsEmpty());
    }
    if (cut == 5) {  // defined, but the record still says Placing
      EXPECT_EQ(StoredRecord(world)->state(), v1::PROTECTION_STATE_PLACING);
      EXPECT_EQ(world.peers.hosts["h4"].domains.size(), 1u);
    }
    RestartAndConverge(world, /*vm_running=*/true);
    ExpectExactlyOneShadow(world);
  }
}

// Setup for the release flow: a protected VM, by an uncut run.
void Protected(World& world) {
  PlacementFlow(world);
  ExpectExactlyOneShadow(world);
  world.budget.used = 0;
}

TEST(CrashRecoveryTest, ReleaseFlowHasTheExpectedCutPoints) {
  World world;
  Protected(world);
  ReleaseFlow(world);
  ExpectNothingLeft(world);
  // write GracePeriod, write Releasing, ListShadows, ReleaseShadow, delete the record.
  EXPECT_EQ(world.budget.used, 5);
}

TEST(CrashRecoveryTest, KilledAtAnyPointOfTheReleaseLeavesNothingBehind) {
  constexpr int kEffects = 5;
  for (int cut = 0; cut <= kEffects; ++cut) {
    SCOPED_TRACE("crash after effect " + std::to_string(cut));
    World world;
    Protected(world);
    world.budget.remaining = cut;
    ReleaseFlow(world);
    RestartAndConverge(world, /*vm_running=*/false);
    ExpectNothingLeft(world);
  }
}

TEST(CrashRecoveryTest, ShadowLeftOnAnAbandonedHostIsSweptAfterRestart) {
  // A previous life placed the shadow on h3; the record (restored from elsewhere) says h4.
  World world;
  Protected(world);
  world.peers.hosts["h3"] = world.peers.hosts["h4"];
  RestartAndConverge(world, /*vm_running=*/true);
  ExpectExactlyOneShadow(world);
  EXPECT_EQ(StoredRecord(world)->shadows(0).host(), "h4");
}

}  // namespace
}  // namespace vs::controller
