// SwitchoverCoordinator against fakes of what it borrows: ProtectedVms with scripted views, the real runner over
// MemoryStore driving ScriptedSteps (whose warm migrations are held in precopy until the WarmUpGate releases or
// cancels them, as the libvirt steps' are), a RoundScheduler that records holds and scripts rounds, a
// SwitchoverPeer that answers HostState, the CLI tests' FakeHypervisor for the domain XML, the real DrainState,
// ArrivalRecords and WarmUpGate over MemoryStore, and a FakeClock (a failback's polling sleeps on it).
//
// Covered: one VM's switchover (the runner's steps, the target, the rounds given back on failure, the refusals);
// a drain (the drain state, the plan by priority, the VMs skipped and why, on_drained); the warm-ups of an early
// warning (held in precopy, switched by the preemption, cancelled by undrain, released by Stop); Start resuming a
// persisted drain; failback; the idle retry of completions.
//
// Every wait for another thread is bounded (kWait), so that a bug fails the test instead of hanging ctest.
#include "shadowd/switchover/switchover_coordinator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "shadowd/policy/policy.h"
#include "shadowd/store/memory_store.h"
#include "tests/unit/cli/fake_hypervisor.h"
#include "tests/unit/switchover/scripted_steps.h"

namespace vs::switchover {
namespace {

namespace v1 = virtshadow::v1;
using namespace vs::switchover::testing;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

constexpr Phase kMigrating = v1::SWITCHOVER_PHASE_MIGRATING;
constexpr Phase kCompleting = v1::SWITCHOVER_PHASE_COMPLETING;
constexpr Phase kDone = v1::SWITCHOVER_PHASE_DONE;
constexpr Phase kFailed = v1::SWITCHOVER_PHASE_FAILED;

// The bound of every wait for another thread.
constexpr Duration kWait = 10s;

const std::string kThisHost = "h2";
const std::string kUuidA = "aaaaaaaa-0000-4000-8000-000000000001";
const std::string kUuidB = "bbbbbbbb-0000-4000-8000-000000000002";
const std::string kUuidC = "cccccccc-0000-4000-8000-000000000003";
const std::string kUuidD = "dddddddd-0000-4000-8000-000000000004";
const std::string kUuidE = "eeeeeeee-0000-4000-8000-000000000005";
const std::string kUuidF = "ffffffff-0000-4000-8000-000000000006";

template <typename T>
bool Ready(std::future<T>& future) {
  return future.wait_for(kWait) == std::future_status::ready;
}

template <typename T>
std::future<T> ReadyFuture(T value) {
  std::promise<T> promise;
  promise.set_value(std::move(value));
  return promise.get_future();
}

// Strings other threads add (log lines, checkpoints of the fakes), awaited by the test.
class Seen {
 public:
  void Add(const std::string& item) {
    std::lock_guard<std::mutex> lock(mu_);
    items_.push_back(item);
    added_.notify_all();
  }
  // The first item containing `part` that is seen within kWait, after skipping `skip` such items.
  std::optional<std::string> WaitFor(const std::string& part, size_t skip = 0) {
    std::unique_lock<std::mutex> lock(mu_);
    std::optional<std::string> found;
    added_.wait_for(lock, kWait, [&] {
      size_t matches = 0;
      for (const std::string& item : items_) {
        if (item.find(part) == std::string::npos) continue;
        if (matches++ == skip) {
          found = item;
          return true;
        }
      }
      return false;
    });
    return found;
  }
  std::vector<std::string> All() const {
    std::lock_guard<std::mutex> lock(mu_);
    return items_;
  }
  // Whether an item containing `part` was added (no waiting).
  bool Has(const std::string& part) const {
    std::lock_guard<std::mutex> lock(mu_);
    return std::any_of(items_.begin(), items_.end(),
                       [&](const std::string& item) { return item.find(part) != std::string::npos; });
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable added_;
  std::vector<std::string> items_;
};

// The protection controller as the coordinator sees it: views by uuid, in insertion order.
class FakeProtectedVms final : public ProtectedVms {
 public:
  void Put(const controller::VmStatusView& view) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& v : views_) {
      if (v.uuid == view.uuid) {
        v = view;
        return;
      }
    }
    views_.push_back(view);
  }
  // The VM left this host (its migration went through): no longer running here.
  void Left(const std::string& uuid) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& v : views_) {
      if (v.uuid == uuid) v.running = false;
    }
  }
  // What StatusOf shows of `uuid` once its shadow move was requested: one view per call, each then kept as the
  // VM's view (the last one stays).
  void AfterShadowMove(const std::string& uuid, std::deque<controller::VmStatusView> views) {
    std::lock_guard<std::mutex> lock(mu_);
    after_move_[uuid] = std::move(views);
  }
  std::vector<std::pair<std::string, std::string>> ShadowMoves() const {
    std::lock_guard<std::mutex> lock(mu_);
    return moves_;
  }
  std::optional<controller::VmStatusView> View(const std::string& uuid) const {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& v : views_) {
      if (v.uuid == uuid) return v;
    }
    return std::nullopt;
  }

  StatusOr<std::vector<controller::VmStatusView>> List() override {
    std::lock_guard<std::mutex> lock(mu_);
    return views_;
  }
  StatusOr<controller::VmStatusView> StatusOf(const std::string& vm) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& v : views_) {
      if (v.name != vm && v.uuid != vm) continue;
      bool moved = std::any_of(moves_.begin(), moves_.end(), [&](const auto& m) { return m.first == v.uuid; });
      auto next = after_move_.find(v.uuid);
      if (moved && next != after_move_.end() && !next->second.empty()) {
        v = next->second.front();
        next->second.pop_front();
      }
      return v;
    }
    return NotFound("no VM '" + vm + "' on this host");
  }
  Status RequestShadowMove(const std::string& vm_uuid, const std::string& host) override {
    std::lock_guard<std::mutex> lock(mu_);
    moves_.emplace_back(vm_uuid, host);
    return Status::Ok();
  }

 private:
  mutable std::mutex mu_;
  std::vector<controller::VmStatusView> views_;
  std::map<std::string, std::deque<controller::VmStatusView>> after_move_;
  std::vector<std::pair<std::string, std::string>> moves_;
};

