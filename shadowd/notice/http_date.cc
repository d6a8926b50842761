#include "shadowd/notice/http_date.h"

#include <array>
#include <chrono>
#include <optional>
#include <string>

#include "shadowd/notice/parse_util.h"

namespace vs::notice {
namespace {

using namespace std::chrono;

// Reads fixed-width fields left to right; every Take* fails without consuming on a mismatch.
class Scanner {
 public:
  explicit Scanner(std::string_view text) : text_(text) {}

  bool TakeDigits(size_t count, int& out) {
    if (text_.size() - pos_ < count) return false;
    int value = 0;
    for (size_t i = 0; i < count; ++i) {
      const char c = text_[pos_ + i];
      if (c < '0' || c > '9') return false;
      value = value * 10 + (c - '0');
    }
    pos_ += count;
    out = value;
    return true;
  }
  bool TakeChar(char c) {
    if (pos_ >= text_.size() || text_[pos_] != c) return false;
    ++pos_;
    return true;
  }
  bool TakeAnyOf(std::string_view chars, char& out) {
    if (pos_ >= text_.size() || chars.find(text_[pos_]) == std::string_view::npos) return false;
    out = text_[pos_++];
    return true;
  }
  bool TakeWord(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }
  bool AtDigit() const { return pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9'; }
  bool AtEnd() const { return pos_ == text_.size(); }

 private:
  std::string_view text_;
  size_t pos_ = 0;
};

constexpr std::array<std::string_view, 12> kMonthNames = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr std::array<std::string_view, 7> kDayNames = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};

std::string Quote(std::string_view text) { return "'" + Printable(text, 64) + "'"; }

// The calendar date, or an error naming the field that is out of range.
StatusOr<sys_days> MakeDate(int y, int m, int d, std::string_view text, std::string_view form) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument("timestamp " + Quote(text) + " has " + why + "; expected " + std::string(form));
  };
  if (m < 1 || m > 12) return bad("month " + std::to_string(m));
  const year_month_day date{year{y}, month{static_cast<unsigned>(m)}, day{static_cast<unsigned>(d)}};
  if (!date.ok()) {
    return bad("day " + std::to_string(d) + " of " + std::string(kMonthNames[m - 1]) + " " + std::to_string(y));
  }
  return sys_days(date);
}

// WallTime counts nanoseconds in an int64: it holds 1677-09-21T00:12:44Z .. 2262-04-11T23:47:16Z. Both forms allow
// years up to 9999, whose nanoseconds would wrap around into the past (a far-future deadline turned into one long
// gone), so a time outside is refused instead; no metadata service means a date that far off.
constexpr std::string_view kRepresentable =
    "it is outside 1677-09-21T00:12:44Z .. 2262-04-11T23:47:16Z, the times shadowd can represent";

std::optional<WallTime> ToWallTime(sys_seconds whole, nanoseconds fraction) {
  if (whole < ceil<seconds>(WallTime::min()) || whole >= floor<seconds>(WallTime::max())) return std::nullopt;
  return WallTime(duration_cast<WallTime::duration>(whole.time_since_epoch())) +
         duration_cast<WallTime::duration>(fraction);
}

Status CheckTimeOfDay(int hh, int mm, int ss, std::string_view text, std::string_view form) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument("timestamp " + Quote(text) + " has " + why + "; expected " + std::string(form));
  };
  if (hh > 23) return bad("hour " + std::to_string(hh));
  if (mm > 59) return bad("minute " + std::to_string(mm));
  if (ss > 60) return bad("second " + std::to_string(ss));
  return Status::Ok();
}

}  // namespace

