// Crash promotion on the shadow host (shadowd/failover/promotions.h): the trigger over a membership view and a
// fake clock, the veto, the operator's promote, and the persisted lifecycle against a fake host, including a
// kill -9 after every effect of every step (exactly once: one definition of the VM, one start, never the shadow
// and the VM both running).
#include "shadowd/failover/promotions.h"

#include <algorithm>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "shadowd/controller/shadow_domain_xml.h"
#include "shadowd/failover/libvirt_promotion_host.h"
#include "shadowd/policy/domain_xml.h"
#include "shadowd/store/memory_store.h"
#include "tests/unit/cli/fake_hypervisor.h"
#include "tests/unit/controller/test_domains.h"

namespace vs::failover {
namespace {

using namespace std::chrono_literals;
using ::testing::AllOf;
using ::testing::HasSubstr;
using controller::testing::kShadowName;
using controller::testing::kShadowUuid;
using controller::testing::kVmName;
using controller::testing::kVmUuid;
using virtshadow::v1::PromotionQueryReply;
using virtshadow::v1::PromotionQueryRequest;
using virtshadow::v1::PromotionRecord;
namespace v1 = virtshadow::v1;

struct SimulatedCrash {};

struct FakeDomain {
  std::string xml;
  bool running = false;
  VmSize live;
};

// This host's libvirtd and replica keeper, in memory. `crash_after` names an effect ("define", "undefine",
// "start", "settle", "vcpus", "memory") after which the call throws SimulatedCrash (shadowd killed).
class FakePromotionHost final : public PromotionHost {
 public:
  StatusOr<std::vector<controller::PeerShadow>> LocalShadows() override {
    std::vector<controller::PeerShadow> shadows;
    for (const auto& [name, domain] : domains) {
      auto described = controller::DescribeShadowDomain("h2", domain.xml);
      if (!described.ok()) return described.status();
      if (*described) shadows.push_back(**described);
    }
    return shadows;
  }
  StatusOr<v1::ReplicaRecord> SettleReplica(const std::string& vm_uuid) override {
    if (!settle_error.ok()) return settle_error;
    replica.set_vm_uuid(vm_uuid);
    replica.set_promoted(true);
    ++settles;
    Effect("settle");
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
    auto& domain = domains[facts->name];
    domain.xml = xml;
    domain.live = {facts->current_vcpus, facts->current_memory_kib};
    ++defines;
    Effect("define");
    return Status::Ok();
  }
  Status Undefine(const std::string& name) override {
    if (auto it = domains.find(name); it != domains.end()) {
      if (it->second.running) return FailedPrecondition("undefining a running domain");
      domains.erase(it);
      Effect("undefine");
    }
    return Status::Ok();
  }
  StatusOr<PromotedVmState> VmState(const std::string& name) override {
    auto it = domains.find(name);
    if (it == domains.end()) return PromotedVmState{};
    return PromotedVmState{.defined = true, .running = it->second.running};
  }
  Status Start(const std::string& name) override {
    if (!start_error.ok()) return start_error;
    auto it = domains.find(name);
    if (it == domains.end()) return NotFound("domain '" + name + "' not found");
    if (it->second.running) return FailedPrecondition("domain is already running");
    // Two domains over the same replicas must never run: the shadow has to be gone first.
    EXPECT_EQ(domains.count(kShadowName), 0u) << "the VM started while its shadow was still defined";
    it->second.running = true;
    ++starts;
    Effect("start");
    return Status::Ok();
  }
  StatusOr<VmSize> LiveSize(const std::string& name) override {
    auto it = domains.find(name);
    if (it == domains.end() || !it->second.running) return FailedPrecondition(name + " does not run");
    return it->second.live;
  }
  StatusOr<VmSize> FreeBesides(const std::string&) override { return free; }
  Status SetVcpusLive(const std::string& name, std::uint32_t vcpus) override {
    if (!vcpus_error.ok()) return vcpus_error;
    domains.at(name).live.vcpus = vcpus;
    Effect("vcpus");
    return Status::Ok();
  }
  Status SetMemoryLive(const std::string& name, std::uint64_t memory_kib) override {
    if (!memory_error.ok()) return memory_error;
    domains.at(name).live.memory_kib = memory_kib;
    Effect("memory");
    return Status::Ok();
  }

