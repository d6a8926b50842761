// Notice: one preemption notice or early warning, whatever it came from (ACPI power button, cloud
// metadata service, an operator's drain). shadowd reacts to a kPreemption by switching the VMs of
// this host over to their shadows before `deadline`, and to a kEarlyWarning by starting to warm
// them up (copying memory ahead) without switching yet.
//
// The producers in this folder report each event once (see `id`); they never decide what to do.
// Ownership: plain value. Thread-safety: value; copy freely. No failure modes.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"

namespace vs::notice {

struct Notice {
  enum class Source { kAcpiPowerButton, kGce, kAws, kAzure, kDrain };
  enum class Kind {
    kPreemption,    // the host goes away at the deadline
    kEarlyWarning,  // AWS rebalance recommendation, GCE maintenance-event MIGRATE/TERMINATE: start warming up
  };

  Source source = Source::kDrain;
  Kind kind = Kind::kPreemption;
  // Wall time, because it comes from (or is compared with) the platform's own timestamps. For an
  // early warning it is the earliest moment the host can go away (the notice that follows it
  // still has to arrive first).
  WallTime deadline;
  // Stable per event: the same event polled twice has the same id. For Azure it is the platform's
  // EventId, the argument AzurePoller::Approve takes.
  std::string id;
  std::string detail;  // human readable, e.g. the raw event

  bool operator==(const Notice&) const = default;
};

// "acpi-power-button", "gce", "aws", "azure", "drain".
std::string_view SourceName(Notice::Source source);
// The inverse of SourceName, for sources persisted as text (DrainRecord); nullopt for any other text.
std::optional<Notice::Source> SourceFromName(std::string_view name);
// "preemption", "early-warning".
std::string_view KindName(Notice::Kind kind);
// The inverse of KindName, for kinds persisted as text (DrainRecord); nullopt for any other text.
std::optional<Notice::Kind> KindFromName(std::string_view name);

}  // namespace vs::notice