// This host's replication rounds: holds recorded, rounds answered as scripted.
class FakeRounds final : public replication::RoundScheduler {
 public:
  void Hold(const std::string& vm_uuid) override {
    std::lock_guard<std::mutex> lock(mu_);
    holds_.push_back(vm_uuid);
  }
  void Unhold(const std::string& vm_uuid) override {
    std::lock_guard<std::mutex> lock(mu_);
    unholds_.push_back(vm_uuid);
  }
  std::future<StatusOr<bool>> Quiesce(const std::string&) override { return ReadyFuture(StatusOr<bool>(true)); }
  // Fails as scripted (RoundFailures), else applies a round to the replica on the host the VM's record is
  // scripted to move to (RoundAppliesOn), if any.
  std::future<StatusOr<v1::AppliedRound>> RequestRound(const std::string& vm_uuid) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++rounds_requested_[vm_uuid];
    if (auto failing = failures_.find(vm_uuid); failing != failures_.end() && !failing->second.empty()) {
      Status failure = failing->second.front();
      failing->second.pop_front();
      return ReadyFuture(StatusOr<v1::AppliedRound>(failure));
    }
    v1::ReplicationRecord& record = records_[vm_uuid];
    if (auto to = applies_on_.find(vm_uuid); to != applies_on_.end()) record.set_shadow_host(to->second);
    record.mutable_applied()->set_changed_bytes(4 * kMiB);
    record.set_rounds_applied(record.rounds_applied() + 1);
    return ReadyFuture(StatusOr<v1::AppliedRound>(record.applied()));
  }
  std::future<StatusOr<v1::AppliedRound>> RequestFinalRound(const std::string&) override {
    return ReadyFuture(StatusOr<v1::AppliedRound>(Internal("the final round is the steps' business")));
  }
  StatusOr<v1::ReplicationRecord> RecordOf(const std::string& vm_uuid) const override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = records_.find(vm_uuid);
    return it == records_.end() ? v1::ReplicationRecord() : it->second;
  }
  Status Forget(const std::string& vm_uuid) override {
    std::lock_guard<std::mutex> lock(mu_);
    records_.erase(vm_uuid);
    return Status::Ok();
  }

  void SetRecord(const std::string& vm_uuid, v1::ReplicationRecord record) {
    std::lock_guard<std::mutex> lock(mu_);
    records_[vm_uuid] = std::move(record);
  }
  void RoundAppliesOn(const std::string& vm_uuid, const std::string& host) {
    std::lock_guard<std::mutex> lock(mu_);
    applies_on_[vm_uuid] = host;
  }
  void RoundFailures(const std::string& vm_uuid, std::deque<Status> failures) {
    std::lock_guard<std::mutex> lock(mu_);
    failures_[vm_uuid] = std::move(failures);
  }
  std::vector<std::string> Unholds() const {
    std::lock_guard<std::mutex> lock(mu_);
    return unholds_;
  }
  int RoundsRequested(const std::string& vm_uuid) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = rounds_requested_.find(vm_uuid);
    return it == rounds_requested_.end() ? 0 : it->second;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> holds_;
  std::vector<std::string> unholds_;
  std::map<std::string, v1::ReplicationRecord> records_;
  std::map<std::string, std::string> applies_on_;
  std::map<std::string, std::deque<Status>> failures_;
  std::map<std::string, int> rounds_requested_;
};

// The peers' HostState and DiscardStaleCopy (the failback of a promoted VM); nothing else of the peer is the
// coordinator's business (the steps call the rest).
class FakeSwitchoverPeer final : public SwitchoverPeer {
 public:
  // What `host` answers to DiscardStaleCopy (unset: kUnavailable).
  void SetDiscardAnswer(const std::string& host, StatusOr<v1::DiscardStaleCopyReply> answer) {
    std::lock_guard<std::mutex> lock(mu_);
    discard_answers_.insert_or_assign(host, std::move(answer));
  }
  // "host vm_uuid asking_host" per DiscardStaleCopy call.
  std::vector<std::string> Discards() const {
    std::lock_guard<std::mutex> lock(mu_);
    return discards_;
  }
  void SetState(const std::string& host, v1::HostStateReply state) {
    std::lock_guard<std::mutex> lock(mu_);
    states_[host] = std::move(state);
  }
  std::vector<std::string> Asked() const {
    std::lock_guard<std::mutex> lock(mu_);
    return asked_;
  }

  StatusOr<v1::CheckSwitchoverReply> CheckSwitchover(const std::string&, const v1::CheckSwitchoverRequest&) override {
    return Unused("CheckSwitchover");
  }
  Status PrepareSwitchover(const std::string&, const v1::PrepareSwitchoverRequest&) override {
    return Unused("PrepareSwitchover");
  }
  Status CompleteSwitchover(const std::string&, const v1::CompleteSwitchoverRequest&) override {
    return Unused("CompleteSwitchover");
  }
  Status AbortSwitchover(const std::string&, const v1::AbortSwitchoverRequest&) override {
    return Unused("AbortSwitchover");
  }
  StatusOr<v1::HostStateReply> HostState(const std::string& host) override {
    std::lock_guard<std::mutex> lock(mu_);
    asked_.push_back(host);
    auto it = states_.find(host);
    if (it == states_.end()) return Unavailable("fake peer: " + host + " does not answer");
    return it->second;
  }
  StatusOr<v1::DiscardStaleCopyReply> DiscardStaleCopy(const std::string& host,
                                                       const v1::DiscardStaleCopyRequest& request) override {
    std::lock_guard<std::mutex> lock(mu_);
    discards_.push_back(host + " " + request.vm_uuid() + " " + request.asking_host());
    auto it = discard_answers_.find(host);
    if (it == discard_answers_.end()) return Unavailable("fake peer: " + host + " does not answer");
    return it->second;
  }

 private:
  static Status Unused(const std::string& call) {
    ADD_FAILURE() << call << " is the steps' call, not the coordinator's";
    return Internal(call + " is not used by the coordinator");
  }
  mutable std::mutex mu_;
  std::map<std::string, v1::HostStateReply> states_;
  std::vector<std::string> asked_;
  std::map<std::string, StatusOr<v1::DiscardStaleCopyReply>> discard_answers_;
  std::vector<std::string> discards_;
};

class SwitchoverCoordinatorTest : public ::testing::Test {
 protected:
  SwitchoverCoordinatorTest() {
    // 16 MiB per migration says nothing about the link (ObserveMove skips it): the bandwidth estimate stays at
    // its seed (100 MiB/s), so the plans below are predictable whatever ran before them.
    steps_.figures.memory_bytes = 16 * kMiB;
    steps_.figures.disk_bytes = 0;
    steps_.before_step = [this](const std::string& step, const SwitchoverRecord& record) {
      return BeforeStep(step, record);
    };
  }
  ~SwitchoverCoordinatorTest() override { coordinator_.reset(); }  // stops it before the fakes it borrows go

  // A running, protected VM of this host whose shadow is on `shadow_host`; `priority` and `warmup` go into its
  // canonical policy. Its domain (1 GiB of RAM) is in the fake libvirt.
  controller::VmStatusView AddVm(const std::string& name, const std::string& uuid, const std::string& shadow_host,
                                 uint32_t priority = 100, bool warmup = true) {
    controller::VmStatusView view;
    view.name = name;
    view.uuid = uuid;
    view.state = v1::PROTECTION_STATE_PROTECTED;
    view.running = true;
    view.shadow_hosts = {shadow_host};
    policy::Policy policy;
    policy.priority = priority;
    policy.warmup = warmup;
    view.policy = policy::RenderPolicy(policy);
    libvirt_.domains[name] = {};
    vms_.Put(view);
    return view;
  }

