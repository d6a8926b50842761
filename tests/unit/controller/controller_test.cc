#include "shadowd/controller/controller.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cctype>
#include <chrono>
#include <memory>

#include "shadowd/lifecycle/shadow_identity.h"
#include "shadowd/store/keys.h"
#include "shadowd/store/memory_store.h"
#include "tests/unit/controller/fakes.h"
#include "tests/unit/controller/test_domains.h"

namespace vs::controller {
namespace {

namespace v1 = virtshadow::v1;
using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::FakeCluster;
using testing::FakeImages;
using testing::FakePeers;
using testing::kDataDisk;
using testing::kDataDiskBytes;
using testing::kRootDisk;
using testing::kRootDiskBytes;
using testing::kShadowName;
using testing::kShadowUuid;
using testing::kVmName;
using testing::kVmUuid;
using testing::MakeHost;
using testing::PrimaryXml;
using testing::XPathDoc;

constexpr Duration kGrace = 60s;
const std::string kNs = R"(xmlns:shadow="http://virt-shadow.org/xmlns/policy/1.0")";

std::string Policy(const std::string& attributes) { return "<shadow:policy " + kNs + " " + attributes + "/>"; }

// h1 (this host, zone-a) runs the VM; h2 is the cheapest but in the primary's zone; h4 is the cheapest
// host of the other zone, h3 the dearer one.
class ControllerTest : public ::testing::Test {
 protected:
  ControllerTest() : cluster_(peers_) {
    for (const char* host : {"h1", "h2", "h3", "h4"}) peers_.hosts[host];
    scheduler::Host h1 = MakeHost("h1", "zone-a", 0.1);
    h1.used_vcpus = 4;
    h1.used_memory_kib = 4 << 20;
    cluster_.hosts = {h1, MakeHost("h2", "zone-a", 0.1), MakeHost("h3", "zone-b", 0.5), MakeHost("h4", "zone-b", 0.3)};
    images_.sizes = {{kRootDisk, kRootDiskBytes}, {kDataDisk, kDataDiskBytes}};
  }

  std::unique_ptr<ProtectionController> NewController(store::Store& store) {
    ControllerOptions options;
    options.this_host = "h1";
    options.grace_period = kGrace;
    options.report = [this](const std::string& vm, const std::string& message) { reports_.push_back(vm + ": " + message); };
    options.external_policy = [this](const std::string& vm_uuid,
                                      const policy::DomainFacts& facts) -> std::optional<ExternalPolicy> {
      external_asked_.push_back(vm_uuid);
      if (!facts.nova) return std::nullopt;
      return external_;
    };
    return std::make_unique<ProtectionController>(std::move(options), store, peers_, cluster_, images_, clock_);
  }
  void Start() {
    controller_ = NewController(store_);
    VS_ASSERT_OK(controller_->Recover());
  }
  Status Observe(const std::string& xml, bool running = true) {
    return controller_->OnDomainObserved({xml, running, kVmUuid, kVmName});
  }
  // Tag + start + run: the VM protected on h4.
  void Protect() {
    Start();
    VS_ASSERT_OK(Observe(PrimaryXml()));
    VS_ASSERT_OK(controller_->RunPending());
    ASSERT_EQ(Record().state(), v1::PROTECTION_STATE_PROTECTED) << Record().last_error();
  }
  void AdvanceAndFire(Duration d) {
    clock_.Advance(d);
    VS_ASSERT_OK(controller_->OnTimer());
    VS_ASSERT_OK(controller_->RunPending());
  }
  std::optional<v1::VmRecord> MaybeRecord(const std::string& uuid = kVmUuid) {
    StatusOr<std::optional<v1::VmRecord>> r = store::GetProto<v1::VmRecord>(store_, store::Key(store::Table::kVm, uuid));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::nullopt;
  }
  v1::VmRecord Record(const std::string& uuid = kVmUuid) {
    std::optional<v1::VmRecord> r = MaybeRecord(uuid);
    EXPECT_TRUE(r.has_value()) << "no record for " << uuid;
    return r.value_or(v1::VmRecord());
  }
  int DomainsEverywhere() const {
    int n = 0;
    for (const auto& [name, host] : peers_.hosts) n += static_cast<int>(host.domains.size());
    return n;
  }
  const std::string& ShadowXmlOn(const std::string& host) { return peers_.hosts[host].domains[kShadowUuid]; }

