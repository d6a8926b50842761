// NovaPromotionHost (shadowd/nova/nova_promotion_host.h): a Nova instance's crash promotion goes through Nova's
// evacuate (forced down, the shadow's allocation deleted, evacuate, wait for ACTIVE here), every other VM through
// the wrapped host; alone against a fake PromotionHost and a fake OpenStackApi, and under Promotions (the persisted
// lifecycle), with shadowd killed after the evacuate.
#include "shadowd/nova/nova_promotion_host.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "shadowd/controller/shadow_domain_xml.h"
#include "shadowd/failover/promotions.h"
#include "shadowd/lifecycle/shadow_identity.h"
#include "shadowd/policy/domain_xml.h"
#include "shadowd/store/memory_store.h"
#include "tests/unit/controller/test_domains.h"
#include "tests/unit/nova/fake_evacuating_cloud.h"

namespace vs::nova {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using controller::testing::kShadowUuid;  // uuid5 of kVmUuid, index 0
using controller::testing::kVmUuid;
using failover::PromotedVmState;
using failover::VmSize;
using virtshadow::v1::PromotionRecord;
namespace v1 = virtshadow::v1;

const std::string kName = "instance-0000000a";
const std::string kShadow = kName + "-shadow";
constexpr char kThisHost[] = "h2";
constexpr char kPrimary[] = "h1";

struct SimulatedCrash {};

// The VM as its primary's libvirtd had it: a Nova instance (its <nova:instance>), 4 vCPUs, 4 GiB.
std::string NovaXml() { return controller::testing::PrimaryXml(controller::testing::kPolicy, kVmUuid, kName); }
// The same without Nova's metadata: an ordinary VM.
std::string PlainXml() {
  std::string xml = NovaXml();
  const auto begin = xml.find("<nova:instance");
  const std::string end_tag = "</nova:instance>";
  const auto end = xml.find(end_tag);
  xml.erase(begin, end + end_tag.size() - begin);
  return xml;
}
std::string ShadowXml(const std::string& vm_xml) {
  StatusOr<std::string> xml = controller::ShadowDomainXml(vm_xml, {kShadowUuid, kShadow, 0}, {2, 1024 * 1024},
                                                          {kVmUuid, kName, kPrimary, ""});
  EXPECT_TRUE(xml.ok()) << xml.status().ToString();
  return xml.ok() ? *xml : "";
}

struct Domain {
  std::string xml;
  bool running = false;
  VmSize live;
};

// This host's libvirtd, in memory; every call that changes something is logged ("Define <name>", ...).
class FakeHost final : public failover::PromotionHost {
 public:
  StatusOr<std::vector<controller::PeerShadow>> LocalShadows() override {
    std::vector<controller::PeerShadow> shadows;
    for (const auto& [name, domain] : domains) {
      auto described = controller::DescribeShadowDomain(kThisHost, domain.xml);
      if (!described.ok()) return described.status();
      if (*described) shadows.push_back(**described);
    }
    return shadows;
  }
  StatusOr<v1::ReplicaRecord> SettleReplica(const std::string& vm_uuid) override {
    v1::ReplicaRecord replica;
    replica.set_vm_uuid(vm_uuid);
    replica.mutable_applied()->set_checkpoint("vs-7");
    calls.push_back("SettleReplica " + vm_uuid);
    return replica;
  }
  StatusOr<std::string> DefinitionXml(const std::string& name) override {
    auto it = domains.find(name);
    if (it == domains.end()) return NotFound("domain '" + name + "' not found");
    return it->second.xml;
  }
  Status Define(const std::string& xml) override {
    auto facts = policy::ParseDomain(xml);
    if (!facts.ok()) return facts.status();
    calls.push_back("Define " + facts->name);
    domains[facts->name] = {xml, false, {facts->current_vcpus, facts->current_memory_kib}};
    return Status::Ok();
  }
  Status Undefine(const std::string& name) override {
    if (domains.erase(name) > 0) calls.push_back("Undefine " + name);
    return Status::Ok();
  }
  StatusOr<PromotedVmState> VmState(const std::string& name) override {
    auto it = domains.find(name);
    if (it == domains.end()) return PromotedVmState{};
    return PromotedVmState{.defined = true, .running = it->second.running};
  }
  Status Start(const std::string& name) override {
    calls.push_back("Start " + name);
    auto it = domains.find(name);
    if (it == domains.end()) return NotFound("domain '" + name + "' not found");
    it->second.running = true;
    return Status::Ok();
  }
  StatusOr<VmSize> LiveSize(const std::string& name) override {
    auto it = domains.find(name);
    if (it == domains.end() || !it->second.running) return FailedPrecondition(name + " does not run");
    return it->second.live;
  }
  StatusOr<VmSize> FreeBesides(const std::string&) override { return VmSize{.vcpus = 16, .memory_kib = 64ull << 20}; }
  Status SetVcpusLive(const std::string& name, std::uint32_t vcpus) override {
    calls.push_back("SetVcpusLive " + name + " " + std::to_string(vcpus));
    domains.at(name).live.vcpus = vcpus;
    return Status::Ok();
  }
  Status SetMemoryLive(const std::string& name, std::uint64_t memory_kib) override {
    calls.push_back("SetMemoryLive " + name + " " + std::to_string(memory_kib));
    domains.at(name).live.memory_kib = memory_kib;
    return Status::Ok();
  }