  // A failback's starting point: web runs here (its shadow on h4), having come from h1 by `arrival`; h1 answers,
  // and web's shadow moves home to h1, where its rounds apply.
  void ArrangeFailbackHome(v1::OriginRecord::Arrival arrival) {
    controller::VmStatusView home = AddVm("web", kUuidA, "h4");
    ASSERT_TRUE(arrivals_.RecordOrigin(kUuidA, "web", "h1", arrival, "came from h1").ok());
    peer_.SetState("h1", v1::HostStateReply());
    home.shadow_hosts = {"h1"};
    vms_.AfterShadowMove(kUuidA, {home});
    rounds_.RoundAppliesOn(kUuidA, "h1");
  }

  void StartCoordinator(Duration completion_retry_every = SwitchoverCoordinator::kCompletionRetryEvery) {
    coordinator_ = std::make_unique<SwitchoverCoordinator>(
        kThisHost, Settings{},
        SwitchoverCoordinator::Parts{.vms = vms_, .runner = runner_, .local = local_, .peer = peer_,
                                     .drain = drain_, .arrivals = arrivals_, .rounds = rounds_, .warm_up = gate_,
                                     .clock = clock_,
                                     .on_promoted_home =
                                         [this](const std::string& vm_uuid, const std::string& home) {
                                           log_.Add("promotion ended: " + vm_uuid + " home on " + home);
                                           return Status::Ok();
                                         }},
        [this](const std::string& line) { log_.Add(line); },
        [this](const notice::Notice& notice) {
          std::lock_guard<std::mutex> lock(drained_mu_);
          drained_.push_back(notice);
          log_.Add("on_drained " + notice.id);
        },
        completion_retry_every);
    coordinator_->Start();
  }

  notice::Notice Notice(notice::Notice::Kind kind, Duration deadline_in, std::string id,
                        notice::Notice::Source source = notice::Notice::Source::kGce) const {
    notice::Notice notice;
    notice.source = source;
    notice.kind = kind;
    notice.deadline = clock_.WallNow() + std::chrono::duration_cast<WallTime::duration>(deadline_in);
    notice.id = std::move(id);
    notice.detail = "from the test";
    return notice;
  }

  std::vector<notice::Notice> Drained() {
    std::lock_guard<std::mutex> lock(drained_mu_);
    return drained_;
  }

  std::optional<SwitchoverRecord> Record(const std::string& uuid) { return StoredRecord(store_, uuid); }

  // The steps of one VM, in order.
  std::vector<std::string> StepsOf(const std::string& vm_name) const {
    std::vector<std::string> steps;
    for (const auto& [vm, step] : steps_.VmSteps()) {
      if (vm == vm_name) steps.push_back(step);
    }
    return steps;
  }
  // The VMs whose Check ran, in order.
  std::vector<std::string> Checked() const {
    std::vector<std::string> vms;
    for (const auto& [vm, step] : steps_.VmSteps()) {
      if (step == "Check") vms.push_back(vm);
    }
    return vms;
  }

  // Waits (bounded) until the warm migration of `uuid` (its `nth` one, from 0) took its first look at the gate;
  // returns what it saw: "held", "released" or "cancelled" ("" if it never came).
  std::string WarmMigration(const std::string& uuid, size_t nth = 0) {
    std::optional<std::string> seen = checkpoints_.WaitFor("warm migration of " + uuid + ": ", nth);
    return seen ? seen->substr(seen->rfind(' ') + 1) : "";
  }

  // The steps' side effects that the runner's fake does not know about:
  //  - a warm migration is held in precopy until the coordinator releases or cancels its VM at the WarmUpGate,
  //    polled as the libvirt steps' migration polls it (every 100 ms there), and then forgotten at the gate, as
  //    there; a cancelled one fails (its migration was aborted);
  //  - once the migration went through, the VM no longer runs here (VerifyGuest looks at it on the target).
  Status BeforeStep(const std::string& step, const SwitchoverRecord& record) {
    const std::string& uuid = record.vm_uuid();
    if (step == "Migrate" && record.warm()) {
      checkpoints_.Add("warm migration of " + uuid + ": first look: " +
                       (gate_.Cancelled(uuid) ? "cancelled" : gate_.Released(uuid) ? "released" : "held"));
      const auto give_up = std::chrono::steady_clock::now() + kWait;
      while (!gate_.Cancelled(uuid) && !gate_.Released(uuid)) {
        if (std::chrono::steady_clock::now() > give_up) {
          gate_.Forget(uuid);
          return DeadlineExceeded("the warm-up of " + record.vm_name() + " was neither released nor cancelled");
        }
        std::this_thread::sleep_for(1ms);
      }
      const bool cancelled = gate_.Cancelled(uuid);
      gate_.Forget(uuid);
      if (cancelled) return Aborted("the migration of " + record.vm_name() + " was cancelled");
    } else if (step == "Migrate") {
      gate_.Forget(uuid);
    }
    if (step == "VerifyGuest") vms_.Left(uuid);
    return Status::Ok();
  }

  FakeClock clock_;
  store::MemoryStore store_;
  ScriptedSteps steps_{store_, clock_};
  Seen log_;
  Seen checkpoints_;
  SwitchoverRunner runner_{store_, steps_, clock_, [this](const std::string& line) { log_.Add(line); }};
  cli::testing::FakeLibvirt libvirt_;
  cli::testing::FakeHypervisor local_{libvirt_};
  FakeProtectedVms vms_;
  FakeSwitchoverPeer peer_;
  DrainState drain_{store_};
  ArrivalRecords arrivals_{store_, clock_};
  FakeRounds rounds_;
  WarmUpGate gate_;
  std::mutex drained_mu_;
  std::vector<notice::Notice> drained_;
  std::unique_ptr<SwitchoverCoordinator> coordinator_;  // last: destroyed (stopped) first
};

const std::vector<std::string> kAllSteps = {"Check", "Prepare", "Snapshot", "FinalRound",
                                            "Migrate", "VerifyGuest", "Complete"};

// ---- SwitchoverVm