  FakeClock clock_;
  store::MemoryStore store_;
  FakePeers peers_;
  FakeCluster cluster_;
  FakeImages images_;
  std::vector<std::string> reports_;
  // What the external source (Nova's records, in production) answers for a Nova instance; nullopt: not known yet.
  std::optional<ExternalPolicy> external_;
  std::vector<std::string> external_asked_;
  std::unique_ptr<ProtectionController> controller_;
};

TEST_F(ControllerTest, TagAndStartDefinesReducedShadowOnCheapestHostOfTheOtherZone) {
  Start();
  VS_ASSERT_OK(Observe(PrimaryXml()));
  EXPECT_EQ(Record().state(), v1::PROTECTION_STATE_UNPLACED);
  EXPECT_TRUE(controller_->HasPending());
  VS_ASSERT_OK(controller_->RunPending());

  const v1::VmRecord record = Record();
  ASSERT_EQ(record.state(), v1::PROTECTION_STATE_PROTECTED) << record.last_error();
  ASSERT_EQ(record.shadows_size(), 1);
  EXPECT_EQ(record.shadows(0).host(), "h4");
  EXPECT_EQ(record.shadows(0).domain_uuid(), kShadowUuid);
  EXPECT_EQ(record.shadows(0).domain_name(), kShadowName);
  // Replica images first, with the primary's virtual sizes and formats, then the definition.
  EXPECT_THAT(peers_.calls, ElementsAre("CreateReplicaImage h4 " + kRootDisk, "CreateReplicaImage h4 " + kDataDisk,
                                        "DefineShadow h4 " + kShadowUuid));
  EXPECT_EQ(peers_.hosts["h4"].images[kRootDisk].virtual_size, kRootDiskBytes);
  EXPECT_EQ(peers_.hosts["h4"].images[kRootDisk].format, "qcow2");
  EXPECT_EQ(peers_.hosts["h4"].images[kDataDisk].virtual_size, kDataDiskBytes);
  EXPECT_EQ(peers_.hosts["h4"].images[kDataDisk].format, "raw");
  EXPECT_EQ(DomainsEverywhere(), 1);
  for (const char* other : {"h1", "h2", "h3"}) EXPECT_THAT(peers_.hosts[other].images, IsEmpty()) << other;

  const XPathDoc xml(ShadowXmlOn("h4"));
  EXPECT_EQ(xml.String("/domain/uuid"), kShadowUuid);
  EXPECT_EQ(xml.String("/domain/name"), kShadowName);
  EXPECT_EQ(xml.String("/domain/vcpu"), "4");
  EXPECT_EQ(xml.String("/domain/vcpu/@current"), "2");
  EXPECT_EQ(xml.String("/domain/memory"), "4194304");
  EXPECT_EQ(xml.String("/domain/currentMemory"), "1048576");
  EXPECT_EQ(xml.String("/domain/devices/disk[target/@dev='vda']/source/@file"), kRootDisk);
  EXPECT_EQ(xml.String("/domain/devices/disk[target/@dev='vdb']/source/@file"), kDataDisk);
  EXPECT_EQ(xml.String("/domain/metadata/s:shadow-of/@uuid"), kVmUuid);
  EXPECT_EQ(xml.String("/domain/metadata/s:shadow-of/@host"), "h1");
  EXPECT_EQ(xml.Number("count(//s:policy)"), 0);

  StatusOr<VmStatusView> view = controller_->StatusOf("web");
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  EXPECT_EQ(view->state, v1::PROTECTION_STATE_PROTECTED);
  EXPECT_EQ(view->uuid, kVmUuid);
  EXPECT_THAT(view->shadow_hosts, ElementsAre("h4"));
  EXPECT_EQ(view->shadow_size, (lifecycle::ShadowSize{2, 1024 * 1024}));
  EXPECT_THAT(view->policy, HasSubstr(R"(vcpus="50%")"));
  EXPECT_TRUE(view->running);
  EXPECT_THAT(reports_, IsEmpty());
}

TEST_F(ControllerTest, ForeignShadowsReserveCapacityByTheirSize) {
  // Another host's shadow fills most of h4: 63.5 GiB reserved leaves 0.5 GiB, the shadow needs 1 GiB.
  cluster_.extra_shadows.push_back({"h4", "aaaaaaaa-0000-5000-8000-000000000001", "db-shadow",
                                    "bbbbbbbb-0000-4000-8000-000000000002", "db", "h2", {4, (127ull << 20) / 2}, {}});
  Start();
  VS_ASSERT_OK(Observe(PrimaryXml()));
  VS_ASSERT_OK(controller_->RunPending());
  EXPECT_EQ(Record().shadows(0).host(), "h3");

  StatusOr<scheduler::Explanation> explanation = controller_->Explain(kVmUuid);
  ASSERT_TRUE(explanation.ok()) << explanation.status().ToString();
  for (const scheduler::HostVerdict& verdict : explanation->hosts) {
    if (verdict.host == "h4") {
      EXPECT_THAT(verdict.reason, HasSubstr("memory"));
    }
    if (verdict.host == "h1") {
      EXPECT_EQ(verdict.verdict, scheduler::Verdict::kRejected);
    }
  }
  EXPECT_THAT(explanation->placement.hosts, ElementsAre("h3")) << "its own reservation on h3 is left out";
}

TEST_F(ControllerTest, ReservationsOfOurOwnRecordsAreCounted) {
  cluster_.hosts[3].total_memory_kib = 1536 * 1024;  // h4 fits one 1 GiB shadow, not two
  Start();
  VS_ASSERT_OK(Observe(PrimaryXml()));
  VS_ASSERT_OK(controller_->RunPending());
  const std::string other_uuid = "11111111-2222-4333-8444-555555555555";
  VS_ASSERT_OK(controller_->OnDomainObserved({PrimaryXml(testing::kPolicy, other_uuid, "api"), true, "", ""}));
  VS_ASSERT_OK(controller_->RunPending());
  EXPECT_EQ(Record().shadows(0).host(), "h4");
  EXPECT_EQ(Record(other_uuid).state(), v1::PROTECTION_STATE_PROTECTED);
  EXPECT_EQ(Record(other_uuid).shadows(0).host(), "h3");
  StatusOr<std::vector<VmStatusView>> all = controller_->List();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 2u);
}

TEST_F(ControllerTest, RequireOtherZoneWithoutCapacityThereIsUnprotectedUntilCapacityAppears) {
  cluster_.hosts[2].total_memory_kib = 512 * 1024;  // h3 and h4 too small; h2 (same zone) is big
  cluster_.hosts[3].total_memory_kib = 512 * 1024;
  Start();
  VS_ASSERT_OK(Observe(PrimaryXml(Policy(R"(vcpus="50%" memory="1GiB" zone="require-other")"))));
  VS_ASSERT_OK(controller_->RunPending());
  v1::VmRecord record = Record();
  EXPECT_EQ(record.state(), v1::PROTECTION_STATE_UNPROTECTED);
  EXPECT_FALSE(record.unprotected_reason().empty());
  EXPECT_EQ(DomainsEverywhere(), 0);
  EXPECT_THAT(peers_.calls, IsEmpty());
  StatusOr<VmStatusView> view = controller_->StatusOf(kVmName);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->state, v1::PROTECTION_STATE_UNPROTECTED);
  EXPECT_EQ(view->unprotected_reason, record.unprotected_reason());
  StatusOr<scheduler::Explanation> explanation = controller_->Explain(kVmName);
  ASSERT_TRUE(explanation.ok());
  EXPECT_EQ(explanation->placement.outcome, scheduler::PlacementOutcome::kUnplaced);

  cluster_.hosts[2].total_memory_kib = 64 << 20;  // h3 grows
  VS_ASSERT_OK(controller_->OnCapacityChanged());
  VS_ASSERT_OK(controller_->RunPending());
  record = Record();
  EXPECT_EQ(record.state(), v1::PROTECTION_STATE_PROTECTED);
  EXPECT_EQ(record.shadows(0).host(), "h3");
  EXPECT_TRUE(record.unprotected_reason().empty());
}

TEST_F(ControllerTest, UnprotectedVmIsPlacedAgainOnTheBackoffTimer) {
  for (scheduler::Host& host : cluster_.hosts) {
    if (host.name != "h1") host.total_memory_kib = 512 * 1024;
  }
  Start();
  VS_ASSERT_OK(Observe(PrimaryXml()));
  VS_ASSERT_OK(controller_->RunPending());
  ASSERT_EQ(Record().state(), v1::PROTECTION_STATE_UNPROTECTED);
  ASSERT_EQ(controller_->NextTimerDeadline(), clock_.WallNow() + 2s);

  cluster_.hosts[1].total_memory_kib = 64 << 20;  // h2, same zone: fine for prefer-other as a fallback
  AdvanceAndFire(1s);
  EXPECT_EQ(Record().state(), v1::PROTECTION_STATE_UNPROTECTED) << "not before the backoff";
  AdvanceAndFire(1s);
  EXPECT_EQ(Record().state(), v1::PROTECTION_STATE_PROTECTED);
  EXPECT_EQ(Record().shadows(0).host(), "h2");
}

