// The primary's self-fence (shadowd/failover/self_fence.h, fence_machine.h): the transition table, fencing on a
// quorum loss (records before the pause, the bound measured), the reconcile after the heal for each answer of the
// shadow host, and a restart in the middle. A MemoryStore, the CLI tests' fake hypervisor and a fake PromotionPeer.
#include "shadowd/failover/self_fence.h"

#include <sys/stat.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "proto/vm_record.pb.h"
#include "shadowd/failover/fence_machine.h"
#include "shadowd/failover/fence_marker.h"
#include "tests/unit/common/temp_dir.h"
#include "shadowd/store/keys.h"
#include "shadowd/store/memory_store.h"
#include "tests/unit/cli/fake_hypervisor.h"

namespace vs::failover {
namespace {

using namespace std::chrono_literals;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using virtshadow::v1::DiscardStaleCopyReply;
using virtshadow::v1::DiscardStaleCopyRequest;
using virtshadow::v1::FenceRecord;
using virtshadow::v1::PromotionQueryReply;
using virtshadow::v1::PromotionQueryRequest;
using FakeLibvirt = cli::testing::FakeLibvirt;
using FakeHypervisor = cli::testing::FakeHypervisor;

// ---- the transition table ----

TEST(FenceMachine, FencingFromNothingOrReleasedActs) {
  for (auto from : {FenceRecord::FENCE_STATE_UNSPECIFIED, FenceRecord::FENCE_STATE_RELEASED,
                    FenceRecord::FENCE_STATE_RELEASING, FenceRecord::FENCE_STATE_FENCED}) {
    auto next = NextFenceState(from, FenceEvent::kFence);
    ASSERT_TRUE(next.ok()) << FenceStateName(from);
    EXPECT_EQ(next->to, FenceRecord::FENCE_STATE_FENCED);
    EXPECT_EQ(next->command, FenceCommand::kAct);
  }
}

TEST(FenceMachine, AnswersDecideBetweenReleaseAndPromotedElsewhere) {
  auto released = NextFenceState(FenceRecord::FENCE_STATE_FENCED, FenceEvent::kNotPromoted);
  ASSERT_TRUE(released.ok());
  EXPECT_EQ(released->to, FenceRecord::FENCE_STATE_RELEASING);
  EXPECT_EQ(released->command, FenceCommand::kResume);
  auto promoted = NextFenceState(FenceRecord::FENCE_STATE_FENCED, FenceEvent::kPromoted);
  ASSERT_TRUE(promoted.ok());
  EXPECT_EQ(promoted->to, FenceRecord::FENCE_STATE_PROMOTED_ELSEWHERE);
  EXPECT_EQ(promoted->command, FenceCommand::kAct);
  auto unreachable = NextFenceState(FenceRecord::FENCE_STATE_FENCED, FenceEvent::kUnreachable);
  ASSERT_TRUE(unreachable.ok());
  EXPECT_EQ(unreachable->to, FenceRecord::FENCE_STATE_FENCED);
  EXPECT_EQ(unreachable->command, FenceCommand::kNone);
}

TEST(FenceMachine, APromotedVmIsNeverReleasedByALateAnswer) {
  EXPECT_EQ(NextFenceState(FenceRecord::FENCE_STATE_PROMOTED_ELSEWHERE, FenceEvent::kNotPromoted).status().code(),
            Code::kFailedPrecondition);
  EXPECT_EQ(NextFenceState(FenceRecord::FENCE_STATE_PROMOTED_ELSEWHERE, FenceEvent::kResumed).status().code(),
            Code::kFailedPrecondition);
  EXPECT_EQ(NextFenceState(FenceRecord::FENCE_STATE_RELEASED, FenceEvent::kPromoted).status().code(),
            Code::kFailedPrecondition);
  EXPECT_EQ(NextFenceState(FenceRecord::FENCE_STATE_UNSPECIFIED, FenceEvent::kNotPromoted).status().code(),
            Code::kFailedPrecondition);
}

TEST(FenceMachine, OnlyAPromotedElsewhereRecordIsReleasedByDiscardingTheStaleCopy) {
  auto released = NextFenceState(FenceRecord::FENCE_STATE_PROMOTED_ELSEWHERE, FenceEvent::kStaleDiscarded);
  ASSERT_TRUE(released.ok());
  EXPECT_EQ(released->to, FenceRecord::FENCE_STATE_RELEASED);
  EXPECT_EQ(released->command, FenceCommand::kNone) << "the discard is done before the event is recorded";
  for (auto from : {FenceRecord::FENCE_STATE_UNSPECIFIED, FenceRecord::FENCE_STATE_FENCED,
                    FenceRecord::FENCE_STATE_RELEASING, FenceRecord::FENCE_STATE_RELEASED}) {
    EXPECT_EQ(NextFenceState(from, FenceEvent::kStaleDiscarded).status().code(), Code::kFailedPrecondition)
        << FenceStateName(from);
  }
}

TEST(FenceMachine, AStoppedVmFoundPromotedAfterAStartBecomesPromotedElsewhereWithoutAnAction) {
  for (auto from : {FenceRecord::FENCE_STATE_UNSPECIFIED, FenceRecord::FENCE_STATE_RELEASED}) {
    auto next = NextFenceState(from, FenceEvent::kFoundPromoted);
    ASSERT_TRUE(next.ok()) << FenceStateName(from);
    EXPECT_EQ(next->to, FenceRecord::FENCE_STATE_PROMOTED_ELSEWHERE);
    EXPECT_EQ(next->command, FenceCommand::kNone) << "it does not run";
  }
  for (auto from : {FenceRecord::FENCE_STATE_FENCED, FenceRecord::FENCE_STATE_RELEASING,
                    FenceRecord::FENCE_STATE_PROMOTED_ELSEWHERE}) {
    EXPECT_EQ(NextFenceState(from, FenceEvent::kFoundPromoted).status().code(), Code::kFailedPrecondition)
        << FenceStateName(from);
  }
}

TEST(FenceMachine, StartsAreBlockedUntilReleased) {
  EXPECT_TRUE(BlocksStart(FenceRecord::FENCE_STATE_FENCED));
  EXPECT_TRUE(BlocksStart(FenceRecord::FENCE_STATE_RELEASING));
  EXPECT_TRUE(BlocksStart(FenceRecord::FENCE_STATE_PROMOTED_ELSEWHERE));
  EXPECT_FALSE(BlocksStart(FenceRecord::FENCE_STATE_RELEASED));
  EXPECT_FALSE(BlocksStart(FenceRecord::FENCE_STATE_UNSPECIFIED));
}

// ---- fence markers (what the hook reads while shadowd is down) ----

FenceRecord MarkerRecord(const std::string& uuid, FenceRecord::State state) {
  FenceRecord record;
  record.set_vm_uuid(uuid);
  record.set_vm_name("web");
  record.set_state(state);
  record.set_fenced_unix_ms(1'800'000'000'000);
  record.set_why("host h1 lost quorum (its partition: h1) while the VM's shadow host h2 is outside it");
  record.add_shadow_hosts("h2");
  return record;
}

TEST(FenceMarkers, WrittenWhileBlockingRemovedWhenReleased) {
  test_support::TempDir dir;
  const std::string markers = dir.Sub("fenced");
  const std::string uuid = "6695eb01-f6a4-8304-79aa-97f2502e193f";
  ASSERT_TRUE(WriteFenceMarkers(markers, {MarkerRecord(uuid, FenceRecord::FENCE_STATE_FENCED)}).ok());
  auto marker = ReadFenceMarker(markers, uuid);
  ASSERT_TRUE(marker.has_value());
  EXPECT_EQ(*marker, FenceRefusal("web", MarkerRecord(uuid, FenceRecord::FENCE_STATE_FENCED)));
  EXPECT_THAT(*marker, HasSubstr("fenced on this host since 2027-01-15 08:00:00 UTC"));
  ASSERT_TRUE(WriteFenceMarkers(markers, {MarkerRecord(uuid, FenceRecord::FENCE_STATE_RELEASED)}).ok());
  EXPECT_FALSE(ReadFenceMarker(markers, uuid).has_value());
  EXPECT_FALSE(ReadFenceMarker(markers, "../" + uuid).has_value()) << "no path is built from a non-uuid";
}

TEST(FenceMarkers, TheirDirectoryIsOwnerOnly) {
  test_support::TempDir dir;
  const std::string markers = dir.Sub("fenced");
  ASSERT_EQ(::mkdir(markers.c_str(), 0755), 0);  // as an older shadowd left it
  const std::string uuid = "6695eb01-f6a4-8304-79aa-97f2502e193f";
  ASSERT_TRUE(WriteFenceMarkers(markers, {MarkerRecord(uuid, FenceRecord::FENCE_STATE_FENCED)}).ok());
  struct stat st {};
  ASSERT_EQ(::stat(markers.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_TRUE(ReadFenceMarker(markers, uuid).has_value());
}

TEST(FenceMarkers, FenceRecordsPutKeepsThemInLine) {
  test_support::TempDir dir;
  store::MemoryStore store;
  std::vector<Status> errors;
  FenceRecords records(store, dir.Sub("fenced"), [&](const Status& s) { errors.push_back(s); });
  const std::string uuid = "6695eb01-f6a4-8304-79aa-97f2502e193f";
  ASSERT_TRUE(records.Put({MarkerRecord(uuid, FenceRecord::FENCE_STATE_PROMOTED_ELSEWHERE)}).ok());
  EXPECT_TRUE(ReadFenceMarker(dir.Sub("fenced"), uuid).has_value());
  ASSERT_TRUE(records.Put({MarkerRecord(uuid, FenceRecord::FENCE_STATE_RELEASED)}).ok());
  EXPECT_FALSE(ReadFenceMarker(dir.Sub("fenced"), uuid).has_value());
  EXPECT_TRUE(errors.empty());
  // A marker that cannot be written is reported, and the record is still written.
  FenceRecords unwritable(store, "/proc/no-such-dir/fenced", [&](const Status& s) { errors.push_back(s); });
  ASSERT_TRUE(unwritable.Put({MarkerRecord(uuid, FenceRecord::FENCE_STATE_FENCED)}).ok());
  EXPECT_EQ(errors.size(), 1u);
  auto stored = records.Get(uuid);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->state(), FenceRecord::FENCE_STATE_FENCED);
}

// ---- fakes ----

// Answers per host and VM ("HOST UUID"), else per host; a host without an answer is unreachable. Records every
// question. Not thread-safe: the
// threaded test below never gets to ask it (its partition stays without quorum).
class FakePromotionPeer final : public PromotionPeer {
 public:
  StatusOr<PromotionQueryReply> QueryPromotion(const std::string& host, const PromotionQueryRequest& request) override {
    asked.push_back(host + " " + request.vm_uuid() + " from " + request.asking_host());
    if (auto vm = vm_answers.find(host + " " + request.vm_uuid()); vm != vm_answers.end()) return vm->second;
    auto it = answers.find(host);
    if (it == answers.end()) return Unavailable("peer " + host + " unreachable");
    return it->second;
  }
  static PromotionQueryReply Answer(PromotionQueryReply::Answer answer, int64_t decided_ms = 0) {
    PromotionQueryReply reply;
    reply.set_answer(answer);
    reply.set_decided_unix_ms(decided_ms);
    return reply;
  }
  std::map<std::string, PromotionQueryReply> answers;
  std::map<std::string, PromotionQueryReply> vm_answers;
  std::vector<std::string> asked;
  // The questions about one VM.
  std::vector<std::string> AskedAbout(const std::string& vm_uuid) const {
    std::vector<std::string> about;
    for (const auto& question : asked) {
      if (question.find(" " + vm_uuid + " ") != std::string::npos) about.push_back(question);
    }
    return about;
  }
};

cluster::ClusterHosts ThreeHosts() {
  return {"h1",
          {{.name = "h1", .zone = "a", .uri = "", .address = "10.77.0.11"},
           {.name = "h2", .zone = "b", .uri = "", .address = "10.77.0.12"},
           {.name = "h3", .zone = "c", .uri = "", .address = "10.77.0.13"}},
          7479};
}

void PutVm(store::Store& store, const std::string& name, const std::string& primary,
           const std::vector<std::string>& shadow_hosts) {
  virtshadow::v1::VmRecord record;
  record.set_vm_uuid("u-" + name);
  record.set_vm_name(name);
  record.set_primary_host(primary);
  record.set_state(virtshadow::v1::PROTECTION_STATE_PROTECTED);
  for (const auto& host : shadow_hosts) record.add_shadows()->set_host(host);
  store::WriteBatch batch;
  batch.PutProto(store::Key(store::Table::kVm, record.vm_uuid()), record);
  ASSERT_TRUE(store.Write(batch).ok());
}

cluster::MembershipSnapshot Snap(std::vector<std::string> members, bool quorate) {
  return {.connected = true, .quorate = quorate, .ring_id = 7, .this_node = "h1", .members = members,
          .corosync_members = members};
}

class SelfFenceTest : public ::testing::Test {
 protected:
  SelfFenceTest() {
    libvirt_.domains["web"] = {};                                     // shadow on h2
    libvirt_.domains["db"] = {};                                      // shadow on h3
    libvirt_.domains["near"] = {};                                    // shadow on h1's partner inside the cut
    libvirt_.domains["off"] = {.state = virt::DomainState::kShutoff};  // shadow on h2, not running
    PutVm(store_, "web", "h1", {"h2"});
    PutVm(store_, "db", "h1", {"h3"});
    PutVm(store_, "near", "h1", {"h2"});
    PutVm(store_, "off", "h1", {"h2"});
    PutVm(store_, "theirs", "h2", {"h1"});  // h2's VM with a shadow here: not ours to fence
  }

  std::unique_ptr<SelfFence> Make(store::Store& store, FenceRecord::Action action = FenceRecord::FENCE_ACTION_PAUSE,
                                  Clock* clock = nullptr) {
    SelfFenceOptions options{.hosts = ThreeHosts(), .action = action};
    return std::make_unique<SelfFence>(
        options, SelfFence::Parts{store, records_, hypervisor_, peer_, clock ? *clock : clock_},
        [this](const std::string& line) { log_.push_back(line); });
  }

  FenceRecord Record(const std::string& name) {
    auto record = records_.Get("u-" + name);
    EXPECT_TRUE(record.ok());
    EXPECT_TRUE(record.ok() && record->has_value()) << name << " has no fence record";
    return record.ok() && record->has_value() ? **record : FenceRecord();
  }

  virt::DomainState StateOf(const std::string& name) { return libvirt_.domains[name].state; }

  // The domain `name` tagged in libvirt (a policy element), with its record's uuid.
  void TagRunning(const std::string& name) {
    libvirt_.domains[name].uuid = "u-" + name;
    libvirt_.domains[name].policy_metadata = cli::testing::PolicyMetadata(R"(vcpus="1")");
  }
  void StopTagged(const std::string& name) {
    TagRunning(name);
    libvirt_.domains[name].state = virt::DomainState::kShutoff;
  }

  store::MemoryStore store_;
  FenceRecords records_{store_};
  FakeLibvirt libvirt_;
  FakeHypervisor hypervisor_{libvirt_};
  FakePromotionPeer peer_;
  FakeClock clock_;
  std::vector<std::string> log_;
};

TEST_F(SelfFenceTest, AQuorateHostFencesNothing) {
  auto fence = Make(store_);
  ASSERT_TRUE(fence->Evaluate(Snap({"h1", "h2"}, true), clock_.Now()).ok());
  EXPECT_TRUE(libvirt_.actions.empty());
  auto all = records_.List();
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->empty());
}

TEST_F(SelfFenceTest, LosingQuorumPausesEveryRunningVmWithAShadowOutsideAndRecordsWhy) {
  auto fence = Make(store_);
  // h1 and h2 together, without quorum (e.g. a 5-host cluster): "near"'s and "web"'s shadow host h2 is inside.
  ASSERT_TRUE(fence->Evaluate(Snap({"h1", "h2"}, false), clock_.Now()).ok());
  EXPECT_THAT(libvirt_.actions, ElementsAre("suspend db"));
  EXPECT_EQ(StateOf("db"), virt::DomainState::kPaused);
  EXPECT_EQ(StateOf("web"), virt::DomainState::kRunning);
  FenceRecord db = Record("db");
  EXPECT_EQ(db.state(), FenceRecord::FENCE_STATE_FENCED);
  EXPECT_EQ(db.action(), FenceRecord::FENCE_ACTION_PAUSE);
  EXPECT_TRUE(db.acted());
  EXPECT_THAT(db.shadow_hosts(), ElementsAre("h3"));
  EXPECT_THAT(db.why(), HasSubstr("lost quorum"));
  EXPECT_THAT(db.why(), HasSubstr("h3"));
  EXPECT_EQ(db.fenced_unix_ms(), ToUnixMillis(clock_.WallNow()));
}

TEST_F(SelfFenceTest, ACutOffHostPausesAllItsRunningVmsAndLogsTheTimeAgainstTheBound) {
  auto fence = Make(store_);
  const MonoTime noticed = clock_.Now();
  clock_.Advance(300ms);  // the time between noticing and the evaluation counts
  ASSERT_TRUE(fence->Evaluate(Snap({"h1"}, false), noticed).ok());
  EXPECT_EQ(StateOf("web"), virt::DomainState::kPaused);
  EXPECT_EQ(StateOf("db"), virt::DomainState::kPaused);
  EXPECT_EQ(StateOf("near"), virt::DomainState::kPaused);
  EXPECT_EQ(StateOf("off"), virt::DomainState::kShutoff);
  EXPECT_EQ(Record("web").fence_latency_ms(), 300);
  ASSERT_FALSE(log_.empty());
  EXPECT_THAT(log_.back(), HasSubstr("300 ms after the quorum loss was noticed (bound 1000 ms)"));
  EXPECT_THAT(log_.back(), ::testing::Not(HasSubstr("EXCEEDED")));
}

TEST_F(SelfFenceTest, ADisconnectedEngineCountsAsCutOff) {
  auto fence = Make(store_);
  ASSERT_TRUE(fence->Evaluate(cluster::MembershipSnapshot{}, clock_.Now()).ok());
  EXPECT_EQ(StateOf("web"), virt::DomainState::kPaused);
  EXPECT_EQ(StateOf("db"), virt::DomainState::kPaused);
}

TEST_F(SelfFenceTest, MembersNamedByAddressCount) {
  auto fence = Make(store_);
  PartitionView partition = fence->PartitionOf(Snap({"10.77.0.11", "10.77.0.13"}, false));
  EXPECT_EQ(partition.members, (std::set<std::string>{"h1", "h3"}));
  EXPECT_FALSE(partition.quorate);
}

TEST_F(SelfFenceTest, TheRecordIsWrittenBeforeThePauseAndNoRecordMeansNoPause) {
  store::FaultInjectingStore faulty(store_);
  FenceRecords faulty_records(faulty);
  SelfFence fence({.hosts = ThreeHosts()}, {faulty, faulty_records, hypervisor_, peer_, clock_},
                  [](const std::string&) {});
  faulty.FailNthWrite(1, Unavailable("disk gone"));
  EXPECT_FALSE(fence.Evaluate(Snap({"h1"}, false), clock_.Now()).ok());
  EXPECT_TRUE(libvirt_.actions.empty()) << "nothing is paused without its record";
  // The next evaluation (the thread retries every 2 s) fences.
  ASSERT_TRUE(fence.Evaluate(Snap({"h1"}, false), clock_.Now()).ok());
  EXPECT_EQ(StateOf("web"), virt::DomainState::kPaused);
}

TEST_F(SelfFenceTest, AFailedPauseIsKeptAndRetried) {
  auto fence = Make(store_);
  libvirt_.suspend_error = Internal("QEMU busy");
  ASSERT_TRUE(fence->Evaluate(Snap({"h1"}, false), clock_.Now()).ok());
  FenceRecord web = Record("web");
  EXPECT_EQ(web.state(), FenceRecord::FENCE_STATE_FENCED);
  EXPECT_FALSE(web.acted());
  EXPECT_THAT(web.last_error(), HasSubstr("QEMU busy"));
  libvirt_.suspend_error = Status::Ok();
  ASSERT_TRUE(fence->Evaluate(Snap({"h1"}, false), clock_.Now()).ok());
  EXPECT_EQ(StateOf("web"), virt::DomainState::kPaused);
  EXPECT_TRUE(Record("web").acted());
}

TEST_F(SelfFenceTest, DestroyWhenConfigured) {
  auto fence = Make(store_, FenceRecord::FENCE_ACTION_DESTROY);
  ASSERT_TRUE(fence->Evaluate(Snap({"h1"}, false), clock_.Now()).ok());
  EXPECT_EQ(StateOf("web"), virt::DomainState::kShutoff);
  EXPECT_EQ(Record("web").action(), FenceRecord::FENCE_ACTION_DESTROY);
  // After the heal, NOT_PROMOTED releases it without starting it (the operator or autostart does).
  peer_.answers["h2"] = FakePromotionPeer::Answer(PromotionQueryReply::NOT_PROMOTED);
  peer_.answers["h3"] = FakePromotionPeer::Answer(PromotionQueryReply::NOT_PROMOTED);
  ASSERT_TRUE(fence->Evaluate(Snap({"h1", "h2", "h3"}, true), clock_.Now()).ok());
  EXPECT_EQ(Record("web").state(), FenceRecord::FENCE_STATE_RELEASED);
  EXPECT_EQ(StateOf("web"), virt::DomainState::kShutoff);
}

TEST_F(SelfFenceTest, AfterTheHealNotPromotedResumesAndReleases) {
  auto fence = Make(store_);
  ASSERT_TRUE(fence->Evaluate(Snap({"h1"}, false), clock_.Now()).ok());
  peer_.answers["h2"] = FakePromotionPeer::Answer(PromotionQueryReply::NOT_PROMOTED);
  peer_.answers["h3"] = FakePromotionPeer::Answer(PromotionQueryReply::NOT_PROMOTED);
  clock_.Advance(5s);
  ASSERT_TRUE(fence->Evaluate(Snap({"h1", "h2", "h3"}, true), clock_.Now()).ok());
  EXPECT_EQ(StateOf("web"), virt::DomainState::kRunning);
  EXPECT_EQ(StateOf("db"), virt::DomainState::kRunning);
  FenceRecord web = Record("web");
  EXPECT_EQ(web.state(), FenceRecord::FENCE_STATE_RELEASED);
  EXPECT_EQ(web.released_unix_ms(), ToUnixMillis(clock_.WallNow()));
  EXPECT_THAT(peer_.asked, ::testing::Contains("h2 u-web from h1"));
  // Released records are history: asking again changes nothing.
  const size_t actions = libvirt_.actions.size();
  ASSERT_TRUE(fence->Evaluate(Snap({"h1", "h2", "h3"}, true), clock_.Now()).ok());
  EXPECT_EQ(libvirt_.actions.size(), actions);
}

TEST_F(SelfFenceTest, AfterTheHealPromotedKeepsItFencedAndDefined) {
  auto fence = Make(store_);
  ASSERT_TRUE(fence->Evaluate(Snap({"h1"}, false), clock_.Now()).ok());
  peer_.answers["h2"] = FakePromotionPeer::Answer(PromotionQueryReply::PROMOTED, 1'800'000'004'000);
  peer_.answers["h3"] = FakePromotionPeer::Answer(PromotionQueryReply::NOT_PROMOTED);
  ASSERT_TRUE(fence->Evaluate(Snap({"h1", "h2", "h3"}, true), clock_.Now()).ok());
  FenceRecord web = Record("web");
  EXPECT_EQ(web.state(), FenceRecord::FENCE_STATE_PROMOTED_ELSEWHERE);
  EXPECT_EQ(web.promoted_host(), "h2");
  EXPECT_EQ(web.promoted_unix_ms(), 1'800'000'004'000);
  EXPECT_THAT(web.detail(), HasSubstr("promoted on h2"));
  EXPECT_EQ(StateOf("web"), virt::DomainState::kPaused);
  EXPECT_TRUE(libvirt_.domains.count("web")) << "the definition is kept";
  EXPECT_THAT(libvirt_.actions, ::testing::Not(::testing::Contains("resume web")));
  EXPECT_THAT(libvirt_.actions, ::testing::Not(::testing::Contains("destroy web")));
  EXPECT_EQ(Record("db").state(), FenceRecord::FENCE_STATE_RELEASED);
  // Later answers cannot release it, and it is not asked about again.
  peer_.answers["h2"] = FakePromotionPeer::Answer(PromotionQueryReply::NOT_PROMOTED);
  peer_.asked.clear();
  ASSERT_TRUE(fence->Evaluate(Snap({"h1", "h2", "h3"}, true), clock_.Now()).ok());
  EXPECT_EQ(Record("web").state(), FenceRecord::FENCE_STATE_PROMOTED_ELSEWHERE);
  EXPECT_TRUE(peer_.asked.empty());
}

TEST_F(SelfFenceTest, AfterTheHealAnUnreachableShadowHostKeepsItFencedUntilItAnswers) {
  auto fence = Make(store_);
  ASSERT_TRUE(fence->Evaluate(Snap({"h1"}, false), clock_.Now()).ok());
  peer_.answers["h3"] = FakePromotionPeer::Answer(PromotionQueryReply::NOT_PROMOTED);  // h2 does not answer
  ASSERT_TRUE(fence->Evaluate(Snap({"h1", "h2", "h3"}, true), clock_.Now()).ok());
  FenceRecord web = Record("web");
  EXPECT_EQ(web.state(), FenceRecord::FENCE_STATE_FENCED);
  EXPECT_THAT(web.detail(), HasSubstr("could not be asked"));
  EXPECT_EQ(StateOf("web"), virt::DomainState::kPaused);
  EXPECT_EQ(StateOf("db"), virt::DomainState::kRunning);
  // The retry, once h2 answers.
  peer_.answers["h2"] = FakePromotionPeer::Answer(PromotionQueryReply::NOT_PROMOTED);
  ASSERT_TRUE(fence->Evaluate(Snap({"h1", "h2", "h3"}, true), clock_.Now()).ok());
  EXPECT_EQ(Record("web").state(), FenceRecord::FENCE_STATE_RELEASED);
  EXPECT_EQ(StateOf("web"), virt::DomainState::kRunning);
}

TEST_F(SelfFenceTest, ARestartBetweenTheRecordAndThePauseFencesAgain) {
  // The state a kill -9 between the record's write and the pause leaves: FENCED, not acted, the VM running.
  FenceRecord left;
  left.set_vm_uuid("u-web");
  left.set_vm_name("web");
  left.add_shadow_hosts("h2");
  left.set_state(FenceRecord::FENCE_STATE_FENCED);
  left.set_action(FenceRecord::FENCE_ACTION_PAUSE);
  left.set_fenced_unix_ms(42);
  ASSERT_TRUE(records_.Put({left}).ok());
  auto fence = Make(store_);  // the restarted shadowd, still cut off
  ASSERT_TRUE(fence->Evaluate(Snap({"h1"}, false), clock_.Now()).ok());
  EXPECT_EQ(StateOf("web"), virt::DomainState::kPaused);
  FenceRecord web = Record("web");
  EXPECT_TRUE(web.acted());
  EXPECT_EQ(web.fenced_unix_ms(), 42) << "the same fence, not a new one";
}

TEST_F(SelfFenceTest, ARestartWhileReleasingResumesWithoutAskingAgain) {
  FenceRecord left;
  left.set_vm_uuid("u-web");
  left.set_vm_name("web");
  left.add_shadow_hosts("h2");
  left.set_state(FenceRecord::FENCE_STATE_RELEASING);
  left.set_action(FenceRecord::FENCE_ACTION_PAUSE);
  left.set_acted(true);
  ASSERT_TRUE(records_.Put({left}).ok());
  libvirt_.domains["web"].state = virt::DomainState::kPaused;
  auto fence = Make(store_);
  ASSERT_TRUE(fence->Evaluate(Snap({"h1", "h2", "h3"}, true), clock_.Now()).ok());
  EXPECT_EQ(StateOf("web"), virt::DomainState::kRunning);
  EXPECT_EQ(Record("web").state(), FenceRecord::FENCE_STATE_RELEASED);
  EXPECT_TRUE(peer_.asked.empty());
}

TEST_F(SelfFenceTest, APausedFencedVmIsNotResumedWhileQuorumIsAway) {
  auto fence = Make(store_);
  ASSERT_TRUE(fence->Evaluate(Snap({"h1"}, false), clock_.Now()).ok());
  const size_t actions = libvirt_.actions.size();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(fence->Evaluate(Snap({"h1"}, false), clock_.Now()).ok());
  EXPECT_EQ(libvirt_.actions.size(), actions) << "retries touch nothing that is already fenced";
  EXPECT_EQ(StateOf("web"), virt::DomainState::kPaused);
}

// A Membership the test drives (as in tests/unit/cluster): Emit() plays the engine's thread.
class FakeMembership final : public cluster::Membership {
 public:
  cluster::MembershipSnapshot Current() const override { return current; }
  void Start(Listener on_change) override { listener = std::move(on_change); }
  void Stop() override { listener = nullptr; }
  void Emit(cluster::MembershipSnapshot snapshot) {
    current = std::move(snapshot);
    if (listener) listener(current);
  }
  cluster::MembershipSnapshot current;
  Listener listener;
};

TEST_F(SelfFenceTest, OnItsOwnThreadItFencesWithinTheBoundOfTheMembershipChange) {
  std::unique_ptr<Clock> real = NewRealClock();
  auto fence = Make(store_, FenceRecord::FENCE_ACTION_PAUSE, real.get());
  FakeMembership membership;
  membership.Start([&](const cluster::MembershipSnapshot& snapshot) { fence->OnMembership(snapshot); });
  fence->Start([&] { return membership.Current(); });
  membership.Emit(Snap({"h1", "h2", "h3"}, true));
  membership.Emit(Snap({"h1"}, false));
  // The store is thread-safe; the fake hypervisor is not, so it is looked at once the thread stopped.
  const MonoTime deadline = real->Now() + 2s;
  bool fenced = false;
  while (!fenced && real->Now() < deadline) {
    auto web = records_.Get("u-web");
    auto db = records_.Get("u-db");
    fenced = web.ok() && *web && (*web)->acted() && db.ok() && *db && (*db)->acted();
    if (!fenced) std::this_thread::sleep_for(10ms);
  }
  fence->Stop();
  ASSERT_TRUE(fenced) << "not fenced within 2 s of the membership change";
  EXPECT_EQ(StateOf("web"), virt::DomainState::kPaused);
  EXPECT_LT(Record("web").fence_latency_ms(), 2000);
  EXPECT_LT(Record("db").fence_latency_ms(), 2000);
}

// ---- DiscardStaleCopy: the failback of a VM promoted elsewhere ----

class DiscardStaleCopyTest : public SelfFenceTest {
 protected:
  // "web" fenced while h1 was cut off, then promoted on h2: its copy here is stale, paused, defined.
  void PromoteWebOnH2(SelfFence& fence) {
    libvirt_.domains["web"].uuid = "u-web";
    libvirt_.domains["web"].devices_xml =
        "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
        "<source file='/var/lib/libvirt/images/web.qcow2'/><target dev='vda' bus='virtio'/></disk>";
    ASSERT_TRUE(fence.Evaluate(Snap({"h1"}, false), clock_.Now()).ok());
    peer_.answers["h2"] = FakePromotionPeer::Answer(PromotionQueryReply::PROMOTED, 1'800'000'004'000);
    peer_.answers["h3"] = FakePromotionPeer::Answer(PromotionQueryReply::NOT_PROMOTED);
    ASSERT_TRUE(fence.Evaluate(Snap({"h1", "h2", "h3"}, true), clock_.Now()).ok());
    ASSERT_EQ(Record("web").state(), FenceRecord::FENCE_STATE_PROMOTED_ELSEWHERE);
    libvirt_.actions.clear();
  }
  static DiscardStaleCopyRequest Ask(const std::string& vm_uuid, const std::string& asking_host) {
    DiscardStaleCopyRequest request;
    request.set_vm_uuid(vm_uuid);
    request.set_asking_host(asking_host);
    return request;
  }
};

TEST_F(DiscardStaleCopyTest, ThePromotingHostHasThePausedCopyDestroyedAndUndefinedImagesKeptThenReleased) {
  auto fence = Make(store_);
  PromoteWebOnH2(*fence);
  clock_.Advance(5s);
  StatusOr<DiscardStaleCopyReply> reply = fence->DiscardStaleCopy(Ask("u-web", "h2"));
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_THAT(libvirt_.actions, ElementsAre("destroy web", "undefine web"));
  EXPECT_FALSE(libvirt_.domains.count("web"));
  EXPECT_THAT(reply->kept_images(), ElementsAre("/var/lib/libvirt/images/web.qcow2"));
  FenceRecord web = Record("web");
  EXPECT_EQ(web.state(), FenceRecord::FENCE_STATE_RELEASED);
  EXPECT_FALSE(BlocksStart(web.state())) << "the switchover's incoming migration may start it again";
  EXPECT_EQ(web.stale_discarded_unix_ms(), ToUnixMillis(clock_.WallNow()));
  EXPECT_EQ(web.released_unix_ms(), ToUnixMillis(clock_.WallNow()));
  EXPECT_EQ(web.promoted_host(), "h2") << "kept: a repeated call is answered from it";
  EXPECT_THAT(web.detail(), AllOf(HasSubstr("failback from h2"), HasSubstr("destroyed and undefined"),
                                  HasSubstr("/var/lib/libvirt/images/web.qcow2")));
  EXPECT_THAT(log_.back(), HasSubstr("stale copy discarded"));

  // The caller's retry (its reply was lost, or it restarted) is answered from the record; nothing is touched.
  StatusOr<DiscardStaleCopyReply> again = fence->DiscardStaleCopy(Ask("u-web", "h2"));
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_THAT(again->detail(), HasSubstr("discarded already"));
  EXPECT_THAT(libvirt_.actions, ElementsAre("destroy web", "undefine web"));
  // Another host has no say in it.
  EXPECT_EQ(fence->DiscardStaleCopy(Ask("u-web", "h3")).status().code(), Code::kFailedPrecondition);
}

TEST_F(DiscardStaleCopyTest, AShutOffCopyAfterACrashIsOnlyUndefined) {
  auto fence = Make(store_);
  PromoteWebOnH2(*fence);
  libvirt_.domains["web"].state = virt::DomainState::kShutoff;  // the host crashed and came back
  ASSERT_TRUE(fence->DiscardStaleCopy(Ask("u-web", "h2")).ok());
  EXPECT_THAT(libvirt_.actions, ElementsAre("undefine web"));
  EXPECT_EQ(Record("web").state(), FenceRecord::FENCE_STATE_RELEASED);
}

TEST_F(DiscardStaleCopyTest, ARestartAfterTheUndefineFinishesTheReleaseWhenAskedAgain) {
  auto fence = Make(store_);
  PromoteWebOnH2(*fence);
  // Killed after the undefine, before the record: it still blocks starts; the retry releases it.
  libvirt_.domains.erase("web");
  auto restarted = Make(store_);
  StatusOr<DiscardStaleCopyReply> reply = restarted->DiscardStaleCopy(Ask("u-web", "h2"));
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_TRUE(libvirt_.actions.empty());
  FenceRecord web = Record("web");
  EXPECT_EQ(web.state(), FenceRecord::FENCE_STATE_RELEASED);
  EXPECT_THAT(web.detail(), HasSubstr("undefined already"));
}

TEST_F(DiscardStaleCopyTest, RefusedUnlessTheRecordSaysPromotedElsewhereOnTheAskingHost) {
  auto fence = Make(store_);
  // No record at all ("theirs" is h2's VM; nothing was fenced here).
  Status none = fence->DiscardStaleCopy(Ask("u-theirs", "h2")).status();
  EXPECT_EQ(none.code(), Code::kFailedPrecondition);
  EXPECT_THAT(none.message(), HasSubstr("no fence record"));
  // Fenced, not yet known to be promoted: the copy may be the only one.
  ASSERT_TRUE(fence->Evaluate(Snap({"h1"}, false), clock_.Now()).ok());
  Status fenced = fence->DiscardStaleCopy(Ask("u-web", "h2")).status();
  EXPECT_EQ(fenced.code(), Code::kFailedPrecondition);
  EXPECT_THAT(fenced.message(), AllOf(HasSubstr("'fenced'"), HasSubstr("not 'promoted elsewhere'")));
  // Promoted on h2, asked by h3.
  peer_.answers["h2"] = FakePromotionPeer::Answer(PromotionQueryReply::PROMOTED, 1'800'000'004'000);
  peer_.answers["h3"] = FakePromotionPeer::Answer(PromotionQueryReply::NOT_PROMOTED);
  ASSERT_TRUE(fence->Evaluate(Snap({"h1", "h2", "h3"}, true), clock_.Now()).ok());
  Status other = fence->DiscardStaleCopy(Ask("u-web", "h3")).status();
  EXPECT_EQ(other.code(), Code::kFailedPrecondition);
  EXPECT_THAT(other.message(), HasSubstr("promoted on h2, not on h3"));
  // Released (not promoted) after the heal: it is the VM, not a stale copy.
  Status released = fence->DiscardStaleCopy(Ask("u-db", "h3")).status();
  EXPECT_EQ(released.code(), Code::kFailedPrecondition);
  EXPECT_THAT(released.message(), HasSubstr("'released'"));
  // An incomplete request.
  EXPECT_EQ(fence->DiscardStaleCopy(Ask("u-web", "")).status().code(), Code::kInvalidArgument);
  // None of that touched anything.
  EXPECT_THAT(libvirt_.actions, ::testing::Not(::testing::Contains("undefine web")));
  EXPECT_TRUE(libvirt_.domains.count("web"));
  EXPECT_EQ(Record("web").state(), FenceRecord::FENCE_STATE_PROMOTED_ELSEWHERE);
}

TEST_F(DiscardStaleCopyTest, ADomainOfThatNameThatIsAnotherVmIsNotTouched) {
  auto fence = Make(store_);
  PromoteWebOnH2(*fence);
  libvirt_.domains["web"].uuid = "someone-else";
  Status status = fence->DiscardStaleCopy(Ask("u-web", "h2")).status();
  EXPECT_EQ(status.code(), Code::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("not the fenced VM's u-web"));
  EXPECT_TRUE(libvirt_.actions.empty());
  EXPECT_EQ(Record("web").state(), FenceRecord::FENCE_STATE_PROMOTED_ELSEWHERE);
}

// ---- Back from a crash: the VMs found stopped after a start ----

TEST_F(SelfFenceTest, AVmFoundStoppedAfterACrashThatAPeerPromotedIsRecordedPromotedElsewhere) {
  // h1 crashed with "web" running and came back: libvirtd has it defined, shut off; no fence record (a crash
  // fences nothing). h2 promoted it meanwhile. "off" is tagged and stopped too, promoted nowhere; "db" runs.
  StopTagged("web");
  StopTagged("off");
  TagRunning("db");
  peer_.vm_answers["h2 u-web"] = FakePromotionPeer::Answer(PromotionQueryReply::PROMOTED, 1'800'000'004'000);
  peer_.answers["h3"] = FakePromotionPeer::Answer(PromotionQueryReply::NOT_PROMOTED);
  peer_.answers["h2"] = FakePromotionPeer::Answer(PromotionQueryReply::NOT_PROMOTED);
  auto fence = Make(store_);
  ASSERT_TRUE(fence->Evaluate(Snap({"h1", "h2", "h3"}, true), clock_.Now()).ok());
  FenceRecord web = Record("web");
  EXPECT_EQ(web.state(), FenceRecord::FENCE_STATE_PROMOTED_ELSEWHERE);
  EXPECT_TRUE(BlocksStart(web.state())) << "the hook refuses to start the stale copy";
  EXPECT_TRUE(web.acted());
  EXPECT_EQ(web.promoted_host(), "h2");
  EXPECT_EQ(web.promoted_unix_ms(), 1'800'000'004'000);
  EXPECT_THAT(web.why(), HasSubstr("found stopped when shadowd started"));
  EXPECT_TRUE(libvirt_.actions.empty()) << "nothing runs, nothing to do";
  EXPECT_TRUE(libvirt_.domains.count("web")) << "the definition is kept";
  // Running VMs are not asked about; the one nobody promoted gets no record.
  EXPECT_TRUE(peer_.AskedAbout("u-db").empty());
  EXPECT_EQ(peer_.AskedAbout("u-off").size(), 2u) << "every peer: any may have held its shadow";
  EXPECT_FALSE(records_.Get("u-off")->has_value());
  // Once answered, not asked again.
  peer_.asked.clear();
  ASSERT_TRUE(fence->Evaluate(Snap({"h1", "h2", "h3"}, true), clock_.Now()).ok());
  EXPECT_TRUE(peer_.asked.empty()) << ::testing::PrintToString(peer_.asked);
  // And the failback from h2 may have it discarded.
  DiscardStaleCopyRequest request;
  request.set_vm_uuid("u-web");
  request.set_asking_host("h2");
  ASSERT_TRUE(fence->DiscardStaleCopy(request).ok());
  EXPECT_THAT(libvirt_.actions, ElementsAre("undefine web"));
  EXPECT_EQ(Record("web").state(), FenceRecord::FENCE_STATE_RELEASED);
}

TEST_F(SelfFenceTest, AStoppedVmIsAskedAboutAgainUntilEveryPeerAnswered) {
  StopTagged("web");
  peer_.answers["h3"] = FakePromotionPeer::Answer(PromotionQueryReply::NOT_PROMOTED);  // h2 does not answer
  auto fence = Make(store_);
  ASSERT_TRUE(fence->Evaluate(Snap({"h1", "h2", "h3"}, true), clock_.Now()).ok());
  EXPECT_FALSE(records_.Get("u-web")->has_value());
  // h2 outside the partition is not dialled (its connection's timeout would hold up a fence), nor decided on.
  peer_.asked.clear();
  ASSERT_TRUE(fence->Evaluate(Snap({"h1", "h3"}, true), clock_.Now()).ok());
  EXPECT_THAT(peer_.AskedAbout("u-web"), ElementsAre("h3 u-web from h1"));
  EXPECT_FALSE(records_.Get("u-web")->has_value());
  peer_.vm_answers["h2 u-web"] = FakePromotionPeer::Answer(PromotionQueryReply::PROMOTED, 1'800'000'004'000);
  ASSERT_TRUE(fence->Evaluate(Snap({"h1", "h2", "h3"}, true), clock_.Now()).ok());
  EXPECT_EQ(Record("web").state(), FenceRecord::FENCE_STATE_PROMOTED_ELSEWHERE);
}

}  // namespace
}  // namespace vs::failover
