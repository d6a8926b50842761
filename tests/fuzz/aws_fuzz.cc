// Fuzz target: the AWS instance metadata answers (shadowd/notice/aws_metadata.h): the IMDSv2 token, the spot
// instance-action document and the rebalance recommendation, all from the same body.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "shadowd/notice/aws_metadata.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  const vs::WallTime now{std::chrono::seconds(1'800'000'000)};
  (void)vs::notice::ParseAwsToken(body);
  (void)vs::notice::ParseAwsInstanceAction(body, now);
  (void)vs::notice::ParseAwsRebalanceRecommendation(body, now);
  return 0;
}
