// The lifecycle of one crash promotion on the shadow host (proto/failover.proto, PromotionRecord.phase): the one
// transition table, and where an unfinished promotion resumes after shadowd restarts (kill -9 at any point).
//
//   DECIDED --settled--> SETTLED --defined--> DEFINED --started--> STARTED --grown--> DONE
//      |                    |
//      \--refused--> FAILED /--refused--> FAILED          (any phase) --retry--> the same phase
//
// DECIDED   the decision is stored before anything acts on it: from then on QueryPromotion answers PROMOTED, and
//           the returning primary keeps its copy fenced. Step: settle the replica record (ReplicaKeeper::
//           SettleForPromotion: a COPYING/COPIED round discarded, a COMMITTING one rolled forward, no more rounds
//           accepted), read the shadow's definition, turn it into the VM's (PromotedDomainXml) and store that XML
//           and the recovery point in the record.
// SETTLED   Step: define the VM's XML (from the record, not from the shadow, which may be gone), then undefine
//           the shadow. Defining first means a crash in between leaves two definitions over the same disks,
//           neither running (a shadow is never started): the step is simply redone (a redefine of the same XML
//           replaces it; undefining a missing shadow is OK). Undefining first would also be recoverable (the XML
//           is in the record) but would leave a moment with the VM defined nowhere for the controller to see.
// DEFINED   Step: start the VM, once. Persisted as STARTED right after libvirt's start returned.
// STARTED   Step: grow it (vCPU hotplug, balloon) up to PlanGrowth's target; what could not be restored goes in
//           `shortfall`. Growth is idempotent (it sets absolute sizes) and never fails the promotion: a hotplug
//           libvirt refuses is a shortfall, not a retry. Then the VM's origin (its primary, arrived by a
//           promotion) is recorded for `failback` (a failed write is a retry).
// DONE      terminal: the VM runs here; the controller protects it as any tagged VM. Its failback home ends it
//           (Promotions::EndAfterFailback deletes the record).
// FAILED    terminal, only before anything was defined (DECIDED, SETTLED refused: no replica record, a replica
//           that never completed a round, a shadow definition that cannot be promoted). The shadow stays.
//
// Retry: a step that failed for a reason that may pass (libvirt unreachable, a store error) leaves the phase as
// it is, with the error in the record; the worker tries again.
//
// Exactly once (never two domains running, never a second start): resume (ResumePhase) looks at what is true
// now. Only DEFINED depends on it: a VM that already runs was started before the crash, before STARTED was
// stored, and goes on to STARTED without a second start. Every other phase redoes its step, which is idempotent.
//
// Pure functions over values. Thread-safety: none needed. Failure modes: InvalidArgument for a phase/outcome
// pair outside the table (a programming error the caller reports).
#pragma once

#include <string>

#include "common/status.h"
#include "proto/failover.pb.h"

namespace vs::failover {

using PromotionPhase = virtshadow::v1::PromotionPhase;

enum class PromotionOutcome {
  kSucceeded,  // the phase's step is done
  kRetry,      // it failed for a reason that may pass: the same phase again later
  kRefused,    // it cannot be done (before anything was defined only): FAILED
};

// "Decided", "Settled", "Defined", "Started", "Done", "Failed".
std::string PromotionPhaseName(PromotionPhase phase);
bool IsTerminal(PromotionPhase phase);

// THE transition table.
StatusOr<PromotionPhase> NextPromotionPhase(PromotionPhase from, PromotionOutcome outcome);

// What a restarted shadowd finds of the VM's domain on this host.
struct PromotedVmState {
  bool defined = false;  // the VM's own definition (its uuid) exists here
  bool running = false;  // and runs (or is paused: QEMU was started)
};

// The phase a record persisted in `persisted` continues with.
StatusOr<PromotionPhase> ResumePromotionPhase(PromotionPhase persisted, const PromotedVmState& vm);

}  // namespace vs::failover
