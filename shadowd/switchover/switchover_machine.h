// The lifecycle of one live switchover (proto/switchover.proto, SwitchoverRecord.phase): the one
// transition table, and where an unfinished switchover resumes after shadowd restarts.
//
//   CHECKING --ok--> PREPARING --ok--> SNAPSHOTTING --ok--> FINAL_ROUND --ok--> MIGRATING --ok--> VERIFYING
//      |  \--unhealthy--> FALLBACK_MIGRATING --ok--> VERIFYING
//      |                                   VERIFYING --ok--> COMPLETING --ok--> DONE  (failed: COMPLETING again)
//      |                                   VERIFYING --failed--> GUEST_FAILED
//      |                        \--failed--> FAILED
//      \--failed--> FAILED     PREPARING..MIGRATING --failed--> ROLLING_BACK --(any outcome)--> FAILED
//
// Why these phases: the disk data must come from libvirt and QEMU, not from timing luck. The snapshot
// freezes the bases at one instant (atomic, all disks); the final round brings the replicas to exactly
// that instant; the migration's storage mirror then copies only the tops (writes since the snapshot)
// onto tops created over the replicas. Skipping the final round loses acknowledged writes silently
// (`--copy-storage-inc` without it migrates without a warning), so there is no edge around it. A failure
// before the VM runs on the target rolls back on the source (the tops are committed back into the bases),
// so the VM keeps running where it was.
// VERIFYING: a VM that runs is not yet a VM that works. The guest must show progress on the target
// (guest_check.h: its agent answers, or its block I/O or sent packets move); one that does not (a guest
// once came out of a switchover with corrupted memory, spinning with interrupts off) ends GUEST_FAILED: never
// Done, its tops left unflattened and the source's copy kept, the target told to move it no more.
// COMPLETING ends in DONE only when it succeeded: the VM then runs on its own images (no switchover top) on
// the target. A failed completion (the target could not flatten yet, or did not answer) stays in
// COMPLETING and is tried again: a VM left on a top once had the next switchover snapshot over its live
// layer. Nothing may roll back from there: the VM already runs on the target.
//
// Restart (ResumePhase): a switchover found in a non-terminal phase resumes from what is true now:
// CHECKING/PREPARING/SNAPSHOTTING/FINAL_ROUND roll back (nothing the guest depends on happened on the
// target yet); MIGRATING/FALLBACK_MIGRATING verify when the VM runs on the target, roll back when it
// still runs here (libvirt ended the migration without it), and wait while libvirt still migrates;
// VERIFYING is redone (rolled back if the VM is found running here);
// COMPLETING and ROLLING_BACK are redone (their steps are idempotent).
//
// Pure functions over values. Thread-safety: none needed. Failure modes: InvalidArgument for a
// phase/outcome pair outside the table (a programming error the caller reports).
#pragma once

#include <string>

#include "common/status.h"
#include "proto/switchover.pb.h"

namespace vs::switchover {

using Phase = virtshadow::v1::SwitchoverPhase;

enum class StepOutcome {
  kSucceeded,
  kFailed,
  kUnhealthy,  // CHECKING only: the shadow cannot take the VM as is, but a plain migration can
};

// "Checking", "Preparing", ..., "Done", "Failed".
std::string PhaseName(Phase phase);
bool IsTerminal(Phase phase);

StatusOr<Phase> NextPhase(Phase from, StepOutcome outcome);

enum class VmLocation {
  kRunningHere,       // the source still runs it and no migration job is active
  kMigratingFromHere,  // libvirt's migration job is still active on the source
  kRunningOnTarget,   // the target runs it (the source has it no more, or stopped)
};

// The phase a record persisted in `persisted` continues with, the VM being at `location`. For
// kMigratingFromHere during a migration phase it is the same phase (wait and look again).
StatusOr<Phase> ResumePhase(Phase persisted, VmLocation location);

}  // namespace vs::switchover