  std::map<std::string, Domain> domains;
  std::vector<std::string> calls;
};

NovaServer Server(const std::string& host, const std::string& status, const std::string& task = "") {
  NovaServer server;
  server.id = kVmUuid;
  server.name = "web-1";
  server.host = host;
  server.status = status;
  server.task_state = task;
  return server;
}

class NovaPromotionHostTest : public ::testing::Test {
 protected:
  NovaPromotionHostTest() {
    api_.servers[kVmUuid] = Server(kPrimary, "ACTIVE");
    ComputeService h1{.id = "svc-h1", .host = kPrimary, .status = "enabled", .state = "down"};
    ComputeService h2{.id = "svc-h2", .host = kThisHost, .status = "enabled", .state = "up"};
    api_.services = {{h1.id, h1}, {h2.id, h2}};
    // Nova's rebuild on h2: the task moves on, the domain is spawned (at the flavor's full size), then ACTIVE here.
    api_.evacuation[kVmUuid] = {Server(kPrimary, "REBUILD", "rebuilding"),
                                Server(kPrimary, "REBUILD", "rebuild_spawning"), Server(kThisHost, "ACTIVE")};
    api_.on_progress = [this](const NovaServer& server) {
      if (server.task_state == "rebuild_spawning" && host_.domains.count(kName) == 0) {
        EXPECT_EQ(host_.domains.count(kShadow), 0u) << "Nova spawned the VM while its shadow was defined";
        host_.domains[kName] = {NovaXml(), true, {4, 4ull << 20}};
        host_.calls.push_back("(Nova spawns " + kName + ")");
      }
    };
    Restart();
  }

  // shadowd killed and started again: a new decorator (nothing of the old one's is kept).
  void Restart() {
    nova_host_ = std::make_unique<NovaPromotionHost>(
        host_, api_, store_, clock_, NovaPromotionSettings{.this_host = kThisHost}, [this](const std::string& line) {
          log_.push_back(line);
        });
  }

  // The record Promotions keeps of this VM's promotion, in `phase`, its promoted definition from `vm_xml`.
  void PutRecord(const std::string& vm_xml, v1::PromotionPhase phase = v1::PROMOTION_PHASE_DEFINED) {
    PromotionRecord record;
    record.set_vm_uuid(kVmUuid);
    record.set_vm_name(kName);
    record.set_primary_host(kPrimary);
    record.set_shadow_name(kShadow);
    record.set_phase(phase);
    StatusOr<std::string> promoted = controller::PromotedDomainXml(ShadowXml(vm_xml), kVmUuid, "");
    ASSERT_TRUE(promoted.ok()) << promoted.status().ToString();
    record.set_promoted_xml(*promoted);
    store::WriteBatch batch;
    batch.PutProto(failover::PromotionRecordKey(kVmUuid), record);
    ASSERT_TRUE(store_.Write(batch).ok());
  }