TEST_F(SwitchoverCoordinatorTest, SwitchoverVmRunsTheRunnerToTheShadowHost) {
  AddVm("web", kUuidA, "h4");
  AddVm("db", kUuidB, "h5");
  StartCoordinator();
  const WallTime asked = clock_.WallNow();
  auto done = coordinator_->SwitchoverVm("web", "", 60s, "cli");
  ASSERT_TRUE(Ready(done));
  StatusOr<SwitchoverRecord> record = done.get();
  ASSERT_TRUE(record.ok()) << record.status().ToString();
  EXPECT_EQ(PhaseName(record->phase()), "Done");
  EXPECT_EQ(record->vm_uuid(), kUuidA);
  EXPECT_EQ(record->vm_name(), "web");
  EXPECT_EQ(record->source_host(), kThisHost);
  EXPECT_EQ(record->target_host(), "h4");
  EXPECT_EQ(record->reason(), "cli");
  EXPECT_EQ(record->deadline_unix_ms(), ToUnixMillis(asked + 60s));
  EXPECT_EQ(record->precopy_planned_ms(), 0) << "postcopy at once unless precopy_hold = planned";
  EXPECT_FALSE(record->warm());
  EXPECT_EQ(StepsOf("web"), kAllSteps);
  EXPECT_THAT(StepsOf("db"), IsEmpty());
  ASSERT_TRUE(Record(kUuidA).has_value());
  EXPECT_EQ(Record(kUuidA)->SerializeAsString(), record->SerializeAsString()) << "the runner's record";
  EXPECT_THAT(rounds_.Unholds(), IsEmpty()) << "the VM is gone: its rounds stay held";

  // By uuid too, with a precopy hold given by the caller.
  auto by_uuid = coordinator_->SwitchoverVm(kUuidB, "h5", 60s, "bench", 7s);
  ASSERT_TRUE(Ready(by_uuid));
  StatusOr<SwitchoverRecord> db = by_uuid.get();
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  EXPECT_EQ(db->phase(), kDone);
  EXPECT_EQ(db->target_host(), "h5");
  EXPECT_EQ(db->precopy_planned_ms(), 7000);
}

TEST_F(SwitchoverCoordinatorTest, AFailedSwitchoverGivesTheVmItsRoundsBack) {
  AddVm("web", kUuidA, "h4");
  steps_.failures["Snapshot"] = Internal("qemu refused the snapshot");
  StartCoordinator();
  auto done = coordinator_->SwitchoverVm("web", "", 60s, "cli");
  ASSERT_TRUE(Ready(done));
  StatusOr<SwitchoverRecord> record = done.get();
  ASSERT_TRUE(record.ok()) << "a failed step is in the record: " << record.status().ToString();
  EXPECT_EQ(record->phase(), kFailed);
  EXPECT_THAT(record->error(), HasSubstr("qemu refused the snapshot"));
  EXPECT_THAT(StepsOf("web"), ElementsAre("Check", "Prepare", "Snapshot", "RollBack"));
  EXPECT_THAT(rounds_.Unholds(), ElementsAre(kUuidA)) << "the VM stays here: its rounds go on";
}

TEST_F(SwitchoverCoordinatorTest, SwitchoverVmRefusesWhatItCannotMove) {
  AddVm("web", kUuidA, "h4");
  controller::VmStatusView unprotected = AddVm("batch", kUuidB, "h4");
  unprotected.state = v1::PROTECTION_STATE_UNPROTECTED;
  unprotected.shadow_hosts.clear();
  unprotected.unprotected_reason = "no host has room for its shadow";
  vms_.Put(unprotected);
  AddVm("sick", kUuidC, "h5");
  ASSERT_TRUE(arrivals_.RecordGuestFailure(kUuidC, "sick", "h1", "dead: no block I/O on h2 in 20 s").ok());
  StartCoordinator();

  auto unknown = coordinator_->SwitchoverVm("nosuch", "", 60s, "cli");
  ASSERT_TRUE(Ready(unknown));
  Status status = unknown.get().status();
  EXPECT_EQ(status.code(), Code::kNotFound) << status.ToString();
  EXPECT_THAT(status.message(), AllOf(HasSubstr("'nosuch'"), HasSubstr("virt-shadow list")));

  auto elsewhere = coordinator_->SwitchoverVm("web", "h5", 60s, "cli");
  ASSERT_TRUE(Ready(elsewhere));
  status = elsewhere.get().status();
  EXPECT_EQ(status.code(), Code::kInvalidArgument) << status.ToString();
  EXPECT_THAT(status.message(), AllOf(HasSubstr("shadow of web is on h4"), HasSubstr("not h5"), HasSubstr("omit --to")));

  auto sick = coordinator_->SwitchoverVm("sick", "", 60s, "cli");
  ASSERT_TRUE(Ready(sick));
  status = sick.get().status();
  EXPECT_EQ(status.code(), Code::kFailedPrecondition) << status.ToString();
  EXPECT_THAT(status.message(), AllOf(HasSubstr("cannot switch over sick"), HasSubstr("no progress"),
                                      HasSubstr("from h1"), HasSubstr("dead: no block I/O")));

  auto batch = coordinator_->SwitchoverVm("batch", "", 60s, "cli");
  ASSERT_TRUE(Ready(batch));
  status = batch.get().status();
  EXPECT_EQ(status.code(), Code::kFailedPrecondition) << status.ToString();
  EXPECT_THAT(status.message(), AllOf(HasSubstr("batch: not protected"), HasSubstr("no host has room")));

  EXPECT_THAT(steps_.Calls(), IsEmpty()) << "nothing was started";
  EXPECT_THAT(rounds_.Unholds(), IsEmpty());
}

// ---- Drain