StatusOr<WallTime> ParseRfc3339(std::string_view text) {
  constexpr std::string_view kForm = "RFC 3339 like 2017-09-18T08:22:00Z";
  auto bad = [&](std::string_view why) {
    return InvalidArgument("timestamp " + Quote(text) + " is not valid (" + std::string(why) + "); expected " +
                           std::string(kForm));
  };
  Scanner s(text);
  int y = 0, mo = 0, d = 0, hh = 0, mm = 0, ss = 0;
  char sep = 0;
  if (!s.TakeDigits(4, y) || !s.TakeChar('-') || !s.TakeDigits(2, mo) || !s.TakeChar('-') || !s.TakeDigits(2, d)) {
    return bad("the date must be YYYY-MM-DD");
  }
  if (!s.TakeAnyOf("Tt", sep)) return bad("the date must be followed by 'T'");
  if (!s.TakeDigits(2, hh) || !s.TakeChar(':') || !s.TakeDigits(2, mm) || !s.TakeChar(':') || !s.TakeDigits(2, ss)) {
    return bad("the time must be hh:mm:ss");
  }
  nanoseconds fraction{0};
  if (s.TakeChar('.')) {
    if (!s.AtDigit()) return bad("'.' must be followed by digits");
    int64_t scale = 100'000'000;
    while (s.AtDigit()) {
      int digit = 0;
      (void)s.TakeDigits(1, digit);
      if (scale == 0) return bad("more than 9 fractional digits");
      fraction += nanoseconds(digit * scale);
      scale /= 10;
    }
  }
  minutes offset{0};
  char zone = 0;
  if (!s.TakeAnyOf("Zz", zone)) {
    if (!s.TakeAnyOf("+-", zone)) return bad("the time zone is missing: end with 'Z' or an offset like +02:00");
    int oh = 0, om = 0;
    if (!s.TakeDigits(2, oh) || !s.TakeChar(':') || !s.TakeDigits(2, om) || oh > 23 || om > 59) {
      return bad("the offset must be +hh:mm or -hh:mm");
    }
    offset = hours(oh) + minutes(om);
    if (zone == '-') offset = -offset;
  }
  if (!s.AtEnd()) return bad("unexpected text after the time zone");

  VS_RETURN_IF_ERROR(CheckTimeOfDay(hh, mm, ss, text, kForm));
  VS_ASSIGN_OR_RETURN(const sys_days date, MakeDate(y, mo, d, text, kForm));
  const sys_seconds local = date + hours(hh) + minutes(mm) + seconds(ss);
  std::optional<WallTime> time = ToWallTime(local - offset, fraction);
  if (!time) return bad(kRepresentable);
  return *time;
}

StatusOr<WallTime> ParseRfc1123(std::string_view text) {
  constexpr std::string_view kForm = "RFC 1123 like 'Mon, 19 Sep 2016 18:29:47 GMT'";
  auto bad = [&](std::string_view why) {
    return InvalidArgument("timestamp " + Quote(text) + " is not valid (" + std::string(why) + "); expected " +
                           std::string(kForm));
  };
  Scanner s(text);
  int day_name = -1;
  for (size_t i = 0; i < kDayNames.size() && day_name < 0; ++i) {
    if (s.TakeWord(kDayNames[i])) day_name = static_cast<int>(i);
  }
  if (day_name < 0) return bad("it must start with a day name: Mon, Tue, ...");
  if (!s.TakeWord(", ")) return bad("the day name must be followed by ', '");
  int d = 0;
  if (!s.TakeDigits(2, d) && !s.TakeDigits(1, d)) return bad("the day of the month must be 1 or 2 digits");
  if (!s.TakeChar(' ')) return bad("the day of the month must be followed by a space");
  int mo = 0;
  for (size_t i = 0; i < kMonthNames.size() && mo == 0; ++i) {
    if (s.TakeWord(kMonthNames[i])) mo = static_cast<int>(i) + 1;
  }
  if (mo == 0) return bad("the month must be Jan, Feb, ..., Dec");
  int y = 0, hh = 0, mm = 0, ss = 0;
  if (!s.TakeChar(' ') || !s.TakeDigits(4, y)) return bad("the year must be 4 digits");
  if (!s.TakeChar(' ') || !s.TakeDigits(2, hh) || !s.TakeChar(':') || !s.TakeDigits(2, mm) || !s.TakeChar(':') ||
      !s.TakeDigits(2, ss)) {
    return bad("the time must be hh:mm:ss");
  }
  if (!s.TakeWord(" GMT")) return bad("the time zone must be ' GMT'");
  if (!s.AtEnd()) return bad("unexpected text after 'GMT'");

  VS_RETURN_IF_ERROR(CheckTimeOfDay(hh, mm, ss, text, kForm));
  VS_ASSIGN_OR_RETURN(const sys_days date, MakeDate(y, mo, d, text, kForm));
  const unsigned actual_day = weekday(date).c_encoding();
  if (actual_day != static_cast<unsigned>(day_name)) {
    return bad("it names " + std::string(kDayNames[day_name]) + " but that date is a " +
               std::string(kDayNames[actual_day]));
  }
  std::optional<WallTime> time = ToWallTime(date + hours(hh) + minutes(mm) + seconds(ss), nanoseconds(0));
  if (!time) return bad(kRepresentable);
  return *time;
}

}  // namespace vs::notice
