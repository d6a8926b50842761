#include "shadowd/notice/notice.h"

namespace vs::notice {

std::string_view SourceName(Notice::Source source) {
  switch (source) {
    case Notice::Source::kAcpiPowerButton:
      return "acpi-power-button";
    case Notice::Source::kGce:
      return "gce";
    case Notice::Source::kAws:
      return "aws";
    case Notice::Source::kAzure:
      return "azure";
    case Notice::Source::kDrain:
      return "drain";
  }
  return "unknown";
}

std::optional<Notice::Source> SourceFromName(std::string_view name) {
  for (Notice::Source source : {Notice::Source::kAcpiPowerButton, Notice::Source::kGce, Notice::Source::kAws,
                                Notice::Source::kAzure, Notice::Source::kDrain}) {
    if (SourceName(source) == name) return source;
  }
  return std::nullopt;
}

std::string_view KindName(Notice::Kind kind) {
  switch (kind) {
    case Notice::Kind::kPreemption:
      return "preemption";
    case Notice::Kind::kEarlyWarning:
      return "early-warning";
  }
  return "unknown";
}

std::optional<Notice::Kind> KindFromName(std::string_view name) {
  for (Notice::Kind kind : {Notice::Kind::kPreemption, Notice::Kind::kEarlyWarning}) {
    if (KindName(kind) == name) return kind;
  }
  return std::nullopt;
}

}  // namespace vs::notice
