// The AWS instance metadata (IMDSv2) answers that announce the loss of this host, parsed (pure):
//
//   PUT {base}/latest/api/token                                  -> the session token (opaque text)
//   GET {base}/latest/meta-data/spot/instance-action             -> 404 when none, else
//       {"action": "terminate"|"stop"|"hibernate", "time": "2017-09-18T08:22:00Z"}
//   GET {base}/latest/meta-data/events/recommendations/rebalance -> 404 when none, else
//       {"noticeTime": "2020-10-27T08:22:00Z"}
//
// An instance-action is a preemption whose deadline is its "time"; when "time" is absent or
// unreadable the deadline is kAwsDefaultSpotNotice after `now` (AWS's documented two minutes) and
// the detail says why, because a spot interruption must not be lost over a bad timestamp. A
// rebalance recommendation is an early warning; the interruption it foreshadows still comes with
// its own two-minute notice, so the earliest the host can go away is kAwsDefaultSpotNotice later.
// Ids: "aws/spot/<action>/<time>" and "aws/rebalance/<noticeTime>", stable while AWS keeps
// serving the same document.
// Ownership and thread-safety: pure functions of values. Failure modes: InvalidArgument naming the document and the
// field that is missing, of the wrong type or out of the expected values.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/status.h"
#include "shadowd/notice/notice.h"

namespace vs::notice {

inline constexpr Duration kAwsDefaultSpotNotice = std::chrono::seconds(120);

// The token, which goes into a header: it must be 1-1024 visible ASCII characters (a trailing
// newline is dropped).
StatusOr<std::string> ParseAwsToken(std::string_view body);

StatusOr<Notice> ParseAwsInstanceAction(std::string_view body, WallTime now);

StatusOr<Notice> ParseAwsRebalanceRecommendation(std::string_view body, WallTime now);

}  // namespace vs::notice
