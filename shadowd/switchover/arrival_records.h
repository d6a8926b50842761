// ArrivalRecords: what this host remembers about VMs that arrived here by a switchover, in the store:
//   origin        where the VM came from (for failback, and for the image its old host kept: FormerImages), and
//                 how: a switchover, or a crash promotion of its shadow here (then its origin host may keep a
//                 stale, fenced copy, which a failback has it discard first);
//   guest failed  the guest arrived but made no progress here (kept as it is, reported, never moved again by a
//                 notice, until the VM stops).
//   prepared      a switchover this host prepared as its target and has not completed or aborted (a
//                 SwitchoverRecord of the target's view: vm_uuid, source_host = the VM's primary, target_host,
//                 disks with their tops, fallback, requested_unix_ms = when it was prepared; key
//                 "prepared:<vm uuid>"): the only switchover CompleteSwitchover and AbortSwitchover may act on,
//                 and only on what it names.
// The switchover target writes them when a switchover completes, the promotion when it is done; the coordinator,
// the former-image sweep and the control service read them.
//
// Ownership: borrows the store and the clock. Thread-safety: safe from any thread. A VM's prepared record can have
// two writers at once: a Complete still flattening an earlier switchover (its origin's call timed out and was
// retried) and the next switchover's Prepare; the newer one wins (RecordCompleted). Failure modes: the store's
// errors.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "proto/switchover.pb.h"
#include "shadowd/store/store.h"

namespace vs::switchover {

class ArrivalRecords {
 public:
  ArrivalRecords(store::Store& store, Clock& clock) : store_(store), clock_(clock) {}

  // Replaces the VM's origin record (a VM that came here again has a new origin). `why`: one sentence.
  Status RecordOrigin(const std::string& vm_uuid, const std::string& vm_name, const std::string& origin_host,
                      virtshadow::v1::OriginRecord::Arrival arrived_by, const std::string& why);
  // Where a VM that arrived here by a switchover or a promotion came from; nullopt for any other VM.
  StatusOr<std::optional<virtshadow::v1::OriginRecord>> OriginOf(const std::string& vm_uuid) const;
  StatusOr<std::vector<virtshadow::v1::OriginRecord>> Origins() const;
  // Records what became of the image the VM's origin host kept (FormerImages). NotFound without an origin.
  Status SettleFormerImage(const std::string& vm_uuid, const std::string& outcome);

  // Replaces the VM's prepared switchover; stamps requested_unix_ms.
  Status RecordPrepared(virtshadow::v1::SwitchoverRecord prepared);
  StatusOr<std::optional<virtshadow::v1::SwitchoverRecord>> PreparedOf(const std::string& vm_uuid) const;
  // The switchovers `source_host` prepared here (not fallbacks: they have no tops) that are not completed.
  StatusOr<std::vector<virtshadow::v1::SwitchoverRecord>> UnfinishedFrom(const std::string& source_host) const;
  // Keeps the VM's prepared switchover as completed (finished_unix_ms stamped), so that a Complete retried by an
  // origin whose shadowd restarted meanwhile is answered done instead of refused; the next Prepare replaces it.
  // Writes nothing when the stored record is another switchover's (prepared since `prepared` was read: another
  // requested_unix_ms): a late Complete of an older switchover must not bring its record back over a newer one.
  Status RecordCompleted(virtshadow::v1::SwitchoverRecord prepared);
  Status ForgetPrepared(const std::string& vm_uuid);

  Status RecordGuestFailure(const std::string& vm_uuid, const std::string& vm_name, const std::string& origin_host,
                            const std::string& seen);
  StatusOr<std::optional<virtshadow::v1::GuestFailedRecord>> GuestFailureOf(const std::string& vm_uuid) const;
  StatusOr<std::vector<virtshadow::v1::GuestFailedRecord>> GuestFailures() const;
  Status ForgetGuestFailure(const std::string& vm_uuid);

 private:
  store::Store& store_;
  Clock& clock_;
  Status PutPrepared(const virtshadow::v1::SwitchoverRecord& prepared) VS_REQUIRES(prepared_mutex_);

  Mutex prepared_mutex_;  // held across a prepared record's read and write
};

}  // namespace vs::switchover