TEST_F(ControllerTest, UntagKeepsTheShadowForTheGracePeriodThenReleasesIt) {
  Protect();
  VS_ASSERT_OK(controller_->OnMetadataChanged(PrimaryXml("")));
  EXPECT_EQ(Record().state(), v1::PROTECTION_STATE_GRACE_PERIOD);
  EXPECT_TRUE(Record().vm_running()) << "the VM runs on, untouched";
  AdvanceAndFire(kGrace - 1s);
  EXPECT_EQ(Record().state(), v1::PROTECTION_STATE_GRACE_PERIOD);
  EXPECT_EQ(DomainsEverywhere(), 1);

  AdvanceAndFire(1s);
  EXPECT_FALSE(MaybeRecord().has_value());
  EXPECT_EQ(DomainsEverywhere(), 0);
  EXPECT_THAT(peers_.hosts["h4"].images, IsEmpty());
  EXPECT_EQ(controller_->StatusOf(kVmName).status().code(), Code::kNotFound);
  EXPECT_EQ(peers_.CallCount("ReleaseShadow"), 1);
}

TEST_F(ControllerTest, DisablingThePolicyActsLikeAnUntag) {
  Protect();
  VS_ASSERT_OK(controller_->OnMetadataChanged(PrimaryXml(Policy(R"(enabled="no")"))));
  EXPECT_EQ(Record().state(), v1::PROTECTION_STATE_GRACE_PERIOD);
}

TEST_F(ControllerTest, RestartWithinTheGracePeriodGetsTheKeptShadowBackWithoutPlacement) {
  Protect();
  const std::size_t calls_before = peers_.calls.size();
  v1::HookEvent stopped;
  stopped.set_operation("stopped");
  stopped.set_sub_operation("end");
  stopped.set_domain_uuid(kVmUuid);
  stopped.set_domain_name(kVmName);
  stopped.set_domain_xml(PrimaryXml());
  VS_ASSERT_OK(controller_->HandleHookEvent(stopped));
  EXPECT_EQ(Record().state(), v1::PROTECTION_STATE_GRACE_PERIOD);

  AdvanceAndFire(kGrace / 2);
  v1::HookEvent started = stopped;
  started.set_operation("started");
  started.set_sub_operation("begin");
  VS_ASSERT_OK(controller_->HandleHookEvent(started));
  VS_ASSERT_OK(controller_->RunPending());
  EXPECT_EQ(Record().state(), v1::PROTECTION_STATE_PROTECTED);
  EXPECT_EQ(Record().shadows(0).host(), "h4");
  EXPECT_EQ(peers_.calls.size(), calls_before) << "no new placement, images or define";

  AdvanceAndFire(kGrace);  // the old grace timer is stale now
  EXPECT_EQ(Record().state(), v1::PROTECTION_STATE_PROTECTED);
  EXPECT_EQ(DomainsEverywhere(), 1);
}

TEST_F(ControllerTest, InvalidPolicyIsKeptAsTheErrorAndFixingItPlacesTheShadow) {
  Start();
  VS_ASSERT_OK(Observe(PrimaryXml(Policy(R"(vcpus="0")"))));
  VS_ASSERT_OK(controller_->RunPending());
  v1::VmRecord record = Record();
  EXPECT_EQ(record.state(), v1::PROTECTION_STATE_POLICY_INVALID);
  EXPECT_THAT(record.last_error(), HasSubstr("vcpus"));
  EXPECT_TRUE(record.vm_running());
  EXPECT_THAT(peers_.calls, IsEmpty());
  StatusOr<VmStatusView> view = controller_->StatusOf(kVmUuid);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->state, v1::PROTECTION_STATE_POLICY_INVALID);
  EXPECT_THAT(view->last_error, HasSubstr("vcpus"));
  EXPECT_EQ(controller_->Explain(kVmName).status().code(), Code::kFailedPrecondition);
  ASSERT_EQ(reports_.size(), 1u);
  EXPECT_THAT(reports_[0], HasSubstr("vcpus"));

  // The same invalid policy observed again is not reported again.
  VS_ASSERT_OK(Observe(PrimaryXml(Policy(R"(vcpus="0")"))));
  EXPECT_EQ(reports_.size(), 1u);

  VS_ASSERT_OK(controller_->OnMetadataChanged(PrimaryXml()));
  VS_ASSERT_OK(controller_->RunPending());
  EXPECT_EQ(Record().state(), v1::PROTECTION_STATE_PROTECTED);
  EXPECT_EQ(DomainsEverywhere(), 1);
}

TEST_F(ControllerTest, LivePolicyEditResizesTheShadowWhileTheVmRuns) {
  Protect();
  VS_ASSERT_OK(controller_->OnMetadataChanged(PrimaryXml(Policy(R"(vcpus="1" memory="2GiB")"))));
  VS_ASSERT_OK(controller_->RunPending());
  const v1::VmRecord record = Record();
  EXPECT_EQ(record.state(), v1::PROTECTION_STATE_PROTECTED);
  EXPECT_TRUE(record.vm_running());
  EXPECT_EQ(record.shadow_size().memory_kib(), 2u << 20);
  EXPECT_EQ(DomainsEverywhere(), 1);
  const XPathDoc xml(ShadowXmlOn(record.shadows(0).host()));
  EXPECT_EQ(xml.String("/domain/currentMemory"), "2097152");
  EXPECT_EQ(xml.String("/domain/vcpu/@current"), "1");
  EXPECT_EQ(peers_.CallCount("ReleaseShadow"), 1);
  EXPECT_EQ(peers_.CallCount("DefineShadow"), 2);
}

TEST_F(ControllerTest, UndefinedVmFoundByReconcileIsReleasedAfterGrace) {
  Protect();
  VS_ASSERT_OK(controller_->ReconcileLocalDomains({}));
  EXPECT_EQ(Record().state(), v1::PROTECTION_STATE_GRACE_PERIOD);
  EXPECT_FALSE(Record().tagged());
  AdvanceAndFire(kGrace);
  EXPECT_FALSE(MaybeRecord().has_value());
  EXPECT_EQ(DomainsEverywhere(), 0);
}

TEST_F(ControllerTest, DefineRecoveredBeforeTheVmIsObservedWaitsForItsXml) {
  // A previous life recorded the intent (Placing on h4) and died before defining.
  peers_.hosts["h4"].reachable = false;
  Start();
  VS_ASSERT_OK(Observe(PrimaryXml()));
  VS_ASSERT_OK(controller_->RunPending());
  ASSERT_EQ(Record().state(), v1::PROTECTION_STATE_PLACING);
  peers_.hosts["h4"].reachable = true;
  peers_.calls.clear();

  controller_ = NewController(store_);  // restarted: no domain XML known yet
  VS_ASSERT_OK(controller_->Recover());
  VS_ASSERT_OK(controller_->RunPending());
  EXPECT_THAT(peers_.calls, IsEmpty()) << "nothing can be defined without the primary's XML";
  EXPECT_EQ(Record().state(), v1::PROTECTION_STATE_PLACING);
  VS_ASSERT_OK(controller_->ReconcileLocalDomains({{PrimaryXml(), true, kVmUuid, kVmName}}));
  VS_ASSERT_OK(controller_->RunPending());
  EXPECT_EQ(Record().state(), v1::PROTECTION_STATE_PROTECTED);
  EXPECT_EQ(Record().shadows(0).host(), "h4");
  EXPECT_EQ(DomainsEverywhere(), 1);
}