  void Effect(const std::string& what) {
    if (crash_after == what) {
      crash_after.clear();
      throw SimulatedCrash{};
    }
  }

  std::map<std::string, FakeDomain> domains;
  v1::ReplicaRecord replica;
  VmSize free{.vcpus = 16, .memory_kib = 64ull << 20};
  Status settle_error, start_error, vcpus_error, memory_error;
  std::string crash_after;
  int settles = 0, defines = 0, starts = 0;
};

// The shadow of "web" (4 vCPUs, 4 GiB) as h1's controller defines it on h2: 2 vCPUs, 1 GiB, its policy in
// the link.
std::string ShadowXml() {
  StatusOr<std::string> xml = controller::ShadowDomainXml(
      controller::testing::PrimaryXml(), {kShadowUuid, kShadowName, 0}, {2, 1024 * 1024},
      {kVmUuid, kVmName, "h1", R"(<policy vcpus="50%" memory="1GiB" interval="30s"/>)"});
  EXPECT_TRUE(xml.ok()) << xml.status().ToString();
  return xml.ok() ? *xml : "";
}

class PromotionsTest : public ::testing::Test {
 protected:
  PromotionsTest() {
    host_.domains[kShadowName] = {ShadowXml(), false, {2, 1024 * 1024}};
    host_.replica.mutable_applied()->set_checkpoint("vs-41");
    host_.replica.mutable_applied()->set_duration_ms(2000);
    Restart();
  }

  // kill -9 and restart of shadowd: a new Promotions over the same store and host.
  void Restart() {
    settings_.this_host = "h2";
    settings_.replication_interval = 5s;  // the policy's own interval (30 s) wins
    promotions_ = std::make_unique<Promotions>(store_, clock_, host_, settings_,
                                               [this](const std::string& line) { log_.push_back(line); });
  }

  // h1 as this host (h2) sees it: absent since `absent_for` ago, last seen then; h3 a member.
  cluster::MembershipView View(std::optional<Duration> absent_for, bool quorate = true, bool h1_corosync = false,
                               bool h1_shadowd_stopped = false) {
    cluster::MembershipView view;
    view.known = true;
    view.quorate = quorate;
    view.failure_detection = 2200ms;  // Corosync's token + consensus, as CorosyncMembership reads them
    const WallTime now = clock_.WallNow();
    cluster::HostHeartbeatView h1{.host = "h1"};
    if (absent_for) {
      h1.state = cluster::HostMembership::kAbsent;
      h1.since = now - std::chrono::duration_cast<WallTime::duration>(*absent_for);
      h1.last_seen = h1.since;
      h1.corosync_member = h1_corosync;
      h1.shadowd_stopped = h1_shadowd_stopped;
    } else {
      h1.state = cluster::HostMembership::kMember;
      h1.since = now - std::chrono::hours(1);
      h1.last_seen = now;
      h1.corosync_member = true;
    }
    view.hosts = {h1, {.host = "h2", .state = cluster::HostMembership::kMember, .corosync_member = true},
                  {.host = "h3", .state = cluster::HostMembership::kMember, .corosync_member = true}};
    return view;
  }

  std::optional<PromotionRecord> Record() {
    auto record = promotions_->Get(kVmUuid);
    EXPECT_TRUE(record.ok()) << record.status().ToString();
    return record.ok() ? *record : std::nullopt;
  }

  // The prober's fence with a destroy that finds the VM `stopped` (counted in destroys_); whether it decided.
  bool Fence(bool stopped) {
    auto decided = promotions_->FenceAtPrimary(kVmUuid, [&]() -> StatusOr<bool> {
      ++destroys_;
      return stopped;
    });
    EXPECT_TRUE(decided.ok()) << decided.status().ToString();
    return decided.ok() && *decided;
  }

  void TickOk(const cluster::MembershipView& view) {
    Status ticked = promotions_->Tick(view);
    ASSERT_TRUE(ticked.ok()) << ticked.ToString();
  }

