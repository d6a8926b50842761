// RoundScheduler: what the rest of shadowd asks of this host's replication rounds (ReplicationWorker runs
// them): hold a VM's scheduled rounds while its switchover runs, wait for a running round to end, ask for a
// round now, and read where a VM's replication stands. The switchover side takes this interface, so that its
// unit tests script the rounds instead of running them.
//
// Thread-safety: every method may be called from any thread. Failure modes: the futures hold the round's
// Status; kUnavailable once the scheduler stopped.
#pragma once

#include <future>
#include <string>

#include "common/status.h"
#include "proto/replication.pb.h"

namespace vs::replication {

class RoundScheduler {
 public:
  virtual ~RoundScheduler() = default;
  // While held (during its switchover), a VM gets no scheduled rounds; requested work still runs.
  virtual void Hold(const std::string& vm_uuid) = 0;
  virtual void Unhold(const std::string& vm_uuid) = 0;
  // Ready once no round of this host runs; the value is an error when the VM is not scheduled here.
  virtual std::future<StatusOr<bool>> Quiesce(const std::string& vm_uuid) = 0;
  // A round of a scheduled VM, as soon as the running one ends.
  virtual std::future<StatusOr<virtshadow::v1::AppliedRound>> RequestRound(const std::string& vm_uuid) = 0;
  // A switchover's final round (Replicator::RunFinalRound), ahead of every other queued request.
  virtual std::future<StatusOr<virtshadow::v1::AppliedRound>> RequestFinalRound(const std::string& vm_uuid) = 0;
  // The VM's replication record as this host (its primary) keeps it; an empty record when it has none.
  virtual StatusOr<virtshadow::v1::ReplicationRecord> RecordOf(const std::string& vm_uuid) const = 0;
  // Drops the record of a VM that switched away from this host (its domain is no longer here).
  virtual Status Forget(const std::string& vm_uuid) = 0;
};

}  // namespace vs::replication
