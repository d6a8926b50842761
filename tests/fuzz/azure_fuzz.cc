// Fuzz target: Azure's Scheduled Events document (shadowd/notice/azure_scheduled_events.h), for a VM named "vm1"
// and for any VM (an empty name).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "shadowd/notice/azure_scheduled_events.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const vs::WallTime now{std::chrono::seconds(1'800'000'000)};
  (void)vs::notice::ParseAzureScheduledEvents(body, "vm1", now);
  (void)vs::notice::ParseAzureScheduledEvents(body, "", now);
  return 0;
}