TEST_F(SwitchoverCoordinatorTest, ADrainMovesByPriorityAndReportsWhatItSkipsAndWhy) {
  // 1 GiB each at the 100 MiB/s seed: 0.15 s snapshot + 1.5 s start + 10.24 s = 11.89 s per VM, one after the
  // other. With 33 s to the deadline (a budget of 26.4 s) two fit; the third would end at 35.7 s: skipped.
  AddVm("alpha", kUuidA, "h4", /*priority=*/10);
  AddVm("bravo", kUuidB, "h5", /*priority=*/500);
  AddVm("charlie", kUuidC, "h4", /*priority=*/100);
  controller::VmStatusView delta = AddVm("delta", kUuidD, "h4");
  delta.state = v1::PROTECTION_STATE_UNPROTECTED;
  delta.shadow_hosts.clear();
  delta.unprotected_reason = "no host has room for its shadow";
  vms_.Put(delta);
  controller::VmStatusView stopped = AddVm("echo", kUuidE, "h5");
  stopped.running = false;
  vms_.Put(stopped);
  AddVm("foxtrot", kUuidF, "h5", /*priority=*/900);
  ASSERT_TRUE(arrivals_.RecordGuestFailure(kUuidF, "foxtrot", "h1", "dead: no packets").ok());
  StartCoordinator();

  const notice::Notice notice = Notice(notice::Notice::Kind::kPreemption, 33s, "op-1");
  auto drained = coordinator_->Drain(notice);
  ASSERT_TRUE(Ready(drained));
  StatusOr<v1::DrainReply> reply = drained.get();
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();

  std::optional<v1::DrainRecord> state = drain_.Current();
  ASSERT_TRUE(state.has_value()) << "the host is marked draining";
  EXPECT_EQ(state->kind(), "preemption");
  EXPECT_EQ(state->source(), "gce");
  EXPECT_EQ(state->notice_id(), "op-1");
  EXPECT_EQ(state->deadline_unix_ms(), ToUnixMillis(notice.deadline));

  ASSERT_EQ(reply->records_size(), 2) << reply->DebugString();
  EXPECT_EQ(reply->records(0).vm_name(), "bravo");
  EXPECT_EQ(reply->records(0).target_host(), "h5");
  EXPECT_EQ(reply->records(1).vm_name(), "charlie");
  EXPECT_EQ(reply->records(1).target_host(), "h4");
  for (const SwitchoverRecord& record : reply->records()) {
    EXPECT_EQ(record.phase(), kDone) << record.vm_name();
    EXPECT_EQ(record.reason(), "gce preemption op-1");
    EXPECT_EQ(record.deadline_unix_ms(), ToUnixMillis(notice.deadline));
  }
  EXPECT_THAT(Checked(), ElementsAre("bravo", "charlie")) << "higher priority first, one after the other";
  EXPECT_EQ(StepsOf("bravo"), kAllSteps);

  EXPECT_THAT(reply->skipped(), UnorderedElementsAre(
                                    AllOf(HasSubstr("delta: not protected"), HasSubstr("no host has room")),
                                    AllOf(HasSubstr("foxtrot: "), HasSubstr("no progress"), HasSubstr("h1")),
                                    AllOf(HasSubstr("alpha: cannot make the deadline"),
                                          HasSubstr("last consistent replica"))));
  EXPECT_THAT(StepsOf("echo"), IsEmpty()) << "a VM that does not run here is not this drain's";

  ASSERT_EQ(Drained().size(), 1u);
  EXPECT_EQ(Drained()[0], notice) << "on_drained gets the notice";
  EXPECT_THAT(rounds_.Unholds(), IsEmpty());
}

TEST_F(SwitchoverCoordinatorTest, AVmThatFailsInADrainIsSkippedWithItsRecordAndTheOthersStillGo) {
  AddVm("alpha", kUuidA, "h4", 500);
  AddVm("bravo", kUuidB, "h5", 100);
  steps_.before_step = [this](const std::string& step, const SwitchoverRecord& record) -> Status {
    if (record.vm_name() == "alpha" && step == "FinalRound") return Unavailable("h4 does not answer");
    return BeforeStep(step, record);
  };
  StartCoordinator();
  auto drained = coordinator_->Drain(Notice(notice::Notice::Kind::kPreemption, 5min, "op-2"));
  ASSERT_TRUE(Ready(drained));
  StatusOr<v1::DrainReply> reply = drained.get();
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  ASSERT_EQ(reply->records_size(), 2);
  EXPECT_EQ(reply->records(0).vm_name(), "alpha");
  EXPECT_EQ(reply->records(0).phase(), kFailed);
  EXPECT_THAT(reply->records(0).error(), HasSubstr("h4 does not answer"));
  EXPECT_EQ(reply->records(1).vm_name(), "bravo");
  EXPECT_EQ(reply->records(1).phase(), kDone);
  EXPECT_THAT(rounds_.Unholds(), ElementsAre(kUuidA));
  EXPECT_EQ(Drained().size(), 1u);
}

// ---- Warm-ups

TEST_F(SwitchoverCoordinatorTest, AnEarlyWarningHoldsWarmUpsInPrecopyAndThePreemptionSwitchesThem) {
  AddVm("alpha", kUuidA, "h4");
  AddVm("bravo", kUuidB, "h5");
  AddVm("cold", kUuidC, "h4", 100, /*warmup=*/false);
  StartCoordinator();

  const notice::Notice warning = Notice(notice::Notice::Kind::kEarlyWarning, 10min, "maint-1");
  coordinator_->OnNotice(warning);
  ASSERT_EQ(WarmMigration(kUuidA), "held");
  ASSERT_EQ(WarmMigration(kUuidB), "held");
  // Both are held in their migration at once, each on its own thread, its record persisted warm.
  for (const std::string& uuid : {kUuidA, kUuidB}) {
    std::optional<SwitchoverRecord> held = Record(uuid);
    ASSERT_TRUE(held.has_value());
    EXPECT_EQ(held->phase(), kMigrating);
    EXPECT_TRUE(held->warm());
    EXPECT_EQ(held->reason(), "gce early-warning maint-1");
  }
  EXPECT_THAT(StepsOf("cold"), IsEmpty()) << "its policy says warmup=no";
  std::optional<v1::DrainRecord> state = drain_.Current();
  ASSERT_TRUE(state.has_value()) << "an early warning marks the host draining too";
  EXPECT_EQ(state->kind(), "early-warning");
  EXPECT_THAT(Drained(), IsEmpty()) << "nothing drained yet";

  // The preemption: the warm-ups are released into their postcopy switch first, then the rest moves cold.
  const notice::Notice preemption = Notice(notice::Notice::Kind::kPreemption, 2min, "pre-1");
  auto drained = coordinator_->Drain(preemption);
  ASSERT_TRUE(Ready(drained));
  StatusOr<v1::DrainReply> reply = drained.get();
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  ASSERT_EQ(reply->records_size(), 3) << reply->DebugString();
  EXPECT_THAT(reply->skipped(), IsEmpty());
  std::vector<std::string> warm;
  for (int i = 0; i < 2; ++i) {
    const SwitchoverRecord& record = reply->records(i);
    warm.push_back(record.vm_name());
    EXPECT_EQ(record.phase(), kDone) << record.vm_name();
    EXPECT_TRUE(record.warm()) << record.vm_name();
    EXPECT_EQ(record.reason(), "gce early-warning maint-1");
  }
  EXPECT_THAT(warm, UnorderedElementsAre("alpha", "bravo"));
  EXPECT_EQ(reply->records(2).vm_name(), "cold");
  EXPECT_EQ(reply->records(2).phase(), kDone);
  EXPECT_FALSE(reply->records(2).warm());
  EXPECT_EQ(reply->records(2).reason(), "gce preemption pre-1");
  EXPECT_EQ(StepsOf("alpha"), kAllSteps) << "one switchover each: the warm-up's";
  EXPECT_EQ(StepsOf("bravo"), kAllSteps);
  EXPECT_EQ(drain_.Current()->kind(), "preemption") << "the preemption replaced the early warning";
  EXPECT_THAT(rounds_.Unholds(), IsEmpty());
  ASSERT_EQ(Drained().size(), 1u);
  EXPECT_EQ(Drained()[0].id, "pre-1");
}

