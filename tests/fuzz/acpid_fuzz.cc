// Fuzz target: the lines acpid writes to its socket (shadowd/notice/power_button.h), and the input-event records of
// the power button's device (the first kInputEventBytes bytes, when there are that many).
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "shadowd/notice/power_button.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)vs::notice::IsAcpidPowerButtonEvent(std::string_view(reinterpret_cast<const char*>(data), size));
  if (size >= vs::notice::kInputEventBytes) {
    (void)vs::notice::IsPowerKeyPress(
        std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), vs::notice::kInputEventBytes));
  }
  return 0;
}
