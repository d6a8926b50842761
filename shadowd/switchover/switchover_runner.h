// SwitchoverRunner: drives one VM's live switchover through the phases of switchover_machine.h,
// persisting the SwitchoverRecord (store table "switchover", one per VM) before every step, so that a
// shadowd killed at any point resumes (ResumeAll) from what is true afterwards.
//
// The steps themselves (libvirt on this host, the peer service on the target, the replication worker)
// are behind SwitchoverSteps; shadowd/switchover/libvirt_switchover_steps.h is the production implementation and
// the unit tests use a scripted fake. The runner decides nothing about WHICH VM goes WHERE or WHEN:
// the coordinator (shadowd/switchover/switchover_coordinator.h) plans that from the deadline.
//
// Ownership: borrows the store, the steps, the clock and the tally. Thread-safety: switchovers of different VMs may be
// driven from different threads at once (the coordinator's thread, and a warm-up's thread that holds its VM in
// precopy meanwhile); one VM's record is driven by one thread at a time, which the runner enforces: it claims
// the VM for the call, a second Run of a claimed VM fails and ResumeAll and RetryCompletions pass claimed VMs by.
// The steps must allow the same (calls for different VMs concurrently). Failure modes: a
// failing step is not an error of Run(): it is recorded in the record (error, phase FAILED) and the
// record is returned. A completion that keeps failing (the VM runs on the target, which cannot flatten
// its disks yet) is retried with backoff for up to a minute; the record is then returned still in
// COMPLETING, and RetryCompletions() drives it again later. Run() returns an error only when the store
// fails or a switchover of the VM is already in progress (FailedPrecondition).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "proto/switchover.pb.h"
#include "shadowd/store/store.h"
#include "shadowd/switchover/switchover_machine.h"
#include "shadowd/switchover/switchover_metrics.h"

namespace vs::switchover {

using virtshadow::v1::SwitchoverRecord;

struct CheckFindings {
  std::vector<std::string> problems;  // empty: the shadow can take the VM as planned
  bool fallback_possible = false;     // a plain --copy-storage-all migration to the target can still work
};

struct MigrationFigures {
  uint64_t disk_bytes = 0;
  uint64_t memory_bytes = 0;
  uint64_t downtime_ms = 0;
  std::optional<WallTime> running_on_target;  // when the postcopy switch was accepted
  bool postcopy_switched = false;             // false: precopy completed before the switch
  // Something about where the figures came from worth a line in the log (a late or missing job-completed
  // event); empty when there is nothing to say.
  std::string figures_note;
};

// What the check of the guest after the move found (guest_check.h).
struct GuestSeen {
  bool dead = false;  // it showed no progress on the target although it would have on the source
  std::string seen;   // the verdict and the signals, for the record
};

class SwitchoverSteps {
 public:
  virtual ~SwitchoverSteps() = default;
  // CHECKING. Fills record.disks with the VM's disks (base, top, format). An error means the target
  // cannot be used at all (unreachable): the switchover fails without a fallback.
  virtual StatusOr<CheckFindings> Check(SwitchoverRecord& record) = 0;
  // Tops over the replicas on the target; records in `record` what the guest did here before the move
  // (source_observation), which the runner saves with the next phase.
  virtual Status Prepare(SwitchoverRecord& record) = 0;
  virtual Status Snapshot(const SwitchoverRecord& record) = 0;     // freezes the bases here
  virtual StatusOr<uint64_t> FinalRound(const SwitchoverRecord& record) = 0;  // bytes sent
  // The live migration; `copy_storage_all` for the fallback, else only the tops cross. The fallback, which had
  // no Prepare, records the guest's observation here.
  virtual StatusOr<MigrationFigures> Migrate(SwitchoverRecord& record, bool copy_storage_all) = 0;
  // VERIFYING: does the guest make progress on the target? An error means it could not be looked at (not
  // the guest's fault: the switchover goes on, the error noted). A dead guest's target is told by the step.
  virtual StatusOr<GuestSeen> VerifyGuest(const SwitchoverRecord& record) = 0;
  virtual Status Complete(const SwitchoverRecord& record) = 0;     // idempotent
  virtual Status RollBack(const SwitchoverRecord& record) = 0;     // idempotent
  virtual StatusOr<VmLocation> Locate(const SwitchoverRecord& record) = 0;
  // After a restart in a migration phase: the figures of the migration the dead process started (they come
  // from libvirt's job-completed event, which went to that process). `location` is where Locate just found
  // the VM: kMigratingFromHere asks libvirt for the postcopy switch (no one else is left to ask) and waits up
  // to `wait` for the migration to end and takes its event;
  // kRunningOnTarget asks the target what libvirt kept of the incoming migration. running_on_target is
  // never known then (left empty). nullopt: the figures are lost (libvirt keeps none on the target after a
  // postcopy switch). An error: they could not be looked for. Either way the switchover goes on without them.
  virtual StatusOr<std::optional<MigrationFigures>> RecoverMigrationFigures(const SwitchoverRecord& record,
                                                                            VmLocation location, Duration wait) = 0;
};

class SwitchoverRunner {
 public:
  // `tally`, when given, counts every switchover that ends (for the metrics); it must outlive the runner.
  SwitchoverRunner(store::Store& store, SwitchoverSteps& steps, Clock& clock,
                   std::function<void(const std::string&)> log, SwitchoverTally* tally = nullptr);