TEST_F(SwitchoverCoordinatorTest, UndrainCancelsTheHeldWarmUpsAndGivesTheirRoundsBack) {
  AddVm("alpha", kUuidA, "h4");
  AddVm("bravo", kUuidB, "h5");
  StartCoordinator();
  coordinator_->OnNotice(Notice(notice::Notice::Kind::kEarlyWarning, 10min, "maint-2"));
  ASSERT_EQ(WarmMigration(kUuidA), "held");
  ASSERT_EQ(WarmMigration(kUuidB), "held");

  auto cancelled = coordinator_->CancelWarmUps();
  ASSERT_TRUE(Ready(cancelled));
  StatusOr<int> count = cancelled.get();
  ASSERT_TRUE(count.ok()) << count.status().ToString();
  EXPECT_EQ(*count, 2);
  for (const auto& [name, uuid] : {std::pair{"alpha", kUuidA}, std::pair{"bravo", kUuidB}}) {
    std::optional<SwitchoverRecord> record = Record(uuid);
    ASSERT_TRUE(record.has_value());
    EXPECT_EQ(record->phase(), kFailed) << name;
    EXPECT_THAT(record->error(), HasSubstr("cancelled")) << name;
    EXPECT_THAT(StepsOf(name), ElementsAre("Check", "Prepare", "Snapshot", "FinalRound", "Migrate", "RollBack"));
    EXPECT_TRUE(vms_.View(uuid)->running) << name << " stays here";
  }
  EXPECT_THAT(rounds_.Unholds(), UnorderedElementsAre(kUuidA, kUuidB));
  EXPECT_THAT(Drained(), IsEmpty());

  // Nothing is left over: a later early warning holds them again, and a later undrain finds nothing more.
  coordinator_->OnNotice(Notice(notice::Notice::Kind::kEarlyWarning, 9min, "maint-3"));
  EXPECT_EQ(WarmMigration(kUuidA, 1), "held");
  EXPECT_EQ(WarmMigration(kUuidB, 1), "held");
  auto again = coordinator_->CancelWarmUps();
  ASSERT_TRUE(Ready(again));
  count = again.get();
  ASSERT_TRUE(count.ok()) << count.status().ToString();
  EXPECT_EQ(*count, 2);
  auto nothing = coordinator_->CancelWarmUps();
  ASSERT_TRUE(Ready(nothing));
  count = nothing.get();
  ASSERT_TRUE(count.ok()) << count.status().ToString();
  EXPECT_EQ(*count, 0);
}

TEST_F(SwitchoverCoordinatorTest, AWarmUpThatEndedBeforeItsMigrationLeavesNothingAtTheGateForTheNextOne) {
  // This warm-up fails at its check, so it never reaches the migration, which is what forgets a VM at the gate.
  // The undrain's cancel of it must not outlive it: the VM's next warm-up would find itself cancelled and be
  // aborted at once (and a preemption's release, left over, would switch the next one at once on a mere
  // early warning).
  AddVm("alpha", kUuidA, "h4");
  steps_.failures["Check"] = Unavailable("h4 does not answer");
  steps_.failing_times["Check"] = 1;
  StartCoordinator();
  coordinator_->OnNotice(Notice(notice::Notice::Kind::kEarlyWarning, 10min, "maint-5"));
  auto cancelled = coordinator_->CancelWarmUps();
  ASSERT_TRUE(Ready(cancelled));
  ASSERT_TRUE(cancelled.get().ok());
  ASSERT_TRUE(Record(kUuidA).has_value());
  EXPECT_EQ(Record(kUuidA)->phase(), kFailed);
  EXPECT_THAT(StepsOf("alpha"), ElementsAre("Check"));
  EXPECT_THAT(rounds_.Unholds(), ElementsAre(kUuidA));

  coordinator_->OnNotice(Notice(notice::Notice::Kind::kEarlyWarning, 9min, "maint-6"));
  EXPECT_EQ(WarmMigration(kUuidA), "held") << "the next warm-up is held in precopy again";
}

TEST_F(SwitchoverCoordinatorTest, AReleaseOfAWarmUpThatEndedBeforeItsMigrationDoesNotSwitchTheNextOneAtOnce) {
  // The warm-up fails at its check, and so does the VM's cold switchover in the preemption's drain: the VM
  // stays, and no migration forgot the preemption's release of it. The next early warning's warm-up must be
  // held, not switched at once.
  AddVm("alpha", kUuidA, "h4");
  steps_.failures["Check"] = Unavailable("h4 does not answer");
  steps_.failing_times["Check"] = 2;
  StartCoordinator();
  coordinator_->OnNotice(Notice(notice::Notice::Kind::kEarlyWarning, 10min, "maint-7"));
  auto drained = coordinator_->Drain(Notice(notice::Notice::Kind::kPreemption, 5min, "pre-7"));
  ASSERT_TRUE(Ready(drained));
  StatusOr<v1::DrainReply> reply = drained.get();
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  ASSERT_EQ(reply->records_size(), 2) << reply->DebugString();  // the warm-up's and the cold one's
  EXPECT_EQ(reply->records(0).phase(), kFailed);
  EXPECT_TRUE(reply->records(0).warm());
  EXPECT_EQ(reply->records(1).phase(), kFailed);
  EXPECT_FALSE(reply->records(1).warm());
  EXPECT_THAT(StepsOf("alpha"), ElementsAre("Check", "Check"));
  ASSERT_TRUE(vms_.View(kUuidA)->running) << "alpha stays";

  coordinator_->OnNotice(Notice(notice::Notice::Kind::kEarlyWarning, 4min, "maint-8"));
  EXPECT_EQ(WarmMigration(kUuidA), "held") << "the next warm-up is held in precopy, not switched at once";
}

TEST_F(SwitchoverCoordinatorTest, StopReleasesAHeldWarmUpIntoItsSwitchAndReturns) {
  AddVm("alpha", kUuidA, "h4");
  StartCoordinator();
  coordinator_->OnNotice(Notice(notice::Notice::Kind::kEarlyWarning, 10min, "maint-4"));
  ASSERT_EQ(WarmMigration(kUuidA), "held");

  auto stopped = std::async(std::launch::async, [this] { coordinator_->Stop(); });
  ASSERT_TRUE(Ready(stopped)) << "Stop waited for a migration nobody would release";
  std::optional<SwitchoverRecord> record = Record(kUuidA);
  ASSERT_TRUE(record.has_value());
  EXPECT_EQ(record->phase(), kDone) << "released into its postcopy switch, not aborted";
  EXPECT_TRUE(record->warm());
  EXPECT_EQ(StepsOf("alpha"), kAllSteps);
}

// ---- Start

