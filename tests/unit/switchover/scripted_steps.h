// ScriptedSteps: a SwitchoverSteps for the runner's and the coordinator's unit tests. It records every call in
// order, checks that the store already holds the record in the phase the step is called for, and answers as
// scripted (failures per step, check findings, migration figures, locations after a restart).
//
// Thread-safety: the steps may be called for different VMs from different threads at once (as the runner
// allows). The public fields are the script and what was seen: set them before the steps run and read them
// once no step runs any more (after the driving threads were joined or their futures were ready); while steps
// may run, use the locked accessors (Calls(), VmSteps(), SetFailure(), ClearFailures()). `before_step` runs
// outside the lock and may block (e.g. a warm-up migration held until the coordinator releases it).
#pragma once

#include <gtest/gtest.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "shadowd/store/keys.h"
#include "shadowd/store/store.h"
#include "shadowd/switchover/switchover_runner.h"

namespace vs::switchover::testing {

namespace v1 = virtshadow::v1;
using namespace std::chrono_literals;

inline constexpr uint64_t kMiB = uint64_t{1} << 20;
inline const std::string kDiskBase = "/var/lib/libvirt/images/web-root.qcow2";

// The names the fake records; Migrate is recorded with its argument.
inline const std::string kCheck = "Check";
inline const std::string kPrepare = "Prepare";
inline const std::string kSnapshot = "Snapshot";
inline const std::string kFinalRoundStep = "FinalRound";
inline const std::string kMigrate = "Migrate(copy_storage_all=false)";
inline const std::string kMigrateFallback = "Migrate(copy_storage_all=true)";
inline const std::string kVerify = "VerifyGuest";
inline const std::string kComplete = "Complete";
inline const std::string kRollBack = "RollBack";
inline const std::string kLocate = "Locate";
inline const std::string kObservedHere = "observed-by-prepare";
inline const std::string kRecoverHere = "RecoverMigrationFigures(migrating here)";
inline const std::string kRecoverTarget = "RecoverMigrationFigures(on the target)";

// A one-shot condition between a test and the steps' threads: a step's before_step hook opens it or waits at it
// (bounded), the test does the other. Open() is idempotent.
class Gate {
 public:
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    opened_.notify_all();
  }
  // Whether it opened within `limit`.
  bool WaitOpen(Duration limit) {
    std::unique_lock<std::mutex> lock(mu_);
    return opened_.wait_for(lock, limit, [this] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable opened_;
  bool open_ = false;
};

// Opens a Gate when it goes out of scope: declared after the thread (or future) that may wait at the gate,
// an early return of the test lets that thread go before it is joined.
class OpenOnExit {
 public:
  explicit OpenOnExit(Gate& gate) : gate_(gate) {}
  OpenOnExit(const OpenOnExit&) = delete;
  OpenOnExit& operator=(const OpenOnExit&) = delete;
  ~OpenOnExit() { gate_.Open(); }

 private:
  Gate& gate_;
};

inline std::string RecordKey(const std::string& uuid) { return store::Key(store::Table::kSwitchover, uuid); }

// The switchover record of `uuid` as the store holds it.
inline std::optional<SwitchoverRecord> StoredRecord(const store::Store& store, const std::string& uuid) {
  StatusOr<std::optional<SwitchoverRecord>> record = store::GetProto<SwitchoverRecord>(store, RecordKey(uuid));
  EXPECT_TRUE(record.ok()) << record.status().ToString();
  return record.ok() ? *record : std::nullopt;
}

class ScriptedSteps final : public SwitchoverSteps {
 public:
  ScriptedSteps(const store::Store& store, FakeClock& clock) : store_(store), clock_(clock) {}

  // ---- What was seen.
  std::vector<std::string> calls;
  // (VM name, step) of every step but Locate and RecoverMigrationFigures, in call order.
  std::vector<std::pair<std::string, std::string>> vm_steps;
  // The stored record as each step found it (the last call of that step), keyed by step name.
  std::map<std::string, SwitchoverRecord> persisted_at;
  std::vector<Duration> recover_waits;  // the waits RecoverMigrationFigures was given
  // The host of the source observation VerifyGuest found in the record, per call (kObservedHere when Prepare's).
  std::vector<std::string> verified_against;

  // ---- The script.
  // Step name ("Check", "Prepare", ..., "Migrate", "Locate") -> the error it returns.
  std::map<std::string, Status> failures;
  // Step name -> after how many failures its entry in `failures` goes (absent: it fails for good).
  std::map<std::string, int> failing_times;
  CheckFindings findings;
  GuestSeen guest{.dead = false, .seen = "alive: on h4 the guest did 40 block writes in 0.5 s"};
  uint64_t final_round_bytes = 96 * kMiB;
  MigrationFigures figures{.disk_bytes = 12 * kMiB, .memory_bytes = 4096 * kMiB, .downtime_ms = 180,
                           .running_on_target = std::nullopt};
  // Locate's answers in order; the last one repeats.
  std::deque<VmLocation> locations = {VmLocation::kRunningHere};
  // RecoverMigrationFigures' answer by location (absent: the figures are lost).
  std::map<VmLocation, StatusOr<std::optional<MigrationFigures>>> recovered;
  // Runs at the start of every step but Locate and RecoverMigrationFigures (step names as in `failures`),
  // after the call was recorded, without the fake's lock held: it may block. An error is the step's error.
  std::function<Status(const std::string& step, const SwitchoverRecord& record)> before_step;

  // ---- Locked accessors, for use while steps may run on other threads.
  std::vector<std::string> Calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls;
  }
  std::vector<std::pair<std::string, std::string>> VmSteps() const {
    std::lock_guard<std::mutex> lock(mu_);
    return vm_steps;
  }
  void SetFailure(const std::string& step, Status failure) {
    std::lock_guard<std::mutex> lock(mu_);
    failures[step] = std::move(failure);
  }
  void ClearFailures() {
    std::lock_guard<std::mutex> lock(mu_);
    failures.clear();
    failing_times.clear();
  }

  StatusOr<CheckFindings> Check(SwitchoverRecord& record) override {
    VS_RETURN_IF_ERROR(Enter(kCheck, "Check", record));
    v1::SwitchoverDisk* disk = record.add_disks();
    disk->set_target("vda");
    disk->set_base_path(kDiskBase);
    disk->set_top_path(kDiskBase + ".vs-top");
    disk->set_format("qcow2");
    std::lock_guard<std::mutex> lock(mu_);
    return findings;
  }
  Status Prepare(SwitchoverRecord& record) override {
    VS_RETURN_IF_ERROR(Enter(kPrepare, "Prepare", record));
    record.mutable_source_observation()->set_host(kObservedHere);  // as the real step records the guest here
    return Status::Ok();
  }
  Status Snapshot(const SwitchoverRecord& record) override { return Enter(kSnapshot, "Snapshot", record); }
  StatusOr<uint64_t> FinalRound(const SwitchoverRecord& record) override {
    VS_RETURN_IF_ERROR(Enter(kFinalRoundStep, "FinalRound", record));
    std::lock_guard<std::mutex> lock(mu_);
    return final_round_bytes;
  }
  StatusOr<MigrationFigures> Migrate(SwitchoverRecord& record, bool copy_storage_all) override {
    VS_RETURN_IF_ERROR(Enter(copy_storage_all ? kMigrateFallback : kMigrate, "Migrate", record));
    clock_.Advance(3s);  // the migration takes time; the switch happens at its end
    std::lock_guard<std::mutex> lock(mu_);
    MigrationFigures result = figures;
    result.running_on_target = clock_.WallNow();
    return result;
  }
  StatusOr<GuestSeen> VerifyGuest(const SwitchoverRecord& record) override {
    VS_RETURN_IF_ERROR(Enter(kVerify, "VerifyGuest", record));
    std::lock_guard<std::mutex> lock(mu_);
    verified_against.push_back(record.source_observation().host());
    return guest;
  }
  Status Complete(const SwitchoverRecord& record) override { return Enter(kComplete, "Complete", record); }
  Status RollBack(const SwitchoverRecord& record) override { return Enter(kRollBack, "RollBack", record); }
  StatusOr<VmLocation> Locate(const SwitchoverRecord& record) override {
    std::lock_guard<std::mutex> lock(mu_);
    calls.push_back(kLocate);
    if (auto it = failures.find("Locate"); it != failures.end()) return it->second;
    EXPECT_FALSE(record.vm_uuid().empty());
    const VmLocation location = locations.front();
    if (locations.size() > 1) locations.pop_front();
    return location;
  }
  StatusOr<std::optional<MigrationFigures>> RecoverMigrationFigures(const SwitchoverRecord& record,
                                                                    VmLocation location, Duration wait) override {
    std::lock_guard<std::mutex> lock(mu_);
    calls.push_back(location == VmLocation::kRunningOnTarget ? kRecoverTarget : kRecoverHere);
    EXPECT_NE(location, VmLocation::kRunningHere) << "nothing to recover while the VM runs here";
    EXPECT_FALSE(record.vm_uuid().empty());
    recover_waits.push_back(wait);
    auto it = recovered.find(location);
    if (it == recovered.end()) return std::optional<MigrationFigures>();
    return it->second;
  }

 private:
  Status Enter(const std::string& call, const std::string& step, const SwitchoverRecord& record) {
    std::function<Status(const std::string&, const SwitchoverRecord&)> hook;
    {
      std::lock_guard<std::mutex> lock(mu_);
      calls.push_back(call);
      vm_steps.emplace_back(record.vm_name(), step);
      hook = before_step;
    }
    clock_.Advance(100ms);
    std::optional<SwitchoverRecord> stored = StoredRecord(store_, record.vm_uuid());
    if (!stored) {
      ADD_FAILURE() << step << " ran before its record was persisted";
    } else {
      EXPECT_EQ(PhaseName(stored->phase()), PhaseName(record.phase())) << step << " saw a stale stored phase";
      std::lock_guard<std::mutex> lock(mu_);
      persisted_at[step] = *stored;
    }
    if (hook) VS_RETURN_IF_ERROR(hook(step, record));
    std::lock_guard<std::mutex> lock(mu_);
    auto it = failures.find(step);
    if (it == failures.end()) return Status::Ok();
    Status failure = it->second;
    if (auto left = failing_times.find(step); left != failing_times.end() && --left->second <= 0) {
      failures.erase(it);
      failing_times.erase(left);
    }
    return failure;
  }

  const store::Store& store_;
  FakeClock& clock_;
  mutable std::mutex mu_;
};

}  // namespace vs::switchover::testing