TEST_F(ControllerTest, ReleaseLeavesAShadowThatAnotherHostsShadowdNowOwns) {
  Protect();
  // The VM migrated to h2, whose shadowd re-defined the same deterministic shadow UUID on h4.
  StatusOr<std::string> theirs = ShadowDomainXml(PrimaryXml(), {kShadowUuid, kShadowName, 0}, {2, 1 << 20},
                                                 {kVmUuid, kVmName, "h2"});
  ASSERT_TRUE(theirs.ok());
  peers_.hosts["h4"].domains[kShadowUuid] = *theirs;
  VS_ASSERT_OK(controller_->OnDomainStopped(kVmUuid));
  AdvanceAndFire(kGrace);
  EXPECT_FALSE(MaybeRecord().has_value());
  EXPECT_EQ(peers_.hosts["h4"].domains.size(), 1u);
  EXPECT_EQ(peers_.hosts["h4"].images.size(), 2u);
  EXPECT_EQ(peers_.CallCount("ReleaseShadow"), 0);
}

TEST_F(ControllerTest, OrphanSweepReleasesShadowsNoRecordAccountsFor) {
  Protect();
  auto plant = [this](const std::string& host, const std::string& primary_uuid, const std::string& name,
                      const std::string& primary_host) {
    StatusOr<std::string> shadow_uuid = lifecycle::ShadowUuid(primary_uuid, 0);
    ASSERT_TRUE(shadow_uuid.ok());
    StatusOr<std::string> xml = ShadowDomainXml(PrimaryXml(testing::kPolicy, primary_uuid, name),
                                                {*shadow_uuid, name + "-shadow", 0}, {1, 1 << 20},
                                                {primary_uuid, name, primary_host});
    ASSERT_TRUE(xml.ok()) << xml.status().ToString();
    peers_.hosts[host].domains[*shadow_uuid] = *xml;
    peers_.hosts[host].images[kRootDisk] = {kRootDiskBytes, "qcow2"};
    peers_.hosts[host].images[kDataDisk] = {kDataDiskBytes, "raw"};
  };
  plant("h3", "22222222-0000-4000-8000-000000000000", "gone", "h1");  // our host, but no record
  plant("h3", kVmUuid, kVmName, "h1");                                 // ours, but the record says h4
  plant("h2", "33333333-0000-4000-8000-000000000000", "theirs", "h3");  // another host's shadowd's
  const std::vector<PeerShadow> found = peers_.AllShadows();
  ASSERT_EQ(found.size(), 4u);

  VS_ASSERT_OK(controller_->SweepOrphans(found));
  VS_ASSERT_OK(controller_->RunPending());
  EXPECT_THAT(peers_.hosts["h3"].domains, IsEmpty());
  EXPECT_THAT(peers_.hosts["h3"].images, IsEmpty());
  EXPECT_EQ(peers_.hosts["h2"].domains.size(), 1u);
  EXPECT_EQ(peers_.hosts["h4"].domains.size(), 1u);
  EXPECT_EQ(peers_.hosts["h4"].images.size(), 2u);
  EXPECT_EQ(Record().state(), v1::PROTECTION_STATE_PROTECTED);
}

TEST_F(ControllerTest, UnreachablePeerDuringDefineIsRetriedWithBackoffOnTheSameHost) {
  peers_.hosts["h4"].reachable = false;
  Start();
  VS_ASSERT_OK(Observe(PrimaryXml()));
  VS_ASSERT_OK(controller_->RunPending());
  v1::VmRecord record = Record();
  EXPECT_EQ(record.state(), v1::PROTECTION_STATE_PLACING);
  EXPECT_EQ(record.shadows(0).host(), "h4");
  EXPECT_EQ(record.retry_count(), 1u);
  EXPECT_THAT(record.last_error(), HasSubstr("unreachable"));
  EXPECT_EQ(controller_->NextTimerDeadline(), clock_.WallNow() + 2s);

  AdvanceAndFire(2s);
  EXPECT_EQ(Record().retry_count(), 2u);
  EXPECT_EQ(controller_->NextTimerDeadline(), clock_.WallNow() + 4s);

  peers_.hosts["h4"].reachable = true;
  AdvanceAndFire(4s);
  record = Record();
  EXPECT_EQ(record.state(), v1::PROTECTION_STATE_PROTECTED);
  EXPECT_EQ(record.retry_count(), 0u);
  EXPECT_EQ(DomainsEverywhere(), 1);
  EXPECT_EQ(peers_.CallCount("DefineShadow"), 1) << "the unreachable attempts failed at the first image";
}

TEST_F(ControllerTest, MissingImageGivesTheHostUpAndRetriesLater) {
  images_.sizes.erase(kDataDisk);
  Start();
  VS_ASSERT_OK(Observe(PrimaryXml()));
  VS_ASSERT_OK(controller_->RunPending());
  const v1::VmRecord record = Record();
  EXPECT_EQ(record.state(), v1::PROTECTION_STATE_UNPROTECTED);
  EXPECT_THAT(record.last_error(), HasSubstr(kDataDisk));
  EXPECT_THAT(peers_.hosts["h4"].images, IsEmpty()) << "the image created before the failure was released";
  EXPECT_EQ(DomainsEverywhere(), 0);
}

