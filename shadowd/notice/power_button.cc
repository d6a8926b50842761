#include "shadowd/notice/power_button.h"

#include <linux/input.h>

#include <cstring>
#include <vector>

#include "shadowd/notice/parse_util.h"

namespace vs::notice {
namespace {

constexpr size_t kMaxAcpidLineBytes = 1024;
static_assert(sizeof(input_event) == kInputEventBytes, "struct input_event differs on this platform");

bool IsHex8(std::string_view field) {
  if (field.size() != 8) return false;
  for (char c : field) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) return false;
  }
  return true;
}

std::vector<std::string_view> SplitWords(std::string_view line) {
  std::vector<std::string_view> words;
  size_t pos = 0;
  while (pos < line.size()) {
    const size_t start = line.find_first_not_of(' ', pos);
    if (start == std::string_view::npos) break;
    const size_t end = line.find(' ', start);
    words.push_back(line.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    pos = end == std::string_view::npos ? line.size() : end;
  }
  return words;
}

}  // namespace

StatusOr<bool> IsAcpidPowerButtonEvent(std::string_view line) {
  auto bad = [&line](std::string_view why) {
    return InvalidArgument("acpid event '" + Printable(line, 120) + "' is malformed (" + std::string(why) +
                           "); expected e.g. 'button/power PBTN 00000080 00000000'");
  };
  if (line.empty()) return bad("empty line");
  if (line.size() > kMaxAcpidLineBytes) return bad("longer than 1024 bytes");
  for (char c : line) {
    if (c < 0x20 || c >= 0x7f) return bad("control or non-ASCII character");
  }
  const std::vector<std::string_view> words = SplitWords(line);
  if (words.size() < 2) return bad("an event has a class and at least one more field");
  if (words[0] != "button/power") return false;
  if (words.size() != 4 || !IsHex8(words[2]) || !IsHex8(words[3])) {
    return bad("button/power needs a device and two 8-digit hex fields");
  }
  return true;
}

StatusOr<bool> IsPowerKeyPress(std::span<const std::byte> record) {
  if (record.size() != kInputEventBytes) {
    return InvalidArgument("input event record is " + std::to_string(record.size()) + " bytes; expected " +
                           std::to_string(kInputEventBytes) + " (struct input_event)");
  }
  input_event event;
  std::memcpy(&event, record.data(), sizeof event);
  if (event.type != EV_KEY || event.code != KEY_POWER) return false;
  if (event.value < 0 || event.value > 2) {
    return InvalidArgument("input event KEY_POWER has value " + std::to_string(event.value) +
                           "; expected 0 (release), 1 (press) or 2 (autorepeat)");
  }
  return event.value == 1;
}

Notice PowerButtonNotice(WallTime now, const PowerButtonOptions& options, uint64_t press_number, std::string detail) {
  return Notice{.source = Notice::Source::kAcpiPowerButton,
                .kind = Notice::Kind::kPreemption,
                .deadline = now + options.deadline_after_press,
                .id = "acpi-power-button/" + std::to_string(ToUnixMillis(now)) + "/" + std::to_string(press_number),
                .detail = std::move(detail)};
}

}  // namespace vs::notice
