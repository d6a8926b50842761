// Fuzz target: the timestamps of the metadata services (shadowd/notice/http_date.h), RFC 3339 and RFC 1123. UBSan
// is the oracle that matters here: a signed overflow in the time arithmetic (a far-future date wrapping into the
// past) is reported as undefined behaviour.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "shadowd/notice/http_date.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)vs::notice::ParseRfc3339(text);
  (void)vs::notice::ParseRfc1123(text);
  return 0;
}