TEST_F(ControllerTest, HostileOrMalformedXmlIsRecordedAndNothingCrashes) {
  Start();
  // Nobody to attribute it to: the error is returned, nothing is recorded.
  Status anonymous = controller_->OnDomainObserved({"<domain><name>x</name>", true, "", ""});
  EXPECT_EQ(anonymous.code(), Code::kInvalidArgument);
  EXPECT_THAT(anonymous.message(), HasSubstr("not well-formed"));
  Status bad_uuid = controller_->OnDomainObserved({PrimaryXml(testing::kPolicy, "not-a-uuid"), true, "", ""});
  EXPECT_THAT(bad_uuid.message(), HasSubstr("<uuid>"));
  StatusOr<std::vector<VmStatusView>> all = controller_->List();
  ASSERT_TRUE(all.ok());
  EXPECT_THAT(*all, IsEmpty());

  // A truncated tagged XML for a known VM: recorded as its error.
  const std::string full = PrimaryXml();
  const std::string truncated = full.substr(0, full.find("<devices>"));
  EXPECT_FALSE(Observe(truncated).ok());
  EXPECT_EQ(Record().state(), v1::PROTECTION_STATE_POLICY_INVALID);
  EXPECT_THAT(Record().last_error(), HasSubstr("domain XML cannot be read"));

  // Entity expansion, binary garbage, an empty document: refused, the record keeps the latest error.
  const std::string laughs = "<!DOCTYPE d [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;'>"
                             "<!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;'>]><domain><name>&c;</name></domain>";
  const std::string truncated_error = Record().last_error();
  EXPECT_FALSE(Observe(laughs).ok());
  EXPECT_THAT(Record().last_error(), HasSubstr("domain XML cannot be read"));
  EXPECT_NE(Record().last_error(), truncated_error);  // libxml2 stops the expansion, or the DOCTYPE is refused
  EXPECT_FALSE(Observe(std::string("\0\xff<domain\x01", 10)).ok());
  EXPECT_FALSE(Observe("").ok());
  EXPECT_EQ(Record().state(), v1::PROTECTION_STATE_POLICY_INVALID);
  VS_ASSERT_OK(controller_->RunPending());
  EXPECT_THAT(peers_.calls, IsEmpty());

  EXPECT_EQ(controller_->OnDomainStopped("../etc/passwd").code(), Code::kInvalidArgument);
  v1::HookEvent unknown;
  unknown.set_operation("explode");
  Status refused = controller_->HandleHookEvent(unknown);
  EXPECT_EQ(refused.code(), Code::kInvalidArgument);
  EXPECT_THAT(refused.message(), HasSubstr("'explode'"));
}

TEST_F(ControllerTest, MalformedXmlForAProtectedVmKeepsItsShadow) {
  Protect();
  EXPECT_FALSE(Observe("<domain><name>web</name><metadata><shadow:policy " + kNs).ok());
  VS_ASSERT_OK(controller_->RunPending());
  EXPECT_EQ(Record().state(), v1::PROTECTION_STATE_PROTECTED);
  EXPECT_THAT(Record().last_error(), HasSubstr("last valid policy stays in force"));
  EXPECT_EQ(DomainsEverywhere(), 1);
}

TEST_F(ControllerTest, VmWithABlockDiskIsReportedInsteadOfShadowed) {
  std::string xml = PrimaryXml();
  const std::string file_source = "<source file='/var/lib/libvirt/images/web-data.raw' index='1'/>";
  xml.replace(xml.find(file_source), file_source.size(), "<source dev='/dev/sdb'/>");
  const std::string disk = "<disk type='file' device='disk'>\n      <driver name='qemu' type='raw'";
  xml.replace(xml.find(disk), std::string("<disk type='file'").size(), "<disk type='block'");
  Start();
  VS_ASSERT_OK(Observe(xml));
  VS_ASSERT_OK(controller_->RunPending());
  EXPECT_EQ(Record().state(), v1::PROTECTION_STATE_POLICY_INVALID);
  EXPECT_THAT(Record().last_error(), HasSubstr("disk 'vdb'"));
  EXPECT_THAT(peers_.calls, IsEmpty());
}

TEST_F(ControllerTest, ShadowDomainsAndStoppedVmsGetNoRecord) {
  Start();
  StatusOr<std::string> shadow = ShadowDomainXml(PrimaryXml(), {kShadowUuid, kShadowName, 0}, {2, 1 << 20},
                                                 {kVmUuid, kVmName, "h9"});
  ASSERT_TRUE(shadow.ok());
  VS_ASSERT_OK(controller_->OnDomainObserved({*shadow, false, kShadowUuid, kShadowName}));
  VS_ASSERT_OK(Observe(PrimaryXml(), /*running=*/false));
  VS_ASSERT_OK(Observe(PrimaryXml(""), /*running=*/true));
  StatusOr<std::vector<VmStatusView>> all = controller_->List();
  ASSERT_TRUE(all.ok());
  EXPECT_THAT(*all, IsEmpty());
}

// The hook's operations, as documented in controller.cc.
class HookMappingTest : public ControllerTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(HookMappingTest, StartingOperationsAreObservationsOfARunningVm) {
  Start();
  v1::HookEvent event;
  event.set_operation(GetParam());
  event.set_sub_operation("begin");
  event.set_domain_uuid(kVmUuid);
  event.set_domain_name(kVmName);
  event.set_domain_xml(PrimaryXml());
  VS_ASSERT_OK(controller_->HandleHookEvent(event));
  VS_ASSERT_OK(controller_->RunPending());
  EXPECT_EQ(Record().state(), v1::PROTECTION_STATE_PROTECTED);
  EXPECT_TRUE(Record().vm_running());

  for (const char* ending : {"stopped", "release"}) {
    event.set_operation(ending);
    event.set_sub_operation("end");
    VS_ASSERT_OK(controller_->HandleHookEvent(event));
  }
  EXPECT_EQ(Record().state(), v1::PROTECTION_STATE_GRACE_PERIOD);
  EXPECT_FALSE(Record().vm_running());
}

INSTANTIATE_TEST_SUITE_P(Operations, HookMappingTest,
                         ::testing::Values("prepare", "start", "started", "migrate", "restore", "reconnect", "attach"));

TEST_F(ControllerTest, StoppedHookWithoutUuidTakesItFromTheXml) {
  Protect();
  v1::HookEvent event;
  event.set_operation("release");
  event.set_domain_xml(PrimaryXml());
  VS_ASSERT_OK(controller_->HandleHookEvent(event));
  EXPECT_EQ(Record().state(), v1::PROTECTION_STATE_GRACE_PERIOD);
}

TEST_F(ControllerTest, CallsBeforeRecoverAndASecondRecoverAreRefused) {
  controller_ = NewController(store_);
  EXPECT_EQ(Observe(PrimaryXml()).code(), Code::kFailedPrecondition);
  EXPECT_EQ(controller_->OnTimer().code(), Code::kFailedPrecondition);
  EXPECT_EQ(controller_->Step().status().code(), Code::kFailedPrecondition);
  VS_ASSERT_OK(controller_->Recover());
  EXPECT_EQ(controller_->Recover().code(), Code::kFailedPrecondition);
}

TEST_F(ControllerTest, ARecordWrittenBehindTheControllersBackIsRefused) {
  Protect();
  v1::VmRecord tampered = Record();
  tampered.set_version(tampered.version() + 5);
  store::WriteBatch batch;
  batch.PutProto(store::Key(store::Table::kVm, kVmUuid), tampered);
  VS_ASSERT_OK(store_.Write(batch));
  const Status stopped = controller_->OnDomainStopped(kVmUuid);
  EXPECT_EQ(stopped.code(), Code::kAborted);
  EXPECT_THAT(stopped.message(), HasSubstr(kVmUuid));
  EXPECT_THAT(stopped.message(), HasSubstr("one shadowd per store"));
}