TEST_F(SwitchoverCoordinatorTest, StartResumesUnfinishedSwitchoversThenAPersistedPreemptionDrain) {
  AddVm("alpha", kUuidA, "h4", 100);
  AddVm("bravo", kUuidB, "h5", 200);
  // A switchover the previous shadowd left COMPLETING (the VM already runs on its target) ...
  SwitchoverRecord left;
  left.set_vm_uuid(kUuidC);
  left.set_vm_name("gone");
  left.set_source_host(kThisHost);
  left.set_target_host("h4");
  left.set_phase(kCompleting);
  store::WriteBatch batch;
  batch.PutProto(RecordKey(kUuidC), left);
  ASSERT_TRUE(store_.Write(batch).ok());
  steps_.locations = {VmLocation::kRunningOnTarget};
  // ... and the drain it was doing for an Azure preemption.
  v1::DrainRecord persisted;
  persisted.set_source("azure");
  persisted.set_kind("preemption");
  persisted.set_notice_id("evt-42");
  persisted.set_detail("Preempt");
  persisted.set_deadline_unix_ms(ToUnixMillis(clock_.WallNow() + 5min));
  ASSERT_TRUE(drain_.Enter(persisted).ok());

  StartCoordinator();
  ASSERT_TRUE(log_.WaitFor("on_drained evt-42").has_value()) << ::testing::PrintToString(log_.All());
  ASSERT_EQ(Drained().size(), 1u);
  const notice::Notice resumed = Drained()[0];
  EXPECT_EQ(resumed.id, "evt-42");
  EXPECT_EQ(resumed.source, notice::Notice::Source::kAzure)
      << "on_drained approves an Azure event by its source: after a restart too";
  EXPECT_EQ(resumed.kind, notice::Notice::Kind::kPreemption);
  EXPECT_EQ(ToUnixMillis(resumed.deadline), persisted.deadline_unix_ms());
  EXPECT_THAT(resumed.detail, HasSubstr("Preempt"));

  EXPECT_EQ(StepsOf("gone"), std::vector<std::string>{"Complete"}) << "the unfinished switchover first";
  EXPECT_EQ(Record(kUuidC)->phase(), kDone);
  EXPECT_THAT(Checked(), ElementsAre("bravo", "alpha")) << "then the drain, by priority";
  for (const std::string& uuid : {kUuidA, kUuidB}) {
    std::optional<SwitchoverRecord> record = Record(uuid);
    ASSERT_TRUE(record.has_value());
    EXPECT_EQ(record->phase(), kDone);
    EXPECT_EQ(record->reason(), "azure preemption evt-42");
    EXPECT_EQ(record->deadline_unix_ms(), persisted.deadline_unix_ms());
  }
}

TEST_F(SwitchoverCoordinatorTest, StartDoesNotDrainForAPersistedEarlyWarning) {
  AddVm("alpha", kUuidA, "h4");
  v1::DrainRecord persisted;
  persisted.set_source("aws");
  persisted.set_kind("early-warning");
  persisted.set_deadline_unix_ms(ToUnixMillis(clock_.WallNow() + 5min));
  ASSERT_TRUE(drain_.Enter(persisted).ok());
  StartCoordinator();
  // Jobs run in order: once this one answered, the start-up job is over.
  auto probe = coordinator_->SwitchoverVm("nosuch", "", 60s, "cli");
  ASSERT_TRUE(Ready(probe));
  EXPECT_EQ(probe.get().status().code(), Code::kNotFound);
  EXPECT_THAT(steps_.Calls(), IsEmpty());
  EXPECT_THAT(Drained(), IsEmpty());
}

// ---- Failback

TEST_F(SwitchoverCoordinatorTest, FailbackWithoutAnOriginIsRefused) {
  AddVm("web", kUuidA, "h4");
  StartCoordinator();
  auto back = coordinator_->Failback("web", 5min);
  ASSERT_TRUE(Ready(back));
  Status status = back.get().status();
  EXPECT_EQ(status.code(), Code::kFailedPrecondition) << status.ToString();
  EXPECT_THAT(status.message(), AllOf(HasSubstr("web did not arrive on h2"), HasSubstr("no origin")));
  EXPECT_THAT(vms_.ShadowMoves(), IsEmpty());
  EXPECT_THAT(steps_.Calls(), IsEmpty());
}

TEST_F(SwitchoverCoordinatorTest, FailbackToAnOriginThatStillDrainsIsRefusedNamingUndrain) {
  AddVm("web", kUuidA, "h4");
  ASSERT_TRUE(arrivals_.RecordOrigin(kUuidA, "web", "h1", v1::OriginRecord::ARRIVAL_SWITCHOVER, "a switchover").ok());
  v1::HostStateReply draining;
  draining.set_draining(true);
  draining.set_drain_reason("gce preemption");
  peer_.SetState("h1", draining);
  StartCoordinator();
  auto back = coordinator_->Failback("web", 5min);
  ASSERT_TRUE(Ready(back));
  Status status = back.get().status();
  EXPECT_EQ(status.code(), Code::kFailedPrecondition) << status.ToString();
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr("h1 is still draining (gce preemption)"), HasSubstr("virt-shadow undrain")));
  EXPECT_THAT(peer_.Asked(), ElementsAre("h1"));
  EXPECT_THAT(vms_.ShadowMoves(), IsEmpty());
  EXPECT_THAT(steps_.Calls(), IsEmpty());
}

TEST_F(SwitchoverCoordinatorTest, FailbackMovesTheShadowHomeWaitsForARoundThereThenSwitchesOver) {
  controller::VmStatusView view = AddVm("web", kUuidA, "h4");
  ASSERT_TRUE(arrivals_.RecordOrigin(kUuidA, "web", "h1", v1::OriginRecord::ARRIVAL_SWITCHOVER, "a switchover").ok());
  peer_.SetState("h1", v1::HostStateReply());
  v1::ReplicationRecord replicated;
  replicated.set_vm_uuid(kUuidA);
  replicated.set_shadow_host("h4");
  rounds_.SetRecord(kUuidA, replicated);
  // The controller moves the shadow: placing it, then protected on h1; the first round there fails (the
  // replica is still seeding), the second one applies.
  controller::VmStatusView placing = view;
  placing.state = v1::PROTECTION_STATE_PLACING;
  placing.shadow_hosts.clear();
  placing.pinned_host = "h1";
  controller::VmStatusView home = view;
  home.shadow_hosts = {"h1"};
  vms_.AfterShadowMove(kUuidA, {placing, placing, home});
  rounds_.RoundFailures(kUuidA, {Unavailable("the replica on h1 is still seeding")});
  rounds_.RoundAppliesOn(kUuidA, "h1");
  StartCoordinator();

  const MonoTime before = clock_.Now();
  auto back = coordinator_->Failback("web", 5min);
  ASSERT_TRUE(Ready(back));
  StatusOr<v1::FailbackReply> reply = back.get();
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->origin_host(), "h1");
  EXPECT_THAT(vms_.ShadowMoves(), ElementsAre(Pair(kUuidA, "h1")));
  EXPECT_EQ(rounds_.RoundsRequested(kUuidA), 2) << "until a round applied to the replica on h1";
  EXPECT_GE(clock_.Now() - before, 1s) << "it waited on the clock between its looks";
  const SwitchoverRecord& record = reply->record();
  EXPECT_EQ(record.phase(), kDone);
  EXPECT_EQ(record.target_host(), "h1");
  EXPECT_EQ(record.source_host(), kThisHost);
  EXPECT_EQ(record.reason(), "failback");
  EXPECT_EQ(StepsOf("web"), kAllSteps);
}

