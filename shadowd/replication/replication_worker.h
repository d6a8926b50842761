// ReplicationWorker: runs the replication rounds of this host's protected VMs, each VM every policy interval,
// and the rounds and verifications that `virt-shadow sync|verify` and switchovers ask for.
//
// Rounds of different VMs run concurrently on `concurrency` runner threads (RoundQueue decides which work is
// next: one piece of work per VM at a time, requests first, then the VM furthest behind relative to its
// interval). libvirt's backup exports of different domains need different NBD ports (each QEMU runs its own
// NBD server), so runner i exports on `first_export_port + i`, always the same port. A VM's rounds start one
// interval apart (the next one at once when a round took longer than that), so the replica is never older
// than an interval plus one round, as long as the runners keep up; after a failure the VM's next round waits
// min(interval * 2^failures, 60 s) from the failure, so an unreachable shadow host is not hammered.
//
// Ownership: borrows the Replicator and the clock. Thread-safety: every public method may be called from any
// thread; the Replicator is called for different VMs from different runners at once (it is safe for that:
// replicator.h). Stop() (also from the destructor) lets the running work finish, fails the requests still
// queued with kUnavailable, and joins. Failure modes: a round's error is logged through `log`, counted in the
// VM's ReplicationRecord, and returned to whoever requested it.
#pragma once

#include <functional>
#include <future>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/thread_annotations.h"
#include "shadowd/replication/replicator.h"
#include "shadowd/replication/round_queue.h"
#include "shadowd/replication/round_scheduler.h"

namespace vs::replication {

struct WorkerOptions {
  int concurrency = 4;             // runner threads: rounds of different VMs at once
  uint16_t first_export_port = 10809;  // runner i's backup exports listen on first_export_port + i
};

class ReplicationWorker final : public RoundScheduler {
 public:
  ReplicationWorker(Replicator& replicator, Clock& clock, WorkerOptions options,
                    std::function<void(const std::string&)> log);
  ~ReplicationWorker();

  void Start();
  void Stop();

  // The VMs to replicate now (protected and running here); VMs left out are no longer scheduled.
  void SetTargets(const std::vector<ReplicationSchedule>& targets);
  // Runs a round (or a verification) of a scheduled VM as soon as a runner is free and the VM's running work ended.
  std::future<StatusOr<virtshadow::v1::AppliedRound>> RequestRound(const std::string& vm_uuid) override;
  std::future<StatusOr<VerifyReport>> RequestVerify(const std::string& vm_uuid);
  // A switchover's final round (Replicator::RunFinalRound), ahead of every other queued request.
  std::future<StatusOr<virtshadow::v1::AppliedRound>> RequestFinalRound(const std::string& vm_uuid) override;
  // While held (during its switchover), a VM gets no scheduled rounds; requested work still runs.
  void Hold(const std::string& vm_uuid) override;
  void Unhold(const std::string& vm_uuid) override;
  // Ready once no work of the VM runs (queued ahead of the other requests); the value is an error when the VM
  // is not a target.
  std::future<StatusOr<bool>> Quiesce(const std::string& vm_uuid) override;
  StatusOr<virtshadow::v1::ReplicationRecord> RecordOf(const std::string& vm_uuid) const override {
    return replicator_.Record(vm_uuid);
  }
  Status Forget(const std::string& vm_uuid) override { return replicator_.Forget(vm_uuid, ""); }
  // The scheduled VMs.
  std::vector<ReplicationSchedule> Targets() const;
  // Every scheduled VM's place in the queue, and how many runners there are.
  std::vector<RoundQueue::Entry> Queue() const;
  int concurrency() const { return options_.concurrency; }

 private:
  // A request's work, run by a runner with its export port; returns the round's outcome when it was a round
  // (which moves the VM's schedule), empty otherwise.
  using Job = std::function<std::optional<bool>(const ReplicationTarget&, uint16_t export_port)>;
  struct Request {
    Job job;
    std::function<void(Status)> fail;
  };
  void Run(uint16_t export_port);
  // Runs a round and logs a failure or a seed/resync.
  StatusOr<virtshadow::v1::AppliedRound> RunRoundOf(const ReplicationTarget& target, uint16_t export_port);
  struct EnqueueOptions {
    bool is_round = false;  // a round of the VM's schedule: its outcome moves the VM's next round
    bool first = false;     // ahead of the other requests
  };
  template <typename T>
  std::future<StatusOr<T>> Enqueue(const std::string& vm_uuid,
                                   std::function<StatusOr<T>(const ReplicationTarget&, uint16_t export_port)> work,
                                   EnqueueOptions options);

  Replicator& replicator_;
  Clock& clock_;
  const WorkerOptions options_;
  const std::function<void(const std::string&)> log_;
  mutable Mutex mutex_;
  CondVar wake_;
  RoundQueue queue_ VS_GUARDED_BY(mutex_);
  std::map<uint64_t, Request> requests_ VS_GUARDED_BY(mutex_);  // by the queue's request id
  bool stopping_ VS_GUARDED_BY(mutex_) = false;
  std::vector<std::thread> runners_;
};

}  // namespace vs::replication