TEST_F(ControllerTest, FailedStoreWriteIsResyncedFromTheStoredRecord) {
  store::FaultInjectingStore faulty(store_);
  controller_ = NewController(faulty);
  VS_ASSERT_OK(controller_->Recover());
  VS_ASSERT_OK(Observe(PrimaryXml()));
  faulty.FailNthWrite(1, Unavailable("disk full"));
  EXPECT_EQ(controller_->RunPending().code(), Code::kUnavailable);
  EXPECT_EQ(Record().state(), v1::PROTECTION_STATE_UNPLACED) << "the failed transition left no trace";
  ASSERT_EQ(controller_->NextTimerDeadline(), clock_.WallNow() + 2s);
  AdvanceAndFire(2s);
  EXPECT_EQ(Record().state(), v1::PROTECTION_STATE_PROTECTED);
  EXPECT_EQ(DomainsEverywhere(), 1);
}

TEST_F(ControllerTest, DamagedRecordIsListedAndReportedWithoutBlockingOthers) {
  store_.PutRawForTesting(store::Key(store::Table::kVm, "44444444-0000-4000-8000-000000000000"), "garbage");
  controller_ = NewController(store_);
  EXPECT_EQ(controller_->Recover().code(), Code::kDataLoss);
  VS_ASSERT_OK(Observe(PrimaryXml()));
  VS_ASSERT_OK(controller_->RunPending());
  EXPECT_EQ(Record().state(), v1::PROTECTION_STATE_PROTECTED);
  StatusOr<std::vector<VmStatusView>> all = controller_->List();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_TRUE((*all)[1].damaged);
  EXPECT_FALSE(reports_.empty());
}

}  // namespace
}  // namespace vs::controller

namespace vs::controller {
namespace {

// A policy asking for more shadows than this version keeps must not look honoured: status says so.
TEST_F(ControllerTest, StatusSaysWhenThePolicyAsksForMoreShadowsThanAreKept) {
  Start();
  VS_ASSERT_OK(Observe(PrimaryXml(Policy("shadows='2'"))));
  VS_ASSERT_OK(controller_->RunPending());
  auto view = controller_->StatusOf(kVmName);
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  EXPECT_EQ(view->shadow_hosts.size(), 1u);
  EXPECT_THAT(view->last_error, HasSubstr("asks for 2 shadows"));

  VS_ASSERT_OK(Observe(PrimaryXml(Policy("shadows='1'"))));
  VS_ASSERT_OK(controller_->RunPending());
  view = controller_->StatusOf(kVmName);
  ASSERT_TRUE(view.ok());
  EXPECT_THAT(view->last_error, ::testing::Not(HasSubstr("shadows")));
}

}  // namespace
}  // namespace vs::controller

// ---- Switchover and requested shadow moves (failback)