TEST_F(SwitchoverCoordinatorTest, FailbackGivesUpWhenTheShadowIsNotReadyAtHomeInTime) {
  controller::VmStatusView view = AddVm("web", kUuidA, "h4");
  ASSERT_TRUE(arrivals_.RecordOrigin(kUuidA, "web", "h1", v1::OriginRecord::ARRIVAL_SWITCHOVER, "a switchover").ok());
  peer_.SetState("h1", v1::HostStateReply());
  controller::VmStatusView placing = view;
  placing.state = v1::PROTECTION_STATE_PLACING;
  placing.shadow_hosts.clear();
  placing.last_error = "h1 has no room";
  vms_.AfterShadowMove(kUuidA, {placing});
  StartCoordinator();

  const MonoTime before = clock_.Now();
  auto back = coordinator_->Failback("web", 30s);
  ASSERT_TRUE(Ready(back));
  Status status = back.get().status();
  EXPECT_EQ(status.code(), Code::kDeadlineExceeded) << status.ToString();
  EXPECT_THAT(status.message(), AllOf(HasSubstr("not protected and replicated on h1"), HasSubstr("h1 has no room")));
  EXPECT_GE(clock_.Now() - before, 30s);
  EXPECT_LT(clock_.Now() - before, 31s);
  EXPECT_EQ(rounds_.RoundsRequested(kUuidA), 0);
  EXPECT_THAT(steps_.Calls(), IsEmpty());
}

// ---- Failback of a promoted VM

TEST_F(SwitchoverCoordinatorTest, FailbackOfAPromotedVmDiscardsTheStaleCopyFirstThenMovesTheShadowAndSwitchesOver) {
  ArrangeFailbackHome(v1::OriginRecord::ARRIVAL_PROMOTION);
  v1::DiscardStaleCopyReply discarded;
  discarded.set_detail("web on h1: stale copy discarded");
  peer_.SetDiscardAnswer("h1", discarded);
  StartCoordinator();

  auto back = coordinator_->Failback("web", 5min);
  ASSERT_TRUE(Ready(back));
  StatusOr<v1::FailbackReply> reply = back.get();
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->origin_host(), "h1");
  EXPECT_THAT(peer_.Discards(), ElementsAre(std::string("h1 ") + kUuidA + " " + kThisHost));
  EXPECT_THAT(vms_.ShadowMoves(), ElementsAre(Pair(kUuidA, "h1")));
  EXPECT_EQ(reply->record().phase(), kDone);
  EXPECT_EQ(reply->record().target_host(), "h1");
  EXPECT_EQ(StepsOf("web"), kAllSteps);
  EXPECT_TRUE(log_.Has("web on h1: stale copy discarded"));
  EXPECT_TRUE(log_.Has(std::string("promotion ended: ") + kUuidA + " home on h1")) << "after the switchover";
}

TEST_F(SwitchoverCoordinatorTest, FailbackOfAPromotedVmStopsBeforeAnythingMovesWhenHomeKeepsItsStaleCopy) {
  AddVm("web", kUuidA, "h4");
  ASSERT_TRUE(arrivals_.RecordOrigin(kUuidA, "web", "h1", v1::OriginRecord::ARRIVAL_PROMOTION, "promoted").ok());
  peer_.SetState("h1", v1::HostStateReply());
  peer_.SetDiscardAnswer("h1", FailedPrecondition("web was promoted on h3, not on h2"));
  StartCoordinator();

  auto back = coordinator_->Failback("web", 5min);
  ASSERT_TRUE(Ready(back));
  Status status = back.get().status();
  EXPECT_EQ(status.code(), Code::kFailedPrecondition) << status.ToString();
  EXPECT_THAT(status.message(), AllOf(HasSubstr("h1 did not give up its stale copy"),
                                      HasSubstr("promoted on h3, not on h2")));
  EXPECT_THAT(vms_.ShadowMoves(), IsEmpty()) << "the shadow stays where it protects the VM";
  EXPECT_EQ(rounds_.RoundsRequested(kUuidA), 0);
  EXPECT_THAT(steps_.Calls(), IsEmpty());
  EXPECT_FALSE(log_.Has("promotion ended"));
}

TEST_F(SwitchoverCoordinatorTest, FailbackOfAVmThatCameByASwitchoverDoesNotAskForADiscard) {
  ArrangeFailbackHome(v1::OriginRecord::ARRIVAL_SWITCHOVER);
  StartCoordinator();

  auto back = coordinator_->Failback("web", 5min);
  ASSERT_TRUE(Ready(back));
  StatusOr<v1::FailbackReply> reply = back.get();
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  EXPECT_EQ(reply->record().phase(), kDone);
  EXPECT_THAT(peer_.Discards(), IsEmpty());
  EXPECT_FALSE(log_.Has("promotion ended")) << "no promotion to end";
}

// ---- Completions

TEST_F(SwitchoverCoordinatorTest, AnIdleCoordinatorDrivesASwitchoverLeftCompletingAgainUntilItIsDone) {
  AddVm("web", kUuidA, "h4");
  steps_.failures["Complete"] = Unavailable("h4 cannot flatten the disks yet");
  StartCoordinator(/*completion_retry_every=*/10ms);
  auto done = coordinator_->SwitchoverVm("web", "", 60s, "cli");
  ASSERT_TRUE(Ready(done));
  StatusOr<SwitchoverRecord> record = done.get();
  ASSERT_TRUE(record.ok()) << record.status().ToString();
  EXPECT_EQ(record->phase(), kCompleting) << "the runner's minute of retries is over; not Done yet";

  ASSERT_TRUE(log_.WaitFor("completion retried: Completing").has_value())
      << "the idle coordinator tries again: " << ::testing::PrintToString(log_.All());
  steps_.ClearFailures();
  ASSERT_TRUE(log_.WaitFor("completion retried: Done").has_value()) << ::testing::PrintToString(log_.All());
  EXPECT_EQ(Record(kUuidA)->phase(), kDone);
  EXPECT_GT(Record(kUuidA)->finished_unix_ms(), 0);
}

}  // namespace
}  // namespace vs::switchover
