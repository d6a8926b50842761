// Fuzz target: the GCE metadata server's answers (shadowd/notice/gce_metadata.h): the body of
// instance/preempted and of instance/maintenance-event.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "shadowd/notice/gce_metadata.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  (void)vs::notice::ParseGcePreempted(body);
  (void)vs::notice::ParseGceMaintenanceEvent(body);
  return 0;
}
