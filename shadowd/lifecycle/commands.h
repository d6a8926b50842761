// Commands: the actions a transition of the protection lifecycle (lifecycle.h) asks its caller to
// perform. The state machine never performs them itself; it stays pure and testable.
//
// Every command acting on another host is idempotent by construction (the shadow is named by its
// deterministic UUID), so re-issuing one after a restart is always safe. The caller reports each
// command's outcome back as an Event (DefineShadow -> ShadowDefined / ShadowDefineFailed, ...).
//
// Thread-safety: plain values. Failure modes: none.
#pragma once

#include <string>
#include <variant>

#include "common/clock.h"
#include "shadowd/lifecycle/events.h"

namespace vs::lifecycle {

// Ask the scheduler for a target host; answer with PlacementChosen (echoing shadow_size) or
// PlacementFailed.
struct ComputePlacement {
  ShadowSize shadow_size;
  bool operator==(const ComputePlacement&) const = default;
};
// Create the replica images and define (not start) the shadow domain on `host`; replaces an existing
// definition with the same UUID.
struct DefineShadow {
  std::string host;
  std::string shadow_uuid;
  std::string shadow_name;
  ShadowSize shadow_size;
  bool operator==(const DefineShadow&) const = default;
};
// Undefine the shadow domain on `host` and delete its replica images; succeeds if already gone.
struct ReleaseShadow {
  std::string host;
  std::string shadow_uuid;
  std::string shadow_name;
  bool operator==(const ReleaseShadow&) const = default;
};
// Deliver GraceExpired at `deadline` (wall time: the deadline is persisted and outlives the process).
struct StartGraceTimer {
  WallTime deadline;
  bool operator==(const StartGraceTimer&) const = default;
};
// Deliver RetryTimerFired at `at` (wall time, persisted like the grace deadline). Any jitter is the
// caller's to add.
struct ScheduleRetry {
  WallTime at;
  bool operator==(const ScheduleRetry&) const = default;
};
// The record is in its terminal state: delete it from the store.
struct DeleteRecord {
  bool operator==(const DeleteRecord&) const = default;
};
// Tell the operator (log, event stream); the same text is in the record's last_error.
struct ReportError {
  std::string message;
  bool operator==(const ReportError&) const = default;
};

using Command = std::variant<ComputePlacement, DefineShadow, ReleaseShadow, StartGraceTimer, ScheduleRetry,
                             DeleteRecord, ReportError>;

// One line for logs, e.g. "ReleaseShadow{host=h2, uuid=..., name=web-shadow}"; times as unix ms.
std::string ToString(const Command& command);

}  // namespace vs::lifecycle