  PromotionQueryReply Query(const std::string& asking = "h1") {
    PromotionQueryRequest request;
    request.set_vm_uuid(kVmUuid);
    request.set_asking_host(asking);
    auto reply = promotions_->QueryPromotion(request);
    EXPECT_TRUE(reply.ok()) << reply.status().ToString();
    return reply.ok() ? *reply : PromotionQueryReply();
  }

  store::MemoryStore store_;
  FakeClock clock_;
  FakePromotionHost host_;
  PromotionSettings settings_;
  std::vector<std::string> log_;
  std::unique_ptr<Promotions> promotions_;
  int destroys_ = 0;
  StatusOr<bool> destroy_result_ = true;
};

TEST_F(PromotionsTest, WaitsOutTheFenceBoundThenPromotesGrowsAndRecordsTheRpo) {
  // Checkpoint taken 15 s before the first pass; h1 is recorded absent 3 s before it.
  host_.replica.mutable_applied()->set_taken_unix_ms(ToUnixMillis(clock_.WallNow()) - 15'000);
  TickOk(View(3s));  // 3 s < 5.2 s
  EXPECT_FALSE(Record().has_value());
  EXPECT_EQ(host_.domains.count(kShadowName), 1u);
  EXPECT_EQ(promotions_->AwaitingPromotion().count(kVmUuid), 1u) << "a prober may try h1's libvirtd meanwhile";

  clock_.Advance(2300ms);
  TickOk(View(5300ms));
  const auto record = Record();
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->phase(), v1::PROMOTION_PHASE_DONE) << record->error();
  EXPECT_EQ(record->primary_host(), "h1");
  EXPECT_EQ(record->vm_name(), kVmName);
  EXPECT_THAT(record->reason(), HasSubstr("more than the fence bound"));
  // The VM is defined and runs, grown to its full size; the shadow is gone.
  EXPECT_EQ(host_.domains.count(kShadowName), 0u);
  ASSERT_EQ(host_.domains.count(kVmName), 1u);
  EXPECT_TRUE(host_.domains[kVmName].running);
  EXPECT_EQ(host_.domains[kVmName].live.vcpus, 4u);
  EXPECT_EQ(host_.domains[kVmName].live.memory_kib, 4194304u);
  EXPECT_EQ(record->started_vcpus(), 2u);
  EXPECT_EQ(record->started_memory_kib(), 1048576u);
  EXPECT_EQ(record->grown_vcpus(), 4u);
  EXPECT_EQ(record->grown_memory_kib(), 4194304u);
  EXPECT_EQ(record->shortfall(), "");
  // Its policy came back with it: protected like any VM.
  auto facts = policy::ParseDomain(host_.domains[kVmName].xml);
  ASSERT_TRUE(facts.ok());
  EXPECT_EQ(facts->uuid, kVmUuid);
  EXPECT_FALSE(controller::IsShadowDomain(*facts));
  EXPECT_EQ(facts->policy_elements.size(), 1u);
  // RPO: from the checkpoint to h1's last sighting; bound: its policy's interval (30 s) + the round (2 s).
  EXPECT_EQ(record->checkpoint(), "vs-41");
  // h1's last heartbeat, from above: the earlier of its last sighting (3 s before the first pass: RPO 12 s) and
  // its departure less Corosync's detection time (2.2 s: 15 - 3 - 2.2 = 9.8 s).
  EXPECT_EQ(record->rpo_ms(), 9'800);
  EXPECT_EQ(record->rpo_bound_ms(), 32'000);
  EXPECT_TRUE(record->rpo_within_bound());
  EXPECT_EQ(host_.starts, 1);

  // Nothing more happens on later passes.
  clock_.Advance(10s);
  TickOk(View(15s));
  EXPECT_EQ(host_.starts, 1);
  EXPECT_EQ(host_.defines, 1);
}

TEST_F(PromotionsTest, TheWaitSurvivesARestartBecauseItIsMeasuredFromTheStoredDeparture) {
  TickOk(View(1s));
  Restart();
  clock_.Advance(4500ms);
  TickOk(View(5500ms));
  ASSERT_TRUE(Record().has_value());
  EXPECT_EQ(Record()->phase(), v1::PROMOTION_PHASE_DONE);
}

TEST_F(PromotionsTest, NoPromotionWithoutQuorumOrWhileThePrimaryIsAMember) {
  TickOk(View(60s, /*quorate=*/false));
  EXPECT_FALSE(Record().has_value());
  TickOk(View(std::nullopt));
  EXPECT_FALSE(Record().has_value());
  EXPECT_EQ(host_.defines, 0);
}

TEST_F(PromotionsTest, APrimaryWhoseCorosyncStaysCountsAsAMember) {
  // h1's shadowd left the process group (killed, restarting) but its Corosync is here: the host lives and its
  // VM may run there unfenced. Not promoted, not offered to the prober (which would destroy it there), however
  // long it lasts.
  TickOk(View(60s, true, /*h1_corosync=*/true));
  EXPECT_FALSE(Record().has_value());
  EXPECT_EQ(promotions_->AwaitingPromotion().count(kVmUuid), 0u);
  EXPECT_FALSE(Fence(/*stopped=*/true)) << "nothing to destroy: it does not wait for promotion";
  EXPECT_EQ(destroys_, 0);
  TickOk(View(600s, true, true));
  EXPECT_FALSE(Record().has_value());
  // Its Corosync goes too (the host crashed): the fence wait applies from the departure.
  TickOk(View(60s));
  ASSERT_TRUE(Record().has_value());
  EXPECT_EQ(Record()->phase(), v1::PROMOTION_PHASE_DONE);
}

TEST_F(PromotionsTest, APrimaryThatLeftAfterItsShadowdStoppedWaitsForItsLibvirtdOrAnOperator) {
  // h1's shadowd was killed, then h1 left the membership (cut off): nothing there paused the VM, which may still
  // run and acknowledge writes. No wait makes a promotion safe; the prober may still find it stopped there.
  TickOk(View(3s, true, false, /*h1_shadowd_stopped=*/true));
  TickOk(View(600s, true, false, true));
  EXPECT_FALSE(Record().has_value());
  EXPECT_EQ(host_.domains.count(kShadowName), 1u);
  EXPECT_EQ(promotions_->AwaitingPromotion().count(kVmUuid), 1u) << "h1's libvirtd may confirm it stopped";
  EXPECT_EQ(std::count_if(log_.begin(), log_.end(),
                          [](const std::string& line) { return line.find("shadowd had stopped") != std::string::npos; }),
            1)
      << "said once, not every tick";
  EXPECT_TRUE(Fence(/*stopped=*/true));
  ASSERT_TRUE(Record().has_value());
  EXPECT_THAT(Record()->reason(), HasSubstr("confirmed the VM stopped"));
}

TEST_F(PromotionsTest, AnOperatorPromotesAVmWhosePrimarysShadowdHadStopped) {
  TickOk(View(600s, true, false, true));
  auto promoted = promotions_->OperatorPromote(kVmUuid, false, "", View(600s, true, false, true));
  ASSERT_TRUE(promoted.ok()) << promoted.status().ToString();
  EXPECT_FALSE(promoted->operator_forced()) << "h1 is not a member: the operator's word is enough";
}

TEST_F(PromotionsTest, ADestroyOnThePrimarysLibvirtdDecidesThePromotionAtOnce) {
  TickOk(View(500ms));
  EXPECT_FALSE(Record().has_value()) << "the fence wait is not over";
  EXPECT_TRUE(Fence(/*stopped=*/true));
  EXPECT_EQ(destroys_, 1);
  ASSERT_TRUE(Record().has_value()) << "decided before FenceAtPrimary returned";
  EXPECT_EQ(Record()->phase(), v1::PROMOTION_PHASE_DECIDED);
  EXPECT_THAT(Record()->reason(), HasSubstr("confirmed the VM stopped"));
  // h1 comes back now: the decision stands (its VM was destroyed there), and h1 hears PROMOTED.
  EXPECT_EQ(Query().answer(), PromotionQueryReply::PROMOTED);
  TickOk(View(std::nullopt));
  EXPECT_EQ(Record()->phase(), v1::PROMOTION_PHASE_DONE) << Record()->error();
}

TEST_F(PromotionsTest, AVmStillRunningOrAnUnreachableLibvirtdDecidesNothing) {
  TickOk(View(500ms));
  EXPECT_FALSE(Fence(/*stopped=*/false));
  destroy_result_ = Unavailable("no answer from h1's libvirtd within 1 s");
  EXPECT_FALSE(promotions_->FenceAtPrimary(kVmUuid, [&] { return destroy_result_; }).ok());
  EXPECT_FALSE(Record().has_value());
}

TEST_F(PromotionsTest, NoDestroyOnceThePrimaryCameBackAndAsked) {
  // h1 was seen gone; before the prober reached its libvirtd it came back, asked, and resumed its copy.
  TickOk(View(500ms));
  EXPECT_EQ(Query().answer(), PromotionQueryReply::NOT_PROMOTED);
  EXPECT_FALSE(Fence(/*stopped=*/true));
  EXPECT_EQ(destroys_, 0) << "its resumed VM must not be destroyed";
  EXPECT_FALSE(Record().has_value());
}

TEST_F(PromotionsTest, AVetoKeepsTheVmUntilThePrimaryLeavesAgain) {
  // h1 was cut, fenced its VM, came back and asked before we decided: NOT_PROMOTED, and a veto.
  EXPECT_EQ(Query().answer(), PromotionQueryReply::NOT_PROMOTED);
  auto veto = store::GetProto<v1::PromotionVeto>(store_, PromotionVetoKey(kVmUuid));
  ASSERT_TRUE(veto.ok() && veto->has_value());
  EXPECT_EQ((*veto)->asking_host(), "h1");

  // This host's view lags: it still shows h1's departure from before the question. The veto holds.
  TickOk(View(60s));
  EXPECT_FALSE(Record().has_value());
  // h1 is a member again here too: nothing is decided.
  clock_.Advance(1s);
  TickOk(View(std::nullopt));
  EXPECT_FALSE(Record().has_value());

  // h1 leaves again: the veto goes, and the fence wait starts from this departure.
  clock_.Advance(1s);
  TickOk(View(500ms));
  EXPECT_FALSE(Record().has_value());
  veto = store::GetProto<v1::PromotionVeto>(store_, PromotionVetoKey(kVmUuid));
  ASSERT_TRUE(veto.ok());
  EXPECT_FALSE(veto->has_value());
  clock_.Advance(5s);
  TickOk(View(5500ms));
  ASSERT_TRUE(Record().has_value());
  EXPECT_EQ(Query().answer(), PromotionQueryReply::PROMOTED);
  EXPECT_GT(Query().decided_unix_ms(), 0);
}

TEST_F(PromotionsTest, QueryAfterTheDecisionAnswersPromoted) {
  host_.start_error = Unavailable("libvirtd restarting");  // the promotion is under way, not done
  TickOk(View(10s));
  ASSERT_TRUE(Record().has_value());
  EXPECT_EQ(Record()->phase(), v1::PROMOTION_PHASE_DEFINED);
  const PromotionQueryReply reply = Query();
  EXPECT_EQ(reply.answer(), PromotionQueryReply::PROMOTED);
  EXPECT_THAT(reply.detail(), HasSubstr("stale"));
  auto veto = store::GetProto<v1::PromotionVeto>(store_, PromotionVetoKey(kVmUuid));
  ASSERT_TRUE(veto.ok());
  EXPECT_FALSE(veto->has_value());
}

TEST_F(PromotionsTest, ADonePromotionRecordsTheVmsOriginForFailback) {
  TickOk(View(10s));
  ASSERT_EQ(Record()->phase(), v1::PROMOTION_PHASE_DONE);
  switchover::ArrivalRecords arrivals(store_, clock_);
  auto origin = arrivals.OriginOf(kVmUuid);
  ASSERT_TRUE(origin.ok()) << origin.status().ToString();
  ASSERT_TRUE(origin->has_value()) << "failback needs to know where home is";
  EXPECT_EQ((*origin)->origin_host(), "h1");
  EXPECT_EQ((*origin)->vm_name(), kVmName);
  EXPECT_EQ((*origin)->arrived_by(), v1::OriginRecord::ARRIVAL_PROMOTION);
  EXPECT_THAT((*origin)->why(), AllOf(HasSubstr("promoted here"), HasSubstr("after h1 failed")));
}

TEST_F(PromotionsTest, AFailbackHomeEndsTheDonePromotionSoThatTheVmCanBePromotedAgain) {
  TickOk(View(10s));
  ASSERT_EQ(Record()->phase(), v1::PROMOTION_PHASE_DONE);
  // Only a done promotion from that very host ends.
  EXPECT_EQ(promotions_->EndAfterFailback(kVmUuid, "h3").code(), Code::kFailedPrecondition);
  ASSERT_TRUE(Record().has_value());
  ASSERT_TRUE(promotions_->EndAfterFailback(kVmUuid, "h1").ok());
  EXPECT_FALSE(Record().has_value());
  EXPECT_THAT(log_.back(), HasSubstr("failed back to h1"));
  EXPECT_TRUE(promotions_->EndAfterFailback(kVmUuid, "h1").ok()) << "nothing left to end";
  // h1 asks again after a later cut: the answer is about now, not the old promotion.
  EXPECT_EQ(Query().answer(), PromotionQueryReply::NOT_PROMOTED);
}

TEST_F(PromotionsTest, AnUnfinishedPromotionIsNotEndedByAFailback) {
  host_.start_error = Unavailable("libvirtd restarting");
  TickOk(View(10s));
  ASSERT_EQ(Record()->phase(), v1::PROMOTION_PHASE_DEFINED);
  EXPECT_EQ(promotions_->EndAfterFailback(kVmUuid, "h1").code(), Code::kFailedPrecondition);
  EXPECT_TRUE(Record().has_value());
}

TEST_F(PromotionsTest, AStepThatMayPassIsRetriedAndItsErrorRecorded) {
  host_.start_error = Unavailable("libvirtd restarting");
  TickOk(View(10s));
  EXPECT_EQ(Record()->phase(), v1::PROMOTION_PHASE_DEFINED);
  EXPECT_THAT(Record()->error(), HasSubstr("libvirtd restarting"));
  const uint64_t version = Record()->version();
  TickOk(View(11s));
  EXPECT_EQ(Record()->version(), version) << "the same failure is not written again";
  host_.start_error = Status::Ok();
  TickOk(View(12s));
  EXPECT_EQ(Record()->phase(), v1::PROMOTION_PHASE_DONE);
  EXPECT_EQ(Record()->error(), "");
  EXPECT_EQ(host_.starts, 1);
}

TEST_F(PromotionsTest, ARefusalBeforeTheDefinitionFailsThePromotionAndKeepsTheShadow) {
  host_.settle_error = FailedPrecondition("the replicas never completed a round");
  TickOk(View(10s));
  ASSERT_TRUE(Record().has_value());
  EXPECT_EQ(Record()->phase(), v1::PROMOTION_PHASE_FAILED);
  EXPECT_THAT(Record()->error(), HasSubstr("never completed a round"));
  EXPECT_EQ(host_.domains.count(kShadowName), 1u);
  EXPECT_EQ(host_.defines, 0);
  // A failed promotion promoted nothing: a returning primary may resume its copy.
  EXPECT_EQ(Query().answer(), PromotionQueryReply::NOT_PROMOTED);
}

TEST_F(PromotionsTest, GrowthAsFarAsTheHostAllowsAndWhatWasRefusedIsTheShortfall) {
  host_.free = {.vcpus = 1, .memory_kib = 1024 * 1024};
  host_.memory_error = InvalidArgument("no balloon device");
  TickOk(View(10s));
  const auto record = Record();
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->phase(), v1::PROMOTION_PHASE_DONE);
  EXPECT_EQ(record->grown_vcpus(), 3u);
  EXPECT_EQ(record->grown_memory_kib(), 1048576u);
  EXPECT_THAT(record->shortfall(), HasSubstr("3 of 4 vCPUs"));
  EXPECT_THAT(record->shortfall(), HasSubstr("no balloon device"));
}

TEST_F(PromotionsTest, OperatorPromoteIsRefusedWhileTheHostIsAMemberUnlessForcedWithAReason) {
  const auto member = View(std::nullopt);
  EXPECT_EQ(promotions_->OperatorPromote(kVmName, false, "", member).status().code(), Code::kFailedPrecondition);
  EXPECT_EQ(promotions_->OperatorPromote(kVmName, true, "", member).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(promotions_->OperatorPromote("nope", true, "x", member).status().code(), Code::kNotFound);
  EXPECT_FALSE(Record().has_value());

  auto forced = promotions_->OperatorPromote(kVmName, true, "h1's PSU is on fire", member);
  ASSERT_TRUE(forced.ok()) << forced.status().ToString();
  EXPECT_TRUE(forced->operator_forced());
  EXPECT_THAT(forced->reason(), HasSubstr("PSU is on fire"));
  EXPECT_EQ(promotions_->OperatorPromote(kVmUuid, true, "again", member).status().code(), Code::kAlreadyExists);
  // The promotion thread carries it out even though h1 is a member.
  TickOk(member);
  EXPECT_EQ(Record()->phase(), v1::PROMOTION_PHASE_DONE);
}

TEST_F(PromotionsTest, OperatorPromoteOfAnAbsentHostNeedsNoForce) {
  auto promoted = promotions_->OperatorPromote(kVmUuid, false, "", View(1s));
  ASSERT_TRUE(promoted.ok()) << promoted.status().ToString();
  EXPECT_FALSE(promoted->operator_forced());
}

// The prober's destroy on the primary goes by UUID: the name may belong to a VM created since.
TEST(DestroyVmTest, DestroysTheDomainWithTheVmsUuidAndLeavesANewVmOfTheSameNameAlone) {
  const std::string old_uuid = "0b7cf3c5-6d1f-4f3e-9a59-46f9fa0e3a61";
  cli::testing::FakeLibvirt libvirt;
  libvirt.domains["web"] = {.state = virt::DomainState::kRunning, .uuid = "6695eb01-f6a4-8304-79aa-97f2502e193f"};
  cli::testing::FakeHypervisor primary(libvirt);
  auto stopped = DestroyVm(primary, old_uuid);
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  EXPECT_TRUE(*stopped) << "the VM of that UUID is not defined there";
  EXPECT_THAT(libvirt.actions, ::testing::IsEmpty()) << "the new 'web' keeps running";

  libvirt.domains["web-renamed"] = {.state = virt::DomainState::kRunning, .uuid = old_uuid};
  stopped = DestroyVm(primary, old_uuid);
  ASSERT_TRUE(stopped.ok()) << stopped.status().ToString();
  EXPECT_TRUE(*stopped);
  EXPECT_THAT(libvirt.actions, ::testing::ElementsAre("destroy web-renamed"));
  EXPECT_EQ(libvirt.domains["web"].state, virt::DomainState::kRunning);
}

// kill -9 after each effect of a promotion, then a restart: it completes once.
class PromotionsCrashTest : public PromotionsTest, public ::testing::WithParamInterface<std::string> {};

TEST_P(PromotionsCrashTest, AKillAfterAnyEffectStillPromotesExactlyOnce) {
  host_.crash_after = GetParam();
  EXPECT_THROW((void)promotions_->Tick(View(10s)), SimulatedCrash);
  Restart();
  clock_.Advance(1s);
  TickOk(View(11s));
  const auto record = Record();
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->phase(), v1::PROMOTION_PHASE_DONE) << record->error();
  EXPECT_EQ(host_.starts, 1) << "never a second start";
  EXPECT_EQ(host_.domains.count(kShadowName), 0u);
  ASSERT_EQ(host_.domains.count(kVmName), 1u);
  EXPECT_TRUE(host_.domains[kVmName].running);
  EXPECT_EQ(host_.domains[kVmName].live.vcpus, 4u);
  EXPECT_EQ(host_.domains[kVmName].live.memory_kib, 4194304u);
  EXPECT_EQ(host_.domains.size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(EveryEffect, PromotionsCrashTest,
                         ::testing::Values("settle", "define", "undefine", "start", "vcpus", "memory"));

}  // namespace
}  // namespace vs::failover