  FakeHost host_;
  testing::FakeEvacuatingCloud api_;
  store::MemoryStore store_;
  FakeClock clock_;
  std::vector<std::string> log_;
  std::unique_ptr<NovaPromotionHost> nova_host_;
};

TEST(ShadowConsumerUuidTest, IsTheShadowsUuidWithTheIndexFromItsName) {
  EXPECT_EQ(*ShadowConsumerUuid(kVmUuid, kName, kName + "-shadow"), kShadowUuid);
  EXPECT_EQ(*ShadowConsumerUuid(kVmUuid, kName, kName + "-shadow2"), *lifecycle::ShadowUuid(kVmUuid, 2));
  EXPECT_EQ(ShadowConsumerUuid(kVmUuid, kName, "other-shadow").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ShadowConsumerUuid(kVmUuid, kName, kName + "-shadowx").status().code(), Code::kInvalidArgument);
}

TEST_F(NovaPromotionHostTest, PromotedDefinitionKeepsNovasMetadata) {
  StatusOr<std::string> promoted = controller::PromotedDomainXml(ShadowXml(NovaXml()), kVmUuid, "");
  ASSERT_TRUE(promoted.ok()) << promoted.status().ToString();
  StatusOr<policy::DomainFacts> facts = policy::ParseDomain(*promoted);
  ASSERT_TRUE(facts.ok());
  ASSERT_TRUE(facts->nova.has_value());
  EXPECT_EQ(facts->nova->display_name, "web-1");
}

TEST_F(NovaPromotionHostTest, NovaInstanceIsEvacuatedInOrderAndWaitedFor) {
  PutRecord(NovaXml());
  ASSERT_TRUE(nova_host_->Define(*controller::PromotedDomainXml(ShadowXml(NovaXml()), kVmUuid, "")).ok());
  EXPECT_EQ(host_.domains.count(kName), 0u) << "Nova defines it; a definition here makes Nova's rebuild refuse";

  Status started = nova_host_->Start(kName);
  ASSERT_TRUE(started.ok()) << started.ToString();
  EXPECT_THAT(api_.Actions(), ElementsAre("FindComputeService h1", "SetForcedDown svc-h1 true",
                                          "DeleteAllocation " + kShadowUuid, "Evacuate " + kVmUuid + " h2"));
  EXPECT_EQ(api_.servers[kVmUuid], Server(kThisHost, "ACTIVE"));
  EXPECT_THAT(host_.calls, ElementsAre("(Nova spawns " + kName + ")")) << "libvirt's start is Nova's, not ours";
  EXPECT_TRUE(api_.services["svc-h1"].forced_down);
}

TEST_F(NovaPromotionHostTest, AServiceForcedDownAlreadyIsNotForcedAgain) {
  api_.services["svc-h1"].forced_down = true;
  PutRecord(NovaXml());
  ASSERT_TRUE(nova_host_->Start(kName).ok());
  EXPECT_THAT(api_.Actions(), ElementsAre("FindComputeService h1", "DeleteAllocation " + kShadowUuid,
                                          "Evacuate " + kVmUuid + " h2"));
}

TEST_F(NovaPromotionHostTest, OrdinaryVmPassesThroughWithoutAskingNova) {
  PutRecord(PlainXml());
  const std::string promoted = *controller::PromotedDomainXml(ShadowXml(PlainXml()), kVmUuid, "");
  ASSERT_TRUE(nova_host_->Define(promoted).ok());
  ASSERT_TRUE(nova_host_->Undefine(kShadow).ok());
  ASSERT_TRUE(nova_host_->Start(kName).ok());
  ASSERT_TRUE(nova_host_->SetVcpusLive(kName, 4).ok());
  ASSERT_TRUE(nova_host_->SetMemoryLive(kName, 4ull << 20).ok());
  EXPECT_THAT(host_.calls, ElementsAre("Define " + kName, "Start " + kName, "SetVcpusLive " + kName + " 4",
                                       "SetMemoryLive " + kName + " 4194304"));
  EXPECT_THAT(api_.calls, IsEmpty());
}

TEST_F(NovaPromotionHostTest, NovaMetadataOfAnInstanceNovaDoesNotKnowIsPromotedAsAnyVm) {
  api_.servers.clear();
  PutRecord(NovaXml());
  ASSERT_TRUE(nova_host_->Define(*controller::PromotedDomainXml(ShadowXml(NovaXml()), kVmUuid, "")).ok());
  ASSERT_TRUE(nova_host_->Start(kName).ok());
  EXPECT_THAT(host_.calls, ElementsAre("Define " + kName, "Start " + kName));
  EXPECT_THAT(api_.Actions(), IsEmpty());
}

TEST_F(NovaPromotionHostTest, NovaOutageAtDefineIsARetryNotARefusal) {
  api_.get_server_error = PermissionDenied("401 after renewal");
  Status defined = nova_host_->Define(*controller::PromotedDomainXml(ShadowXml(NovaXml()), kVmUuid, ""));
  EXPECT_EQ(defined.code(), Code::kUnavailable) << defined.ToString();
  EXPECT_THAT(defined.message(), HasSubstr("401 after renewal"));
  EXPECT_THAT(host_.calls, IsEmpty());
}

TEST_F(NovaPromotionHostTest, RestartAfterTheEvacuateDoesNotEvacuateAgain) {
  PutRecord(NovaXml());
  api_.on_evacuate = [] { throw SimulatedCrash{}; };  // shadowd killed right after Nova accepted the evacuate
  EXPECT_THROW((void)nova_host_->Start(kName), SimulatedCrash);
  api_.on_evacuate = nullptr;
  Restart();
  Status started = nova_host_->Start(kName);
  ASSERT_TRUE(started.ok()) << started.ToString();
  EXPECT_EQ(api_.Calls("Evacuate").size(), 1u);
  EXPECT_EQ(api_.Calls("SetForcedDown").size(), 1u);
  EXPECT_THAT(log_, ::testing::Contains(HasSubstr("waiting for it, not asking again")));

  // And once it is ACTIVE here, a further Start (another restart) asks Nova once and does nothing.
  Restart();
  api_.calls.clear();
  ASSERT_TRUE(nova_host_->Start(kName).ok());
  EXPECT_THAT(api_.calls, ElementsAre("GetServer " + kVmUuid));
}

TEST_F(NovaPromotionHostTest, ARunningDomainOfAnUnfinishedEvacuationIsNotTakenAsStarted) {
  PutRecord(NovaXml());
  api_.servers[kVmUuid] = Server(kPrimary, "REBUILD", "rebuild_spawning");
  host_.domains[kName] = {NovaXml(), true, {4, 4ull << 20}};
  StatusOr<PromotedVmState> state = nova_host_->VmState(kName);
  ASSERT_TRUE(state.ok());
  EXPECT_TRUE(state->defined);
  EXPECT_FALSE(state->running);
  api_.servers[kVmUuid] = Server(kThisHost, "ACTIVE");
  state = nova_host_->VmState(kName);
  ASSERT_TRUE(state.ok());
  EXPECT_TRUE(state->running);
}

TEST_F(NovaPromotionHostTest, NovaErrorIsReportedNamingTheInstance) {
  PutRecord(NovaXml());
  api_.evacuation[kVmUuid] = {Server(kPrimary, "REBUILD", "rebuilding"), Server(kPrimary, "ERROR")};
  Status started = nova_host_->Start(kName);
  EXPECT_EQ(started.code(), Code::kFailedPrecondition);
  EXPECT_THAT(started.message(), HasSubstr("ERROR"));
  EXPECT_THAT(started.message(), HasSubstr(kVmUuid));
  EXPECT_THAT(started.message(), HasSubstr(kName));

  // Retried (Promotions retries a failed start): refused again, never a second evacuate.
  Restart();
  started = nova_host_->Start(kName);
  EXPECT_EQ(started.code(), Code::kFailedPrecondition);
  EXPECT_THAT(started.message(), HasSubstr("in ERROR"));
  EXPECT_EQ(api_.Calls("Evacuate").size(), 1u);
}

TEST_F(NovaPromotionHostTest, AnEvacuationNovaRolledBackIsReported) {
  PutRecord(NovaXml());
  api_.evacuation[kVmUuid] = {Server(kPrimary, "REBUILD", "rebuilding"), Server(kPrimary, "ACTIVE")};
  Status started = nova_host_->Start(kName);
  EXPECT_EQ(started.code(), Code::kFailedPrecondition);
  EXPECT_THAT(started.message(), HasSubstr("ended without moving it"));
}

TEST_F(NovaPromotionHostTest, ForcedDownFailureIsReportedAndNothingElseIsDone) {
  PutRecord(NovaXml());
  api_.forced_down_error = PermissionDenied("PUT http://10.77.0.1:8774/v2.1/os-services/svc-h1: 403 Policy doesn't allow");
  Status started = nova_host_->Start(kName);
  EXPECT_EQ(started.code(), Code::kPermissionDenied);
  EXPECT_THAT(started.message(), HasSubstr("forcing down the nova-compute service svc-h1 of the dead host h1"));
  EXPECT_THAT(started.message(), HasSubstr("403 Policy"));
  EXPECT_THAT(api_.Actions(), ElementsAre("FindComputeService h1", "SetForcedDown svc-h1 true"));
}

TEST_F(NovaPromotionHostTest, PrimaryWithoutComputeServiceIsReported) {
  PutRecord(NovaXml());
  api_.services.erase("svc-h1");
  Status started = nova_host_->Start(kName);
  EXPECT_EQ(started.code(), Code::kNotFound);
  EXPECT_THAT(started.message(), HasSubstr("finding the nova-compute service of the dead host h1"));
  EXPECT_THAT(api_.Calls("Evacuate"), IsEmpty());
}

TEST_F(NovaPromotionHostTest, InstanceOnAThirdHostIsNotEvacuated) {
  PutRecord(NovaXml());
  api_.servers[kVmUuid] = Server("h3", "ACTIVE");
  Status started = nova_host_->Start(kName);
  EXPECT_EQ(started.code(), Code::kFailedPrecondition);
  EXPECT_THAT(started.message(), HasSubstr("not forcing h3 down"));
  EXPECT_THAT(api_.Actions(), IsEmpty());
}

TEST_F(NovaPromotionHostTest, TheWaitIsBoundedAndAWaitAgainDoesNotEvacuateAgain) {
  PutRecord(NovaXml());
  api_.evacuation[kVmUuid] = {Server(kPrimary, "REBUILD", "rebuilding")};  // stuck
  const MonoTime before = clock_.Now();
  Status started = nova_host_->Start(kName);
  EXPECT_EQ(started.code(), Code::kDeadlineExceeded);
  EXPECT_THAT(started.message(), HasSubstr("rebuilding"));
  EXPECT_EQ(clock_.Now() - before, Duration(5min));
  started = nova_host_->Start(kName);
  EXPECT_EQ(started.code(), Code::kDeadlineExceeded);
  EXPECT_EQ(api_.Calls("Evacuate").size(), 1u);
}

// Under Promotions: the whole lifecycle, Nova's domain at its full size (nothing to grow), and a kill -9 right after
// Nova accepted the evacuate.
class NovaPromotionsTest : public NovaPromotionHostTest {
 protected:
  NovaPromotionsTest() {
    host_.domains[kShadow] = {ShadowXml(NovaXml()), false, {2, 1024 * 1024}};
    NewPromotions();
  }
  void NewPromotions() {
    failover::PromotionSettings settings;
    settings.this_host = kThisHost;
    promotions_ = std::make_unique<failover::Promotions>(store_, clock_, *nova_host_, settings,
                                                         [this](const std::string& line) { log_.push_back(line); });
  }
  PromotionRecord Decided() {
    PromotionRecord record;
    record.set_vm_uuid(kVmUuid);
    record.set_vm_name(kName);
    record.set_primary_host(kPrimary);
    record.set_shadow_name(kShadow);
    record.set_phase(v1::PROMOTION_PHASE_DECIDED);
    record.set_reason("h1 gone");
    record.set_decided_unix_ms(ToUnixMillis(clock_.WallNow()));
    return record;
  }
  PromotionRecord Stored() {
    auto record = promotions_->Get(kVmUuid);
    EXPECT_TRUE(record.ok() && record->has_value());
    return record.ok() && *record ? **record : PromotionRecord();
  }
  std::unique_ptr<failover::Promotions> promotions_;
};

TEST_F(NovaPromotionsTest, NovaInstanceIsPromotedThroughEvacuateAndNotGrownByUs) {
  ASSERT_TRUE(promotions_->Run(Decided()).ok());
  PromotionRecord record = Stored();
  EXPECT_EQ(record.phase(), v1::PROMOTION_PHASE_DONE) << record.error();
  EXPECT_EQ(record.grown_vcpus(), 4u);
  EXPECT_EQ(record.grown_memory_kib(), 4ull << 20);
  EXPECT_EQ(record.shortfall(), "");
  EXPECT_THAT(host_.calls, ElementsAre("SettleReplica " + kVmUuid, "Undefine " + kShadow,
                                       "(Nova spawns " + kName + ")"));
  EXPECT_THAT(api_.Actions(), ElementsAre("FindComputeService h1", "SetForcedDown svc-h1 true",
                                          "DeleteAllocation " + kShadowUuid, "Evacuate " + kVmUuid + " h2"));
}

TEST_F(NovaPromotionsTest, KilledAfterTheEvacuateResumesByWaitingForNova) {
  api_.evacuation[kVmUuid] = {Server(kPrimary, "REBUILD", "rebuilding"), Server(kPrimary, "REBUILD", "rebuild_spawning"),
                              Server(kPrimary, "REBUILD", "rebuild_spawning"), Server(kPrimary, "REBUILD", "rebuild_spawning"),
                              Server(kThisHost, "ACTIVE")};
  api_.on_evacuate = [] { throw SimulatedCrash{}; };
  EXPECT_THROW((void)promotions_->Run(Decided()), SimulatedCrash);
  EXPECT_EQ(Stored().phase(), v1::PROMOTION_PHASE_DEFINED);
  api_.on_evacuate = nullptr;
  // Nova went on meanwhile: its domain runs here, the evacuation is not over.
  (void)api_.GetServer(kVmUuid);
  (void)api_.GetServer(kVmUuid);
  ASSERT_EQ(api_.servers[kVmUuid].task_state, "rebuild_spawning");
  ASSERT_TRUE(host_.domains.at(kName).running);

  Restart();
  NewPromotions();
  ASSERT_TRUE(promotions_->Run(Stored()).ok());
  PromotionRecord record = Stored();
  EXPECT_EQ(record.phase(), v1::PROMOTION_PHASE_DONE) << record.error();
  EXPECT_EQ(api_.Calls("Evacuate").size(), 1u);
  EXPECT_THAT(log_, ::testing::Contains(HasSubstr("Nova's evacuation of it is not over")));
  EXPECT_EQ(api_.servers[kVmUuid], Server(kThisHost, "ACTIVE"));
  EXPECT_THAT(host_.calls, ::testing::Not(::testing::Contains(HasSubstr("Start "))));
  EXPECT_THAT(host_.calls, ::testing::Not(::testing::Contains(HasSubstr("Live "))));
}

TEST_F(NovaPromotionsTest, OrdinaryVmIsPromotedAsBefore) {
  host_.domains[kShadow] = {ShadowXml(PlainXml()), false, {2, 1024 * 1024}};
  ASSERT_TRUE(promotions_->Run(Decided()).ok());
  PromotionRecord record = Stored();
  EXPECT_EQ(record.phase(), v1::PROMOTION_PHASE_DONE) << record.error();
  EXPECT_THAT(host_.calls, ElementsAre("SettleReplica " + kVmUuid, "Define " + kName, "Undefine " + kShadow,
                                       "Start " + kName, "SetVcpusLive " + kName + " 4",
                                       "SetMemoryLive " + kName + " 4194304"));
  EXPECT_THAT(api_.calls, IsEmpty());
}

}  // namespace
}  // namespace vs::nova
