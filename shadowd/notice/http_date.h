// Timestamps as the metadata services write them, parsed by hand: no locale, no time zone
// database, no global state (strptime/timegm depend on all three).
//
//   ParseRfc3339: "2017-09-18T08:22:00Z" (AWS). Fractional seconds and numeric offsets
//                 ("+02:00") are accepted; 't'/'z' in lower case too, as RFC 3339 allows.
//   ParseRfc1123: "Mon, 19 Sep 2016 18:29:47 GMT" (Azure NotBefore, HTTP dates). Only GMT, as
//                 HTTP requires; the day name must match the date.
//
// A leap second (":60") is accepted and lands on the next second, as POSIX time counts it.
// Ownership and thread-safety: pure functions of values. Failure modes: InvalidArgument quoting the text and naming the
// part that is wrong (e.g. "month 13", "day 30 of Feb 2021") and the form expected; also for a time WallTime cannot
// hold (before 1677-09-21T00:12:44Z or from 2262-04-11T23:47:16Z on), never a wrapped-around one.
#pragma once

#include <string_view>

#include "common/clock.h"
#include "common/status.h"

namespace vs::notice {

StatusOr<WallTime> ParseRfc3339(std::string_view text);
StatusOr<WallTime> ParseRfc1123(std::string_view text);

}  // namespace vs::notice
