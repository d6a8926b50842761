#include "shadowd/notice/http_date.h"

#include <gtest/gtest.h>

#include <string>

#include "tests/unit/notice/test_support.h"

namespace vs::notice {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using test_support::UnixSeconds;

void ExpectInvalid(const StatusOr<WallTime>& t, const std::string& text, const std::string& why) {
  ASSERT_FALSE(t.ok()) << text;
  EXPECT_EQ(t.status().code(), Code::kInvalidArgument) << text;
  EXPECT_NE(t.status().message().find(why), std::string::npos) << text << " -> " << t.status().ToString();
}

TEST(ParseRfc3339Test, ParsesTheAwsForm) {
  StatusOr<WallTime> t = ParseRfc3339("2017-09-18T08:22:00Z");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(*t, UnixSeconds(1505722920));
  EXPECT_EQ(*ParseRfc3339("1970-01-01T00:00:00Z"), UnixSeconds(0));
  EXPECT_EQ(*ParseRfc3339("2017-09-18t08:22:00z"), UnixSeconds(1505722920));
}

TEST(ParseRfc3339Test, FractionsAndOffsets) {
  EXPECT_EQ(*ParseRfc3339("2017-09-18T08:22:00.5Z"), UnixSeconds(1505722920) + milliseconds(500));
  EXPECT_EQ(*ParseRfc3339("2017-09-18T08:22:00.123456789Z"), UnixSeconds(1505722920) + nanoseconds(123456789));
  EXPECT_EQ(*ParseRfc3339("2017-09-18T10:22:00+02:00"), UnixSeconds(1505722920));
  EXPECT_EQ(*ParseRfc3339("2017-09-18T03:52:00-04:30"), UnixSeconds(1505722920));
  // An offset can move the instant across a day, month and year boundary.
  EXPECT_EQ(*ParseRfc3339("2016-12-31T23:59:59-00:00"), UnixSeconds(1483228799));
  EXPECT_EQ(*ParseRfc3339("2017-01-01T00:59:59+01:00"), UnixSeconds(1483228799));
}

TEST(ParseRfc3339Test, CalendarEdges) {
  EXPECT_EQ(*ParseRfc3339("2024-02-29T23:59:59Z"), UnixSeconds(1709251199));
  EXPECT_EQ(*ParseRfc3339("2000-02-29T00:00:00Z"), UnixSeconds(951782400));
  ExpectInvalid(ParseRfc3339("2023-02-29T00:00:00Z"), "2023-02-29", "day 29 of Feb 2023");
  ExpectInvalid(ParseRfc3339("1900-02-29T00:00:00Z"), "1900-02-29", "day 29 of Feb 1900");
  ExpectInvalid(ParseRfc3339("2021-04-31T00:00:00Z"), "04-31", "day 31 of Apr");
  ExpectInvalid(ParseRfc3339("2021-13-01T00:00:00Z"), "month 13", "month 13");
  ExpectInvalid(ParseRfc3339("2021-00-01T00:00:00Z"), "month 0", "month 0");
  ExpectInvalid(ParseRfc3339("2021-01-00T00:00:00Z"), "day 0", "day 0");
  ExpectInvalid(ParseRfc3339("2021-01-01T24:00:00Z"), "hour 24", "hour 24");
  ExpectInvalid(ParseRfc3339("2021-01-01T00:60:00Z"), "minute 60", "minute 60");
  ExpectInvalid(ParseRfc3339("2021-01-01T00:00:61Z"), "second 61", "second 61");
  // A leap second counts as the next second, as POSIX time does.
  EXPECT_EQ(*ParseRfc3339("2016-12-31T23:59:60Z"), UnixSeconds(1483228800));
}

TEST(ParseRfc3339Test, MalformedTextNamesWhatIsWrong) {
  ExpectInvalid(ParseRfc3339(""), "empty", "YYYY-MM-DD");
  ExpectInvalid(ParseRfc3339("2017-9-18T08:22:00Z"), "one-digit month", "YYYY-MM-DD");
  ExpectInvalid(ParseRfc3339("2017-09-18 08:22:00Z"), "space separator", "'T'");
  ExpectInvalid(ParseRfc3339("2017-09-18T08:22Z"), "no seconds", "hh:mm:ss");
  ExpectInvalid(ParseRfc3339("2017-09-18T08:22:00"), "no zone", "time zone is missing");
  ExpectInvalid(ParseRfc3339("2017-09-18T08:22:00+0200"), "offset without colon", "+hh:mm");
  ExpectInvalid(ParseRfc3339("2017-09-18T08:22:00+24:00"), "offset hour 24", "+hh:mm");
  ExpectInvalid(ParseRfc3339("2017-09-18T08:22:00.Z"), "empty fraction", "followed by digits");
  ExpectInvalid(ParseRfc3339("2017-09-18T08:22:00.1234567891Z"), "10 fraction digits", "9 fractional");
  ExpectInvalid(ParseRfc3339("2017-09-18T08:22:00Zjunk"), "trailing text", "after the time zone");
  ExpectInvalid(ParseRfc3339("2017-09-18T08:22:00Z\n"), "trailing newline", "after the time zone");
  ExpectInvalid(ParseRfc3339("-017-09-18T08:22:00Z"), "sign", "YYYY-MM-DD");
  ExpectInvalid(ParseRfc3339(std::string("2017-09-18T08:22:00\0Z", 21)), "NUL", "time zone");
  // Hostile text is quoted, bounded and without control characters.
  StatusOr<WallTime> t = ParseRfc3339(std::string(10000, '\x01'));
  ASSERT_FALSE(t.ok());
  EXPECT_LT(t.status().message().size(), 300u);
  EXPECT_EQ(t.status().message().find('\x01'), std::string::npos);
}

// WallTime holds int64 nanoseconds: 1677-09-21T00:12:44Z .. 2262-04-11T23:47:16Z. A date past that (both forms allow
// years up to 9999) used to wrap around into the past, so a deadline of year 2263 read as one in 1678.
TEST(ParseRfc3339Test, TimesWallTimeCannotHoldAreRefusedNotWrapped) {
  EXPECT_EQ(*ParseRfc3339("2262-04-11T23:47:15.999999999Z"), UnixSeconds(9223372035) + nanoseconds(999999999));
  EXPECT_EQ(*ParseRfc3339("1677-09-21T00:12:44Z"), UnixSeconds(-9223372036));
  for (const char* text : {"2263-01-01T00:00:00Z", "9999-12-31T23:59:60.999999999-23:59", "2262-04-11T23:47:16Z",
                           "2262-04-12T00:00:00+00:01", "1677-09-21T00:12:43Z", "0000-01-01T00:00:00+23:59"}) {
    ExpectInvalid(ParseRfc3339(text), text, "outside 1677-09-21T00:12:44Z .. 2262-04-11T23:47:16Z");
  }
}

TEST(ParseRfc1123Test, TimesWallTimeCannotHoldAreRefusedNotWrapped) {
  EXPECT_EQ(*ParseRfc1123("Fri, 11 Apr 2262 23:47:15 GMT"), UnixSeconds(9223372035));
  for (const char* text : {"Thu, 01 Jan 2263 00:00:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT",
                           "Fri, 11 Apr 2262 23:47:16 GMT", "Sat, 01 Jan 0000 00:00:00 GMT"}) {
    ExpectInvalid(ParseRfc1123(text), text, "outside 1677-09-21T00:12:44Z .. 2262-04-11T23:47:16Z");
  }
}

TEST(ParseRfc1123Test, ParsesTheAzureForm) {
  StatusOr<WallTime> t = ParseRfc1123("Mon, 19 Sep 2016 18:29:47 GMT");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(*t, UnixSeconds(1474309787));
  EXPECT_EQ(*ParseRfc1123("Thu, 01 Jan 1970 00:00:00 GMT"), UnixSeconds(0));
  EXPECT_EQ(*ParseRfc1123("Thu, 1 Jan 1970 00:00:00 GMT"), UnixSeconds(0));
  EXPECT_EQ(*ParseRfc1123("Thu, 29 Feb 2024 23:59:59 GMT"), UnixSeconds(1709251199));
}

TEST(ParseRfc1123Test, MalformedTextNamesWhatIsWrong) {
  ExpectInvalid(ParseRfc1123(""), "empty", "day name");
  ExpectInvalid(ParseRfc1123("Tue, 19 Sep 2016 18:29:47 GMT"), "wrong weekday", "that date is a Mon");
  ExpectInvalid(ParseRfc1123("Monday, 19 Sep 2016 18:29:47 GMT"), "long day name", "', '");
  ExpectInvalid(ParseRfc1123("mon, 19 Sep 2016 18:29:47 GMT"), "lower-case day", "day name");
  ExpectInvalid(ParseRfc1123("Mon, 19 Sept 2016 18:29:47 GMT"), "long month", "year must be 4 digits");
  ExpectInvalid(ParseRfc1123("Mon, 19 sep 2016 18:29:47 GMT"), "lower-case month", "month must be");
  ExpectInvalid(ParseRfc1123("Mon, 19 Sep 16 18:29:47 GMT"), "2-digit year", "4 digits");
  ExpectInvalid(ParseRfc1123("Mon, 19 Sep 2016 18:29 GMT"), "no seconds", "hh:mm:ss");
  ExpectInvalid(ParseRfc1123("Mon, 19 Sep 2016 18:29:47 UTC"), "UTC", "' GMT'");
  ExpectInvalid(ParseRfc1123("Mon, 19 Sep 2016 18:29:47 +0000"), "numeric zone", "' GMT'");
  ExpectInvalid(ParseRfc1123("Mon, 19 Sep 2016 18:29:47 GMT "), "trailing space", "after 'GMT'");
  ExpectInvalid(ParseRfc1123("Mon, 119 Sep 2016 18:29:47 GMT"), "3-digit day", "followed by a space");
  ExpectInvalid(ParseRfc1123("Fri, 31 Sep 2016 18:29:47 GMT"), "Sep 31", "day 31 of Sep 2016");
  ExpectInvalid(ParseRfc1123("Mon, 19 Sep 2016 25:29:47 GMT"), "hour 25", "hour 25");
  ExpectInvalid(ParseRfc1123("2016-09-19T18:29:47Z"), "RFC 3339 text", "day name");
}

}  // namespace
}  // namespace vs::notice
