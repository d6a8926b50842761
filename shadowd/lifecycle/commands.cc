#include "shadowd/lifecycle/commands.h"

#include <chrono>

#include "shadowd/lifecycle/overloaded.h"

namespace vs::lifecycle {
namespace {

std::string SizeFields(const ShadowSize& size) {
  return "vcpus=" + std::to_string(size.vcpus) + ", memory_kib=" + std::to_string(size.memory_kib);
}

std::string UnixMs(WallTime t) {
  return std::to_string(std::chrono::floor<std::chrono::milliseconds>(t.time_since_epoch()).count());
}

}  // namespace

std::string ToString(const Command& command) {
  return std::visit(
      Overloaded{
          [](const ComputePlacement& c) { return "ComputePlacement{" + SizeFields(c.shadow_size) + "}"; },
          [](const DefineShadow& c) {
            return "DefineShadow{host=" + c.host + ", uuid=" + c.shadow_uuid + ", name=" + c.shadow_name + ", " +
                   SizeFields(c.shadow_size) + "}";
          },
          [](const ReleaseShadow& c) {
            return "ReleaseShadow{host=" + c.host + ", uuid=" + c.shadow_uuid + ", name=" + c.shadow_name + "}";
          },
          [](const StartGraceTimer& c) { return "StartGraceTimer{deadline_unix_ms=" + UnixMs(c.deadline) + "}"; },
          [](const ScheduleRetry& c) { return "ScheduleRetry{at_unix_ms=" + UnixMs(c.at) + "}"; },
          [](const DeleteRecord&) { return std::string("DeleteRecord{}"); },
          [](const ReportError& c) { return "ReportError{" + c.message + "}"; },
      },
      command);
}

}  // namespace vs::lifecycle
