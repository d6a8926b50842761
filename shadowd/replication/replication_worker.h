// ReplicationWorker: runs the replication rounds of this host's protected VMs on one background thread,
// each VM every policy interval, and the rounds and verifications that `virt-shadow sync|verify` ask for.
//
// Why one thread: libvirt allows one backup job per domain and the backup exports share one NBD port,
// so rounds on a host run one after the other; a round of a small delta takes well under a second.
// A VM's rounds start one interval apart (the next one at once when a round took longer than that), so the
// replica is never older than an interval plus one round. After a failure the VM's next round waits
// min(interval * 2^failures, 60 s) from the failure, so an unreachable shadow host is not hammered.
//
// Ownership: borrows the Replicator and the clock. Thread-safety: SetTargets, Request* and Snapshot may
// be called from any thread. Stop() (also from the destructor) lets the running round finish, fails the
// requests still queued with kUnavailable, and joins. Failure modes: a round's error is logged through
// `log`, counted in the VM's ReplicationRecord, and returned to whoever requested it.
#pragma once

#include <deque>
#include <functional>
#include <future>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/thread_annotations.h"
#include "shadowd/replication/replicator.h"
#include "shadowd/replication/round_scheduler.h"

namespace vs::replication {

struct ReplicationSchedule {
  ReplicationTarget target;
  Duration interval{std::chrono::seconds(5)};
};

// When a VM's next round is due, given when its last round started and ended and the failures in a row it
// ended: one interval after the start of a round that succeeded (at its end when it took longer), after a failure
// min(interval * 2^(failures-1), 60 s) after its end.
MonoTime NextRoundDue(MonoTime started, MonoTime ended, Duration interval, uint32_t failures);

class ReplicationWorker final : public RoundScheduler {
 public:
  ReplicationWorker(Replicator& replicator, Clock& clock, std::function<void(const std::string&)> log);
  ~ReplicationWorker();

  void Start();
  void Stop();

  // The VMs to replicate now (protected and running here); VMs left out are no longer scheduled.
  void SetTargets(const std::vector<ReplicationSchedule>& targets);
  // Runs a round (or a verification) of a scheduled VM as soon as the running one ends.
  std::future<StatusOr<virtshadow::v1::AppliedRound>> RequestRound(const std::string& vm_uuid) override;
  std::future<StatusOr<VerifyReport>> RequestVerify(const std::string& vm_uuid);
  // A switchover's final round (Replicator::RunFinalRound), ahead of every other queued request.
  std::future<StatusOr<virtshadow::v1::AppliedRound>> RequestFinalRound(const std::string& vm_uuid) override;
  // While held (during its switchover), a VM gets no scheduled rounds; requested work still runs.
  void Hold(const std::string& vm_uuid) override;
  void Unhold(const std::string& vm_uuid) override;
  // Ready once no round runs (the worker reached this request, queued ahead of the others); the value
  // is an error when the VM is not a target.
  std::future<StatusOr<bool>> Quiesce(const std::string& vm_uuid) override;
  StatusOr<virtshadow::v1::ReplicationRecord> RecordOf(const std::string& vm_uuid) const override {
    return replicator_.Record(vm_uuid);
  }
  Status Forget(const std::string& vm_uuid) override { return replicator_.Forget(vm_uuid, ""); }
  // The scheduled VMs.
  std::vector<ReplicationSchedule> Targets() const;

 private:
  struct Scheduled {
    ReplicationSchedule schedule;
    MonoTime next_due;
    uint32_t failures = 0;
  };
  using Job = std::function<void(const ReplicationTarget&)>;
  struct Request {
    std::string vm_uuid;
    Job job;
    std::function<void(Status)> fail;
  };
  void Run();
  // Runs a round, logs a failure and schedules the VM's next round (an interval after this one started, or
  // the backoff after failures).
  StatusOr<virtshadow::v1::AppliedRound> RunRoundOf(const ReplicationTarget& target);
  template <typename T>
  std::future<StatusOr<T>> Enqueue(const std::string& vm_uuid, std::function<StatusOr<T>(const ReplicationTarget&)> work,
                                   bool first = false);

  Replicator& replicator_;
  Clock& clock_;
  const std::function<void(const std::string&)> log_;
  mutable Mutex mutex_;
  CondVar wake_;
  std::map<std::string, Scheduled> vms_ VS_GUARDED_BY(mutex_);  // by VM uuid
  std::deque<Request> requests_ VS_GUARDED_BY(mutex_);
  std::set<std::string> held_ VS_GUARDED_BY(mutex_);  // VM uuids
  bool stopping_ VS_GUARDED_BY(mutex_) = false;
  std::thread thread_;
};

}  // namespace vs::replication