  // Runs a new switchover from CHECKING to DONE or FAILED. `request` names the VM, the source and
  // target hosts, the reason and the deadline; its phase and results are set here.
  StatusOr<SwitchoverRecord> Run(SwitchoverRecord request);
  // Drives every unfinished record to its end (start-up). A migration libvirt still runs is waited
  // for (up to `migration_wait`); the figures of a migration the dead process ran are recovered where
  // libvirt still has them (SwitchoverSteps::RecoverMigrationFigures), else left 0. Returns the records it finished; a store error; or, after all others
  // were resumed, the first record that cannot be resumed (unknown phase).
  StatusOr<std::vector<SwitchoverRecord>> ResumeAll(Duration migration_wait = std::chrono::minutes(10));

  // Tries every record left in COMPLETING (see above) once more (one attempt each), except those driven by
  // another thread right now; returns them as they ended up.
  StatusOr<std::vector<SwitchoverRecord>> RetryCompletions();

  StatusOr<std::optional<SwitchoverRecord>> Get(const std::string& vm_uuid) const;
  StatusOr<std::vector<SwitchoverRecord>> List() const;

 private:
  // Drives `record` to a terminal phase; a step that must be redone (COMPLETING) is retried with backoff
  // for up to `retry_window` (zero: once), after which the record is returned where it is.
  StatusOr<SwitchoverRecord> Drive(SwitchoverRecord record, Duration retry_window);
  StepOutcome Perform(SwitchoverRecord& record);
  // RecoverMigrationFigures into `record`; true when they were found.
  bool RecoverFigures(SwitchoverRecord& record, VmLocation location, Duration wait);
  Status Save(SwitchoverRecord& record);

  // The calling thread's claim on driving one VM's record; released when it goes out of scope.
  class Claim {
   public:
    Claim(SwitchoverRunner& runner, std::string vm_uuid) : runner_(runner), vm_uuid_(std::move(vm_uuid)) {}
    Claim(const Claim&) = delete;
    Claim& operator=(const Claim&) = delete;
    ~Claim();

   private:
    SwitchoverRunner& runner_;
    const std::string vm_uuid_;
  };
  // nullptr when another thread drives the VM.
  std::unique_ptr<Claim> TryClaim(const std::string& vm_uuid);

  store::Store& store_;
  SwitchoverSteps& steps_;
  Clock& clock_;
  const std::function<void(const std::string&)> log_;
  SwitchoverTally* const tally_;  // may be null
  Mutex mutex_;
  std::set<std::string> driving_ VS_GUARDED_BY(mutex_);  // VM uuids claimed by a thread
};

}  // namespace vs::switchover