namespace vs::controller {
namespace {

TEST_F(ControllerTest, SwitchedOverEndsTheRecordWithoutReleasingTheShadow) {
  Protect();
  const size_t calls_before = peers_.calls.size();
  std::string upper_uuid = kVmUuid;
  for (char& c : upper_uuid) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  VS_ASSERT_OK(controller_->OnSwitchedOver(upper_uuid, "h4"));
  VS_ASSERT_OK(controller_->RunPending());
  EXPECT_FALSE(MaybeRecord().has_value()) << "the record ends";
  EXPECT_EQ(peers_.CallCount("ReleaseShadow"), 0) << "the shadow became the VM: it must not be released";
  EXPECT_EQ(peers_.calls.size(), calls_before);
  EXPECT_EQ(peers_.hosts["h4"].domains.count(kShadowUuid), 1u);
  EXPECT_EQ(peers_.hosts["h4"].images.size(), 2u) << "the running VM's disks are left alone";
  EXPECT_FALSE(controller_->NextTimerDeadline().has_value());
  EXPECT_EQ(controller_->StatusOf(kVmName).status().code(), Code::kNotFound);
}

// Right after a switchover the VM's old host still defines the VM (and holds its image at the same path) until
// the migration ends: the new shadow goes elsewhere, not first to that host to fail there.
TEST_F(ControllerTest, ShadowIsNeverPlacedOnAHostThatStillDefinesTheVm) {
  cluster_.defining[kVmUuid] = {"h1", "h4"};  // h1: this host (the primary); h4: the host it is leaving
  Protect();
  EXPECT_EQ(Record().shadows(0).host(), "h3") << "h4 would be the cheapest of the other zone";
  EXPECT_EQ(peers_.CallCount("CreateReplicaImage"), 2);
  for (const std::string& call : peers_.calls) EXPECT_THAT(call, ::testing::Not(HasSubstr("h4"))) << call;

  StatusOr<scheduler::Explanation> explained = controller_->Explain(kVmName);
  ASSERT_TRUE(explained.ok()) << explained.status().ToString();
  bool h4_excluded = false;
  for (const auto& verdict : explained->hosts) {
    if (verdict.host == "h4") h4_excluded = verdict.reason.find("excluded") != std::string::npos;
  }
  EXPECT_TRUE(h4_excluded) << "Explain shows why h4 is not used";
}

// A host that drains takes the shadows on it along: each is released there and placed again elsewhere (the
// cluster offers a draining host as down), so that the VMs of other hosts stay protected.
TEST_F(ControllerTest, ShadowOnALeavingHostIsPlacedAgainElsewhere) {
  Protect();
  ASSERT_EQ(Record().shadows(0).host(), "h4");
  const v1::VmRecord before = Record();
  VS_ASSERT_OK(controller_->OnHostLeaving("h3", "draining"));  // holds no shadow of this VM: nothing changes
  EXPECT_EQ(Record().SerializeAsString(), before.SerializeAsString());

  peers_.calls.clear();
  cluster_.hosts[3].up = false;  // as LibvirtCluster offers a draining host
  VS_ASSERT_OK(controller_->OnHostLeaving("h4", "draining"));
  EXPECT_EQ(Record().state(), v1::PROTECTION_STATE_RELEASING);
  VS_ASSERT_OK(controller_->RunPending());
  EXPECT_THAT(peers_.calls, ElementsAre("ListShadows h4 ", "ReleaseShadow h4 " + kShadowUuid,
                                        "CreateReplicaImage h3 " + kRootDisk,
                                        "CreateReplicaImage h3 " + kDataDisk, "DefineShadow h3 " + kShadowUuid));
  const v1::VmRecord after = Record();
  ASSERT_EQ(after.state(), v1::PROTECTION_STATE_PROTECTED) << after.last_error();
  EXPECT_EQ(after.shadows(0).host(), "h3");
  EXPECT_TRUE(peers_.hosts["h4"].domains.empty());
  EXPECT_THAT(reports_, ::testing::Contains(HasSubstr("on host h4 is placed anew elsewhere: h4 is leaving (draining)")));

  VS_ASSERT_OK(controller_->OnHostLeaving("h4", "draining"));  // asked again at the next refresh: nothing to do
  VS_ASSERT_OK(controller_->RunPending());
  EXPECT_EQ(Record().shadows(0).host(), "h3");
}

// A shadow host that crashed (gone from the membership) cannot release anything: the shadow is given up, the
// next one is placed on another host, and when the host comes back its old shadow is an orphan to sweep.
TEST_F(ControllerTest, ShadowOnALostHostIsGivenUpAndPlacedElsewhereItsDefinitionSweptOnReturn) {
  Protect();
  ASSERT_EQ(Record().shadows(0).host(), "h4");
  const v1::VmRecord before = Record();
  VS_ASSERT_OK(controller_->OnHostLost("h3", "it left the quorate membership"));  // holds no shadow of this VM
  EXPECT_EQ(Record().SerializeAsString(), before.SerializeAsString());

  peers_.calls.clear();
  cluster_.hosts[3].up = false;  // as LibvirtCluster offers a host absent from the membership
  VS_ASSERT_OK(controller_->OnHostLost("h4", "it left the quorate membership"));
  VS_ASSERT_OK(controller_->RunPending());
  EXPECT_THAT(peers_.calls, ElementsAre("CreateReplicaImage h3 " + kRootDisk, "CreateReplicaImage h3 " + kDataDisk,
                                        "DefineShadow h3 " + kShadowUuid));  // nothing asked of the lost host
  const v1::VmRecord after = Record();
  ASSERT_EQ(after.state(), v1::PROTECTION_STATE_PROTECTED) << after.last_error();
  EXPECT_EQ(after.shadows(0).host(), "h3");
  EXPECT_THAT(reports_, ::testing::Contains(HasSubstr("on host h4 is lost: it left the quorate membership")));
  VS_ASSERT_OK(controller_->OnHostLost("h4", "it left the quorate membership"));  // the next refresh: nothing more
  VS_ASSERT_OK(controller_->RunPending());
  EXPECT_EQ(Record().shadows(0).host(), "h3");

  // h4 returns with the old definition (the fake peer kept it): the sweep releases it, the new shadow stays.
  cluster_.hosts[3].up = true;
  ASSERT_EQ(peers_.hosts["h4"].domains.size(), 1U);
  VS_ASSERT_OK(controller_->SweepOrphans(peers_.AllShadows()));
  VS_ASSERT_OK(controller_->RunPending());
  EXPECT_TRUE(peers_.hosts["h4"].domains.empty());
  EXPECT_EQ(Record().shadows(0).host(), "h3");
  EXPECT_EQ(DomainsEverywhere(), 1);
}

// After a partition this host fenced the VM and its shadow host promoted it: the copy here is stale. Its record
// ends without a release (the shadow became the VM on h4), and observing the paused copy again protects nothing.
TEST_F(ControllerTest, AVmPromotedElsewhereIsNotProtectedFromHere) {
  std::optional<std::string> promoted_on;
  ControllerOptions options;
  options.this_host = "h1";
  options.grace_period = kGrace;
  options.promoted_elsewhere = [&](const std::string& uuid) {
    return uuid == kVmUuid ? promoted_on : std::nullopt;
  };
  controller_ = std::make_unique<ProtectionController>(options, store_, peers_, cluster_, images_, clock_);
  VS_ASSERT_OK(controller_->Recover());
  VS_ASSERT_OK(Observe(PrimaryXml()));
  VS_ASSERT_OK(controller_->RunPending());
  ASSERT_EQ(Record().state(), v1::PROTECTION_STATE_PROTECTED) << Record().last_error();
  ASSERT_EQ(Record().shadows(0).host(), "h4");

  promoted_on = "h4";
  peers_.calls.clear();
  VS_ASSERT_OK(Observe(PrimaryXml()));
  VS_ASSERT_OK(controller_->RunPending());
  EXPECT_FALSE(MaybeRecord().has_value()) << "the stale copy's record must end";
  EXPECT_EQ(peers_.CallCount("ReleaseShadow"), 0) << "the shadow became the VM on h4: nothing to release";
  VS_ASSERT_OK(Observe(PrimaryXml()));  // seen again (a domain event, a reconcile): still nothing
  VS_ASSERT_OK(controller_->RunPending());
  EXPECT_FALSE(MaybeRecord().has_value());
  EXPECT_EQ(peers_.CallCount("DefineShadow"), 0);
}

TEST_F(ControllerTest, SwitchedOverToAHostWithoutTheShadowChangesNothing) {
  Protect();
  const v1::VmRecord before = Record();
  VS_ASSERT_OK(controller_->OnSwitchedOver(kVmUuid, "h3"));  // refused by the lifecycle: ignored
  VS_ASSERT_OK(controller_->RunPending());
  EXPECT_EQ(Record().SerializeAsString(), before.SerializeAsString());
  EXPECT_EQ(peers_.CallCount("ReleaseShadow"), 0);
  EXPECT_EQ(controller_->OnSwitchedOver("not-a-uuid", "h4").code(), Code::kInvalidArgument);
}

TEST_F(ControllerTest, ShadowMovePlacesTheNextShadowOnlyOnThePinnedHost) {
  Protect();
  ASSERT_EQ(Record().shadows(0).host(), "h4");  // h4 is the scheduler's choice; h3 is dearer
  peers_.calls.clear();
  VS_ASSERT_OK(controller_->RequestShadowMove(kVmName, "h3"));
  EXPECT_EQ(Record().state(), v1::PROTECTION_STATE_RELEASING);
  EXPECT_EQ(Record().pinned_host(), "h3");
  VS_ASSERT_OK(controller_->RunPending());

  EXPECT_THAT(peers_.calls, ElementsAre("ListShadows h4 ", "ReleaseShadow h4 " + kShadowUuid,
                                        "CreateReplicaImage h3 " + kRootDisk,
                                        "CreateReplicaImage h3 " + kDataDisk, "DefineShadow h3 " + kShadowUuid));
  const v1::VmRecord record = Record();
  ASSERT_EQ(record.state(), v1::PROTECTION_STATE_PROTECTED) << record.last_error();
  ASSERT_EQ(record.shadows_size(), 1);
  EXPECT_EQ(record.shadows(0).host(), "h3");
  EXPECT_EQ(record.pinned_host(), "");
  EXPECT_TRUE(peers_.hosts["h4"].domains.empty());
  EXPECT_THAT(peers_.hosts["h4"].images, IsEmpty());
  EXPECT_EQ(DomainsEverywhere(), 1);
}

TEST_F(ControllerTest, ShadowMoveToAFullHostLeavesTheVmUnprotectedInsteadOfPlacingElsewhere) {
  Protect();
  cluster_.hosts[2].total_memory_kib = 512 * 1024;  // h3 cannot take the 1 GiB shadow
  VS_ASSERT_OK(controller_->RequestShadowMove(kVmUuid, "h3"));
  VS_ASSERT_OK(controller_->RunPending());
  const v1::VmRecord record = Record();
  EXPECT_EQ(record.state(), v1::PROTECTION_STATE_UNPROTECTED);
  EXPECT_EQ(record.pinned_host(), "h3") << "the pin holds until protected again";
  EXPECT_EQ(DomainsEverywhere(), 0);
  EXPECT_EQ(peers_.CallCount("DefineShadow"), 1) << "only the first define, none on another host";

  cluster_.hosts[2].total_memory_kib = std::uint64_t{64} << 20;  // h3 has room now
  VS_ASSERT_OK(controller_->OnCapacityChanged());
  VS_ASSERT_OK(controller_->RunPending());
  EXPECT_EQ(Record().state(), v1::PROTECTION_STATE_PROTECTED);
  EXPECT_EQ(Record().shadows(0).host(), "h3");
  EXPECT_EQ(Record().pinned_host(), "");
}

TEST_F(ControllerTest, ShadowMoveIsRefusedWhileTheShadowIsBeingPlaced) {
  Start();
  VS_ASSERT_OK(Observe(PrimaryXml()));
  StatusOr<bool> stepped = controller_->Step();  // ComputePlacement: now Placing, the define queued
  ASSERT_TRUE(stepped.ok() && *stepped) << stepped.status().ToString();
  ASSERT_EQ(Record().state(), v1::PROTECTION_STATE_PLACING);
  const v1::VmRecord before = Record();

  const Status refused = controller_->RequestShadowMove(kVmName, "h3");
  EXPECT_EQ(refused.code(), Code::kFailedPrecondition) << refused.ToString();
  EXPECT_THAT(refused.message(), HasSubstr("Placing"));
  EXPECT_EQ(Record().SerializeAsString(), before.SerializeAsString());
  VS_ASSERT_OK(controller_->RunPending());
  EXPECT_EQ(Record().shadows(0).host(), "h4");
}

TEST_F(ControllerTest, ShadowMoveToThePrimarysHostOrOfAnUnknownVmIsRejected) {
  Protect();
  const v1::VmRecord before = Record();
  const Status own_host = controller_->RequestShadowMove(kVmName, "h1");
  EXPECT_EQ(own_host.code(), Code::kInvalidArgument) << own_host.ToString();
  EXPECT_THAT(own_host.message(), HasSubstr("'h1'"));
  EXPECT_EQ(controller_->RequestShadowMove("no-such-vm", "h3").code(), Code::kNotFound);
  EXPECT_EQ(Record().SerializeAsString(), before.SerializeAsString());
  EXPECT_FALSE(controller_->HasPending());
}

// A Nova instance without a policy element of its own: protected once Nova's records name a policy (issue 15).
TEST_F(ControllerTest, NovaInstanceIsProtectedOnceItsExternalPolicyIsKnownAndStatusSaysWhereItCameFrom) {
  Start();
  VS_ASSERT_OK(Observe(PrimaryXml("")));  // untagged XML, Nova's answer not known yet
  EXPECT_FALSE(MaybeRecord().has_value());
  EXPECT_THAT(external_asked_, ElementsAre(kVmUuid));

  policy::Policy named;
  named.memory = policy::ResourceSpec::Percent(50);
  external_ = ExternalPolicy{.policy = std::optional<policy::Policy>(named),
                             .source = "flavor vs.small extra spec virt_shadow:policy=gold"};
  VS_ASSERT_OK(controller_->OnExternalPolicyChanged(kVmUuid));
  VS_ASSERT_OK(controller_->RunPending());
  const v1::VmRecord record = Record();
  ASSERT_EQ(record.state(), v1::PROTECTION_STATE_PROTECTED) << record.last_error();
  EXPECT_EQ(record.shadow_size().vcpus(), 2u);  // 50 % of 4 vCPUs
  EXPECT_EQ(record.shadow_size().memory_kib(), 2u * 1024 * 1024);  // 50 % of 4 GiB

  StatusOr<VmStatusView> view = controller_->StatusOf(kVmUuid);
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  EXPECT_EQ(view->policy_source, "flavor vs.small extra spec virt_shadow:policy=gold");
  ASSERT_TRUE(view->nova.has_value());
  EXPECT_EQ(view->nova->instance_id, kVmUuid);
  EXPECT_EQ(view->nova->name, "web-1");

  // Nova's records say "none" now: the VM is untagged, and its shadow kept for the grace period, then released.
  external_ = ExternalPolicy{.policy = std::optional<policy::Policy>(), .source = "instance metadata"};
  VS_ASSERT_OK(controller_->OnExternalPolicyChanged(kVmUuid));
  EXPECT_EQ(Record().state(), v1::PROTECTION_STATE_GRACE_PERIOD);
}

TEST_F(ControllerTest, ThePolicyElementInTheDomainXmlWinsOverTheExternalOne) {
  policy::Policy named;
  named.memory = policy::ResourceSpec::Percent(50);
  external_ = ExternalPolicy{.policy = std::optional<policy::Policy>(named), .source = "flavor"};
  Protect();  // PrimaryXml carries kPolicy (50 % memory)
  EXPECT_EQ(Record().shadow_size().memory_kib(), testing::kShadowMemoryKiB);  // the XML's, not the external 50 %
  StatusOr<VmStatusView> view = controller_->StatusOf(kVmName);
  ASSERT_TRUE(view.ok()) << view.status().ToString();
  EXPECT_EQ(view->policy_source, "");
}

TEST_F(ControllerTest, AnExternalPolicyNamingSomethingInvalidMakesThePolicyInvalidWithItsMessage) {
  Start();
  external_ = ExternalPolicy{.policy = InvalidArgument("flavor vs.small extra spec virt_shadow:policy=platinum: no "
                                                       "policy named 'platinum' (configured: gold)"),
                             .source = "flavor vs.small extra spec virt_shadow:policy=platinum"};
  VS_ASSERT_OK(Observe(PrimaryXml("")));
  const v1::VmRecord record = Record();
  EXPECT_EQ(record.state(), v1::PROTECTION_STATE_POLICY_INVALID);
  EXPECT_THAT(record.last_error(), HasSubstr("platinum"));
}

TEST_F(ControllerTest, AnExternalPolicyChangeForAVmNotObservedHereChangesNothing) {
  Start();
  VS_ASSERT_OK(controller_->OnExternalPolicyChanged(kVmUuid));
  EXPECT_FALSE(MaybeRecord().has_value());
  EXPECT_FALSE(controller_->OnExternalPolicyChanged("not-a-uuid").ok());
}

}  // namespace
}  // namespace vs::controller
